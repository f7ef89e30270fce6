"""A content-addressed cache of built artefacts (tokenizers, token shards).

An entry lives at ``root/<kind>/<hash of its inputs>/``. It is built once: the first process
takes a lock, builds into a temporary directory and renames it into place; a process that
wants the same entry waits on the lock and then finds it complete. A reader never sees a
half-built entry, because the final name appears only by an atomic rename.

Each entry records the size and a checksum of every file at build time (``manifest.json``), and
every use checks them, so an entry damaged afterwards (a truncated shard, a replaced tokenizer
model) is refused with one error instead of being trained on. The check is cheap: sizes always,
SHA-256 of each file up to ``FULL_HASH_MAX`` bytes (the tokenizer model, metadata, held-out
streams), and of ``SAMPLE_PAGES`` pages spread over each larger file (training token streams).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir, atomic_write_json, file_lock, file_sha256

KEY_FILE = "cache_key.json"
MANIFEST_FILE = "manifest.json"
FULL_HASH_MAX = 8 << 20
"""Files up to this size are checksummed whole (8 MiB: a 250K-piece SentencePiece model is about 5 MB)."""
SAMPLE_PAGES = 16
"""Larger files: SHA-256 of this many 4 KiB pages at fixed offsets from start to end, besides the size."""
_PAGE = 4096


def default_root() -> Path:
    """The cache root: ``$XLMR_CACHE`` or ``~/.cache/xlmr``."""
    return Path(os.environ.get("XLMR_CACHE", Path.home() / ".cache" / "xlmr"))


def key_hash(key: dict) -> str:
    """A short stable hash of a JSON-serialisable description of an entry's inputs."""
    blob = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def entry_path(kind: str, key: dict, root: str | os.PathLike | None = None) -> Path:
    """Where the entry for ``key`` lives (it may not exist yet)."""
    return Path(root or default_root()) / kind / key_hash(key)


def _checksum(path: Path, size: int) -> dict:
    """SHA-256 of the whole file if it is small, else of SAMPLE_PAGES pages spread evenly over it."""
    if size <= FULL_HASH_MAX:
        return {"sha256": file_sha256(path)}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for i in range(SAMPLE_PAGES):  # first page, last page and the ones between
            f.seek((size - _PAGE) * i // (SAMPLE_PAGES - 1))
            h.update(f.read(_PAGE))
    return {"sha256_pages": h.hexdigest()}


def _files(entry: Path) -> list[Path]:
    return sorted(p for p in entry.rglob("*") if p.is_file() and p.name not in (KEY_FILE, MANIFEST_FILE))


def _manifest(entry: Path) -> dict:
    files = {}
    for p in _files(entry):
        size = p.stat().st_size
        files[p.relative_to(entry).as_posix()] = {"size": size, **_checksum(p, size)}
    return {"files": files}


def check_entry(entry: str | os.PathLike) -> None:
    """Raise one XlmrError if a file of a built entry is missing or differs from its manifest."""
    entry = Path(entry)
    try:
        recorded = json.loads((entry / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise XlmrError(f"cache entry {entry} has no readable {MANIFEST_FILE}: delete the directory "
                        f"{entry} and run again (it is rebuilt)") from None
    for name, want in recorded.items():
        p = entry / name
        problem = None
        if not p.is_file():
            problem = "is missing"
        elif (size := p.stat().st_size) != want["size"]:
            problem = f"has {size:,} bytes, {want['size']:,} when it was built"
        elif _checksum(p, size) != {k: v for k, v in want.items() if k != "size"}:
            problem = "has changed since it was built (its checksum differs)"
        if problem:
            raise XlmrError(f"cache entry {entry} is damaged: {name} {problem}; delete the directory {entry} "
                            "and run again (it is rebuilt)")


def get_or_build(kind: str, key: dict, build: Callable[[Path], None],
                 root: str | os.PathLike | None = None) -> Path:
    """The directory of the entry for ``key``, checked against its manifest; ``build(tmp_dir)`` once if missing.

    An entry built before manifests were recorded gets one, of its files as they are, on first use.
    """
    path = entry_path(kind, key, root)
    if (path / KEY_FILE).exists() and (path / MANIFEST_FILE).exists():
        check_entry(path)
        return path
    with file_lock(path.parent / f".{path.name}.lock"):
        if (path / KEY_FILE).exists():  # built by another process while we waited, or before manifests
            if not (path / MANIFEST_FILE).exists():
                atomic_write_json(path / MANIFEST_FILE, _manifest(path))
            check_entry(path)
            return path
        with atomic_dir(path) as tmp:
            build(tmp)
            atomic_write_json(tmp / MANIFEST_FILE, _manifest(tmp))
            atomic_write_json(tmp / KEY_FILE, key)
    return path
