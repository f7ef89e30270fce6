"""The unigram baseline of held-out scoring: its value against a hand computation, and a model that uses
context beating it on text where the neighbours determine the masked token."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xlmr_core.config import EvalConfig
from xlmr_core.data import MaskConfig, mask_block
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate.heldout import cluster_se, mlm_eval, paired_difference, scored_sample, unigram_logprobs
from xlmr_core.model.encoder import XLMRForMaskedLM, model_config

SPECIALS = (0, 1, 2, 3)  # <s> <pad> </s> <unk>


def test_unigram_logprobs_add_half_over_maskable_ids():
    # ids 0-3 special, 4..7 text, 8 = <mask>: counts 6, 2, 0, 0 over the text ids
    counts = np.array([5, 0, 5, 1, 6, 2, 0, 0, 0])
    lp = unigram_logprobs(counts, (*SPECIALS, 8))
    # (count + 1/2) / (8 + 4 · 1/2) over the four maskable ids; the specials get nothing
    assert np.allclose(np.exp(lp[4:8]), [6.5 / 10, 2.5 / 10, 0.5 / 10, 0.5 / 10])
    assert np.isneginf(lp[[0, 1, 2, 3, 8]]).all()
    with pytest.raises(XlmrError, match="smoothing"):
        unigram_logprobs(counts, SPECIALS, smoothing=0)


def _uniform(V: int) -> XLMRForMaskedLM:
    """A model whose logits are all zero: exactly log V nats at every masked token."""
    model = XLMRForMaskedLM(model_config("debug", V))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def test_mlm_eval_unigram_bpb_equals_hand_computed_value():
    V = 9  # ids 4..7 text, 8 = <mask>
    counts = np.array([0, 0, 0, 0, 30, 10, 0, 0, 0])
    lp = unigram_logprobs(counts, (*SPECIALS, 8))
    blocks = np.array([[0, 4, 4, 5, 6, 4, 7, 5, 4, 4, 5, 4, 6, 4, 4, 5]] * 3)
    kw = dict(bytes_per_token=2.5, mask_id=8, vocab_size=V, special_ids=(*SPECIALS, 8), draws=2, seed=7,
              batch_blocks=2, mask_prob=0.3)
    r = mlm_eval(_uniform(V), blocks, unigram=lp, **kw)
    # the masked positions are those mask_block draws for (seed, draw, block)
    targets = []
    for d in range(2):
        for i, b in enumerate(blocks):
            _, y = mask_block(b, np.random.default_rng([7, d, i]), MaskConfig(mask_prob=0.3), V, 8, (*SPECIALS, 8))
            targets += [int(t) for t in y if t != -100]
    p = {4: 30.5 / 42, 5: 10.5 / 42, 6: 0.5 / 42, 7: 0.5 / 42}
    want = -sum(math.log2(p[t]) for t in targets) / len(targets) / 2.5
    assert r["n_masked"] == len(targets)
    assert r["unigram_bpb"] == pytest.approx(want, rel=1e-12)
    assert r["bpb"] == pytest.approx(math.log2(V) / 2.5, rel=1e-6)  # zero logits: uniform over all V rows
    assert r["bpb_below_unigram"] == pytest.approx(want - r["bpb"], rel=1e-9)
    assert r["unigram_gain"] == pytest.approx(1 - r["bpb"] / want, rel=1e-9)
    assert "unigram_bpb" not in mlm_eval(_uniform(V), blocks, **kw)


def test_a_model_that_uses_context_beats_the_unigram_baseline():
    """Text of repeated 4-token cycles in random phases: every token is equally frequent (unigram: 2 bits),
    but each one is fixed by its neighbours. A debug model trained briefly goes far below the baseline."""
    V, T = 9, 32
    rng = np.random.default_rng(0)

    def blocks(n):
        phase = rng.integers(0, 4, size=(n, 1))
        body = 4 + (phase + np.arange(T - 1)) % 4  # (n, T-1) ids 4..7 in cycles
        return np.concatenate([np.zeros((n, 1), dtype=np.int64), body], axis=1)

    specials = (*SPECIALS, 8)
    train = blocks(512)
    counts = np.bincount(train.ravel(), minlength=V)
    lp = unigram_logprobs(counts, specials)
    torch.manual_seed(0)
    model = XLMRForMaskedLM(model_config("debug", V, dropout=0.0, attention_dropout=0.0, max_positions=64))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = MaskConfig()
    kw = dict(bytes_per_token=1.0, mask_id=8, vocab_size=V, special_ids=specials, draws=1, seed=1, unigram=lp)
    test = blocks(16)
    before = mlm_eval(model, test, **kw)
    for step in range(150):
        idx = np.random.default_rng(step).integers(0, len(train), 32)
        pairs = [mask_block(train[i], np.random.default_rng([step, int(i)]), cfg, V, 8, specials) for i in idx]
        x = torch.as_tensor(np.stack([p[0] for p in pairs]))
        y = torch.as_tensor(np.stack([p[1] for p in pairs]))
        model(x, y).loss.backward()
        opt.step()
        opt.zero_grad()
    after = mlm_eval(model, test, **kw)
    assert after["unigram_bpb"] == pytest.approx(2.0, abs=0.05)  # four equally frequent tokens
    assert before["bpb_below_unigram"] < 0.2  # at initialisation: no better than frequencies
    assert after["bpb_below_unigram"] > 1.5 and after["unigram_gain"] > 0.75


# ---------------------------------------------------------------------------------------------
# sample size and standard errors


def test_scored_sample_takes_blocks_first_then_draws_and_never_looks_at_the_model():
    cfg = EvalConfig(masked_tokens=4000, target_se=0.0)  # 15 % of 63 tokens: 9.45 masked tokens a block
    ids, draws = scored_sample(10_000, 64, cfg)
    assert draws == 1 and len(ids) == math.ceil(4000 / 9.45) == 424
    assert ids[0] == 0 and np.all(np.diff(ids) > 0) and ids[-1] > 9_900  # spread over the whole stream
    ids, draws = scored_sample(200, 64, cfg)  # too few blocks: all of them, and more draws
    assert np.array_equal(ids, np.arange(200)) and draws == 3  # 3 × 200 × 9.45 = 5,670 >= 4,000
    ids, draws = scored_sample(20, 64, cfg)  # far too few: every block, at most cfg.draws draws
    assert len(ids) == 20 and draws == cfg.draws == 4
    assert len(scored_sample(10_000, 64, EvalConfig(max_blocks=100, target_se=0))[0]) == 100
    # a spread of 1.5 bits per byte per token needs (1.5 / 0.01)² = 22,500 tokens for s.e. 0.01, capped at 20,000
    ids, _ = scored_sample(10_000, 64, EvalConfig(), per_token_sd=1.5)
    assert len(ids) == math.ceil(20_000 / 9.45)
    ids, _ = scored_sample(10_000, 64, EvalConfig(), per_token_sd=0.5)  # 2,500 < 4,000: the floor holds
    assert len(ids) == 424


def test_cluster_se_agrees_with_a_bootstrap_over_blocks():
    rng = np.random.default_rng(0)
    n = rng.integers(5, 15, size=300).astype(float)
    level = rng.normal(3.0, 0.8, size=300)  # blocks differ (documents), so tokens of a block are correlated
    values = np.array([rng.normal(level[i], 1.5, size=int(n[i])).sum() for i in range(300)])
    boot = []
    for _ in range(4000):
        pick = rng.integers(0, 300, size=300)
        boot.append(values[pick].sum() / n[pick].sum())
    assert cluster_se(values, n) == pytest.approx(np.std(boot), rel=0.06)
    assert math.isnan(cluster_se(values[:1], n[:1]))


def test_standard_errors_and_paired_differences_of_real_models():
    """Per-block sums add up to the totals; two models on the same blocks and masks pair, and the paired s.e.
    is the block-level s.e. of their difference, far below either one's own s.e."""
    V, T = 40, 32
    rng = np.random.default_rng(1)
    blocks = np.concatenate([np.zeros((60, 1), dtype=np.int64), rng.integers(4, V - 1, size=(60, T - 1))], axis=1)
    lp = unigram_logprobs(np.bincount(blocks.ravel(), minlength=V), (*SPECIALS, V - 1))
    kw = dict(bytes_per_token=2.0, mask_id=V - 1, vocab_size=V, special_ids=(*SPECIALS, V - 1), draws=2, seed=3,
              unigram=lp, block_ids=np.arange(100, 160))
    torch.manual_seed(0)
    a = XLMRForMaskedLM(model_config("debug", V, init_std=0.3))
    b = XLMRForMaskedLM(model_config("debug", V, init_std=0.3))
    with torch.no_grad():
        b.load_state_dict(a.state_dict())
        b.head.bias.add_(0.2 * torch.randn(V))  # a slightly different model
    ra, rb = mlm_eval(a, blocks, **kw), mlm_eval(b, blocks, **kw)
    blk = ra["blocks"]
    assert blk["ids"] == list(range(100, 160)) and sum(blk["n"]) == ra["n_masked"]
    assert sum(blk["bits"]) / ra["n_masked"] / 2.0 == pytest.approx(ra["bpb"], rel=1e-4)
    assert sum(blk["unigram_bits"]) / ra["n_masked"] / 2.0 == pytest.approx(ra["unigram_bpb"], rel=1e-4)
    assert 0 < ra["bpb_se"] < 0.2 and ra["draws"] == 2 and ra["n_blocks"] == 60
    diff, se = paired_difference(ra, rb)
    assert diff == pytest.approx(ra["bpb"] - rb["bpb"], abs=1e-4)
    assert 0 < se < 0.5 * min(ra["bpb_se"], rb["bpb_se"])
    # the block ids choose the masks: other ids, other masks, and such results do not pair
    rc = mlm_eval(b, blocks, **{**kw, "block_ids": np.arange(60)})
    with pytest.raises(XlmrError, match="different blocks or masks"):
        paired_difference(ra, rc)
    with pytest.raises(XlmrError, match="per-block results"):
        paired_difference({k: v for k, v in ra.items() if k != "blocks"}, rb)
