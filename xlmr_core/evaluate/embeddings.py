"""Evaluation on raw text without fine-tuning: parallel sets, sentence embeddings, cross-lingual retrieval, PLL.

- ``read_tsv`` / ``set_languages`` / ``eval_texts``: the parallel sets in ``corpus/eval/<set>/<lang>.tsv``
  (``id<TAB>text``; rows of two languages with the same id are translations), as the demo corpus builder
  writes them.
- ``embed`` / ``retrieval_scores`` / ``retrieval_suite``: cross-lingual sentence retrieval, as XTREME's Tatoeba
  and BUCC tasks (Hu et al. 2020): mean-pooled hidden states of a middle layer, nearest neighbour by cosine or
  by the ratio margin of Artetxe & Schwenk (2019).
- ``pseudo_log_likelihood``: PLL of Salazar et al. (2020), each token masked in turn, per byte.

The suites of :mod:`xlmr_core.evaluate.suites` run these on a finished run; every name here is importable from
there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from xlmr_core.errors import XlmrError
from xlmr_core.evaluate.heldout import LN2
from xlmr_core.model.device import model_device, pad_rows

RETRIEVAL_SETS = ("instguide", "udhr_para", "docs_heldout")
"""Parallel sets under ``corpus/eval/`` used for retrieval by default."""
TEXT_SETS = ("docs_heldout", "udhr_para")
"""Held-out text for PLL and tokenizer metrics: the first of these sets that has the language."""
UNSEEN_LANGS = ("eu", "ca", "cy", "ga", "is", "eo", "sw", "yo", "ha", "zu", "mi", "qu")
"""Languages evaluated besides the training ones (zero-shot when the run did not train on them):
mostly UDHR-only languages of several families and scripts, plus some corpus languages that small runs skip."""


# ---------------------------------------------------------------------------------------------
# parallel text


def read_tsv(path: str | Path) -> dict[str, str]:
    """``id<TAB>text`` lines of a parallel-set file as {id: text}, in file order."""
    path = Path(path)
    items: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                ident, sep, text = line.partition("\t")
                if not sep or not ident or not text.strip():
                    raise XlmrError(f"{path}:{lineno}: expected 'id<TAB>text', got {line[:60]!r}; fix or remove it")
                if ident in items:
                    raise XlmrError(f"{path}:{lineno}: id {ident!r} appears twice; ids must be unique per file")
                items[ident] = text
    except UnicodeDecodeError as e:
        raise XlmrError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start}); re-encode it as UTF-8") from None
    except OSError as e:
        raise XlmrError(f"cannot read {path}: {e.strerror or e}") from None
    return items


def set_languages(corpus_dir: str | Path, name: str) -> list[str]:
    """Languages of the parallel set ``corpus_dir/eval/<name>/`` (sorted)."""
    d = Path(corpus_dir) / "eval" / name
    if not d.is_dir():
        root = Path(corpus_dir) / "eval"
        have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise XlmrError(f"no parallel set {name!r}: {d} does not exist (sets in {root}: "
                        f"{', '.join(have) or 'none'}); build the demo corpus or choose other --sets")
    return sorted(p.name[:-4] for p in d.glob("*.tsv"))


def eval_texts(corpus_dir: str | Path, lang: str, sets: Sequence[str] = TEXT_SETS,
               max_items: int | None = None) -> tuple[str, list[str]] | None:
    """(set name, texts) of the first of ``sets`` that has held-out text in ``lang``, or None."""
    for name in sets:
        path = Path(corpus_dir) / "eval" / name / f"{lang}.tsv"
        if path.exists():
            return name, list(read_tsv(path).values())[:max_items]
    return None


# ---------------------------------------------------------------------------------------------
# cross-lingual retrieval


@torch.no_grad()
def embed(model, tokenizer, texts: Sequence[str], *, layer: int | None = None, batch_size: int = 32,
          max_len: int = 128, device=None) -> np.ndarray:
    """Mean of the hidden states of ``layer`` over the tokens of ``<s> text </s>``: float32 (N, H).

    ``layer`` indexes the L + 1 hidden states (0 = embeddings output); the default is the middle
    layer L // 2, which transfers best across languages in XTREME's retrieval tasks.
    """
    n_layers = model.config.num_layers
    layer = n_layers // 2 if layer is None else layer
    if not 0 <= layer <= n_layers:
        raise XlmrError(f"layer {layer} out of range: the model has hidden states 0 (embeddings) to {n_layers}")
    max_len = min(max_len, model.config.max_positions)
    if max_len < 3:
        raise XlmrError(f"max_len={max_len} leaves no room for text between <s> and </s>")
    dev = model_device(model, device)
    ids = [[tokenizer.bos_id, *x[:max_len - 2], tokenizer.eos_id] for x in tokenizer.encode_batch(list(texts))]
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths in a batch: little padding
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(ids), batch_size):
            idx = order[start:start + batch_size]
            x = pad_rows([ids[i] for i in idx], tokenizer.pad_id).to(dev)  # (B, T)
            keep = x != tokenizer.pad_id  # (B, T)
            h = model.encode(x, attention_mask=keep, all_layers=True)[layer].float()  # (B, T, H)
            w = keep.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            out[idx] = ((h * w).sum(1) / w.sum(1)).cpu().numpy()  # (B, H)
    finally:
        model.train(was_training)
    return out


def retrieval_scores(src: np.ndarray, tgt: np.ndarray, *, margin: bool = False, k: int = 4) -> dict:
    """Nearest-neighbour accuracy between aligned rows (row i of src translates row i of tgt).

    Returns dict(src2tgt, tgt2src, n). Similarity is cosine, or with ``margin`` the ratio margin of
    Artetxe & Schwenk (2019): cos(x, y) / (mean cos of x to its k nearest y' / 2 + mean cos of y to
    its k nearest x' / 2), which discounts "hubs" that are close to everything.
    """
    src, tgt = np.asarray(src, dtype=np.float64), np.asarray(tgt, dtype=np.float64)
    if src.ndim != 2 or src.shape != tgt.shape or len(src) == 0:
        raise XlmrError(f"retrieval needs two aligned non-empty (n, d) arrays, got {src.shape} and {tgt.shape}")
    if k < 1:
        raise XlmrError(f"margin k={k} must be >= 1")
    n = len(src)
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
    sim = unit(src) @ unit(tgt).T  # (n, n) cosine
    if margin:
        kk = min(k, n)
        r_src = np.sort(sim, axis=1)[:, -kk:].mean(1)  # (n,) mean cos of each x to its kk nearest targets
        r_tgt = np.sort(sim, axis=0)[-kk:, :].mean(0)  # (n,) mean cos of each y to its kk nearest sources
        sim = sim / ((r_src[:, None] + r_tgt[None, :]) / 2)
    gold = np.arange(n)
    return dict(src2tgt=float((sim.argmax(1) == gold).mean()), tgt2src=float((sim.argmax(0) == gold).mean()), n=n)


def retrieval_suite(model, tokenizer, corpus_dir: str | Path, *, sets: Sequence[str] = RETRIEVAL_SETS,
                    langs: Sequence[str] | None = None, pivot: str = "en", max_items: int = 500,
                    train_langs: Sequence[str] = (), unseen: Sequence[str] = UNSEEN_LANGS,
                    layer: int | None = None, margin: bool = False, k: int = 4, batch_size: int = 32,
                    max_len: int = 128, device=None) -> dict:
    """Retrieval accuracy against ``pivot`` per set and language: {set: {lang: dict(to_pivot, from_pivot, n, seen)}}.

    Rows are aligned by id with the pivot (at most ``max_items``, in the pivot file's order).
    Languages: ``langs``, or by default the training languages plus ``unseen``, as far as each set has them.
    """
    wanted = list(langs) if langs is not None else list(dict.fromkeys([*train_langs, *unseen]))
    per_set = {name: set_languages(corpus_dir, name) for name in sets}  # all missing sets reported first
    if langs is not None:
        missing = [lang for lang in wanted if not any(lang in have for have in per_set.values())]
        if missing:
            raise XlmrError(f"language(s) {', '.join(missing)} are in none of the parallel sets "
                            f"{', '.join(sets)} under {Path(corpus_dir) / 'eval'}")
    results: dict[str, dict] = {}
    for name, have in per_set.items():
        if pivot not in have:
            raise XlmrError(f"parallel set {name!r} has no pivot language {pivot!r} "
                            f"({Path(corpus_dir) / 'eval' / name}); choose another --pivot")
        d = Path(corpus_dir) / "eval" / name
        pivot_items = read_tsv(d / f"{pivot}.tsv")
        pairs = {}  # lang -> (ids aligned with the pivot, its texts)
        for lang in (x for x in wanted if x in have and x != pivot):
            items = read_tsv(d / f"{lang}.tsv")
            ids = [i for i in pivot_items if i in items][:max_items]
            if len(ids) >= 2:  # one item is always retrieved correctly: no information
                pairs[lang] = (ids, [items[i] for i in ids])
        # the pivot's rows are shared by every language: embed each once
        need = list(dict.fromkeys(i for ids, _ in pairs.values() for i in ids))
        pivot_emb = dict(zip(need, embed(model, tokenizer, [pivot_items[i] for i in need], layer=layer,
                                         batch_size=batch_size, max_len=max_len, device=device)))
        results[name] = {}
        for lang, (ids, texts) in pairs.items():
            src = embed(model, tokenizer, texts, layer=layer, batch_size=batch_size, max_len=max_len, device=device)
            r = retrieval_scores(src, np.stack([pivot_emb[i] for i in ids]), margin=margin, k=k)
            results[name][lang] = dict(to_pivot=r["src2tgt"], from_pivot=r["tgt2src"], n=r["n"],
                                       seen=lang in train_langs)
    return results


# ---------------------------------------------------------------------------------------------
# pseudo-log-likelihood


@torch.no_grad()
def pseudo_log_likelihood(model, tokenizer, texts: Sequence[str], *, max_texts: int | None = None, max_len: int = 128,
                          batch_rows: int = 64, device=None) -> dict:
    """PLL (Salazar et al. 2020): Σ_t log p(w_t | text with w_t masked), over ``texts``, in bits per byte.

    Returns dict(pll_nats (the sum, <= 0), bpb (= -PLL / ln 2 / UTF-8 bytes), tokens, bytes, texts,
    skipped). One row per masked position, batched; texts longer than ``max_len`` - 2 tokens are
    skipped rather than cut, so the bytes counted are exactly the bytes scored; the first
    ``max_texts`` texts that fit are scored.
    """
    max_len = min(max_len, model.config.max_positions)
    rows_x: list[list[int]] = []
    rows_t: list[int] = []  # masked position of each row
    n_bytes, n_texts, skipped = 0, 0, 0
    for text, ids in zip(texts, tokenizer.encode_batch(list(texts))):
        if max_texts is not None and n_texts == max_texts:
            break
        if not ids or len(ids) > max_len - 2:
            skipped += 1
            continue
        seq = [tokenizer.bos_id, *ids, tokenizer.eos_id]
        for t in range(1, len(seq) - 1):
            rows_x.append(seq)
            rows_t.append(t)
        n_bytes += len(text.encode("utf-8"))
        n_texts += 1
    dev = model_device(model, device)
    was_training = model.training
    model.eval()
    nll = 0.0
    try:
        for start in range(0, len(rows_x), batch_rows):
            x = pad_rows(rows_x[start:start + batch_rows], tokenizer.pad_id)  # (B, T)
            t = torch.as_tensor(rows_t[start:start + batch_rows])  # (B,)
            b = torch.arange(len(t))
            labels = torch.full_like(x, -100)
            labels[b, t] = x[b, t]
            x[b, t] = tokenizer.mask_id
            nll += float(model(x.to(dev), labels.to(dev)).loss_sum)  # Σ -log p over the B masked positions
    finally:
        model.train(was_training)
    return dict(pll_nats=-nll, bpb=nll / LN2 / n_bytes if n_bytes else None, tokens=len(rows_x), bytes=n_bytes,
                texts=n_texts, skipped=skipped)
