"""The unigram baseline of held-out scoring: its value against a hand computation, and a model that uses
context beating it on text where the neighbours determine the masked token."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xlmr_core.data import MaskConfig, mask_block
from xlmr_core.errors import XlmrError
from xlmr_core.heldout import mlm_eval, unigram_logprobs
from xlmr_core.model import XLMRForMaskedLM, model_config

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


class _Uniform(torch.nn.Module):
    """A model whose logits are all zero: exactly log V nats at every masked token."""

    def __init__(self, V: int):
        super().__init__()
        self.cfg = model_config("debug", V)
        self.model = XLMRForMaskedLM(self.cfg)
        with torch.no_grad():
            for p in self.model.parameters():
                p.zero_()

    def forward(self, x, y):
        return self.model(x, y)


def test_mlm_eval_unigram_bpb_equals_hand_computed_value():
    V = 9  # ids 4..7 text, 8 = <mask>
    counts = np.array([0, 0, 0, 0, 30, 10, 0, 0, 0])
    lp = unigram_logprobs(counts, (*SPECIALS, 8))
    blocks = np.array([[0, 4, 4, 5, 6, 4, 7, 5, 4, 4, 5, 4, 6, 4, 4, 5]] * 3)
    kw = dict(bytes_per_token=2.5, mask_id=8, vocab_size=V, special_ids=(*SPECIALS, 8), draws=2, seed=7,
              batch_blocks=2, mask_prob=0.3)
    r = mlm_eval(_Uniform(V), blocks, unigram=lp, **kw)
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
    assert "unigram_bpb" not in mlm_eval(_Uniform(V), blocks, **kw)


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
