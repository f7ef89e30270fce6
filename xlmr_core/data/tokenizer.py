"""SentencePiece unigram tokenizers in the fairseq / XLM-R id layout.

Training follows XLM-R (Conneau et al. 2019, section 3.1) and XLM: the tokenizer's own training
text is a sample of lines drawn from the languages with the α-smoothed probabilities q_i, so small
languages get more pieces than their share of the raw text would give them.

Ids are those of fairseq's dictionary for XLM-R (and of ``transformers.XLMRobertaTokenizer``):

    0 <s>   1 <pad>   2 </s>   3 <unk>   4.. SentencePiece piece i>=3 as i+1   last <mask>

so a model with P SentencePiece pieces has P + 2 embedding rows (XLM-R: 250000 -> 250002).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import sentencepiece as spm
from tqdm import tqdm

from xlmr_core.data import cache
from xlmr_core.data.corpus import (
    LangStats,
    open_lines,
    parse_langs,
    sampling_probs,
    select_languages,
    validate_languages,
)
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

SAMPLE_LINES = 2_000_000
"""Default number of lines in the tokenizer's training sample (capped by the lines that exist)."""
CHARACTER_COVERAGE = 0.9995
"""SentencePiece's recommendation for languages with rich character sets (CJK); 1.0 would make every
rare character of a 100-language corpus a piece."""
_TRAINER_VERSION = 1  # bump when the sample or trainer settings change, to invalidate cached tokenizers
_MAX_LINE_CHARS = 4096  # longer lines are cut (SentencePiece skips lines over max_sentence_length bytes)
_MAX_SENTENCE_BYTES = 4 * _MAX_LINE_CHARS  # UTF-8 has at most 4 bytes per character
_UNK_PENALTY = 10.0  # SentencePiece's kUnkPenalty: an unknown piece scores min_score - 10


