"""A multilingual corpus on disk: one text file per language, its statistics and α-sampling.

Layout (the CC-100 layout): a directory holding ``<lang>.txt``, ``<lang>.txt.gz``, ``<lang>.txt.xz``
or ``<lang>.txt.zst``, one paragraph or document per line, UTF-8. Blank lines (CC-100 separates
documents with them) are skipped when counting and sampling.

Encoding policy: text must be valid UTF-8. A file with an invalid byte sequence is refused with
its name and line number rather than silently repaired, because a replacement character in the
training text would become a piece of the vocabulary and shift every byte count used for bits per
byte. Clean such a file with ``iconv -f utf-8 -t utf-8 -c in.txt > out.txt`` (drops invalid bytes).
Valid UTF-8 that is not text (binary data, a file of NULs) is refused too: natural text has almost no
control characters besides tab and newline, so a file with more than ``MAX_CONTROL_SHARE`` of them is
reported with its name and first such line.

Language sampling as in XLM-R (Conneau et al. 2019, section 3.1; Lample & Conneau 2019):
p_i = n_i / Σ n_j, q_i = p_i^α / Σ p_j^α, with α = 0.3 by default.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import math
import numbers
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import zstandard

from xlmr_core.data import cache
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_json, file_lock

SUFFIXES = (".txt", ".txt.gz", ".txt.xz", ".txt.zst")
STATS_FILE = ".xlmr_stats.json"
_STATS_VERSION = 2  # 2: control characters counted
# C0 control bytes other than tab and newline, and DEL: one byte each in UTF-8, never inside a multi-byte
# character, and almost absent from natural text (the demo corpus has none)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10)) + b"\x7f"
MAX_CONTROL_SHARE = 0.01
"""A language file whose bytes are more than this share control characters is refused: it is not text."""
# compute the statistics of files in parallel processes only when there is this much to read
_PARALLEL_MIN_BYTES = 64 << 20


# ---------------------------------------------------------------------------------------------
# finding language files


def _lang_of(name: str) -> str | None:
    """The language key of a file name (``de.txt.gz`` -> ``de``), or None if it is not a language file."""
    if name.startswith("."):
        return None
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def language_files(corpus_dir: str | os.PathLike) -> dict[str, Path]:
    """Map each language of a corpus directory to its text file, sorted by language."""
    root = Path(corpus_dir)
    if not root.exists():
        raise XlmrError(f"corpus directory {root} does not exist: build one with `xlmr corpus demo --out {root}` "
                        "or point at a directory of <lang>.txt[.gz|.xz|.zst] files")
    if not root.is_dir():
        raise XlmrError(f"corpus path {root} is not a directory: pass the directory holding <lang>.txt files")
    found: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        lang = _lang_of(entry.name)
        if lang is None:
            continue
        if lang in found:
            raise XlmrError(f"corpus {root} has two files for language {lang!r}: {found[lang].name} and "
                            f"{entry.name}; keep only one")
        found[lang] = entry
    if not found:
        raise XlmrError(f"corpus directory {root} holds no language files: expected <lang>"
                        f"{'|'.join(SUFFIXES)} (one paragraph or document per line)")
    return dict(sorted(found.items()))


def select_languages(corpus_dir: str | os.PathLike, langs: list[str] | None) -> dict[str, Path]:
    """The files of the requested languages (all languages if ``langs`` is None), in the requested order."""
    files = language_files(corpus_dir)
    if langs is None:
        return files
    langs = list(langs)
    if not langs:
        raise XlmrError("no languages requested: pass at least one language (e.g. --langs en,de)")
    dupes = sorted({lang for lang in langs if langs.count(lang) > 1})
    if dupes:
        raise XlmrError(f"language(s) requested twice: {', '.join(dupes)}")
    missing = [lang for lang in langs if lang not in files]
    if missing:
        raise XlmrError(f"no file for language(s) {', '.join(missing)} in {Path(corpus_dir)}; "
                        f"available: {', '.join(files)}")
    return {lang: files[lang] for lang in langs}


# ---------------------------------------------------------------------------------------------
# reading lines


class _ZstdRaw(io.RawIOBase):
    """A raw zstd reader that, unlike ``zstandard``'s stream reader, fails on a truncated frame.

    Handles concatenated frames (``zstd`` output appended to itself, as ``cat a.zst b.zst`` makes).
    """

    def __init__(self, fh, chunk_size: int = 1 << 20):
        self._fh, self._chunk = fh, chunk_size
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._buf = b""
        self._started = False  # whether the current frame received any input

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            data = self._fh.read(self._chunk)
            if not data:
                if self._started and not self._obj.eof:
                    raise EOFError("zstd stream ended before the end of its frame")
                return 0
            while data:
                self._started = True
                self._buf += self._obj.decompress(data)
                data = b""
                if self._obj.eof:  # next frame, if any, starts in the unused input
                    data = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
                    self._started = False
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_binary(path: Path):
    """A buffered binary reader that decompresses according to the file name."""
    name = path.name
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".xz"):
        return lzma.open(path, "rb")
    if name.endswith(".zst"):
        return io.BufferedReader(_ZstdRaw(open(path, "rb")), buffer_size=1 << 20)
    return open(path, "rb", buffering=1 << 20)


def _raw_lines(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, bytes without the newline) of every line; errors become XlmrError."""
    path = Path(path)
    lineno = 0
    try:
        with _open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):  # noqa: B007  (lineno is read in the except clauses)
                if raw.endswith(b"\n"):
                    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
                yield lineno, raw
    except EOFError as e:
        raise XlmrError(f"{path} is truncated (compressed stream ends early after line {lineno}: {e}); "
                        "download or compress it again") from None
    except (OSError, lzma.LZMAError, zstandard.ZstdError) as e:
        if isinstance(e, OSError) and not isinstance(e, gzip.BadGzipFile) and e.filename is not None:
            raise XlmrError(f"cannot read {path}: {e.strerror or e}; check that it is a readable file") from None
        raise XlmrError(f"{path} is corrupt or not in the format its suffix says ({e}); "
                        "download or compress it again") from None


