"""Token shards: the held-out split, chunked encoding of a corpus, merging, and the shard set that reads them.

A corpus is encoded once per tokenizer into memory-mapped token streams, one per language and split
(``<lang>.train.bin``, ``<lang>.heldout.bin``): every line is a document, each followed by ``</s>``.
Encoding is split into independent chunks (:func:`encode_chunk`) and a merge (:func:`merge_chunks`), so a
terabyte corpus can be encoded by a job array; :func:`shards_for` runs the same two steps in a local process
pool and caches the result. The held-out lines of a language are those with the smallest line hashes
(:class:`HeldoutSplit`); :func:`heldout_blocks` cuts its held-out stream into evaluation blocks.

Worker processes (spawn) receive :func:`encode_chunk` by qualified name; the SentencePiece model each of them
loads is cached here, beside it (``_load_tokenizer``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from xlmr_core.data import cache
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir, atomic_write_json, file_sha256

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
    from xlmr_core.data.corpus import SUFFIXES

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
    from xlmr_core.data.corpus import open_lines

    for i, line in enumerate(open_lines(path)):
        yield i, line.encode("utf-8")


@functools.lru_cache(maxsize=4)
def _load_tokenizer(model_file: str):
    # one SentencePiece model per worker process, loaded on first use
    from xlmr_core.data.tokenizer import Tokenizer

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
            hashes.append(line_hash(tok.line_key(raw, text)))
            nbytes.append(tok.line_bytes(raw, text))
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
    from xlmr_core.data.corpus import select_languages, validate_languages

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
# Held-out evaluation blocks


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
