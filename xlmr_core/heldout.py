"""Held-out masked-LM scoring in bits per UTF-8 byte, next to its context-free unigram baseline.

Used by the trainer (evaluation at intervals and at the end) and by ``xlmr eval``'s ``bpb`` suite.

Every score comes with the same masked positions scored by the best predictor that ignores context: the
language's own training-token frequencies under the run's tokenizer, add-½ smoothed over the maskable
vocabulary. ``bpb_below_unigram`` = unigram bpb − model bpb is what the model learned from context: it is
Tao et al. (2024)'s unigram-normalised loss, −(1/T) Σ log p(w_t | ctx) / p_uni(w_t), in bits per byte (also
adopted by ATLAS, Longpre et al. 2025), and it compares across vocabularies as raw loss does not. A run at or
below zero has learned nothing beyond token frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .data import MaskConfig, ShardSet, heldout_blocks, mask_block
from .device import model_device
from .errors import XlmrError

LN2 = math.log(2.0)
UNIGRAM_SMOOTHING = 0.5
"""Pseudo-count added to every maskable vocabulary entry (Krichevsky–Trofimov's add-½)."""


def unigram_logprobs(counts: np.ndarray, special_ids: Sequence[int],
                     smoothing: float = UNIGRAM_SMOOTHING) -> np.ndarray:
    """Natural-log unigram probabilities (V,) from token counts: add-``smoothing`` over the non-special ids.

    Special ids (``<s>``, ``<pad>``, ``</s>``, ``<unk>``, ``<mask>``) are never masked, so they get no mass
    (−inf); every other id gets (count + smoothing) / (N + smoothing · V').
    """
    counts = np.asarray(counts, dtype=np.float64).copy()
    if counts.ndim != 1 or smoothing <= 0:
        raise XlmrError(f"unigram counts must be 1-D and smoothing > 0 (got shape {counts.shape}, {smoothing})")
    special = np.zeros(len(counts), dtype=bool)
    special[[i for i in special_ids if 0 <= i < len(counts)]] = True
    counts[special] = 0.0
    counts[~special] += smoothing
    with np.errstate(divide="ignore"):
        return np.log(counts / counts.sum())


_UNIGRAM_CACHE: dict[tuple[str, str, tuple[int, ...]], np.ndarray] = {}


def language_unigram(shards: ShardSet, lang: str, special_ids: Sequence[int]) -> np.ndarray:
    """Unigram log-probabilities (V,) of ``lang`` from its training split (cached per shard set and language)."""
    key = (str(shards.root), lang, tuple(sorted(int(i) for i in special_ids)))
    if key not in _UNIGRAM_CACHE:
        train = shards.train_tokens(lang)
        if len(train) == 0:
            raise XlmrError(f"language {lang!r} has no training tokens in {shards.root}: no unigram baseline")
        counts = np.bincount(np.asarray(train), minlength=shards.vocab_size)
        _UNIGRAM_CACHE[key] = unigram_logprobs(counts, special_ids)
    return _UNIGRAM_CACHE[key]


@torch.no_grad()
def mlm_eval(model, blocks: np.ndarray, *, bytes_per_token: float, mask_id: int, vocab_size: int,
             special_ids, draws: int = 2, seed: int = 0, batch_blocks: int = 16, mask_prob: float = 0.15,
             unigram: np.ndarray | None = None, device=None) -> dict:
    """Masked-LM loss of ``model`` on fixed blocks (N, T): dict(bpb, loss_nats, loss_bits, acc, n_masked).

    Block i is masked ``draws`` times, draw d with the rng ``default_rng([seed, d, i])``, so every
    checkpoint of a run (and every run) sees exactly the same masks. bpb = mean masked-token NLL in
    bits / bytes per token of the held-out text (= expected bits per UTF-8 byte). With ``unigram``
    (log-probabilities (V,), see ``language_unigram``) the same masked tokens are scored by it too:
    ``unigram_bpb``, ``bpb_below_unigram`` (unigram − model) and ``unigram_gain`` (that over unigram_bpb).
    """
    blocks = np.asarray(blocks)
    if blocks.ndim != 2 or blocks.shape[0] == 0:
        raise XlmrError(f"mlm_eval needs a non-empty (N, T) array of blocks, got shape {blocks.shape}")
    if not bytes_per_token > 0:
        raise XlmrError(f"mlm_eval: bytes_per_token must be > 0, got {bytes_per_token}")
    dev = model_device(model, device)
    cfg = MaskConfig(mask_prob=mask_prob)
    specials = sorted(int(s) for s in special_ids)

    # every (draw, block) masked once, up front: inputs and labels (draws * N, T)
    inputs, labels = [], []
    for draw in range(draws):
        for i, block in enumerate(blocks):
            x, y = mask_block(block, np.random.default_rng([seed, draw, i]), cfg, vocab_size, mask_id, specials)
            inputs.append(x)
            labels.append(y)
    inputs_np, labels_np = np.stack(inputs), np.stack(labels)

    was_training = model.training
    model.eval()
    loss_sum, n_masked, n_correct = 0.0, 0, 0
    try:
        for start in range(0, len(inputs_np), batch_blocks):
            y_np = labels_np[start:start + batch_blocks]
            if not (y_np != -100).any():
                continue  # very short blocks can draw no masked token at all
            x = torch.from_numpy(inputs_np[start:start + batch_blocks]).to(dev)
            out = model(x, torch.from_numpy(y_np).to(dev))
            loss_sum += float(out.loss_sum)
            n_masked += int(out.n_masked)
            n_correct += int(out.n_correct)
    finally:
        model.train(was_training)
    if n_masked == 0:
        raise XlmrError("mlm_eval drew no masked tokens: the blocks are too short for the mask rate")
    nats = loss_sum / n_masked
    r = dict(bpb=nats / LN2 / bytes_per_token, loss_nats=nats, loss_bits=nats / LN2,
             acc=n_correct / n_masked, n_masked=n_masked)
    if unigram is not None:
        targets = labels_np[labels_np != -100]
        uni = -float(np.asarray(unigram, dtype=np.float64)[targets].sum()) / n_masked
        r["unigram_bpb"] = uni / LN2 / bytes_per_token
        r["bpb_below_unigram"] = r["unigram_bpb"] - r["bpb"]
        r["unigram_gain"] = r["bpb_below_unigram"] / r["unigram_bpb"]
    return r


def bpb_suite(model, tokenizer, shards: ShardSet, langs: Sequence[str], *, seq_len: int, max_blocks: int,
              draws: int, seed: int, batch_blocks: int, mask_prob: float, device=None) -> dict:
    """Held-out bits per byte of each language in ``shards``, with its unigram baseline:
    {lang: mlm_eval(...) + n_blocks}."""
    out = {}
    for lang in langs:
        blocks = heldout_blocks(shards, lang, seq_len, max_blocks=max_blocks)
        r = mlm_eval(model, blocks, bytes_per_token=shards.bytes_per_token(lang, "heldout"),
                     mask_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size,
                     special_ids=tokenizer.special_ids, draws=draws, seed=seed, batch_blocks=batch_blocks,
                     mask_prob=mask_prob, unigram=language_unigram(shards, lang, tokenizer.special_ids),
                     device=device)
        out[lang] = dict(r, n_blocks=len(blocks))
    return out
