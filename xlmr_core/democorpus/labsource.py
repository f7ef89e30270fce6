"""The lab source: one large English file for derived languages (``xlmr corpus lab``).

The curse_lab study derives up to 16 languages from one source language, each trained on its own slice, so the
source must hold K slices of the tokens a run trains on without repeating them many times. The Linux kernel's
documentation, as Debian packages it (``linux-doc-<version>``, GPL-2.0), gives about 21 MB of English prose
paragraphs (HTML ``<p>`` text; code listings and the translations under ``translations/`` left out).

Layout: ``<cache root>/lab-source/en.txt`` (one paragraph per line) and ``meta.json``; downloads go to the demo
corpus's download cache, so a rebuild needs no network.
"""

from __future__ import annotations

import glob
import os
import re
import time
from pathlib import Path

from xlmr_core.data import cache
from xlmr_core.democorpus.build import default_download_dir
from xlmr_core.democorpus.fetch import Fetcher
from xlmr_core.democorpus.parsers import html_paras
from xlmr_core.democorpus.text import has_letters
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir, atomic_write_json, file_lock

BUILDER_VERSION = 1
PACKAGE_PREFIX = "linux-doc-"
MIN_CHARS = 40
LICENSE = "linux-doc: GPL-2.0 (the Linux kernel documentation)"


def default_out_dir() -> Path:
    """``<cache root>/lab-source`` (``$XLMR_CACHE`` or ``~/.cache/xlmr``)."""
    return cache.default_root() / "lab-source"


def _package(fetch: Fetcher) -> str:
    names = [p for p in fetch.deb_search("linux-doc", f"^{PACKAGE_PREFIX}[0-9.]+$")
             if re.fullmatch(PACKAGE_PREFIX + r"[0-9.]+", p)]
    if not names:
        raise XlmrError("no linux-doc-<version> package found by apt-cache search: run `apt-get update`, or give "
                        "derive.source another large <lang>.txt file")
    return min(names, key=lambda p: tuple(int(x) for x in p[len(PACKAGE_PREFIX):].split(".")))


def paragraphs(root: str) -> list[str]:
    """Distinct English prose paragraphs of the package's HTML, in file order."""
    out, seen = [], set()
    for path in sorted(glob.glob(os.path.join(root, "**", "*.html"), recursive=True)):
        rel = os.path.relpath(path, root)
        if "/translations/" in f"/{rel}" or "/_" in f"/{rel}":
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for p in html_paras(f.read(), "p"):
                if len(p) >= MIN_CHARS and has_letters(p) and p not in seen and "\ufffd" not in p:
                    seen.add(p)
                    out.append(p)
    return out


def build_lab_source(out_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None, *,
                     log=print) -> dict:
    t0 = time.time()
    fetch = Fetcher(cache_dir or default_download_dir(), log=log)
    pkg = _package(fetch)
    root = fetch.debs([pkg])[pkg]
    paras = paragraphs(str(root))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        with open(tmp / "en.txt", "w", encoding="utf-8") as f:
            for p in paras:
                f.write(p + "\n")
        meta = {"builder_version": BUILDER_VERSION, "package": pkg, "deb": fetch.debs_used[pkg].name,
                "license": LICENSE, "lines": len(paras), "bytes": (tmp / "en.txt").stat().st_size,
                "build_seconds": round(time.time() - t0, 1)}
        atomic_write_json(tmp / "meta.json", meta)
    log(f"lab source: {meta['lines']} paragraphs, {meta['bytes'] / 1e6:.1f} MB from {pkg} -> {out_dir}")
    return meta


def _current(out: Path) -> bool:
    import json

    try:
        return json.loads((out / "meta.json").read_text())["builder_version"] == BUILDER_VERSION
    except (OSError, ValueError, KeyError):
        return False


def ensure_lab_source(out_dir: str | os.PathLike | None = None, *, cache_dir=None, log=print) -> Path:
    """``en.txt`` of the lab source, built on first use."""
    out = Path(out_dir).expanduser() if out_dir is not None else default_out_dir()
    if not _current(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(out.parent / f".{out.name}.lock"):
            if not _current(out):
                build_lab_source(out, cache_dir, log=log)
    return out / "en.txt"


def add_lab_cli(corpus_subparsers) -> None:
    """Add ``lab`` to the subcommands of ``xlmr corpus``."""
    p = corpus_subparsers.add_parser(
        "lab", help="build the lab source for derived languages (English, ~21 MB, from linux-doc)",
        description="Build one large English file from Debian's linux-doc package (apt-get download): "
                    "the source of the curse_lab study's derived languages.")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help=f"default {default_out_dir()}")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR", help="download cache")

    def run(args) -> int:
        print(ensure_lab_source(args.out, cache_dir=args.cache))
        return 0

    p.set_defaults(func=run)
