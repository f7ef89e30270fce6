"""Token shards, pretraining blocks and masked-LM batches, following fairseq's XLM-R recipe.

A corpus is encoded once per tokenizer into memory-mapped token streams, one per language and
split (``<lang>.train.bin``, ``<lang>.heldout.bin``): every line is a document, each followed by
``</s>``. A pretraining block is ``<s>`` + (T-1) consecutive tokens of one language's stream, so
documents inside a block are separated by ``</s>`` and there is no padding (fairseq
``TokenBlockDataset(break_mode="none")`` + ``PrependTokenDataset(bos)``; Conneau et al. 2019, §3).

Batches are a pure function of (seed, step, rank, world size): block g of step s is built from
its own random generator ``default_rng([seed, s, g])``, which draws the language with the
sampling probabilities q_i, the block's offset in that language, and the mask. Resuming needs
only the step, and the global batch is the same for any number of processes.

Encoding is split into independent chunks (:func:`encode_chunk`) and a merge
(:func:`merge_chunks`), so a terabyte corpus can be encoded by a job array; :func:`shards_for`
runs the same two steps in a local process pool and caches the result.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import json
import math
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from . import cache
from .errors import XlmrError
from .fsutil import atomic_dir, atomic_write_json, file_sha256

FORMAT_VERSION = 1
"""Version of the shard layout; part of the cache key (bump it when the encoding changes)."""
BOS, PAD, EOS, UNK = 0, 1, 2, 3  # fairseq / XLM-R dictionary layout
SHARDS_FILE = "shards.json"
CHUNK_FILE = "chunk.json"
SPLITS = ("train", "heldout")
_COMPRESSED = (".gz", ".xz", ".zst")


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype holding every id: uint16 up to 65,536 entries, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


# ----------------------------------------------------------------------------------------------
# Held-out split


@dataclass(frozen=True, kw_only=True)
class HeldoutSplit:
    """Which lines of a language are held out for evaluation: those with the smallest line hashes.

    A line's hash is ``blake2b(line bytes)``, so the split depends only on the text: it is the same
    however the file is chunked or compressed, and duplicate lines always fall on the same side.
    The held-out set is the k lines with the smallest hashes (lines tied with the k-th come too),
    k = min(max(ceil(fraction · lines), min_lines), max_lines, max_share · lines).
    """

    fraction: float = 0.01
    """Share of a language's lines held out (before the bounds below)."""
    min_lines: int = 100
    """At least this many lines held out, so a small language still gets a usable estimate."""
    max_lines: int = 20_000
    """At most this many lines held out (1 % of a CC-100 language can be millions of lines)."""
    max_share: float = 0.2
    """Never hold out more than this share of a language, whatever min_lines says."""

    def __post_init__(self):
        if not 0 <= self.fraction < 1:
            raise XlmrError(f"heldout fraction={self.fraction} must be in [0, 1)")
        if self.min_lines < 0 or self.max_lines < self.min_lines:
            raise XlmrError(f"heldout min_lines={self.min_lines}, max_lines={self.max_lines}: "
                            "need 0 <= min_lines <= max_lines")
        if not 0 <= self.max_share < 1:
            raise XlmrError(f"heldout max_share={self.max_share} must be in [0, 1)")

    def count(self, n_lines: int) -> int:
        """Number of held-out lines for a language of ``n_lines`` lines."""
        k = max(math.ceil(self.fraction * n_lines), self.min_lines)
        return int(min(k, self.max_lines, math.floor(self.max_share * n_lines)))


def line_hash(line: bytes) -> int:
    """A stable 64-bit hash of one line's UTF-8 bytes (newline excluded)."""
    return int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")


# ----------------------------------------------------------------------------------------------
# Fingerprints (cache keys)


def file_fingerprint(path: str | os.PathLike) -> dict:
    """A cheap identity of a (possibly huge) corpus file: name, size, SHA-256 of its first and last MiB."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(size - (1 << 20))
        h.update(f.read(1 << 20))
    return {"name": path.name, "size": size, "sha256_ends": h.hexdigest()}


def _lang_of(path: Path) -> str:
    from .corpus import SUFFIXES

    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    raise XlmrError(f"{path}: not a corpus file (expected <lang> + one of {', '.join(SUFFIXES)})")


# ----------------------------------------------------------------------------------------------
# Encoding one chunk of one language file


def _chunk_dir(chunks_root: Path, lang: str, index: int, num_chunks: int) -> Path:
    return Path(chunks_root) / lang / f"{index:05d}-of-{num_chunks:05d}"


def _plain_chunk_lines(path: Path, index: int, num_chunks: int) -> Iterator[tuple[int, bytes]]:
    """(byte offset, raw line without newline) of the lines that START in this chunk's byte range."""
    size = path.stat().st_size
    start, end = index * size // num_chunks, (index + 1) * size // num_chunks
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()  # the line under `start` began in the previous chunk, which owns it
        pos = f.tell()
        while pos < end:
            raw = f.readline()
            if not raw:
                break
            pos, line = pos + len(raw), raw
            if line.endswith(b"\n"):  # newline conventions as corpus.open_lines
                line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            yield pos - len(raw), line


