"""Debian's package and translation indexes for the DDTP data set (:mod:`.ddtp`): fetched, found and read.

:func:`fetch_indexes` runs ``apt-get update`` under a private configuration (``APT_CONFIG``): the system's
sources copied into its own ``Dir::Etc``, its own lists, cache, state and log directories,
``Acquire::Languages`` set to the DDTP languages (``DEBIAN_LANGS``). The system's apt state is never read or
written (only its sources, keyrings and network settings are reused). :func:`find_indexes` finds the Packages
and ``Translation-<lang>`` files of a lists directory (apt's names or a mirror's), :func:`read_index`
decompresses one, :func:`stanzas` parses its deb822 paragraphs and :func:`description_paragraphs` a
Description field.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import lzma
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

from xlmr_core.data import cache
from xlmr_core.democorpus.text import norm_space
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir, atomic_write_json, atomic_write_text, file_lock, file_sha256

ENV_VAR = "XLMR_DDTP"
"""Environment variable naming a built DDTP data set to use instead of building one."""
DEBIAN_LANGS = ("ca", "cs", "da", "de", "el", "eo", "es", "eu", "fi", "fr", "gl", "hr", "hu", "id", "it", "ja",
                "km", "ko", "ml", "nb", "nl", "pl", "pt", "pt_BR", "ro", "ru", "sk", "sr", "sv", "tr", "uk", "vi",
                "zh_CN", "zh_TW")
"""DDTP languages requested with Acquire::Languages (bookworm publishes these; apt skips any not published)."""
# not requested: de_DE (a copy of de), pt_AO and zh (a handful of entries each)
MANIFEST = "manifest.json"  # in the lists directory, written after a successful apt-get update


def default_apt_dir() -> Path:
    """The private apt directory (configuration, lists, cache): ``<cache root>/downloads/ddtp-apt``."""
    return cache.default_root() / "downloads" / "ddtp-apt"


def _elsewhere(what: str) -> str:
    return (f"{what}: point ${ENV_VAR} at a DDTP data set built elsewhere (`xlmr corpus ddtp --out DIR` on a "
            f"machine with apt and network, then copy DIR), or build from index files copied from a Debian "
            f"mirror with `xlmr corpus ddtp --lists DIR` (dists/<release>/main/binary-<arch>/Packages.xz and "
            f"main/i18n/Translation-<lang>.bz2)")


# ---------------------------------------------------------------- apt-get update, privately


def _apt(cmd: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise XlmrError(_elsewhere(f"building the DDTP data set needs `{cmd[0]}` (Debian/Ubuntu: apt), which is "
                                   f"not on PATH"))
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def _system_apt() -> dict[str, str]:
    """The system's source files, keyrings and network settings (read, never written)."""
    r = _apt(["apt-config", "shell", "LIST", "Dir::Etc::sourcelist/f", "PARTS", "Dir::Etc::sourceparts/d",
              "TRUSTED", "Dir::Etc::trusted/f", "TRUSTEDPARTS", "Dir::Etc::trustedparts/d"])
    dirs = {m.group(1): m.group(2) for m in re.finditer(r"^(\w+)='(.*)'$", r.stdout, re.MULTILINE)}
    dump = _apt(["apt-config", "dump"]).stdout
    # proxies, retries and date checks as the system has them; never its Acquire::Languages (often "none")
    network = [line for line in dump.splitlines()
               if re.match(r"Acquire::(https?|ftp|Retries|ForceIPv[46]|Check-Valid-Until|Check-Date)\b", line)]
    return {**dirs, "network": "\n".join(network)}


def _copy_sources(system: dict[str, str], etc: Path) -> list[str]:
    """Copy the system's sources.list and sources.list.d/*.list|*.sources into ``etc``; returns the originals."""
    parts = etc / "sources.list.d"
    parts.mkdir(parents=True, exist_ok=True)
    for old in parts.iterdir():
        old.unlink()
    copied = []
    src_list = Path(system.get("LIST", "/etc/apt/sources.list"))
    (etc / "sources.list").write_text(src_list.read_text() if src_list.is_file() else "")
    if src_list.is_file() and src_list.read_text().strip():
        copied.append(str(src_list))
    src_parts = Path(system.get("PARTS", "/etc/apt/sources.list.d"))
    for f in sorted(src_parts.glob("*")) if src_parts.is_dir() else []:
        if f.suffix in (".list", ".sources") and f.is_file():  # what apt itself reads (not *.disabled ...)
            shutil.copyfile(f, parts / f.name)
            copied.append(str(f))
    if not copied:
        raise XlmrError(_elsewhere(f"no apt sources in {src_list} or {src_parts}"))
    return copied