def open_lines(path: str | os.PathLike) -> Iterator[str]:
    """The lines of a (possibly compressed) UTF-8 text file without their newline; strict UTF-8."""
    for lineno, raw in _raw_lines(path):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise XlmrError(f"{path}:{lineno}: invalid UTF-8 at byte {e.start} of the line; we refuse rather "
                            "than guess: clean the file, e.g. `iconv -f utf-8 -t utf-8 -c`") from None


# ---------------------------------------------------------------------------------------------
# statistics


@dataclass(frozen=True, kw_only=True)
class LangStats:
    """Size of one language's text; blank lines and newlines are not counted."""

    lang: str
    """Language key (the file name without its suffix)."""
    path: Path
    """The language's text file."""
    lines: int
    """Non-blank lines (paragraphs or documents)."""
    bytes: int
    """UTF-8 bytes of those lines, newlines excluded."""
    chars: int
    """Unicode code points of those lines, newlines excluded."""
    control: int = 0
    """Control characters (C0 other than tab and newline, and DEL) among those bytes."""
    control_line: int = 0
    """The first line that is mostly control characters, else the first holding one (0: none)."""

    def __post_init__(self):
        if min(self.lines, self.bytes, self.chars, self.control, self.control_line) < 0:
            raise ValueError(f"negative counts in {self}")


def _count_file(path: Path) -> dict:
    """Read a file once: non-blank lines, UTF-8 bytes, characters, control characters (XlmrError on bad input)."""
    lines = nbytes = chars = control = first_any = first_mostly = 0
    for lineno, line in enumerate(open_lines(path), 1):
        if line:
            raw = line.encode("utf-8")
            lines += 1
            nbytes += len(raw)
            chars += len(line)
            n = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
            if n:
                control += n
                first_any = first_any or lineno
                if not first_mostly and 2 * n > len(raw):
                    first_mostly = lineno
    return {"lines": lines, "bytes": nbytes, "chars": chars, "control": control,
            "control_line": first_mostly or first_any}


def _stats_file(root: Path) -> Path:
    """Where the statistics cache of a corpus lives: next to it if writable, else under the cache root."""
    if os.access(root, os.W_OK):
        return root / STATS_FILE
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache.default_root() / "stats" / f"{digest}.json"


def _read_stats_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if data.get("version") == _STATS_VERSION else {}