def _compressed_chunk_lines(path: Path, index: int) -> Iterator[tuple[int, bytes]]:
    """A compressed file cannot be entered in the middle: chunk 0 owns all of it, other chunks nothing."""
    if index != 0:
        return
    from .corpus import open_lines

    for i, line in enumerate(open_lines(path)):
        yield i, line.encode("utf-8")


@functools.lru_cache(maxsize=4)
def _load_tokenizer(model_file: str):
    # one SentencePiece model per worker process, loaded on first use
    from .tokenizer import Tokenizer

    return Tokenizer(model_file)


def encode_chunk(tokenizer_file: str | os.PathLike, corpus_file: str | os.PathLike, chunk_index: int,
                 num_chunks: int, out_dir: str | os.PathLike, *, batch_lines: int = 2000) -> Path:
    """Encode the lines of one chunk of one language file into ``out_dir/<lang>/<i>-of-<n>/``.

    A plain-text file is cut into ``num_chunks`` equal byte ranges; a chunk owns the lines that
    start inside its range. A compressed file is one chunk (chunk 0); its other chunks are empty,
    so decompress (or split into several language files beforehand) to spread it over many jobs.
    The chunk holds ``tokens.bin`` (each line's ids followed by ``</s>``), ``lines.npz`` (per line:
    hash, tokens, UTF-8 bytes) and ``chunk.json``, written last. Empty lines are skipped. A chunk
    already complete for the same tokenizer and file is kept, so a re-run job resumes.
    """
    corpus_file, tokenizer_file = Path(corpus_file), Path(tokenizer_file)
    if not 0 <= chunk_index < num_chunks:
        raise XlmrError(f"chunk {chunk_index} of {num_chunks}: need 0 <= chunk < num_chunks")
    lang = _lang_of(corpus_file)
    final = _chunk_dir(Path(out_dir), lang, chunk_index, num_chunks)
    info = {"format": FORMAT_VERSION, "lang": lang, "chunk": chunk_index, "num_chunks": num_chunks,
            "tokenizer_sha256": file_sha256(tokenizer_file), "corpus": file_fingerprint(corpus_file)}
    if (final / CHUNK_FILE).exists():
        done = json.loads((final / CHUNK_FILE).read_text())
        if all(done.get(k) == v for k, v in info.items()):
            return final

    tok = _load_tokenizer(str(tokenizer_file))
    dtype = token_dtype(tok.vocab_size)
    if corpus_file.name.endswith(_COMPRESSED):
        lines = _compressed_chunk_lines(corpus_file, chunk_index)
    else:
        lines = _plain_chunk_lines(corpus_file, chunk_index, num_chunks)

    hashes, ntoks, nbytes = [], [], []
    with atomic_dir(final) as tmp, open(tmp / "tokens.bin", "wb") as out:

        def flush(texts: list[str]) -> None:
            flat, lengths = tok.encode_flat(texts)  # (sum of lengths,), (lines,)
            # each document followed by </s>, as fairseq's TokenBlockDataset separates them
            ends = np.cumsum(lengths + 1)
            ids = np.full(int(ends[-1]), EOS, dtype=dtype)
            keep = np.ones(len(ids), dtype=bool)
            keep[ends - 1] = False
            ids[keep] = flat
            ntoks.extend((lengths + 1).tolist())
            out.write(ids.tobytes())

        texts: list[str] = []
        for offset, raw in lines:
            if not raw:  # blank lines separate documents in CC-100; corpus.py skips them too
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise XlmrError(f"{corpus_file}: invalid UTF-8 in the line at byte offset {offset} "
                                f"({e.reason}); clean the file, e.g. `iconv -f utf-8 -t utf-8 -c`") from None
            texts.append(text)
            hashes.append(line_hash(raw))
            nbytes.append(len(raw))
            if len(texts) >= batch_lines:
                flush(texts)
                texts = []
        if texts:
            flush(texts)
        out.close()
        np.savez(tmp / "lines.npz", hash=np.array(hashes, dtype=np.uint64),
                 tokens=np.array(ntoks, dtype=np.uint32), bytes=np.array(nbytes, dtype=np.uint64))
        info.update(vocab_size=tok.vocab_size, dtype=dtype.name, lines=len(hashes), tokens=int(sum(ntoks)),
                    bytes=int(sum(nbytes)))
        atomic_write_json(tmp / CHUNK_FILE, info)
    return final


# ----------------------------------------------------------------------------------------------
# Merging the chunks of each language into train / held-out streams


def _read_chunks(chunks_root: Path, lang: str, num_chunks: int) -> list[tuple[Path, dict]]:
    chunks, missing = [], []
    for i in range(num_chunks):
        d = _chunk_dir(chunks_root, lang, i, num_chunks)
        if (d / CHUNK_FILE).exists():
            chunks.append((d, json.loads((d / CHUNK_FILE).read_text())))
        else:
            missing.append(i)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise XlmrError(f"{chunks_root / lang}: chunks {shown} of {num_chunks} are missing; "
                        f"run `xlmr prepare --chunk I --num-chunks {num_chunks}` for them first")
    first = chunks[0][1]
    for d, c in chunks:
        if c["tokenizer_sha256"] != first["tokenizer_sha256"] or c["corpus"] != first["corpus"]:
            raise XlmrError(f"{d}: encoded with another tokenizer or from another version of the {lang} "
                            f"file than chunk 0; delete {chunks_root / lang} and encode again")
    return chunks


