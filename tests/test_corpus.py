"""The corpus reader, per-language statistics, α-sampling probabilities and bad-input errors."""

from __future__ import annotations

import gzip
import json
import lzma
import math
import os
import random
import re

import pytest
import zstandard

from xlmr_core.data import corpus
from xlmr_core.data.corpus import (
    language_files,
    language_stats,
    open_lines,
    sampling_probs,
    select_languages,
    validate_languages,
)
from xlmr_core.errors import XlmrError

# every script the readers must pass through untouched, a 4-byte character, a blank line and CRLF
LINES = ["The quick brown fox.", "Съешь же ещё этих мягких булок.", "", "مرحبا بالعالم", "你好，世界。",
         "नमस्ते दुनिया", "emoji 🦊 and tabs\tinside", "last line"]


def _write(path, lines, *, crlf=False):
    """Write lines in the format the file name says (.txt, .gz, .xz, .zst)."""
    data = ("\r\n" if crlf else "\n").join(lines).encode("utf-8") + b"\n"
    name = str(path)
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".xz"):
        data = lzma.compress(data)
    elif name.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=3).compress(data)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------- sampling


def test_sampling_probs_match_the_formula():
    rng = random.Random(0)
    counts = {f"l{i}": rng.randint(1, 10**7) for i in range(30)}
    for alpha in (0.01, 0.3, 0.7, 1.0, 1.5):
        q = sampling_probs(counts, alpha)
        total = sum(counts.values())
        z = sum((n / total) ** alpha for n in counts.values())
        for lang, n in counts.items():
            assert q[lang] == pytest.approx((n / total) ** alpha / z, rel=1e-12)
        assert sum(q.values()) == pytest.approx(1.0, abs=1e-12)
        assert list(q) == list(counts)  # order kept


def test_sampling_alpha_limits_and_upsampling():
    counts = {"en": 1_000_000, "sw": 10_000, "ur": 100}
    p = sampling_probs(counts, 1.0)
    assert p == pytest.approx({k: v / 1_010_100 for k, v in counts.items()}, rel=1e-12)
    # alpha -> 0 tends to uniform
    q0 = sampling_probs(counts, 1e-9)
    assert all(v == pytest.approx(1 / 3, rel=1e-6) for v in q0.values())
    # alpha < 1 moves mass from the largest language to the small ones, more so for smaller alpha
    q3, q7 = sampling_probs(counts, 0.3), sampling_probs(counts, 0.7)
    assert q3["ur"] > q7["ur"] > p["ur"]
    assert q3["en"] < q7["en"] < p["en"]
    # an empty language is never sampled
    assert sampling_probs({"a": 5, "b": 0}, 0.3) == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize("alpha", [0, -0.3, float("nan"), float("inf")])
def test_sampling_rejects_bad_alpha(alpha):
    with pytest.raises(XlmrError, match="alpha"):
        sampling_probs({"en": 10, "de": 5}, alpha)


def test_sampling_rejects_bad_counts():
    with pytest.raises(XlmrError, match="empty"):
        sampling_probs({"en": 0, "de": 0}, 0.3)
    with pytest.raises(XlmrError, match=">= 0"):
        sampling_probs({"en": -1, "de": 5}, 0.3)


# ------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("suffix", corpus.SUFFIXES)
def test_open_lines_reads_every_format(tmp_path, suffix):
    path = _write(tmp_path / f"xx{suffix}", LINES)
    assert list(open_lines(path)) == LINES
    crlf = _write(tmp_path / f"yy{suffix}", LINES, crlf=True)
    assert list(open_lines(crlf)) == LINES


def test_stats_equal_across_formats(tmp_path):
    for i, suffix in enumerate(corpus.SUFFIXES):
        _write(tmp_path / f"l{i}{suffix}", LINES)
    stats = language_stats(tmp_path)
    assert list(stats) == ["l0", "l1", "l2", "l3"]
    text = [line for line in LINES if line]
    for s in stats.values():
        assert (s.lines, s.bytes, s.chars) == (len(text), sum(len(x.encode()) for x in text), sum(map(len, text)))


def test_concatenated_streams(tmp_path):
    # `cat a.gz b.gz > c.gz` and `cat a.zst b.zst > c.zst` are valid files of both parts
    a, b = "\n".join(LINES[:3]).encode() + b"\n", "\n".join(LINES[3:]).encode() + b"\n"
    (tmp_path / "g.txt.gz").write_bytes(gzip.compress(a) + gzip.compress(b))
    z = zstandard.ZstdCompressor()
    (tmp_path / "z.txt.zst").write_bytes(z.compress(a) + z.compress(b))
    assert list(open_lines(tmp_path / "g.txt.gz")) == LINES
    assert list(open_lines(tmp_path / "z.txt.zst")) == LINES


