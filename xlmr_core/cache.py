"""A content-addressed cache of built artefacts (tokenizers, token shards).

An entry lives at ``root/<kind>/<hash of its inputs>/``. It is built once: the first process
takes a lock, builds into a temporary directory and renames it into place; a process that
wants the same entry waits on the lock and then finds it complete. A reader never sees a
half-built entry, because the final name appears only by an atomic rename.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from .fsutil import atomic_dir, atomic_write_json, file_lock

KEY_FILE = "cache_key.json"


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


def get_or_build(kind: str, key: dict, build: Callable[[Path], None],
                 root: str | os.PathLike | None = None) -> Path:
    """Return the directory of the entry for ``key``, calling ``build(tmp_dir)`` once if it is missing."""
    path = entry_path(kind, key, root)
    if (path / KEY_FILE).exists():
        return path
    with file_lock(path.parent / f".{path.name}.lock"):
        if (path / KEY_FILE).exists():  # built by another process while we waited
            return path
        with atomic_dir(path) as tmp:
            build(tmp)
            atomic_write_json(tmp / KEY_FILE, key)
    return path
