"""Derived languages: K languages made from one source language, equal in everything but what is varied.

A controlled laboratory for the curse of multilinguality (K et al. 2020, "Fake-English"; Dufter & Schütze 2020;
Deshpande et al. 2022). Real languages differ in entropy per byte, script and size at once; derived languages
differ only in what the two knobs set:

- ``share``: the fraction of the source tokenizer's piece types that keep their id in every derived language.
  Language 0 is the source itself; language k ≥ 1 maps every other piece type to ids of its own. share=1: the
  same language K times (adding "languages" adds data); share=0: disjoint vocabularies.
- ``order``: ``none``, ``inverted`` (word order reversed within each sentence) or ``permuted`` (one fixed random
  permutation of the words per sentence length and language), for languages k ≥ 1.

Each language trains on its own slice of the source's documents (``parallel=true``: all on the same slice,
the Dufter & Schütze setting); the held-out documents are the same in every language, so evaluation, retrieval
and transfer compare like with like, and bits per byte count the *source* bytes every derived language encodes.

How a derived language looks to the rest of the library: an ordinary language file ``<code>.txt`` (codes
``x00`` … ``x15``) in a derived corpus directory. Language k's text is the source text, reordered, with every
non-space character moved k Unicode planes up (0x10000·k, which keeps the text valid UTF-8 and tells the
language of any text apart). Its tokenizer, a ``DerivedTokenizer`` (file ``*.derived.json``), moves text back
to the source plane, segments it with the source's SentencePiece model and maps the pieces to language k's
ids. So tokenizer metrics, shards, training, held-out scoring, retrieval and fine-tuning see K languages with
their own codes and vocabularies, and the construction is in the run's config (``derive:``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

from xlmr_core.config import MAX_DERIVED, ORDERS, DeriveConfig  # noqa: F401  (ORDERS: part of this module's API)
from xlmr_core.data import cache
from xlmr_core.data.tokenizer import (  # noqa: F401  (the text and tokenizer of derived languages: part of this API)
    DERIVED_SUFFIX,
    PLANE,
    DerivedTokenizer,
    Tokenizer,
    _codes,
    line_key,
    shift,
    unshift,
)
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_json, atomic_write_text

MAX_K = MAX_DERIVED
BUILDER_VERSION = 1
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def code(prefix: str, k: int) -> str:
    return f"{prefix}{k:02d}"


def index_of(lang: str, prefix: str = "x") -> int:
    """k of a derived language code (``x03`` → 3)."""
    m = re.fullmatch(re.escape(prefix) + r"(\d\d)", lang)
    if not m or int(m.group(1)) >= MAX_K:
        raise XlmrError(f"{lang!r} is not a derived language code (<prefix>00 … <prefix>{MAX_K - 1:02d})")
    return int(m.group(1))


# ---------------------------------------------------------------------------------------------
# text: planes and word order


def sentences(words: list[str]) -> list[list[str]]:
    """Words grouped into sentences: a sentence ends with a word ending in . ! or ? (closing quotes after)."""
    out, cur = [], []
    for w in words:
        cur.append(w)
        if _SENTENCE_END.search(w):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


class _Permutations:
    def __init__(self, seed: int, k: int):
        self.seed, self.k, self.cache = seed, k, {}

    def __call__(self, n: int) -> np.ndarray:
        if n not in self.cache:
            self.cache[n] = np.random.default_rng([self.seed, self.k, n]).permutation(n)
        return self.cache[n]


def reorder(text: str, order: str, perm: _Permutations | None = None) -> str:
    """The text with the words of each sentence reversed (``inverted``) or permuted by ``perm`` (``permuted``)."""
    if order == "none":
        return text
    out = []
    for sent in sentences(text.split(" ")):
        if order == "inverted":
            out.extend(reversed(sent))
        else:
            out.extend(sent[i] for i in perm(len(sent)))
    return " ".join(out)


class Deriver:
    """Source text → language k's text, for one derive config (``cfg.order``, ``cfg.seed``)."""

    def __init__(self, cfg: DeriveConfig):
        self.cfg = cfg
        self._perms: dict[int, _Permutations] = {}

    def __call__(self, text: str, k: int) -> str:
        if k == 0:
            return text
        perm = self._perms.setdefault(k, _Permutations(self.cfg.seed, k))
        return shift(reorder(text, self.cfg.order, perm), k)

    def lang(self, text: str, lang: str) -> str:
        return self(text, index_of(lang, self.cfg.prefix))


def normalize(line: str) -> str | None:
    """A source line as derived languages use it: whitespace runs as one space; None if it is unusable (empty,
    or characters outside the Basic Multilingual Plane or surrogates, which cannot be moved to another plane)."""
    line = " ".join(line.split())
    if not line:
        return None
    a = _codes(line)
    if (a >= PLANE).any() or ((a >= 0xD800) & (a < 0xE000)).any():
        return None
    return line


# ---------------------------------------------------------------------------------------------
# the tokenizer