def _merge_language(chunks_root: Path, out_dir: Path, lang: str, num_chunks: int,
                    heldout: HeldoutSplit, piece_lines: int = 1 << 20) -> dict:
    """Write ``<lang>.train.bin`` and ``<lang>.heldout.bin`` from the chunks in order; return counts."""
    chunks = _read_chunks(chunks_root, lang, num_chunks)
    dtype = np.dtype(chunks[0][1]["dtype"])
    n_lines = sum(c["lines"] for _, c in chunks)
    if n_lines == 0:
        raise XlmrError(f"{chunks[0][1]['corpus']['name']}: no non-empty lines for language {lang}")
    k = heldout.count(n_lines)
    # threshold = the k-th smallest line hash; only each chunk's k smallest can be among them
    tau = None
    if k > 0:
        smallest = []
        for d, _ in chunks:
            h = np.load(d / "lines.npz")["hash"]
            smallest.append(np.partition(h, k - 1)[:k] if len(h) > k else h)
        tau = np.partition(np.concatenate(smallest), k - 1)[k - 1]

    meta = {f"{s}_{x}": 0 for s in SPLITS for x in ("tokens", "bytes", "docs")}
    tmp = {s: out_dir / f".{lang}.{s}.bin.{os.getpid()}.tmp" for s in SPLITS}
    files = {s: open(tmp[s], "wb") for s in SPLITS}
    try:
        for d, c in chunks:
            if c["lines"] == 0:
                continue
            with np.load(d / "lines.npz") as npz:
                lines = {name: npz[name] for name in npz.files}
            tokens = np.memmap(d / "tokens.bin", dtype=dtype, mode="r")
            ntok = lines["tokens"].astype(np.int64)
            ends = np.cumsum(ntok)
            is_held = (lines["hash"] <= tau) if tau is not None else np.zeros(len(ntok), bool)
            for a in range(0, len(ntok), piece_lines):  # bounded memory on huge chunks
                b = min(a + piece_lines, len(ntok))
                t0, t1 = (ends[a - 1] if a else 0), ends[b - 1]
                tok_held = np.repeat(is_held[a:b], ntok[a:b])  # (t1 - t0,) per-token split
                block = np.asarray(tokens[t0:t1])
                for s, sel_lines, sel_tok in (("train", ~is_held[a:b], ~tok_held),
                                              ("heldout", is_held[a:b], tok_held)):
                    files[s].write(block[sel_tok].tobytes())
                    meta[f"{s}_tokens"] += int(sel_tok.sum())
                    meta[f"{s}_docs"] += int(sel_lines.sum())
                    meta[f"{s}_bytes"] += int(lines["bytes"][a:b][sel_lines].sum())
        for s in SPLITS:
            files[s].flush()
            os.fsync(files[s].fileno())
            files[s].close()
            os.replace(tmp[s], out_dir / f"{lang}.{s}.bin")
    finally:
        for s in SPLITS:
            files[s].close()
            tmp[s].unlink(missing_ok=True)
    meta["corpus"] = chunks[0][1]["corpus"]
    return meta