def _apt_conf(apt_dir: Path, lists: Path, system: dict[str, str], codes: Iterable[str]) -> str:
    langs = " ".join(f'"{c}";' for c in ("en", *codes))
    return "\n".join([
        f'Dir::Etc "{apt_dir / "etc"}/";',
        'Dir::Etc::sourcelist "sources.list";',
        'Dir::Etc::sourceparts "sources.list.d";',
        f'Dir::Etc::trusted "{system.get("TRUSTED", "/etc/apt/trusted.gpg")}";',
        f'Dir::Etc::trustedparts "{system.get("TRUSTEDPARTS", "/etc/apt/trusted.gpg.d/")}";',
        f'Dir::State "{apt_dir / "state"}/";',
        f'Dir::State::Lists "{lists}/";',
        f'Dir::State::status "{apt_dir / "state" / "status"}";',  # empty: nothing is installed here
        f'Dir::Cache "{apt_dir / "cache"}/";',
        'Dir::Cache::pkgcache "";',
        'Dir::Cache::srcpkgcache "";',
        f'Dir::Log "{apt_dir / "log"}/";',
        f"Acquire::Languages {{ {langs} }};",
        # keep the indexes gzip-compressed on disk (47 MB instead of 180 MB); Python reads them as they are
        'Acquire::GzipIndexes "true";',
        'Acquire::IndexTargets::deb::Packages::KeepCompressedAs "gz";',
        'Acquire::IndexTargets::deb::Translations::KeepCompressedAs "gz";',
        system.get("network", ""),
        "",
    ])


def fetch_indexes(apt_dir: str | os.PathLike | None = None, codes: Iterable[str] = DEBIAN_LANGS,
                  log=lambda _msg: None) -> Path:
    """The lists directory of a private ``apt-get update`` with the DDTP languages enabled (run once, cached)."""
    apt_dir = Path(apt_dir).expanduser() if apt_dir is not None else default_apt_dir()
    lists = apt_dir / "lists"
    if (lists / MANIFEST).exists():
        return lists
    with file_lock(apt_dir.parent / f".{apt_dir.name}.lock"):
        if (lists / MANIFEST).exists():  # fetched by another process while we waited
            return lists
        system = _system_apt()
        for sub in ("etc", "state", "cache", "log"):
            (apt_dir / sub).mkdir(parents=True, exist_ok=True)
        (apt_dir / "state" / "status").touch()
        sources = _copy_sources(system, apt_dir / "etc")
        log(f"apt-get update with a private configuration ({len(sources)} source file(s) from the system, "
            f"{len(tuple(codes)) + 1} languages)")
        t = time.perf_counter()
        with atomic_dir(lists) as tmp:
            (tmp / "partial").mkdir()
            conf = apt_dir / "apt.conf"
            atomic_write_text(conf, _apt_conf(apt_dir, tmp, system, codes))
            r = _apt(["apt-get", "update", "-q"], env={**os.environ, "APT_CONFIG": str(conf)})
            found = find_indexes(tmp, strict=False)
            if found is None:
                tail = " ".join((r.stderr.strip() or r.stdout.strip())[-300:].split())
                raise XlmrError(_elsewhere(f"`apt-get update` (APT_CONFIG={conf}, sources {', '.join(sources)}) "
                                           f"got no Packages and Translation-en index ({tail or 'no output'})"))
            for junk in ("lock", "partial", "auxfiles"):
                p = tmp / junk
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            warnings = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith(("W:", "E:"))]
            atomic_write_json(tmp / MANIFEST, {
                "apt_get_update": {"returncode": r.returncode, "warnings": warnings[:20],
                                   "seconds": round(time.perf_counter() - t, 1)},
                "sources": sources, "languages_requested": ["en", *codes],
                "files": {f.name: file_sha256(f) for f in sorted(tmp.iterdir()) if f.is_file()}})
        log(f"apt-get update: {time.perf_counter() - t:.1f} s")
    return lists


# ---------------------------------------------------------------- reading the indexes

