"""Masked-LM corruption of one block, as fairseq's ``MaskTokensDataset`` (BERT / RoBERTa / XLM-R).

:class:`MaskConfig` holds the rates; :func:`mask_block` draws the chosen positions (pieces, or whole words)
and their replacements from the block's own random generator, never choosing a special token.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xlmr_core.data.shards import BOS, EOS, PAD
from xlmr_core.errors import XlmrError


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
