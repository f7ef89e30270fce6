"""Held-out masked-LM scoring in bits per UTF-8 byte, next to its context-free unigram baseline, with the
standard error of both and of their difference.

Used by the trainer (evaluation at intervals and at the end) and by ``xlmr eval``'s ``bpb`` suite.

Every score comes with the same masked positions scored by the best predictor that ignores context: the
language's own training-token frequencies under the run's tokenizer, add-½ smoothed over the maskable
vocabulary. ``bpb_below_unigram`` = unigram bpb − model bpb is what the model learned from context: it is
Tao et al. (2024)'s unigram-normalised loss, −(1/T) Σ log p(w_t | ctx) / p_uni(w_t), in bits per byte (also
adopted by ATLAS, Longpre et al. 2025), and it compares across vocabularies as raw loss does not. A run at or
below zero has learned nothing beyond token frequencies.

How much is scored (``EvalConfig``): enough blocks of the held-out stream for ``eval.masked_tokens`` masked
tokens, or more where the unigram baseline's per-token spread says that many cannot bring the standard error
to ``eval.target_se``; further mask draws of the same blocks only when the stream holds too few blocks; all of
it when it holds less. The choice depends on the held-out text and the tokenizer alone, never on the model, and
block i's draw d is masked with ``default_rng([eval.seed, d, i])`` (i its index in the whole stream): every run
and checkpoint under one tokenizer is scored on the same tokens, so differences between them are paired.

Standard errors treat each block (all its draws together) as one cluster: the ratio estimator
bpb = Σ_b L_b / Σ_b n_b has s.e.² = m/(m−1) · Σ_b (L_b − bpb · n_b)² / (Σ_b n_b)² over m blocks, the
linearised (delta-method) form of the bootstrap over blocks. The per-block sums are kept with the result
(``blocks``), so two runs scored on the same blocks and masks give their paired difference and its s.e.
(``paired_difference``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from xlmr_core.config import EvalConfig
from xlmr_core.data import MaskConfig, ShardSet, heldout_blocks, mask_block
from xlmr_core.errors import XlmrError
from xlmr_core.model.device import model_device

LN2 = math.log(2.0)
UNIGRAM_SMOOTHING = 0.5
"""Pseudo-count added to every maskable vocabulary entry (Krichevsky–Trofimov's add-½)."""
IGNORE = -100
LOGITS_PER_CHUNK = 1 << 24
"""Logit values formed at once when scoring (rows × vocabulary): bounded memory at any vocabulary size."""


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


# ---------------------------------------------------------------------------------------------------- sizing


def scored_sample(n_blocks: int, seq_len: int, cfg: EvalConfig, per_token_sd: float | None = None,
                  ) -> tuple[np.ndarray, int]:
    """Which of ``n_blocks`` held-out blocks to score, and with how many mask draws: (block indices, draws).

    The target is ``cfg.masked_tokens`` masked tokens, raised to (sd / target_se)² when ``per_token_sd`` (the
    spread of one masked token's score in bits per byte, from the unigram baseline) says fewer cannot reach
    ``cfg.target_se``, and capped at ``cfg.max_masked``. Blocks come first, evenly spaced over the stream so the
    sample covers every held-out document; only a stream with too few blocks gets further draws (at most
    ``cfg.draws``); ``cfg.max_blocks`` (0: none) caps the blocks.
    """
    if n_blocks < 1:
        raise XlmrError("scored_sample: no held-out blocks")
    want = float(cfg.masked_tokens)
    if cfg.target_se and per_token_sd:
        want = max(want, (per_token_sd / cfg.target_se) ** 2)
    want = min(want, float(cfg.max_masked)) if cfg.max_masked else want
    per_block = max(cfg.mask_prob * (seq_len - 1), 1e-9)  # masked tokens a block yields per draw
    cap = min(n_blocks, cfg.max_blocks) if cfg.max_blocks else n_blocks
    need = math.ceil(want / per_block)
    if need <= cap:
        return (np.arange(need) * n_blocks) // need, 1
    idx = (np.arange(cap) * n_blocks) // cap
    return idx, int(min(cfg.draws, math.ceil(need / cap)))


# ---------------------------------------------------------------------------------------------------- scoring


def _masked_nll(model, x: torch.Tensor, y: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, ...]:
    """Per masked token of (x, y): NLL in nats (N,), arg-max hit (N,) and the row of x it is in (N,).

    The same computation as the model's training loss (encoder, head, tied projection plus bias), kept per
    token; logits beyond ``vocab_size`` (padding rows of the embedding, if any) never enter the softmax.
    """
    at = y != IGNORE  # (B, T)
    feats = model.head(model.encode(x)[at])  # (N, H), row-major order
    rows, targets = at.nonzero()[:, 0], y[at]
    weight, bias = model.embed.tokens.weight[:vocab_size], model.head.bias[:vocab_size]
    chunk = max(1, LOGITS_PER_CHUNK // vocab_size)
    nll, hit = [], []
    for s in range(0, len(targets), chunk):
        logp = torch.log_softmax(F.linear(feats[s:s + chunk], weight, bias).float(), dim=-1)  # (n, V)
        t = targets[s:s + chunk]
        nll.append(-logp.gather(1, t[:, None])[:, 0])
        hit.append(logp.argmax(-1) == t)
    return torch.cat(nll), torch.cat(hit), rows


def cluster_se(values: np.ndarray, counts: np.ndarray) -> float:
    """Standard error of Σ values / Σ counts over independent clusters (blocks): the linearised bootstrap."""
    values, counts = np.asarray(values, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    m = len(values)
    if m < 2 or counts.sum() <= 0:
        return math.nan
    ratio = values.sum() / counts.sum()
    return math.sqrt(m / (m - 1) * float(((values - ratio * counts) ** 2).sum())) / float(counts.sum())


@torch.no_grad()
def mlm_eval(model, blocks: np.ndarray, *, bytes_per_token: float, mask_id: int, vocab_size: int,
             special_ids, draws: int = 2, seed: int = 0, batch_blocks: int = 16, mask_prob: float = 0.15,
             unigram: np.ndarray | None = None, block_ids: np.ndarray | None = None, device=None) -> dict:
    """Masked-LM loss of ``model`` on fixed blocks (N, T): bpb, loss_nats, loss_bits, acc, n_masked, with
    ``bpb_se`` and the per-block sums in ``blocks``.

    Block i is masked ``draws`` times, draw d with the rng ``default_rng([seed, d, block_ids[i]])``
    (``block_ids`` defaults to 0..N−1), so every checkpoint of a run (and every run) sees exactly the same
    masks. bpb = mean masked-token NLL in bits / bytes per token of the held-out text (= expected bits per
    UTF-8 byte). With ``unigram`` (log-probabilities (V,), see ``language_unigram``) the same masked tokens are
    scored by it too: ``unigram_bpb``, ``bpb_below_unigram`` (unigram − model, with the s.e. of that paired
    difference) and ``unigram_gain`` (that over unigram_bpb).
    """
    blocks = np.asarray(blocks)
    if blocks.ndim != 2 or blocks.shape[0] == 0:
        raise XlmrError(f"mlm_eval needs a non-empty (N, T) array of blocks, got shape {blocks.shape}")
    if not bytes_per_token > 0:
        raise XlmrError(f"mlm_eval: bytes_per_token must be > 0, got {bytes_per_token}")
    ids = np.arange(len(blocks)) if block_ids is None else np.asarray(block_ids, dtype=np.int64)
    if ids.shape != (len(blocks),):
        raise XlmrError(f"mlm_eval: {len(ids)} block ids for {len(blocks)} blocks")
    dev = model_device(model, device)
    cfg = MaskConfig(mask_prob=mask_prob)
    specials = sorted(int(s) for s in special_ids)

    # every (draw, block) masked once, up front: inputs and labels (draws * N, T); row r is block r % N
    inputs, labels = [], []
    for draw in range(draws):
        for i, block in zip(ids, blocks):
            x, y = mask_block(block, np.random.default_rng([seed, draw, int(i)]), cfg, vocab_size, mask_id, specials)
            inputs.append(x)
            labels.append(y)
    inputs_np, labels_np = np.stack(inputs), np.stack(labels)

    was_training = model.training
    model.eval()
    nll, hit, row = [], [], []
    try:
        for start in range(0, len(inputs_np), batch_blocks):
            y_np = labels_np[start:start + batch_blocks]
            if not (y_np != IGNORE).any():
                continue  # very short blocks can draw no masked token at all
            x = torch.from_numpy(inputs_np[start:start + batch_blocks]).to(dev)
            n_, h_, r_ = _masked_nll(model, x, torch.from_numpy(y_np).to(dev), vocab_size)
            nll.append(n_)
            hit.append(h_)
            row.append(r_ + start)
    finally:
        model.train(was_training)
    if not nll:
        raise XlmrError("mlm_eval drew no masked tokens: the blocks are too short for the mask rate")
    # one read back per call: per-token values to the host, summed per block there
    nll_np = torch.cat(nll).double().cpu().numpy()
    hit_np = torch.cat(hit).cpu().numpy()
    block_of = torch.cat(row).cpu().numpy() % len(blocks)
    n_masked = len(nll_np)
    bits_b = np.bincount(block_of, weights=nll_np / LN2, minlength=len(blocks))  # (N,) per block, all draws
    n_b = np.bincount(block_of, minlength=len(blocks)).astype(np.int64)
    nats = float(nll_np.sum()) / n_masked
    r = dict(bpb=nats / LN2 / bytes_per_token, bpb_se=cluster_se(bits_b, n_b) / bytes_per_token,
             loss_nats=nats, loss_bits=nats / LN2, acc=float(hit_np.mean()), n_masked=n_masked,
             n_blocks=len(blocks), draws=draws, bytes_per_token=bytes_per_token)
    blk = dict(ids=ids.tolist(), n=n_b.tolist(), bits=np.round(bits_b, 4).tolist())
    if unigram is not None:
        # targets in the same row-major order as the model's scores
        targets = labels_np[labels_np != IGNORE]
        uni_bits = -np.asarray(unigram, dtype=np.float64)[targets] / LN2
        uni_b = np.bincount(block_of, weights=uni_bits, minlength=len(blocks))
        r["unigram_bpb"] = float(uni_bits.sum()) / n_masked / bytes_per_token
        r["unigram_bpb_se"] = cluster_se(uni_b, n_b) / bytes_per_token
        r["bpb_below_unigram"] = r["unigram_bpb"] - r["bpb"]
        r["bpb_below_unigram_se"] = cluster_se(uni_b - bits_b, n_b) / bytes_per_token
        r["unigram_gain"] = r["bpb_below_unigram"] / r["unigram_bpb"]
        blk["unigram_bits"] = np.round(uni_b, 4).tolist()
    r["blocks"] = blk
    return r


def paired_difference(a: Mapping, b: Mapping) -> tuple[float, float]:
    """bpb of ``a`` minus bpb of ``b``, scored on the same blocks and masks, and its standard error.

    ``a`` and ``b`` are one language's results (``mlm_eval``'s dict, or ``final.json``'s per-language entry)
    with their ``blocks``. The difference of bits below unigram is the negative of this (same tokens, same
    baseline). Results on other blocks or masks cannot be paired: that is an error, not an approximation.
    """
    ba, bb = a.get("blocks"), b.get("blocks")
    if not ba or not bb:
        raise XlmrError("paired_difference needs per-block results: rescore the runs with `xlmr eval RUN --suite "
                        "bpb` (runs scored before standard errors were kept have none)")
    if ba["ids"] != bb["ids"] or ba["n"] != bb["n"] or a.get("draws") != b.get("draws"):
        raise XlmrError("paired_difference: the two results were scored on different blocks or masks (another "
                        "tokenizer or other eval settings); compare them unpaired")
    bpt = float(a["bytes_per_token"])
    if not math.isclose(bpt, float(b["bytes_per_token"]), rel_tol=1e-9):
        raise XlmrError("paired_difference: the two results have different bytes per token (other text)")
    d = np.asarray(ba["bits"], dtype=np.float64) - np.asarray(bb["bits"], dtype=np.float64)
    n = np.asarray(ba["n"], dtype=np.float64)
    return float(d.sum() / n.sum()) / bpt, cluster_se(d, n) / bpt


def bpb_suite(model, tokenizer, shards: ShardSet, langs: Sequence[str], *, seq_len: int, cfg: EvalConfig,
              device=None) -> dict:
    """Held-out bits per byte of each language in ``shards``, with its unigram baseline and standard errors,
    on the sample ``scored_sample`` picks: {lang: mlm_eval(...)}."""
    out = {}
    for lang in langs:
        blocks = heldout_blocks(shards, lang, seq_len)  # (N, T): the whole stream
        unigram = language_unigram(shards, lang, tokenizer.special_ids)
        bpt = shards.bytes_per_token(lang, "heldout")
        text = blocks[~np.isin(blocks, tokenizer.special_ids)]
        uni = -unigram[text] / LN2 / bpt  # one token's unigram bits per byte, over the whole stream
        uni = uni[np.isfinite(uni)]
        ids, draws = scored_sample(len(blocks), seq_len, cfg, float(uni.std()) if len(uni) > 1 else None)
        out[lang] = mlm_eval(model, blocks[ids], bytes_per_token=bpt, mask_id=tokenizer.mask_id,
                             vocab_size=tokenizer.vocab_size, special_ids=tokenizer.special_ids, draws=draws,
                             seed=cfg.seed, batch_blocks=cfg.batch_blocks, mask_prob=cfg.mask_prob,
                             unigram=unigram, block_ids=ids, device=device)
    return out


def without_blocks(per_lang: Mapping[str, Mapping]) -> dict:
    """Per-language results without their per-block sums (for metrics.jsonl and printed tables)."""
    return {lang: {k: v for k, v in r.items() if k != "blocks"} for lang, r in per_lang.items()}