_PACKAGES_RE = re.compile(r"(?:^|_)Packages(\.(?:gz|xz|bz2|lz4|zst))?$")
_TRANSLATION_RE = re.compile(r"(?:^|_)Translation-([A-Za-z]+(?:(?:_|%5f)[A-Za-z]+)?)(\.(?:gz|xz|bz2|lz4|zst))?$")


def _suite_of(name: str) -> str:
    m = re.search(r"_dists_(.+?)_main_", name)
    return m.group(1) if m else ""


def find_indexes(lists_dir: str | os.PathLike, strict: bool = True) -> dict | None:
    """{'suite', 'packages': Path, 'translations': {code: Path}, 'release': Path | None} of a lists directory.

    Accepts apt's names (``..._dists_bookworm_main_binary-amd64_Packages.gz``) and a mirror's
    (``Packages.xz``, ``Translation-fr.bz2``). With several suites, the one with the most translations wins.
    None (or, with ``strict``, an XlmrError) if there is no Packages or no Translation-en file.
    """
    root = Path(lists_dir)
    groups: dict[str, dict] = collections.defaultdict(lambda: {"packages": [], "translations": {}})
    for f in sorted(root.iterdir()) if root.is_dir() else []:
        if not f.is_file():
            continue
        if _PACKAGES_RE.search(f.name):
            groups[_suite_of(f.name)]["packages"].append(f)
        elif m := _TRANSLATION_RE.search(f.name):
            code = urllib.parse.unquote(m.group(1))
            groups[_suite_of(f.name)]["translations"].setdefault(code, f)
    usable = {s: g for s, g in groups.items() if g["packages"] and "en" in g["translations"]}
    if not usable:
        if strict:
            raise XlmrError(_elsewhere(f"{root} holds no Packages index and Translation-en file"))
        return None
    suite = max(usable, key=lambda s: (len(usable[s]["translations"]), s))
    g = usable[suite]
    if len(g["packages"]) > 1:  # several architectures: the first by name (their descriptions agree)
        g["packages"].sort(key=lambda p: ("binary-all" in p.name, p.name))
    release = next((f for f in sorted(root.glob(f"*_dists_{suite}_InRelease"))), None) if suite else None
    return {"suite": suite, "packages": g["packages"][0], "translations": dict(sorted(g["translations"].items())),
            "release": release}


def read_index(path: str | os.PathLike) -> str:
    """The text of an index file, uncompressed (gz, xz, bz2, zst; lz4 through the ``lz4`` tool)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        elif path.suffix == ".xz":
            data = lzma.decompress(data)
        elif path.suffix == ".bz2":
            data = bz2.decompress(data)
        elif path.suffix == ".zst":
            import zstandard

            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        elif path.suffix == ".lz4":
            if shutil.which("lz4") is None:
                raise XlmrError(f"{path} is lz4-compressed and `lz4` is not installed: `apt-get install lz4` or "
                                f"decompress it (`lz4 -d {path.name}`)")
            data = subprocess.run(["lz4", "-dc", str(path)], capture_output=True, check=True).stdout
        return data.decode("utf-8")
    except (OSError, EOFError, lzma.LZMAError, subprocess.CalledProcessError, ValueError) as e:
        raise XlmrError(f"cannot read index {path} ({e}): delete it to fetch it again") from None


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """The paragraphs of a deb822 file as {field: value}; continuation lines keep their leading space."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if key is not None:
                    fields[key] += "\n" + line
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if fields:
            yield fields


def description_paragraphs(value: str) -> list[str]:
    """A Description field as paragraphs: the synopsis, then the extended description split at ' .' lines."""
    first, _, rest = value.partition("\n")
    paras, cur = [norm_space(first)], []
    for line in rest.split("\n"):
        if line.strip() == ".":
            if cur:
                paras.append(norm_space(" ".join(cur)))
            cur = []
        elif line.strip():
            cur.append(line.strip())
    if cur:
        paras.append(norm_space(" ".join(cur)))
    return [p for p in paras if p]


def _release_info(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    head = path.read_text(encoding="utf-8", errors="replace").split("\nMD5Sum:", 1)[0]
    fields = dict(re.findall(r"^(Origin|Codename|Version|Date): (.*)$", head, re.MULTILINE))
    return {k.lower(): v for k, v in fields.items()}