def merge_chunks(chunks_root: str | os.PathLike, out_dir: str | os.PathLike, langs: Sequence[str],
                 num_chunks: int | dict[str, int], *, heldout: HeldoutSplit | None = None,
                 workers: int | None = 1) -> dict:
    """Merge encoded chunks into a shard directory (``<lang>.{train,heldout}.bin`` + ``shards.json``, last).

    ``num_chunks`` is one number for all languages or one per language. Returns the shards.json dict.
    """
    heldout = heldout or HeldoutSplit()
    chunks_root, out_dir = Path(chunks_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    langs = list(langs)
    counts = num_chunks if isinstance(num_chunks, dict) else {lang: num_chunks for lang in langs}
    jobs = [(chunks_root, out_dir, lang, counts[lang], heldout) for lang in langs]
    if (workers or 1) > 1 and len(langs) > 1:
        with ProcessPoolExecutor(min(workers, len(langs)), mp_context=get_context("spawn")) as pool:
            metas = list(pool.map(_merge_language, *zip(*jobs)))
    else:
        metas = [_merge_language(*job) for job in jobs]
    first = json.loads((_chunk_dir(chunks_root, langs[0], 0, counts[langs[0]]) / CHUNK_FILE).read_text())
    for lang in langs[1:]:
        other = json.loads((_chunk_dir(chunks_root, lang, 0, counts[lang]) / CHUNK_FILE).read_text())
        if other["tokenizer_sha256"] != first["tokenizer_sha256"]:
            raise XlmrError(f"{chunks_root / lang}: encoded with another tokenizer than {langs[0]}; "
                            "encode all languages with the same tokenizer model")
    info = {"format": FORMAT_VERSION, "tokenizer_sha256": first["tokenizer_sha256"],
            "vocab_size": first["vocab_size"], "dtype": first["dtype"], "heldout": asdict(heldout),
            "langs": dict(zip(langs, metas))}
    atomic_write_json(out_dir / SHARDS_FILE, info)
    return info


# ----------------------------------------------------------------------------------------------
# Shard sets


class ShardSet:
    """The token shards of one tokenizer over several languages, opened lazily as memory maps."""

    def __init__(self, root: str | os.PathLike, *, check: bool = True):
        """Open the shard directory ``root``; a cache entry is first checked against its manifest (``check``)."""
        self.root = Path(root)
        path = self.root / SHARDS_FILE
        if not path.exists():
            raise XlmrError(f"{self.root}: no {SHARDS_FILE}, not a complete shard directory; "
                            "run `xlmr prepare` (or its --merge step) again")
        if check and (self.root / cache.MANIFEST_FILE).exists():
            cache.check_entry(self.root)
        info = json.loads(path.read_text())
        if info.get("format") != FORMAT_VERSION:
            raise XlmrError(f"{path}: shard format {info.get('format')} but this code reads {FORMAT_VERSION}; "
                            "encode the corpus again")
        self.info = info
        self.meta: dict[str, dict] = info["langs"]
        self.langs: list[str] = list(self.meta)
        self.vocab_size: int = info["vocab_size"]
        self.dtype = np.dtype(info["dtype"])
        self._maps: dict[tuple[str, str], np.ndarray] = {}

    def __repr__(self) -> str:
        return f"ShardSet({str(self.root)!r}, langs={len(self.langs)}, vocab_size={self.vocab_size})"

    def __getstate__(self):
        # pickle (e.g. into a DataLoader worker) without copying the mapped arrays
        return {k: v for k, v in self.__dict__.items() if k != "_maps"} | {"_maps": {}}

    def tokens(self, lang: str, split: str) -> np.ndarray:
        """The token stream of one language and split (``train`` or ``heldout``), memory-mapped."""
        if lang not in self.meta:
            raise XlmrError(f"language {lang!r} is not in the shards at {self.root} "
                            f"(available: {', '.join(self.langs)})")
        if split not in SPLITS:
            raise XlmrError(f"split {split!r}: use one of {', '.join(SPLITS)}")
        key = (lang, split)
        if key not in self._maps:
            if self.meta[lang][f"{split}_tokens"] == 0:  # np.memmap cannot map an empty file
                self._maps[key] = np.empty(0, dtype=self.dtype)
            else:
                self._maps[key] = np.memmap(self.root / f"{lang}.{split}.bin", dtype=self.dtype, mode="r")
        return self._maps[key]

    def train_tokens(self, lang: str) -> np.ndarray:
        """The training stream of ``lang``: documents concatenated, each followed by ``</s>``."""
        return self.tokens(lang, "train")

    def heldout_tokens(self, lang: str) -> np.ndarray:
        """The held-out stream of ``lang``, laid out like the training stream."""
        return self.tokens(lang, "heldout")

    def bytes_per_token(self, lang: str, split: str = "heldout") -> float:
        """UTF-8 bytes of the original text per text token (``</s>`` excluded, as it is never masked).

        Bits per byte = masked-token loss in bits / bytes_per_token.
        """
        m = self.meta[lang]
        text_tokens = m[f"{split}_tokens"] - m[f"{split}_docs"]
        if text_tokens <= 0:
            raise XlmrError(f"language {lang!r} has no {split} tokens in {self.root}")
        return m[f"{split}_bytes"] / text_tokens


def unique_tokens(shards: ShardSet, langs: Sequence[str] | None = None) -> dict[str, int]:
    """Unique training tokens per language: the size of its training split under the shards' tokenizer (what a
    run repeats once it has seen more)."""
    return {lang: int(shards.meta[lang]["train_tokens"]) for lang in (langs or shards.langs)}


def repetition(tokens: float, probs: dict[str, float], unique: dict[str, int]) -> dict[str, dict]:
    """Per language of ``probs``: unique tokens, tokens seen (``tokens × prob``, the expected count of blocks
    drawn independently) and epochs (seen / unique; inf where a sampled language has no training tokens)."""
    out = {}
    for lang, q in sorted(probs.items()):
        if q <= 0:
            continue
        u, seen = int(unique[lang]), float(tokens) * q
        out[lang] = {"unique_tokens": u, "tokens_seen": seen, "epochs": seen / u if u > 0 else math.inf}
    return out


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def encode_corpus(tokenizer_file: str | os.PathLike, files: dict[str, Path], out_dir: str | os.PathLike, *,
                  heldout: HeldoutSplit | None = None, workers: int | None = None,
                  chunk_bytes: int = 32 << 20, log=None) -> dict:
    """Encode language files into a shard directory with a local process pool (chunks, then merge)."""
    out_dir = Path(out_dir)
    workers = workers or _default_workers()
    chunks_root = out_dir / ".chunks"
    counts = {lang: 1 if p.name.endswith(_COMPRESSED) else max(1, math.ceil(p.stat().st_size / chunk_bytes))
              for lang, p in files.items()}
    # largest languages first, so the pool ends with small tasks
    tasks = sorted(((lang, i) for lang in files for i in range(counts[lang])),
                   key=lambda t: -files[t[0]].stat().st_size / counts[t[0]])
    t0 = time.time()
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(encode_chunk, tokenizer_file, files[lang], i, counts[lang], chunks_root)
                       for lang, i in tasks]
            try:
                for n, fut in enumerate(futures, 1):
                    fut.result()
                    if log:
                        log(f"encoded chunk {n}/{len(tasks)} ({time.time() - t0:.0f} s)")
            except BaseException:
                pool.shutdown(cancel_futures=True)  # do not finish a corpus that already failed
                raise
    else:
        for lang, i in tasks:
            encode_chunk(tokenizer_file, files[lang], i, counts[lang], chunks_root)
    info = merge_chunks(chunks_root, out_dir, sorted(files), counts, heldout=heldout, workers=1)
    shutil.rmtree(chunks_root)
    return info