class Tokenizer:
    """A SentencePiece model read through the fairseq / XLM-R id layout (see the module docstring)."""

    bos_id = 0
    pad_id = 1
    eos_id = 2
    unk_id = 3

    def __new__(cls, model_file: str | os.PathLike | None = None):
        # a derived-language tokenizer (xlmr_core.data.derived) is named by its spec file: Tokenizer(path) opens either
        if cls is Tokenizer and model_file is not None and str(model_file).endswith(DERIVED_SUFFIX):
            cls = DerivedTokenizer
        return super().__new__(cls)

    def __init__(self, model_file: str | os.PathLike):
        self.model_file = Path(model_file)
        try:
            proto = self.model_file.read_bytes()
        except OSError as e:
            raise XlmrError(f"cannot read tokenizer model {self.model_file}: {e.strerror or e}") from None
        self._load(proto)

    def _load(self, proto: bytes) -> None:
        self._proto = proto
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(proto)
        except RuntimeError as e:
            raise XlmrError(f"{self.model_file} is not a SentencePiece model ({e})") from None
        n = self.sp.get_piece_size()
        if (self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id(), self.sp.pad_id()) != (0, 1, 2, -1):
            raise XlmrError(f"{self.model_file}: expected SentencePiece ids <unk>=0 <s>=1 </s>=2 and no <pad> "
                            "(as XLM-R's model); train it with `xlmr tokenizer train`")
        self.num_pieces = n
        self.vocab_size = n + 2  # + <pad> and <mask>
        self.mask_id = n + 1
        # spm id -> our id: pieces shift by one; spm's <unk>, <s>, </s> go to fairseq's slots
        self._to_ours = np.arange(1, n + 1, dtype=np.int64)
        self._to_ours[[0, 1, 2]] = [self.unk_id, self.bos_id, self.eos_id]
        self._to_spm = np.full(self.vocab_size, -1, dtype=np.int64)  # -1: pad and mask have no spm piece
        self._to_spm[self._to_ours] = np.arange(n)
        pieces = [self.sp.id_to_piece(i) for i in range(n)]
        word_start = np.array([p.startswith("\u2581") for p in pieces], dtype=bool)
        word_start[[0, 1, 2]] = False
        # (vocab_size,) per our id; specials are False: they are never masked (see data.mask_block)
        self.is_word_start = np.zeros(self.vocab_size, dtype=bool)
        self.is_word_start[self._to_ours] = word_start
        self.special_ids = (self.bos_id, self.pad_id, self.eos_id, self.unk_id, self.mask_id)
        # unigram log-probabilities per our id, for the ALP metric; unknowns score as SentencePiece's Viterbi
        scores = np.array([self.sp.get_score(i) for i in range(n)], dtype=np.float64)
        self._scores = np.zeros(self.vocab_size, dtype=np.float64)
        self._scores[self._to_ours] = scores
        self._scores[self.unk_id] = scores[3:].min() - _UNK_PENALTY if n > 3 else -_UNK_PENALTY

    def __getstate__(self):  # picklable for worker processes: ship the model bytes, not the C++ object
        return {"model_file": self.model_file, "proto": self._proto}

    def __setstate__(self, state):
        self.model_file = state["model_file"]
        self._load(state["proto"])

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer({str(self.model_file)!r}, vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Ids of one text, without <s> or </s>."""
        return self._to_ours[np.asarray(self.sp.encode(text, out_type=int), dtype=np.int64)].tolist()

    def encode_flat(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids of many texts concatenated (int64, (sum of lengths,)) and the length of each ((len(texts),))."""
        spm_ids = self.sp.encode(list(texts), out_type=int)
        lengths = np.fromiter((len(x) for x in spm_ids), dtype=np.int64, count=len(spm_ids))
        flat = np.fromiter(itertools.chain.from_iterable(spm_ids), dtype=np.int64, count=int(lengths.sum()))
        return self._to_ours[flat], lengths

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text, without <s> or </s> (one SentencePiece call for the whole batch)."""
        flat, lengths = self.encode_flat(texts)
        return [part.tolist() for part in np.split(flat, np.cumsum(lengths)[:-1])] if len(texts) else []

    def decode(self, ids) -> str:
        """Text of ids; <s>, </s>, <pad> and <mask> are dropped, <unk> decodes as SentencePiece's ' ⁇ '."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise XlmrError(f"token id out of range [0, {self.vocab_size}): {ids.min()}..{ids.max()}")
        spm_ids = self._to_spm[ids]
        keep = (spm_ids >= 0) & (spm_ids != 1) & (spm_ids != 2)
        return self.sp.decode(spm_ids[keep].tolist())

    def id_to_piece(self, i: int) -> str:
        """The piece of an id (the special tokens by their names)."""
        if i == self.pad_id:
            return "<pad>"
        if i == self.mask_id:
            return "<mask>"
        if not 0 <= i < self.vocab_size:
            raise XlmrError(f"token id {i} out of range [0, {self.vocab_size})")
        return self.sp.id_to_piece(int(self._to_spm[i]))

    def piece_to_id(self, piece: str) -> int:
        """The id of a piece (unknown pieces give ``unk_id``)."""
        if piece == "<pad>":
            return self.pad_id
        if piece == "<mask>":
            return self.mask_id
        return int(self._to_ours[self.sp.piece_to_id(piece)])

    def line_key(self, raw: bytes, text: str) -> bytes:
        """What a corpus line is identified by in the held-out split (its bytes; derived languages differ)."""
        return raw

    def line_bytes(self, raw: bytes, text: str) -> int:
        """The bytes a line counts for bits per byte (its own; a derived language's count its source's)."""
        return len(raw)

    def piece_scores(self) -> np.ndarray:
        """Unigram log-probability of each id ((vocab_size,); specials 0, <unk> as scored by SentencePiece)."""
        return self._scores.copy()


# ---------------------------------------------------------------------------------------------
# derived languages (xlmr_core.data.derived): language k's text lives k Unicode planes up


PLANE = 0x10000
DERIVED_SUFFIX = ".derived.json"
_SPACE = 0x20


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()


def _text(a: np.ndarray) -> str:
    return a.astype(np.uint32).tobytes().decode("utf-32-le")


def shift(text: str, k: int) -> str:
    """The text with every non-space character moved ``k`` planes up (k=0: unchanged)."""
    if k == 0 or not text:
        return text
    a = _codes(text)
    if (a >= PLANE).any():
        raise XlmrError("derived languages need source text in the Basic Multilingual Plane (U+0000-U+FFFF)")
    a[a != _SPACE] += k * PLANE
    return _text(a)


def unshift(text: str) -> tuple[str, int]:
    """(the text moved back to the source plane, its language k)."""
    if not text:
        return text, 0
    a = _codes(text)
    k = int(a.max()) // PLANE
    return (_text(a % PLANE) if k else text), k


def line_key(text: str) -> bytes:
    """The identity of a line in every derived language: its words in sorted order, on the source plane. Word
    order and plane change a line's bytes but not its key, so the held-out split picks the same documents."""
    return " ".join(sorted(unshift(text)[0].split(" "))).encode("utf-8")



class DerivedTokenizer(Tokenizer):
    """The source SentencePiece model with K id maps: language k's non-shared pieces get ids of their own.

    Ids 0 … V-1 are the source tokenizer's (V = pieces + 2, ``<mask>`` last among them); language k ≥ 1 maps
    non-shared piece p to V + (k - 1)·M + rank(p), M the number of non-shared pieces, so the vocabulary is
    V + (K - 1)·M. Text is read in any derived language (its plane says which).
    """

    def __init__(self, model_file):
        self.model_file = Path(model_file)
        try:
            spec = json.loads(self.model_file.read_text(encoding="utf-8"))
            proto = (self.model_file.parent / spec["source_model"]).read_bytes()
        except (OSError, ValueError, KeyError) as e:
            raise XlmrError(f"cannot read derived tokenizer {self.model_file}: {e}") from None
        self._load_derived(spec, proto)

    def _load_derived(self, spec: dict, proto: bytes) -> None:
        self.spec = spec
        self._load(proto)
        k, share, seed = int(spec["k"]), float(spec["share"]), int(spec["seed"])
        V = self.vocab_size
        specials = np.array(sorted(set(self.special_ids)))
        ordinary = np.setdiff1d(np.arange(V), specials)
        n_shared = int(round(share * len(ordinary)))
        shared = np.zeros(V, dtype=bool)
        shared[specials] = True
        shared[np.random.default_rng([seed, 7]).permutation(ordinary)[:n_shared]] = True
        own = np.flatnonzero(~shared)  # ascending: rank = position
        M = len(own)
        maps = np.tile(np.arange(V, dtype=np.int64), (k, 1))
        for i in range(1, k):
            maps[i, own] = V + (i - 1) * M + np.arange(M)
        self.k, self.share, self.source_vocab, self.own_pieces = k, share, V, M
        self.maps = maps
        self.vocab_size = V + (k - 1) * M
        self.src_of = np.concatenate([np.arange(V), np.tile(own, max(k - 1, 0))]).astype(np.int64)
        self.lang_of_id = np.concatenate([np.zeros(V, dtype=np.int64),
                                          np.repeat(np.arange(1, k, dtype=np.int64), M)])
        self.is_word_start = self.is_word_start[self.src_of]
        self._scores = self._scores[self.src_of]

    def __getstate__(self):
        return {"model_file": self.model_file, "spec": self.spec, "proto": self._proto}

    def __setstate__(self, state):
        self.model_file = state["model_file"]
        self._load_derived(state["spec"], state["proto"])

    def __repr__(self) -> str:
        return f"DerivedTokenizer({str(self.model_file)!r}, k={self.k}, share={self.share:g}, " \
               f"vocab_size={self.vocab_size})"

    def _lang_check(self, k: int) -> int:
        if k >= self.k:
            raise XlmrError(f"text of derived language {k} given to a tokenizer of {self.k} languages")
        return k

    def encode_flat(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [unshift(t) for t in texts]
        flat, lengths = super().encode_flat([t for t, _ in pairs])
        langs = np.repeat(np.array([self._lang_check(k) for _, k in pairs], dtype=np.int64), lengths)
        return self.maps[langs, flat], lengths

    def encode(self, text: str) -> list[int]:
        return self.encode_flat([text])[0].tolist()

    def decode(self, ids) -> str:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise XlmrError(f"token id out of range [0, {self.vocab_size}): {ids.min()}..{ids.max()}")
        langs = self.lang_of_id[ids]
        k = int(np.bincount(langs[langs > 0]).argmax()) if (langs > 0).any() else 0
        return shift(super().decode(self.src_of[ids]), k)

    def id_to_piece(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise XlmrError(f"token id {i} out of range [0, {self.vocab_size})")
        return shift(super().id_to_piece(int(self.src_of[i])), int(self.lang_of_id[i]))

    def piece_to_id(self, piece: str) -> int:
        src, k = unshift(piece)
        return int(self.maps[self._lang_check(k), super().piece_to_id(src)])

    def line_key(self, raw: bytes, text: str) -> bytes:
        return line_key(text)

    def line_bytes(self, raw: bytes, text: str) -> int:
        return len(unshift(text)[0].encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# training


def _sample_plan(lines: dict[str, int], q: dict[str, float], total: int) -> dict[str, int]:
    """Lines to draw per language: ``total`` split by q_i with largest remainders, at least 1 each."""
    raw = {lang: q[lang] * total for lang in lines}
    plan = {lang: max(1, math.floor(x)) for lang, x in raw.items()}
    short = total - sum(plan.values())
    for lang in sorted(raw, key=lambda k: raw[k] - math.floor(raw[k]), reverse=True)[:max(short, 0)]:
        plan[lang] += 1
    return plan


def _line_counts(n_have: int, n_want: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """How often to take each line: every line ``reps`` times, plus once more for the sorted ``extra``.

    With fewer lines than wanted a language is upsampled by repeating all of its lines (what
    α < 1 means for a small language); the remainder is drawn without replacement.
    """
    reps, rest = divmod(n_want, n_have)
    extra = np.sort(rng.choice(n_have, size=rest, replace=False)) if rest else np.zeros(0, dtype=np.int64)
    return reps, extra


def _write_sample(files: dict[str, Path], plan: dict[str, int], have: dict[str, int], seed: int,
                  out, progress: bool) -> dict[str, int]:
    """Stream each language once, writing its planned lines to ``out``; returns lines written per language."""
    written = {}
    bar = tqdm(total=sum(plan.values()), unit="line", desc="tokenizer sample", disable=not progress,
               file=sys.stderr, mininterval=1.0)
    for lang, path in files.items():
        # a random stream per (seed, language): the sample does not depend on the order of --langs
        rng = np.random.default_rng([seed, zlib.crc32(lang.encode())])
        reps, extra = _line_counts(have[lang], plan[lang], rng)
        extra = extra.tolist()  # Python ints: compared once per line below
        n, k, j = 0, 0, 0  # lines written, index into extra, index of non-blank line
        for line in open_lines(path):
            if not line:
                continue
            times = reps
            if k < len(extra) and extra[k] == j:
                times += 1
                k += 1
            j += 1
            if times:
                # cut very long lines: SentencePiece would silently skip them
                parts = [line[i:i + _MAX_LINE_CHARS] for i in range(0, len(line), _MAX_LINE_CHARS)]
                chunk = "\n".join(parts) + "\n"
                out.write(chunk * times)
                n += times
                bar.update(times)
            if not reps and k == len(extra):
                break  # the rest of this language is not in the sample
        written[lang] = n
    bar.close()
    return written


def train_tokenizer(corpus_dir: str | os.PathLike, langs: list[str] | None, vocab_size: int,
                    out_dir: str | os.PathLike, *, alpha: float = 0.3, sample_lines: int = SAMPLE_LINES,
                    seed: int = 0, threads: int | None = None, character_coverage: float = CHARACTER_COVERAGE,
                    verbose: bool = False, progress: bool | None = None,
                    stats: Mapping[str, LangStats] | None = None) -> Tokenizer:
    """Train a SentencePiece unigram model with ``vocab_size`` pieces on an α-sampled set of lines.

    Writes ``out_dir/spm.model`` and ``out_dir/tokenizer.json`` (settings, sample sizes, timings).
    ``stats``: the result of ``validate_languages`` for exactly these languages, when the caller has checked them.
    """
    if not (isinstance(vocab_size, int) and vocab_size >= 8):
        raise XlmrError(f"vocab_size must be an integer >= 8 SentencePiece pieces, got {vocab_size!r}")
    if not (isinstance(sample_lines, int) and sample_lines > 0):
        raise XlmrError(f"sample_lines must be a positive integer, got {sample_lines!r}")
    if not 0 < character_coverage <= 1:
        raise XlmrError(f"character_coverage must be in (0, 1], got {character_coverage!r}")
    if stats is None:
        stats = validate_languages(corpus_dir, langs)  # every bad input fails here, before the long parts
    files = {lang: s.path for lang, s in stats.items()}
    have = {lang: s.lines for lang, s in stats.items()}
    q = sampling_probs(have, alpha)
    total = min(sample_lines, sum(have.values()))
    plan = _sample_plan(have, q, total)
    threads = threads or os.cpu_count() or 1
    progress = sys.stderr.isatty() if progress is None else progress
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".spm-sample-", dir=out_dir) as tmp:
        sample = Path(tmp) / "sample.txt"
        with open(sample, "w", encoding="utf-8") as f:
            written = _write_sample(files, plan, have, seed, f, progress)
        sample_bytes = sample.stat().st_size
        t1 = time.perf_counter()
        logger.info("training a %s-piece unigram model on %s lines (%.1f MB, %d languages) with %d threads",
                    f"{vocab_size:,}", f"{sum(written.values()):,}", sample_bytes / 1e6, len(files), threads)
        settings = dict(
            model_type="unigram", vocab_size=vocab_size, character_coverage=character_coverage,
            normalization_rule_name="nmt_nfkc", byte_fallback=False,  # as XLM-R: unseen characters are <unk>
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1,  # XLM-R's spm ids; fairseq adds <pad> and <mask> on top
            input_sentence_size=0, shuffle_input_sentence=True,  # the sample is already the budget: use it all
            max_sentence_length=_MAX_SENTENCE_BYTES, num_threads=threads, seed_sentencepiece_size=1_000_000,
            # a 64-bit suffix array: needed past ~2 GB of sample text or for million-piece vocabularies (XLM-V)
            train_extremely_large_corpus=sample_bytes > (1 << 31) or vocab_size >= 500_000,
            hard_vocab_limit=True, minloglevel=0 if verbose else 2)
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)  # SentencePiece's own shuffling
        try:
            # an iterator rather than input=path, so that the model records no temporary path: reproducible bytes
            with open(sample, encoding="utf-8") as f:
                spm.SentencePieceTrainer.train(sentence_iterator=(line.rstrip("\n") for line in f),
                                               model_writer=model, **settings)
        except RuntimeError as e:
            raise _training_error(e, vocab_size, sample_bytes, corpus_dir) from None
        t2 = time.perf_counter()
    atomic_write_bytes(out_dir / "spm.model", model.getvalue())
    atomic_write_json(out_dir / "tokenizer.json", {
        "corpus": str(Path(corpus_dir).resolve()), "langs": list(files), "vocab_size": vocab_size,
        "model_vocab_size": vocab_size + 2, "alpha": alpha, "seed": seed, "sample_lines": sample_lines,
        "sampled_lines": written, "q": q, "sample_bytes": sample_bytes, "character_coverage": character_coverage,
        "model_type": "unigram", "normalization": "nmt_nfkc", "threads": threads,
        "sentencepiece": spm.__version__, "sample_s": round(t1 - t0, 3), "train_s": round(t2 - t1, 3)})
    return Tokenizer(out_dir / "spm.model")


def _training_error(e: RuntimeError, vocab_size: int, sample_bytes: int, corpus_dir) -> XlmrError:
    """One actionable error for SentencePiece's failures on vocabulary size."""
    msg = str(e)
    too_high = re.search(r"Vocabulary size (?:is )?too high \((\d+)\)\. Please set it to a value <= (\d+)", msg)
    if too_high:
        return XlmrError(f"vocab_size {vocab_size} is too large for the sampled text ({sample_bytes / 1e6:.1f} MB "
                         f"from {corpus_dir}): it supports at most {too_high.group(2)} pieces; use a smaller "
                         "--vocab-size or more text (more languages, a bigger corpus, or --sample-lines)")
    too_small = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", msg)
    if too_small:
        return XlmrError(f"vocab_size {vocab_size} is smaller than the {too_small.group(2)} characters needed to "
                         "cover the sample; use a larger --vocab-size or a lower character coverage")
    return XlmrError(f"SentencePiece training failed: {msg.strip().splitlines()[-1] if msg.strip() else e}")


# ---------------------------------------------------------------------------------------------
# the cache


def _file_fingerprint(path: Path) -> dict:
    """Name, size and sha256 of the first and last MiB: cheap, and changes with any append or rewrite."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 1 << 20:
            f.seek(max(size - (1 << 20), 1 << 20))
            h.update(f.read())
    return {"name": path.name, "size": size, "sha256_ends": h.hexdigest()}


def tokenizer_key(corpus_dir, langs, vocab_size: int, *, alpha: float, seed: int, sample_lines: int,
                  character_coverage: float = CHARACTER_COVERAGE) -> dict:
    """The inputs that determine a trained tokenizer (its cache key)."""
    files = select_languages(corpus_dir, langs)
    return {"corpus": [_file_fingerprint(files[lang]) for lang in sorted(files)], "langs": sorted(files),
            "vocab_size": vocab_size, "alpha": alpha, "seed": seed, "sample_lines": sample_lines,
            "character_coverage": character_coverage, "sentencepiece": spm.__version__,
            "trainer": _TRAINER_VERSION}


def tokenizer_for(corpus_dir: str | os.PathLike, langs: list[str] | None, vocab_size: int, *,
                  alpha: float = 0.3, seed: int = 0, sample_lines: int = SAMPLE_LINES,
                  character_coverage: float = CHARACTER_COVERAGE, threads: int | None = None,
                  cache_root: str | os.PathLike | None = None,
                  stats: Mapping[str, LangStats] | None = None) -> Tokenizer:
    """The tokenizer for these inputs, trained once and then read from the content-addressed cache.

    ``stats``: ``validate_languages``'s result for (at least) these languages, when the caller has checked them.
    """
    if stats is None:
        stats = validate_languages(corpus_dir, langs)  # clear errors first, before the long parts
    langs = sorted(select_languages(corpus_dir, langs))  # order does not change the tokenizer
    stats = {lang: stats[lang] for lang in langs}
    key = tokenizer_key(corpus_dir, langs, vocab_size, alpha=alpha, seed=seed, sample_lines=sample_lines,
                        character_coverage=character_coverage)

    def build(tmp: Path) -> None:
        train_tokenizer(corpus_dir, langs, vocab_size, tmp, alpha=alpha, sample_lines=sample_lines, seed=seed,
                        threads=threads, character_coverage=character_coverage, stats=stats)

    return Tokenizer(cache.get_or_build("tokenizer", key, build, root=cache_root) / "spm.model")


# ---------------------------------------------------------------------------------------------
# metrics


def tokenizer_metrics(tok: Tokenizer, lines) -> dict:
    """Fertility, unknown rate and average log-probability (XLM-V's ALP) of a tokenizer on some text.

    ``alp`` is the mean unigram log-probability (nats) per token of SentencePiece's segmentation.
    """
    lines = [line for line in lines if line]
    chars = sum(len(line) for line in lines)
    nbytes = sum(len(line.encode("utf-8")) for line in lines)
    words = sum(len(line.split()) for line in lines)
    ids, _ = tok.encode_flat(lines) if lines else (np.zeros(0, dtype=np.int64), None)
    tokens = int(ids.size)
    return {
        "lines": len(lines), "chars": chars, "bytes": nbytes, "words": words, "tokens": tokens,
        "tokens_per_char": tokens / chars if chars else None,
        "tokens_per_word": tokens / words if words else None,
        "unk_rate": float((ids == tok.unk_id).mean()) if tokens else None,
        "alp": float(tok._scores[ids].mean()) if tokens else None,
    }


# ---------------------------------------------------------------------------------------------
# command line


def _cmd_train(args) -> int:
    out = Path(args.out)
    t0 = time.perf_counter()
    tok = train_tokenizer(args.corpus, parse_langs(args.langs), args.vocab_size, out, alpha=args.alpha,
                          sample_lines=args.sample_lines, seed=args.seed, threads=args.threads,
                          character_coverage=args.character_coverage, verbose=args.verbose,
                          progress=None if not args.progress else True)
    info = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    print(f"wrote {out / 'spm.model'}: {tok.num_pieces} pieces, model vocabulary {tok.vocab_size} "
          f"(sample {sum(info['sampled_lines'].values()):,} lines, {info['sample_bytes'] / 1e6:.1f} MB in "
          f"{info['sample_s']:.1f} s; training {info['train_s']:.1f} s; total {time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_metrics(args) -> int:
    tok = Tokenizer(args.tokenizer)
    files = select_languages(args.corpus, parse_langs(args.langs))
    print(f"{'lang':<10} {'tok/char':>9} {'tok/word':>9} {'unk':>8} {'alp':>8} {'lines':>8}")
    rows = {}
    for lang, path in files.items():
        m = tokenizer_metrics(tok, itertools.islice((x for x in open_lines(path) if x), args.max_lines))
        rows[lang] = m

        def fmt(x, spec):
            return format(x, spec) if x is not None else "-"

        print(f"{lang:<10} {fmt(m['tokens_per_char'], '9.4f')} {fmt(m['tokens_per_word'], '9.3f')} "
              f"{fmt(m['unk_rate'], '8.5f')} {fmt(m['alp'], '8.3f')} {m['lines']:>8,}")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    return 0


def add_cli(sub) -> None:
    """Add ``xlmr tokenizer train`` and ``xlmr tokenizer metrics``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser("tokenizer", help="train or inspect a SentencePiece unigram tokenizer")
    psub = p.add_subparsers(dest="tokenizer_command", required=True, metavar="ACTION")

    t = psub.add_parser("train", help="train on α-sampled lines of a corpus", formatter_class=fmt)
    t.add_argument("--corpus", required=True, help="corpus directory of <lang>.txt[.gz|.xz|.zst] files")
    t.add_argument("--langs", help="comma-separated languages (default: all in the corpus)")
    t.add_argument("--vocab-size", type=int, required=True, help="SentencePiece pieces (model vocabulary: +2)")
    t.add_argument("--alpha", type=float, default=0.3, help="language sampling exponent")
    t.add_argument("--out", required=True, help="output directory (spm.model, tokenizer.json)")
    t.add_argument("--sample-lines", type=int, default=SAMPLE_LINES, help="lines in the training sample")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=None, help="SentencePiece threads (default: all cores)")
    t.add_argument("--character-coverage", type=float, default=CHARACTER_COVERAGE)
    t.add_argument("--progress", action="store_true", help="show the sampling progress bar even without a tty")
    t.add_argument("--verbose", action="store_true", help="show SentencePiece's own log")
    t.set_defaults(func=_cmd_train)

    m = psub.add_parser("metrics", help="fertility, unknown rate and ALP per language", formatter_class=fmt)
    m.add_argument("--tokenizer", required=True, help="spm.model file")
    m.add_argument("--corpus", required=True, help="corpus directory")
    m.add_argument("--langs", help="comma-separated languages (default: all)")
    m.add_argument("--max-lines", type=int, default=10_000, help="lines read per language")
    m.add_argument("--json", action="store_true", help="also print the table as one JSON line")
    m.set_defaults(func=_cmd_metrics)
