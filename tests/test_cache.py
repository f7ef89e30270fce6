"""Atomic directories and the content-addressed cache: nothing half-built is ever visible."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from xlmr_core.data.cache import KEY_FILE, MANIFEST_FILE, entry_path, get_or_build, key_hash
from xlmr_core.fsutil import atomic_dir, atomic_write_json


def test_atomic_dir_failure_leaves_nothing(tmp_path):
    target = tmp_path / "entry"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x" * 100)
            raise RuntimeError("crash while building")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"v": 1})
    atomic_write_json(p, {"v": 2})
    assert p.read_text().strip().endswith("}") and '"v": 2' in p.read_text()
    assert [x.name for x in tmp_path.iterdir()] == ["a.json"]


def test_key_hash_is_order_independent_and_content_sensitive():
    assert key_hash({"a": 1, "b": [1, 2]}) == key_hash({"b": [1, 2], "a": 1})
    assert key_hash({"a": 1}) != key_hash({"a": 2})


def _build_slowly(root: str, out: mp.Queue) -> None:
    def build(tmp: Path) -> None:
        (tmp / "counter").write_text("built")
        out.put("build")
        time.sleep(1.0)  # long enough for the other process to arrive while this one builds
        (tmp / "payload").write_bytes(b"p" * 1000)

    path = get_or_build("test", {"k": 1}, build, root=root)
    out.put((path / "payload").read_bytes() == b"p" * 1000)


@pytest.mark.timeout(60)
def test_two_processes_build_one_entry(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_build_slowly, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=50)
        assert p.exitcode == 0
    results = [q.get(timeout=5) for _ in range(3)]
    assert results.count("build") == 1, "the entry was built twice"
    assert results.count(True) == 2
    entry = entry_path("test", {"k": 1}, root=tmp_path)
    assert sorted(x.name for x in entry.iterdir()) == sorted(["counter", "payload", KEY_FILE, MANIFEST_FILE])


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "f.json", {})
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