def shards_for(tokenizer, corpus_dir: str | os.PathLike, langs: Sequence[str] | None, *,
               cache_root: str | os.PathLike | None = None, workers: int | None = None,
               heldout: HeldoutSplit | None = None, chunk_bytes: int = 32 << 20, validated: bool = False) -> ShardSet:
    """The token shards of ``langs`` under ``tokenizer``, encoded in parallel once and cached.

    Files are encoded in chunks of about ``chunk_bytes`` (the result does not depend on it). ``validated``: the
    caller has run ``corpus.validate_languages`` on these languages.
    """
    from .corpus import select_languages, validate_languages

    heldout = heldout or HeldoutSplit()
    if not validated:
        validate_languages(corpus_dir, list(langs) if langs else None)  # every bad input fails before work
    files = dict(sorted(select_languages(corpus_dir, list(langs) if langs else None).items()))
    key = {"format": FORMAT_VERSION, "tokenizer_sha256": file_sha256(tokenizer.model_file),
           "corpus": {lang: file_fingerprint(p) for lang, p in files.items()}, "heldout": asdict(heldout)}

    def build(tmp: Path) -> None:
        print(f"xlmr: encoding {len(files)} languages into token shards at {tmp.parent}", file=sys.stderr)
        encode_corpus(tokenizer.model_file, files, tmp, heldout=heldout, workers=workers, chunk_bytes=chunk_bytes)

    return ShardSet(cache.get_or_build("shards", key, build, root=cache_root), check=False)  # checked just now


# ----------------------------------------------------------------------------------------------
# Masking (fairseq MaskTokensDataset)


@dataclass(frozen=True, kw_only=True)
class MaskConfig:
    """Masked-LM corruption as in BERT / RoBERTa / XLM-R (fairseq ``MaskTokensDataset``)."""

    mask_prob: float = 0.15
    """Share of (maskable) tokens, or words with whole_word, chosen for prediction."""
    leave_unmasked_prob: float = 0.1
    """Of the chosen, the share left unchanged in the input (still predicted)."""
    random_token_prob: float = 0.1
    """Of the chosen, the share replaced by a uniformly random non-special token."""
    whole_word: bool = False
    """Choose whole words (a word-start piece and the pieces that follow it) instead of pieces."""

    def __post_init__(self):
        if not 0 < self.mask_prob < 1:
            raise XlmrError(f"mask_prob={self.mask_prob} must be in (0, 1)")
        if not (0 <= self.leave_unmasked_prob <= 1 and 0 <= self.random_token_prob <= 1
                and self.leave_unmasked_prob + self.random_token_prob <= 1):
            raise XlmrError(f"leave_unmasked_prob={self.leave_unmasked_prob} and random_token_prob="
                            f"{self.random_token_prob} must be in [0, 1] and sum to at most 1")


@functools.lru_cache(maxsize=8)
def _replacement_ids(vocab_size: int, special_ids: tuple[int, ...]) -> np.ndarray:
    # fairseq draws random replacements with weights that are zero on the special symbols
    keep = np.ones(vocab_size, dtype=bool)
    keep[[i for i in special_ids if 0 <= i < vocab_size]] = False
    return np.flatnonzero(keep)


def _specials(special_ids, mask_id: int) -> tuple[int, ...]:
    ids = {BOS, PAD, EOS, mask_id} if special_ids is None else set(special_ids) | {mask_id}
    return tuple(sorted(int(i) for i in ids))


@functools.lru_cache(maxsize=8)
def _special_table(vocab_size: int, special_ids: tuple[int, ...]) -> np.ndarray:
    # (vocab_size,) bool lookup: faster than np.isin on every block
    table = np.zeros(vocab_size, dtype=bool)
    table[[i for i in special_ids if 0 <= i < vocab_size]] = True
    return table