def _signature(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def language_stats(corpus_dir: str | os.PathLike, langs: list[str] | None = None, *,
                   workers: int | None = None) -> dict[str, LangStats]:
    """Lines, UTF-8 bytes and characters per language, cached per file and invalidated when it changes."""
    root = Path(corpus_dir)
    files = select_languages(root, langs)
    cache_path = _stats_file(root)
    cached = _read_stats_cache(cache_path)
    signatures, todo = {}, []
    for lang, path in files.items():
        try:
            signatures[lang] = _signature(path)
        except OSError as e:  # e.g. a dangling symlink
            raise XlmrError(f"cannot read {path}: {e.strerror or e}; check that it is a readable file") from None
        entry = cached.get(path.name)
        if not (entry and all(entry.get(k) == v for k, v in signatures[lang].items())):
            todo.append(lang)

    counts = {lang: cached[files[lang].name] for lang in files if lang not in todo}
    if todo:
        total = sum(signatures[lang]["size"] for lang in todo)
        n_workers = min(len(todo), workers or os.cpu_count() or 1)
        if n_workers > 1 and total >= _PARALLEL_MIN_BYTES:
            with ProcessPoolExecutor(n_workers) as pool:
                results = list(pool.map(_count_file, [files[lang] for lang in todo]))
        else:
            results = [_count_file(files[lang]) for lang in todo]
        fresh = {files[lang].name: {**signatures[lang], **res} for lang, res in zip(todo, results)}
        counts.update({lang: fresh[files[lang].name] for lang in todo})
        try:  # merge with entries other processes may have written meanwhile
            with file_lock(cache_path.with_name(cache_path.name + ".lock")):
                merged = {**_read_stats_cache(cache_path), **fresh}
                atomic_write_json(cache_path, {"version": _STATS_VERSION, "files": merged})
        except OSError:
            pass  # a cache we cannot write only costs a re-read next time
    return {lang: LangStats(lang=lang, path=files[lang], lines=counts[lang]["lines"],
                            bytes=counts[lang]["bytes"], chars=counts[lang]["chars"],
                            control=counts[lang]["control"], control_line=counts[lang]["control_line"])
            for lang in files}


def validate_languages(corpus_dir: str | os.PathLike, langs: list[str] | None) -> dict[str, LangStats]:
    """Check every requested language before any work: file present, readable, complete, UTF-8, not empty, text.

    One full read of each file (through :func:`language_stats`, so later calls hit the cache). Text is
    refused when more than :data:`MAX_CONTROL_SHARE` of its bytes are NULs or other control characters
    (tab and newline excepted): valid UTF-8, but binary data or a broken conversion, not a language.
    """
    stats = language_stats(corpus_dir, langs)
    empty = [s.path.name for s in stats.values() if s.lines == 0]
    if empty:
        raise XlmrError(f"empty language file(s) in {Path(corpus_dir)}: {', '.join(empty)}; "
                        "remove them or drop those languages from --langs")
    for s in stats.values():
        if s.control > MAX_CONTROL_SHARE * s.bytes:
            raise XlmrError(f"{s.path}:{s.control_line}: {s.control / s.bytes:.1%} of the file's bytes are NULs or "
                            "other control characters (natural text has almost none): this is not text; "
                            f"replace the file or drop language {s.lang!r}")
    return stats


# ---------------------------------------------------------------------------------------------
# sampling


def sampling_probs(counts: dict[str, float], alpha: float) -> dict[str, float]:
    """XLM-R language sampling: q_i = p_i^α / Σ_j p_j^α with p_i = n_i / Σ_j n_j.

    n_i is whatever the caller counts: the paper counts sentences, fairseq counts 512-token
    blocks of the binarised data. The tokenizer's sample here uses non-blank lines
    (:attr:`LangStats.lines`, the nearest thing to sentences); batches may use lines or bytes.
    α = 1 samples in proportion to size, α → 0 uniformly; α < 1 upsamples small languages.
    """
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha > 0):
        raise XlmrError(f"sampling exponent alpha must be a positive number, got {alpha!r} "
                        "(XLM-R uses 0.3; 1 is proportional, values near 0 are uniform)")
    if not counts:
        raise XlmrError("no languages to sample from")
    bad = {lang: n for lang, n in counts.items() if not (math.isfinite(n) and n >= 0)}
    if bad:
        raise XlmrError(f"language counts must be finite and >= 0, got {bad}")
    total = float(sum(counts.values()))
    if total <= 0:
        raise XlmrError(f"all languages are empty: {sorted(counts)}")
    # in log space so that a tiny alpha (0.01) on very unequal sizes keeps full precision
    logs = {lang: alpha * math.log(n / total) for lang, n in counts.items() if n > 0}
    top = max(logs.values())
    w = {lang: math.exp(v - top) for lang, v in logs.items()}
    z = sum(w.values())
    return {lang: (w[lang] / z if lang in w else 0.0) for lang in counts}