def test_large_zst_stream_is_read_in_chunks(tmp_path):
    lines = [f"line {i} " + "ж" * (i % 97) for i in range(60_000)]  # several MiB: many 1 MiB reads
    with open(tmp_path / "big.txt.zst", "wb") as f, zstandard.ZstdCompressor().stream_writer(f) as w:
        w.write(("\n".join(lines) + "\n").encode())
    assert list(open_lines(tmp_path / "big.txt.zst")) == lines


@pytest.mark.parametrize("suffix", [".txt.gz", ".txt.xz", ".txt.zst"])
def test_truncated_compressed_file_is_one_clear_error(tmp_path, suffix):
    lines = [f"{i} some text that does not compress to nothing {i * 7919 % 1000}" for i in range(5000)]
    full = _write(tmp_path / f"full{suffix}", lines).read_bytes()
    (tmp_path / f"de{suffix}").write_bytes(full[: len(full) // 2])
    with pytest.raises(XlmrError, match=r"de\.txt\..*truncated.*again"):
        list(open_lines(tmp_path / f"de{suffix}"))
    with pytest.raises(XlmrError, match="truncated"):
        validate_languages(tmp_path, ["de"])


def test_not_actually_compressed_is_one_clear_error(tmp_path):
    for suffix in (".txt.gz", ".txt.xz", ".txt.zst"):
        (tmp_path / f"fr{suffix}").write_text("plain text with a misleading suffix\n")
        with pytest.raises(XlmrError, match=re.escape(f"fr{suffix}") + ".*corrupt"):
            list(open_lines(tmp_path / f"fr{suffix}"))


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "fi.txt"
    path.write_bytes(b"hyvaa paivaa\nok\nrikki \xe4 merkki\nmore\n")  # latin-1 a-umlaut on line 3
    with pytest.raises(XlmrError, match=r"fi\.txt:3: invalid UTF-8.*iconv"):
        list(open_lines(path))
    # compressed too: the line number counts decompressed lines
    (tmp_path / "sv.txt.gz").write_bytes(gzip.compress(b"a\nb\nc\n\xff\xfe\n"))
    with pytest.raises(XlmrError, match=r"sv\.txt\.gz:4: invalid UTF-8"):
        validate_languages(tmp_path, ["sv"])


# ------------------------------------------------------------------------------- the directory


def test_missing_directory(tmp_path):
    with pytest.raises(XlmrError, match=r"nowhere.*does not exist.*xlmr corpus demo"):
        language_files(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(XlmrError, match="not a directory"):
        language_files(tmp_path / "file")


def test_directory_without_language_files(tmp_path):
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "README").write_text("x")
    (tmp_path / "eval").mkdir()
    _write(tmp_path / "eval" / "en.txt", ["eval text is not training text"])
    (tmp_path / ".txt").write_text("no language name\n")
    with pytest.raises(XlmrError, match=r"no language files.*<lang>\.txt"):
        language_files(tmp_path)


def test_language_files_and_selection(tmp_path):
    for lang, suffix in [("en", ".txt"), ("de", ".txt.gz"), ("sr-Latn", ".txt.xz"), ("zh", ".txt.zst")]:
        _write(tmp_path / f"{lang}{suffix}", LINES)
    (tmp_path / corpus.STATS_FILE).write_text("{}")  # hidden files are not languages
    files = language_files(tmp_path)
    assert list(files) == ["de", "en", "sr-Latn", "zh"]
    assert files["sr-Latn"].name == "sr-Latn.txt.xz"
    assert list(select_languages(tmp_path, ["zh", "en"])) == ["zh", "en"]
    assert list(select_languages(tmp_path, None)) == list(files)
    with pytest.raises(XlmrError, match=r"no file for language\(s\) sw, ur in .*available: de, en, sr-Latn, zh"):
        select_languages(tmp_path, ["en", "sw", "ur"])
    with pytest.raises(XlmrError, match="twice: en"):
        select_languages(tmp_path, ["en", "en"])
    _write(tmp_path / "en.txt.gz", LINES)
    with pytest.raises(XlmrError, match=r"two files for language 'en'"):
        language_files(tmp_path)


def test_unreadable_language_file(tmp_path):
    _write(tmp_path / "en.txt", LINES)
    (tmp_path / "de.txt").mkdir()  # a directory where a file should be
    with pytest.raises(XlmrError, match=r"cannot read .*de\.txt"):
        validate_languages(tmp_path, ["en", "de"])
    os.symlink(tmp_path / "gone.txt", tmp_path / "fr.txt.gz")  # a dangling link
    with pytest.raises(XlmrError, match=r"cannot read .*fr\.txt\.gz"):
        validate_languages(tmp_path, ["fr"])
    with pytest.raises(XlmrError, match=r"cannot read .*fr\.txt\.gz"):
        list(open_lines(tmp_path / "fr.txt.gz"))


def test_empty_language_file(tmp_path):
    _write(tmp_path / "en.txt", LINES)
    (tmp_path / "sw.txt").write_text("")
    _write(tmp_path / "ur.txt.gz", ["", "  ".strip(), ""])  # blank lines only
    validate_languages(tmp_path, ["en"])
    with pytest.raises(XlmrError, match=r"empty language file\(s\) .*sw\.txt, ur\.txt\.gz"):
        validate_languages(tmp_path, ["en", "sw", "ur"])


# ------------------------------------------------------------------------------- the stats cache


def test_stats_cache_is_used_and_invalidated(tmp_path):
    en = _write(tmp_path / "en.txt", ["one", "two"])
    _write(tmp_path / "de.txt.gz", ["eins"])
    stats = language_stats(tmp_path)
    assert (stats["en"].lines, stats["de"].lines) == (2, 1)
    cache_file = tmp_path / corpus.STATS_FILE
    cached = json.loads(cache_file.read_text())
    assert cached["files"]["en.txt"]["size"] == en.stat().st_size
    # the cache is what answers while the file is unchanged (a forged count shows through) ...
    cached["files"]["en.txt"]["lines"] = 99
    cache_file.write_text(json.dumps(cached))
    assert language_stats(tmp_path)["en"].lines == 99
    # ... and a change of the file (size, or only its mtime) invalidates its entry, not the others'
    cached["files"]["de.txt.gz"]["lines"] = 42
    cache_file.write_text(json.dumps(cached))
    _write(en, ["one", "two", "three"])
    stats = language_stats(tmp_path)
    assert (stats["en"].lines, stats["de"].lines) == (3, 42)
    _write(en, ["uno", "dos", "tre"])  # same size
    st = en.stat()
    os.utime(en, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cached = json.loads(cache_file.read_text())
    cached["files"]["en.txt"]["chars"] = 0
    cache_file.write_text(json.dumps(cached))
    assert language_stats(tmp_path)["en"].chars == 9
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_stats_cache_of_a_read_only_corpus_goes_to_the_cache_root(tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    root.mkdir()
    _write(root / "en.txt", ["one", "two"])
    monkeypatch.setenv("XLMR_CACHE", str(tmp_path / "cache"))
    # root ignores permission bits, so simulate a read-only corpus at the check the module makes
    real_access = os.access
    monkeypatch.setattr(corpus.os, "access", lambda p, m: False if str(p) == str(root) else real_access(p, m))
    assert language_stats(root)["en"].lines == 2
    assert not (root / corpus.STATS_FILE).exists()
    (entry,) = (tmp_path / "cache" / "stats").glob("*.json")
    assert json.loads(entry.read_text())["files"]["en.txt"]["lines"] == 2


def test_stats_of_the_demo_corpus(demo_corpus):
    stats = validate_languages(demo_corpus, None)
    assert len(stats) >= 40
    for lang, s in stats.items():
        assert s.lang == lang and s.lines > 0 and s.chars <= s.bytes <= 4 * s.chars
        if s.path.name.endswith(".txt"):
            # independent check: bytes + newlines == size when there are no blank lines or CRs
            raw = s.path.read_bytes()
            if b"\n\n" not in raw and b"\r" not in raw and raw.endswith(b"\n"):
                assert s.bytes + s.lines == len(raw), lang
    q = sampling_probs({k: s.lines for k, s in stats.items()}, 0.3)
    assert math.isclose(sum(q.values()), 1.0)
    big, small = max(stats, key=lambda k: stats[k].lines), min(stats, key=lambda k: stats[k].lines)
    assert q[small] / q[big] == pytest.approx((stats[small].lines / stats[big].lines) ** 0.3)


def test_cli_stats(demo_corpus, capsys):
    from xlmr_core.cli import main

    assert main(["corpus", "stats", str(demo_corpus), "--langs", "en,de,ja", "--alpha", "0.5", "--json"]) == 0
    out = capsys.readouterr().out
    table = json.loads(out.strip().splitlines()[-1])
    assert list(table) == ["en", "de", "ja"]
    lines = {k: v["lines"] for k, v in table.items()}
    expect = sampling_probs(lines, 0.5)
    assert all(table[k]["q"] == pytest.approx(expect[k]) for k in lines)
    assert "lang" in out and "q_i" in out
    assert main(["corpus", "stats", str(demo_corpus), "--langs", "en,xx"]) == 2
    assert "no file for language(s) xx" in capsys.readouterr().err