def mask_block(tokens: np.ndarray, rng: np.random.Generator, cfg: MaskConfig, vocab_size: int, mask_id: int,
               special_ids: Sequence[int] | None = None,
               word_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt one block for masked-LM training; returns (input ids, labels), both int64 of shape (T,).

    As fairseq's ``MaskTokensDataset``: n = int(mask_prob · units + U(0,1)) units chosen without
    replacement; each chosen unit is left unchanged with probability leave_unmasked_prob, else
    replaced by a random non-special token with probability random_token_prob, else by ``<mask>``.
    Labels hold the original id at every chosen position and -100 elsewhere.

    One difference: fairseq masks over the whole block, ``<s>`` and ``</s>`` included. Here the
    special tokens are never chosen and units are counted over the other positions, so the loss
    is over text tokens only, matching the bytes per token used for bits per byte (a trivially
    predictable ``<s>`` at position 0 would flatter the loss). Random replacements exclude all of
    ``special_ids`` and ``<mask>`` (fairseq excludes its four specials but not ``<mask>``).
    With ``cfg.whole_word`` a unit is a word: a non-special position starts one if its piece is a
    word start (``word_starts[id]``), or it begins the block or follows a special token.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    specials = _specials(special_ids, mask_id)
    maskable = ~_special_table(vocab_size, specials)[tokens]  # (T,)
    positions = np.flatnonzero(maskable)  # (M,) candidate positions
    if cfg.whole_word:
        if word_starts is None:
            raise XlmrError("whole-word masking needs word_starts (Tokenizer.is_word_start)")
        prev_maskable = np.concatenate([[False], maskable[:-1]])
        starts = maskable & (np.asarray(word_starts, dtype=bool)[tokens] | ~prev_maskable)
        unit_of_pos = np.cumsum(starts)[positions] - 1  # (M,) word index of each candidate position
        n_units = int(starts.sum())
    else:
        unit_of_pos = slice(None)  # one unit per candidate position
        n_units = len(positions)

    n_mask = min(n_units, int(cfg.mask_prob * n_units + rng.random()))  # probabilistic rounding
    chosen = np.zeros(n_units, dtype=bool)
    chosen[rng.choice(n_units, n_mask, replace=False)] = True

    rand_or_unmask_prob = cfg.random_token_prob + cfg.leave_unmasked_prob
    unmask = rand = np.zeros(n_units, dtype=bool)
    if rand_or_unmask_prob > 0:
        rand_or_unmask = chosen & (rng.random(n_units) < rand_or_unmask_prob)
        if cfg.random_token_prob == 0:
            unmask = rand_or_unmask
        elif cfg.leave_unmasked_prob == 0:
            rand = rand_or_unmask
        else:
            decision = rng.random(n_units) < cfg.leave_unmasked_prob / rand_or_unmask_prob
            unmask, rand = rand_or_unmask & decision, rand_or_unmask & ~decision

    # units -> positions in the block
    pos_chosen = positions[chosen[unit_of_pos]]
    pos_mask = positions[(chosen & ~unmask & ~rand)[unit_of_pos]]
    pos_rand = positions[rand[unit_of_pos]]

    labels = np.full(len(tokens), -100, dtype=np.int64)
    labels[pos_chosen] = tokens[pos_chosen]
    inputs = tokens.copy()
    inputs[pos_mask] = mask_id
    if len(pos_rand):
        candidates = _replacement_ids(vocab_size, specials)
        inputs[pos_rand] = candidates[rng.integers(0, len(candidates), len(pos_rand))]
    return inputs, labels


# ----------------------------------------------------------------------------------------------
# Batches


def _lang_table(shards: ShardSet, probs: dict[str, float], seq_len: int) -> tuple[list[str], np.ndarray]:
    langs = sorted(lang for lang, p in probs.items() if p > 0)  # sorted: independent of dict order
    if not langs:
        raise XlmrError(f"language probabilities {probs} are all zero")
    for lang in langs:
        n = shards.meta[lang]["train_tokens"] if lang in shards.meta else None
        if n is None:
            raise XlmrError(f"language {lang!r} has a sampling probability but no shards in {shards.root} "
                            f"(available: {', '.join(shards.langs)})")
        if n < seq_len - 1:
            raise XlmrError(f"language {lang!r} has {n} training tokens, fewer than one block of {seq_len}; "
                            "use a shorter seq_len, more text, or leave the language out")
    p = np.array([probs[lang] for lang in langs], dtype=np.float64)
    return langs, np.cumsum(p / p.sum())


def block_rng(seed: int, step: int, block: int) -> np.random.Generator:
    """The random generator of global block ``block`` of ``step``: independent of ranks and world size."""
    return np.random.default_rng([seed, step, block])


def make_batch(shards: ShardSet, probs: dict[str, float], *, seed: int, step: int, rank: int, world_size: int,
               batch_blocks: int, seq_len: int, mask: MaskConfig, vocab_size: int, mask_id: int,
               special_ids: Sequence[int] | None = None, word_starts: np.ndarray | None = None) -> dict:
    """This rank's share of the global batch of ``step``: a pure function of (seed, step, rank, world_size).

    ``batch_blocks`` is the number of blocks of THIS rank (the global batch is batch_blocks ×
    world_size); rank r gets global blocks r·B … (r+1)·B - 1, so the union over ranks is the same
    for any split of a fixed global batch. Each block draws its language with ``probs`` (q_i), a
    uniform offset into that language's training stream and its mask from :func:`block_rng`.
    Returns ``input_ids`` and ``labels`` (LongTensor (B, T); labels -100 except at chosen
    positions) and ``lang`` (list of B language codes).
    """
    import torch  # here, not at the top: encoding workers never need it and it takes seconds to import

    if world_size < 1 or not 0 <= rank < world_size or batch_blocks < 1:
        raise XlmrError(f"rank {rank} of world_size={world_size} with batch_blocks={batch_blocks}: "
                        "need 0 <= rank < world_size and at least one block per rank")
    langs, cdf = _lang_table(shards, probs, seq_len)
    inputs = np.empty((batch_blocks, seq_len), dtype=np.int64)
    labels = np.empty((batch_blocks, seq_len), dtype=np.int64)
    block_langs = []
    for j in range(batch_blocks):
        rng = block_rng(seed, step, rank * batch_blocks + j)
        lang = langs[min(int(np.searchsorted(cdf, rng.random(), side="right")), len(langs) - 1)]
        stream = shards.train_tokens(lang)
        off = int(rng.integers(0, len(stream) - (seq_len - 1) + 1))
        block = np.empty(seq_len, dtype=np.int64)
        block[0] = BOS
        block[1:] = stream[off: off + seq_len - 1]
        inputs[j], labels[j] = mask_block(block, rng, mask, vocab_size, mask_id, special_ids, word_starts)
        block_langs.append(lang)
    return {"input_ids": torch.from_numpy(inputs), "labels": torch.from_numpy(labels), "lang": block_langs}


_WORKER_ARGS: tuple = ()


def _as_tensors(item):
    import torch

    if isinstance(item, list):
        return [_as_tensors(b) for b in item]
    return {k: torch.from_numpy(v) if k != "lang" else v for k, v in item.items()}


def _as_numpy(item):
    """The inverse of ``_as_tensors``, for a batch (or a step's list of them) leaving a worker process."""
    if isinstance(item, list):
        return [_as_numpy(b) for b in item]
    return {k: v.numpy() if k != "lang" else v for k, v in item.items()}


def _init_batch_worker(shards: ShardSet, probs: dict[str, float], kwargs: dict, accum: int | None) -> None:
    global _WORKER_ARGS
    _WORKER_ARGS = (shards, probs, kwargs, accum)


def step_batches(shards: ShardSet, probs: dict[str, float], *, step: int, accum: int, rank: int = 0,
                 world_size: int = 1, **kwargs) -> list[dict]:
    """This rank's share of step ``step`` as ``accum`` micro-batches of ``make_batch``.

    Micro-batch m of rank r is "rank" r·accum + m of world_size·accum, so the global batch of a step is the
    same whatever its split into processes and accumulation steps.
    """
    return [make_batch(shards, probs, step=step, rank=rank * accum + m, world_size=world_size * accum, **kwargs)
            for m in range(accum)]


def _step_item(shards: ShardSet, probs: dict[str, float], step: int, kwargs: dict, accum: int | None):
    if accum is None:
        return make_batch(shards, probs, step=step, **kwargs)
    return step_batches(shards, probs, step=step, accum=accum, **kwargs)


def _worker_batch(step: int):
    # numpy arrays travel by plain pickling; tensors would go through torch's shared-memory handles
    shards, probs, kwargs, accum = _WORKER_ARGS
    return _as_numpy(_step_item(shards, probs, step, kwargs, accum))


class BatchIterator:
    """Yields ``(step, make_batch(...))`` for steps start … end-1, computed ahead in the background.

    With ``workers=0`` one background thread builds the batches; with ``workers=N`` N processes
    build them (batches are pure functions of the step, so any process can build any step) and
    they are yielded in step order. Resuming at step s is ``BatchIterator(..., start=s)``. With ``accum=k``
    each step is this rank's list of k micro-batches (``step_batches``), as the trainer consumes it.
    """

    def __init__(self, shards: ShardSet, probs: dict[str, float], *, start: int, end: int, prefetch: int = 4,
                 workers: int = 0, pin_memory: bool = False, accum: int | None = None, **batch_kwargs):
        self.start, self.end = start, end
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._accum = accum
        self._args = (shards, probs, batch_kwargs, pin_memory, workers, max(1, prefetch))
        self._thread = threading.Thread(target=self._work, daemon=True, name="xlmr-batches")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _batches(self) -> Iterator[dict]:
        shards, probs, kwargs, _, workers, prefetch = self._args
        if workers <= 0:
            for step in range(self.start, self.end):
                yield _step_item(shards, probs, step, kwargs, self._accum)
            return
        # the shard set and settings go to each worker once; a task is then just a step number
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_batch_worker,
                                 initargs=(shards, probs, kwargs, self._accum)) as pool:
            pending: collections.deque = collections.deque()
            for step in range(self.start, self.end):
                pending.append(pool.submit(_worker_batch, step))
                if len(pending) >= workers + prefetch:  # bounded look-ahead, results in step order
                    yield _as_tensors(pending.popleft().result())
                if self._stop.is_set():
                    break
            while pending and not self._stop.is_set():
                yield _as_tensors(pending.popleft().result())
            for fut in pending:
                fut.cancel()

    def _work(self) -> None:
        pin = self._args[3]
        batches = self._batches()
        try:
            for step, batch in enumerate(batches, self.start):
                for b in (batch if isinstance(batch, list) else [batch]) if pin else ():
                    b["input_ids"] = b["input_ids"].pin_memory()
                    b["labels"] = b["labels"].pin_memory()
                if not self._put((step, batch, None)):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put((None, None, e))
            return
        finally:
            batches.close()  # shuts the worker processes down
        self._put((None, None, StopIteration()))

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[int, dict | list[dict]]:
        if self._stop.is_set():
            raise StopIteration
        step, batch, err = self._queue.get()
        if err is not None:
            self._stop.set()
            raise err
        return step, batch

    def close(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def heldout_blocks(shards: ShardSet, lang: str, seq_len: int, max_blocks: int | None = None) -> np.ndarray:
    """The held-out stream of ``lang`` cut into consecutive blocks ``<s>`` + (T-1) tokens: int64 (N, T).

    The last partial block is dropped; a stream shorter than one block gives one block padded with
    ``<pad>`` (the model's attention mask ignores it). With ``max_blocks``, that many blocks evenly
    spaced over the stream are kept, so the sample covers all of the held-out documents.
    """
    stream = shards.heldout_tokens(lang)
    body = seq_len - 1
    if len(stream) == 0:
        raise XlmrError(f"language {lang!r} has no held-out tokens in {shards.root}; "
                        "hold out more lines (HeldoutSplit) or add text")
    n = len(stream) // body
    if n == 0:
        rows = np.full((1, body), PAD, dtype=np.int64)
        rows[0, : len(stream)] = stream
    else:
        rows = np.asarray(stream[: n * body], dtype=np.int64).reshape(n, body)  # (N, T-1)
        if max_blocks is not None and max_blocks < n:
            rows = rows[(np.arange(max_blocks) * n) // max_blocks]
    return np.concatenate([np.full((len(rows), 1), BOS, dtype=np.int64), rows], axis=1)  # (N, T)


# ----------------------------------------------------------------------------------------------
# Command line


def _prepare(args: argparse.Namespace) -> int:
    from .corpus import select_languages, validate_languages

    langs = [x for x in args.langs.split(",") if x] if args.langs else None
    heldout = HeldoutSplit(fraction=args.heldout_fraction, min_lines=args.heldout_min_lines,
                           max_lines=args.heldout_max_lines)
    out = Path(args.out)
    tokenizer = Path(args.tokenizer)
    if not tokenizer.exists():
        raise XlmrError(f"{tokenizer}: no such tokenizer model; train one with `xlmr tokenizer train`")
    validate_languages(args.corpus, langs)
    files = select_languages(args.corpus, langs)
    if args.merge:
        if not args.num_chunks:
            raise XlmrError("--merge needs --num-chunks N (the N used by the chunk jobs)")
        # a compressed file was written as chunk 0 of N (the others empty): it merges like the rest
        counts = {lang: args.num_chunks for lang in files}
        info = merge_chunks(out / "chunks", out, list(files), counts, heldout=heldout,
                            workers=args.workers or _default_workers())
        if not args.keep_chunks:
            shutil.rmtree(out / "chunks")
        total = sum(m["train_tokens"] + m["heldout_tokens"] for m in info["langs"].values())
        print(f"merged {len(files)} languages, {total:,} tokens into {out}")
    elif args.chunk is not None:
        if not args.num_chunks or not 0 <= args.chunk < args.num_chunks:
            raise XlmrError(f"--chunk {args.chunk} needs --num-chunks N with 0 <= chunk < N")
        for lang, path in files.items():
            d = encode_chunk(tokenizer, path, args.chunk, args.num_chunks, out / "chunks")
            c = json.loads((d / CHUNK_FILE).read_text())
            print(f"{lang}: chunk {args.chunk}/{args.num_chunks}: {c['lines']:,} lines, {c['tokens']:,} tokens")
    else:
        t0 = time.time()
        with atomic_dir(out) as tmp:
            info = encode_corpus(tokenizer, files, tmp, heldout=heldout, workers=args.workers,
                                 log=lambda m: print(m, file=sys.stderr))
        total = sum(m["train_tokens"] + m["heldout_tokens"] for m in info["langs"].values())
        print(f"encoded {len(files)} languages, {total:,} tokens into {out} in {time.time() - t0:.1f} s")
    return 0


def add_cli(sub) -> None:
    """Add ``xlmr prepare`` (encode a corpus into token shards; chunked for job arrays)."""
    p = sub.add_parser("prepare", help="encode a corpus into token shards",
                       description="Encode language files into token shards. Locally: one command. On a "
                                   "cluster: one job per chunk with --chunk I --num-chunks N (outputs under "
                                   "OUT/chunks), then one --merge job.")
    p.add_argument("--tokenizer", required=True, help="SentencePiece model file (spm.model)")
    p.add_argument("--corpus", required=True, help="corpus directory of <lang>.txt[.gz|.xz|.zst]")
    p.add_argument("--langs", default="", help="comma-separated languages (default: all)")
    p.add_argument("--out", required=True, help="output shard directory")
    p.add_argument("--chunk", type=int, default=None, help="encode only chunk I of every language file")
    p.add_argument("--num-chunks", type=int, default=0, help="number of chunks per plain-text file")
    p.add_argument("--merge", action="store_true", help="merge the chunks under OUT/chunks into shards")
    p.add_argument("--keep-chunks", action="store_true", help="keep OUT/chunks after --merge")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    d = HeldoutSplit()
    p.add_argument("--heldout-fraction", type=float, default=d.fraction)
    p.add_argument("--heldout-min-lines", type=int, default=d.min_lines)
    p.add_argument("--heldout-max-lines", type=int, default=d.max_lines)
    p.set_defaults(func=_prepare)