def derived_tokenizer(source: Tokenizer, k: int, share: float, seed: int, *, cache_root=None) -> DerivedTokenizer:
    """The derived tokenizer of ``k`` languages over ``source`` (cached: a copy of spm.model and its spec)."""
    from xlmr_core.fsutil import file_sha256

    key = {"version": BUILDER_VERSION, "source_sha256": file_sha256(source.model_file), "k": k, "share": share,
           "seed": seed}

    def build(tmp: Path) -> None:
        shutil.copyfile(source.model_file, tmp / "spm.model")
        atomic_write_json(tmp / f"tokenizer{DERIVED_SUFFIX}", {"format": 1, "source_model": "spm.model", **key})

    return DerivedTokenizer(cache.get_or_build("derived-tokenizer", key, build, root=cache_root)
                            / f"tokenizer{DERIVED_SUFFIX}")


# ---------------------------------------------------------------------------------------------
# the derived corpus


def _hash(b: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little")


def source_language(path: str | Path) -> tuple[Path, str]:
    """(corpus directory, language) of a source language file, with one clear error if it is not one."""
    from xlmr_core.data.corpus import _lang_of

    p = Path(path).expanduser()
    lang = _lang_of(p.name)
    if not p.is_file() or lang is None:
        raise XlmrError(f"derive.source={str(path)!r}: not a language file; give a <lang>.txt[.gz|.xz|.zst] file "
                        "(e.g. the lab source: `xlmr corpus lab`, or a language of the demo corpus)")
    return p.parent, lang


def split_source(cfg: DeriveConfig) -> tuple[list[str], list[list[str]], dict]:
    """(held-out lines, training slices, counts) of the source: lines normalised and deduplicated by their key;
    the ``heldout_lines`` lines with the smallest key hashes are held out (so they are also the smallest in every
    derived file, where the held-out split picks them); the rest are shuffled by ``seed`` and cut into
    ``slices`` slices of equal size."""
    from xlmr_core.data.corpus import open_lines

    seen: set[int] = set()
    lines, hashes, dropped = [], [], 0
    for raw in open_lines(cfg.source):
        line = normalize(raw)
        if line is None:
            dropped += bool(raw.strip())
            continue
        h = _hash(line_key(line))
        if h in seen:
            continue
        seen.add(h)
        lines.append(line)
        hashes.append(h)
    need = cfg.heldout_lines + cfg.slices * 10
    if len(lines) < need:
        raise XlmrError(f"derive.source={cfg.source}: {len(lines)} usable lines, too few for "
                        f"{cfg.heldout_lines} held-out lines and {cfg.slices} slices: give a larger source "
                        f"(the lab's: `xlmr corpus lab`) or fewer derive.heldout_lines / derive.slices")
    order = np.argsort(np.array(hashes, dtype=np.uint64), kind="stable")
    held = [lines[i] for i in order[: cfg.heldout_lines]]
    rest = order[cfg.heldout_lines:]
    rest = rest[np.random.default_rng([cfg.seed, 11]).permutation(len(rest))]
    n = len(rest) // cfg.slices
    slices = [[lines[i] for i in rest[j * n:(j + 1) * n]] for j in range(cfg.slices)]
    counts = {"source_lines": len(lines), "dropped_lines": dropped, "heldout_lines": len(held),
              "slice_lines": n, "slice_bytes": [sum(len(x.encode()) + 1 for x in s) for s in slices]}
    return held, slices, counts


def corpus_key(cfg: DeriveConfig) -> dict:
    """What the derived corpus depends on (not k or share: it holds all ``slices`` languages, and share is the
    tokenizer's)."""
    from xlmr_core.data import file_fingerprint

    return {"version": BUILDER_VERSION, "source": file_fingerprint(cfg.source), "slices": cfg.slices,
            "heldout_lines": cfg.heldout_lines, "order": cfg.order, "parallel": cfg.parallel, "seed": cfg.seed,
            "prefix": cfg.prefix}


def build_corpus(cfg: DeriveConfig, out: Path) -> dict:
    """Write the derived corpus into ``out``: ``<code>.txt`` per language (its held-out lines first, then its
    slice), ``eval/docs_heldout/<code>.tsv`` (the held-out lines, aligned by id across languages) and
    ``derive.json``."""
    held, slices, counts = split_source(cfg)
    derive = Deriver(cfg)
    (out / "eval" / "docs_heldout").mkdir(parents=True, exist_ok=True)
    for k in range(cfg.slices):
        mine = slices[0 if cfg.parallel else k]
        text = "\n".join(derive(x, k) for x in [*held, *mine]) + "\n"
        atomic_write_text(out / f"{code(cfg.prefix, k)}.txt", text)
        atomic_write_text(out / "eval" / "docs_heldout" / f"{code(cfg.prefix, k)}.tsv",
                          "".join(f"held:{i}\t{derive(x, k)}\n" for i, x in enumerate(held)))
    info = {"builder_version": BUILDER_VERSION, "config": dataclasses.asdict(cfg), **counts,
            "languages": [code(cfg.prefix, k) for k in range(cfg.slices)]}
    atomic_write_json(out / "derive.json", info)
    return info


def derived_corpus(cfg: DeriveConfig, *, cache_root=None) -> Path:
    """The derived corpus directory of ``cfg`` (built once, cached by content)."""
    if not cfg.on:
        raise XlmrError("derive.k is 0: no derived languages asked for")
    source_language(cfg.source)
    return cache.get_or_build("derived-corpus", corpus_key(cfg), lambda tmp: build_corpus(cfg, tmp),
                              root=cache_root)


def heldout_split(corpus_dir: Path):
    """The held-out split of a derived corpus: exactly its ``heldout_lines`` lines, in every language."""
    from xlmr_core.data import HeldoutSplit

    h = json.loads((Path(corpus_dir) / "derive.json").read_text(encoding="utf-8"))["heldout_lines"]
    return HeldoutSplit(fraction=0.0, min_lines=h, max_lines=h, max_share=0.99)


def is_derived_corpus(corpus_dir) -> bool:
    return bool(corpus_dir) and (Path(corpus_dir) / "derive.json").is_file()


def corpus_of(cfg) -> str:
    """The corpus directory a run reads: its derived corpus (built if needed) or ``data.corpus``."""
    if cfg.derive.on:
        return str(derived_corpus(cfg.derive, cache_root=cfg.data.cache_dir or None))
    return cfg.data.corpus


def prepare(cfg):
    """(corpus directory, tokenizer, held-out split, languages) of a derived-language run: the source's own
    tokenizer (trained on the source file alone, ``data.vocab_size`` pieces) with the derived id maps."""
    from xlmr_core.data.tokenizer import tokenizer_for

    d, dv = cfg.data, cfg.derive
    src_dir, src_lang = source_language(dv.source)
    cache_root = d.cache_dir or None
    corpus_dir = derived_corpus(dv, cache_root=cache_root)
    src_tok = tokenizer_for(src_dir, [src_lang], d.vocab_size, alpha=d.tokenizer_alpha or d.alpha,
                            seed=d.tokenizer_seed, sample_lines=d.tokenizer_sample_lines, cache_root=cache_root)
    tok = derived_tokenizer(src_tok, dv.k, dv.share, dv.seed, cache_root=cache_root)
    langs = list(d.langs) or dv.codes()
    unknown = [x for x in [*langs, *cfg.eval.langs] if x not in dv.codes()]
    if unknown:
        raise XlmrError(f"data.langs/eval.langs name {', '.join(unknown)}, which are not among the "
                        f"{dv.k} derived languages {', '.join(dv.codes())}")
    return corpus_dir, tok, heldout_split(corpus_dir), langs


def _read_rows(path: Path) -> tuple[str, list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0], [line.split("\t") for line in lines[1:] if line]


def derived_ddtp(cfg, ddtp_dir, *, cache_root=None) -> Path:
    """The DDTP topic task derived like the run's languages: ``en/`` trains (the source language's text,
    language 0), ``<code>/test.tsv`` for each of the run's K languages holds the same English test descriptions
    in that language. Lines that cannot be derived (characters beyond the Basic Multilingual Plane) are left out
    in every language."""
    dv = cfg.derive
    ddtp_dir = Path(ddtp_dir)
    en = ddtp_dir / "en"
    files = sorted(p for p in en.glob("*.tsv"))
    if not (en / "train.tsv").is_file() or not (en / "test.tsv").is_file():
        raise XlmrError(f"{ddtp_dir}: no en/train.tsv and en/test.tsv; build the DDTP data with `xlmr corpus ddtp`")
    from xlmr_core.data import file_fingerprint

    key = {"version": BUILDER_VERSION, "ddtp": [file_fingerprint(p) for p in files], "k": dv.k, "order": dv.order,
           "seed": dv.seed, "prefix": dv.prefix}

    def build(tmp: Path) -> None:
        derive = Deriver(dv)
        for p in files:
            header, rows = _read_rows(p)
            rows = [[r[0], normalize(r[1]) or "", *r[2:]] for r in rows if len(r) >= 3]
            rows = [r for r in rows if r[1]]
            (tmp / "en").mkdir(exist_ok=True)
            if p.stem != "test":
                atomic_write_text(tmp / "en" / p.name, "\n".join([header, *("\t".join(r) for r in rows)]) + "\n")
                continue
            for k in range(dv.k):
                (tmp / code(dv.prefix, k)).mkdir(exist_ok=True)
                body = ("\t".join([r[0], derive(r[1], k), *r[2:]]) for r in rows)
                atomic_write_text(tmp / code(dv.prefix, k) / "test.tsv", "\n".join([header, *body]) + "\n")
        if (ddtp_dir / "meta.json").is_file():
            shutil.copyfile(ddtp_dir / "meta.json", tmp / "meta.json")

    return cache.get_or_build("derived-ddtp", key, build, root=cache_root)