def target_sampling_probs(counts: dict[str, float], alpha: float, targets, share: float) -> dict[str, float]:
    """α-sampling with a fixed share for the ``targets``: q_i = share · α-probs among the targets, and
    (1 − share) · α-probs among the other languages.

    The matched-data design (Chang et al. 2023; ATLAS's D_t) holds each target language's tokens fixed while
    languages are added: a run over the targets alone for S steps and one over targets + others for S / share
    steps give every target the same expected tokens, with the same relative rates among the targets.
    """
    targets = list(targets)
    missing = [lang for lang in targets if lang not in counts]
    if missing:
        raise XlmrError(f"target language(s) {', '.join(missing)} are not training languages "
                        f"({', '.join(sorted(counts))}): add them to data.langs")
    if not 0 < share <= 1:
        raise XlmrError(f"data.target_share={share} must be in (0, 1]")
    others = {lang: n for lang, n in counts.items() if lang not in targets}
    if not others and share < 1:
        raise XlmrError(f"data.target_share={share} < 1 but every training language is a target: "
                        "add other languages or use data.target_share=1")
    q = {lang: share * p for lang, p in sampling_probs({t: counts[t] for t in targets}, alpha).items()}
    if others:
        q.update({lang: (1 - share) * p for lang, p in sampling_probs(others, alpha).items()})
    return {lang: q[lang] for lang in counts}


# ---------------------------------------------------------------------------------------------
# command line


def parse_langs(text: str | None) -> list[str] | None:
    """``"en,de, fr"`` -> ``["en", "de", "fr"]``; None stays None."""
    if text is None:
        return None
    return [lang.strip() for lang in text.split(",") if lang.strip()]


def _cmd_stats(args) -> int:
    stats = validate_languages(args.dir, parse_langs(args.langs))
    counts = {lang: getattr(s, args.count) for lang, s in stats.items()}
    p = sampling_probs(counts, 1.0)
    q = sampling_probs(counts, args.alpha)
    print(f"{'lang':<10} {'lines':>10} {'MB':>9} {'chars':>12} {'p_i':>8} {'q_i':>8}")
    for lang, s in stats.items():
        print(f"{lang:<10} {s.lines:>10,} {s.bytes / 1e6:>9.3f} {s.chars:>12,} {p[lang]:>8.4f} {q[lang]:>8.4f}")
    tot = LangStats(lang="total", path=Path(args.dir), lines=sum(s.lines for s in stats.values()),
                    bytes=sum(s.bytes for s in stats.values()), chars=sum(s.chars for s in stats.values()))
    print(f"{'total':<10} {tot.lines:>10,} {tot.bytes / 1e6:>9.3f} {tot.chars:>12,} {1:>8.4f} {1:>8.4f}")
    print(f"({len(stats)} languages; p_i, q_i from {args.count}, alpha={args.alpha})")
    if args.json:
        print(json.dumps({lang: {**asdict(s), "path": str(s.path), "p": p[lang], "q": q[lang]}
                          for lang, s in stats.items()}, ensure_ascii=False))
    return 0


def add_cli(sub) -> None:
    """Add the ``xlmr corpus`` command group (``stats``; ``demo`` and ``ddtp`` from :mod:`xlmr_core.democorpus`)."""
    corpus = sub.add_parser("corpus", help="inspect or build a multilingual corpus")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    stats = corpus_sub.add_parser("stats", help="per-language lines, bytes, characters and α-sampling probabilities",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    stats.add_argument("dir", help="corpus directory of <lang>.txt[.gz|.xz|.zst] files")
    stats.add_argument("--langs", help="comma-separated languages (default: all)")
    stats.add_argument("--alpha", type=float, default=0.3, help="sampling exponent for q_i")
    stats.add_argument("--count", choices=["lines", "bytes", "chars"], default="lines",
                       help="what n_i counts in p_i = n_i / sum n")
    stats.add_argument("--json", action="store_true", help="also print the table as one JSON line")
    stats.set_defaults(func=_cmd_stats)

    from xlmr_core.democorpus import add_demo_cli
    from xlmr_core.democorpus.ddtp import add_ddtp_cli
    from xlmr_core.democorpus.labsource import add_lab_cli

    add_demo_cli(corpus_sub)
    add_ddtp_cli(corpus_sub)
    add_lab_cli(corpus_sub)
