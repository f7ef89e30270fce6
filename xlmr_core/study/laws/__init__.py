"""Scaling laws fitted to sweep results, with bootstrap intervals, bad-fit flags and prediction as their test.

Three laws, each a constant plus power-law terms in the run's sizes:

- ``atlas``: the curse of multilinguality of ATLAS (Longpre et al. 2025, arXiv 2510.22037),
  ``L(K, N, D_t) = L∞ + A·K^φ/N^α + B·K^ψ/D_t^β``: K training languages, N parameters, D_t tokens of the
  target language seen in training. φ > 0 is capacity dilution, ψ < 0 transfer (each target token is worth
  more with more languages). ATLAS report φ ≈ 0.11, ψ ≈ −0.04 for decoders.
- ``chinchilla``: ``L(N, D) = E + A/N^α + B/D^β`` (Hoffmann et al. 2022), fitted per language group.
- ``vocab``: Tao et al. 2024's vocabulary law (arXiv 2407.13623, their "approach 3") on the unigram-normalised
  loss ``L_u = −E + A1/N_nv^α1 + A2/N_v^α2 + B/D^β``: N_nv non-vocabulary parameters, N_v = V·d vocabulary
  parameters, D training tokens. Like Tao et al. it ties α1 = β (``vocab_untied`` frees β). L_u is negative
  (a model beats its unigram baseline), so this law is fitted on residuals of the loss itself, as they do.

**N is the non-embedding parameter count** (``params_non_embedding``: the Transformer layers, without the token,
position and type tables and without the LM head), as in Kaplan et al. and ATLAS; ``fitting_table(params=...)``
picks another column. N_v is ``params_vocab`` where the results have it, else ``vocab_pieces × hidden_size`` (the
token table up to its few special rows).

**Fitting** follows Hoffmann et al. (2022, approach 3) and Besiroglu et al.'s replication (2024): the Huber loss
(δ = 10⁻³) of log L̂ − log L, with log L̂ = logsumexp(log L∞, log A − α log N, ...), minimised by L-BFGS-B from
a grid of initialisations, keeping the best. A loss that is not positive everywhere (the unigram-normalised
one) is fitted on L̂ − L instead. The sizes are centred on their geometric means for the optimiser; the
coefficients are reported in the original units.

**Uncertainty** is a bootstrap over points and seeds: resample the sweep points (distinct sizes and language)
with replacement, then each point's seeds with replacement, refit from the best starts of the full fit.
Intervals are percentile intervals (95 % by default). Predicted values carry the bootstrap interval of the
mean prediction (not of a new seed's value).

**Bad fits are reported as such** (``LawFit.flags``, ``LawFit.ok``): fewer than (parameters + 3) points, a
variable with one value (its exponent is not identified and is reported as NaN), variables collinear in the
data (e.g. D_t ∝ 1/K in a fixed-budget design alone: ψ and β cannot be told apart; pool it with the matched
design), a parameter at its bound, R² of the point means below ``min_r2``, failed bootstrap refits. Every
number a ``LawFit`` prints or tabulates comes with its interval.

**Pooling languages** in one fit assumes they share L∞, A and B. In raw bits per byte they do not (scripts and
languages differ in entropy per byte); the unigram-normalised loss removes much of that.
``fit_law(constant_by="lang")`` gives every language its own constant (L∞ per language: its entropy per byte)
while the exponents and coefficients stay shared, the fixed-effects form of the law. Its R² of interest is then
the within-language one (``LawFit.r2_within``: how much of each language's variation over K, N and D_t the law
explains), which is also what ``min_r2`` is checked against. Or fit a group or a language at a time
(``select``). With unequal sampling probabilities, a fixed design identifies β only through cross-language
differences in D_t, which confound data with language.

**Prediction is the test of a law**: ``extrapolate`` fits on the smaller points (smaller N, or fewer K) and
predicts the held-out larger ones: relative error per point and held-out R², with intervals, next to the baseline
a law has to beat: each held-out point predicted by its own value at the largest fitted size, carried forward.

**Derived answers** (each with its bootstrap interval):

- ``language_multipliers``: going from K to r·K languages at equal loss. Each term of the ATLAS law stays equal
  when N grows by r^(φ/α) and D_t by r^(ψ/β); with every language at the same share, total tokens D = K·D_t
  grow by r^(1+ψ/β). Starting from a compute-optimal (N, D) this is also the compute-optimal iso-loss point
  (the optimality condition α·(N term) = β·(D term) is preserved). ATLAS's 1.18× parameters and 1.66× tokens
  for K → 2K follow from φ = 0.11, ψ = −0.04 with α ≈ 0.46 and β ≈ 0.149 (0.11/0.46 = log2 1.18;
  1 − 0.04/0.149 = log2 1.66); their α and β themselves were not checked here.
- ``turning_point``: the K beyond which a target language's loss rises, at a given N. With D_t held fixed (the
  matched design) dL/dK ∝ φ·A·K^φ/N^α + ψ·B·K^ψ/D_t^β vanishes at
  K* = [(−ψ/φ)·(B/A)·N^α/D_t^β]^(1/(φ−ψ)) when φ and ψ differ in sign: below K* transfer wins, above it
  dilution; K* grows with N (more capacity), as N^(α/(φ−ψ)). With φ, ψ both > 0 every added language hurts
  (K* = 1); both < 0, none does (K* = ∞). With a fixed total budget, D_t = D/K and the data term becomes
  B·K^(ψ+β)/D^β: the same formula with ψ + β in place of ψ and D in place of D_t. As ψ + β > 0 for any
  plausible fit (ATLAS: −0.04 + β), the fixed-budget law says every added language hurts at any N: the
  "curse" of the fixed design is mostly fewer tokens per language.
- ``optimal_vocab``: the loss-optimal vocabulary under the vocabulary law, at fixed total parameters
  P = N_nv + N_v (the paper's fixed-total design; the data term does not depend on the split), where
  α1·A1/(P − N_v)^(α1+1) = α2·A2/N_v^(α2+1); or, as Tao et al., at a fixed non-embedding size and compute F
  with D = F / (6·(N_nv + N_v)).

**Modules** (every name is also here, as ``laws.<name>``):

- ``forms``: ``Law`` and the laws (``LAWS``, ``get_law``), the published values, the fit's constants, the formats
  of the tables, and ``_Model``, a law laid out on a data set (the parameter vector, predictions, the objective);
- ``table``: ``fitting_table``, ``load_table``, ``effective_data``, ``data_columns``, ``design_summary``;
- ``fit``: ``fit_law``, ``fit_groups`` and ``LawFit`` (bootstrap intervals, row weights, bad-fit flags);
- ``predict``: ``extrapolate``, ``prediction_errors`` and ``Extrapolation`` (with the carried-forward baseline);
- ``derived``: ``language_multipliers``, ``atlas_multipliers``, ``turning_point``, ``optimal_vocab``,
  ``exponent_table``, ``weighting_effect``.
"""

from __future__ import annotations

# the names laws.py had from its own imports when it was one module, kept: every name it had is still here
import itertools as itertools
import math as math
import os as os
import warnings as warnings
from collections.abc import Mapping as Mapping
from collections.abc import Sequence as Sequence
from dataclasses import dataclass as dataclass
from dataclasses import field as field
from pathlib import Path as Path

import numpy as np  # noqa: F401
import pandas as pd  # noqa: F401

from xlmr_core.errors import XlmrError as XlmrError
from xlmr_core.study.laws.derived import _derived as _derived
from xlmr_core.study.laws.derived import _need_law as _need_law
from xlmr_core.study.laws.derived import _turning_k as _turning_k
from xlmr_core.study.laws.derived import _vocab_fixed_flops as _vocab_fixed_flops
from xlmr_core.study.laws.derived import _vocab_fixed_total as _vocab_fixed_total
from xlmr_core.study.laws.derived import (
    atlas_multipliers,
    exponent_table,
    language_multipliers,
    optimal_vocab,
    turning_point,
    weighting_effect,
)
from xlmr_core.study.laws.fit import LawFit, fit_groups, fit_law
from xlmr_core.study.laws.fit import _flag_collinear as _flag_collinear
from xlmr_core.study.laws.fit import _interval as _interval
from xlmr_core.study.laws.fit import _point_keys as _point_keys
from xlmr_core.study.laws.fit import _r2 as _r2
from xlmr_core.study.laws.fit import _r2_within as _r2_within
from xlmr_core.study.laws.fit import _row_weights as _row_weights
from xlmr_core.study.laws.forms import _COEF_BOUNDS as _COEF_BOUNDS
from xlmr_core.study.laws.forms import _DECAY_BOUNDS as _DECAY_BOUNDS
from xlmr_core.study.laws.forms import _SIGNED_BOUNDS as _SIGNED_BOUNDS
from xlmr_core.study.laws.forms import (
    ATLAS,
    CHINCHILLA,
    DELTA,
    EXTRA_POINTS,
    LAWS,
    MIN_R2,
    PUBLISHED,
    PUBLISHED_MULTIPLIERS,
    SYMBOLS,
    TAO_VOCAB,
    TAO_VOCAB_UNTIED,
    Law,
    Term,
    fmt_interval,
    get_law,
)
from xlmr_core.study.laws.forms import _fmt as _fmt
from xlmr_core.study.laws.forms import _huber as _huber
from xlmr_core.study.laws.forms import _Model as _Model
from xlmr_core.study.laws.forms import _param_names as _param_names
from xlmr_core.study.laws.forms import _sym as _sym
from xlmr_core.study.laws.predict import Extrapolation, extrapolate, prediction_errors
from xlmr_core.study.laws.predict import _carried_forward as _carried_forward
from xlmr_core.study.laws.table import (
    LOSS_ALIASES,
    R_STAR,
    TABLE_COLUMNS,
    data_columns,
    design_summary,
    effective_data,
    fitting_table,
    load_table,
)
from xlmr_core.study.laws.table import _empty_table as _empty_table

__all__ = [
    "ATLAS", "CHINCHILLA", "DELTA", "EXTRA_POINTS", "Extrapolation", "LAWS", "LOSS_ALIASES", "Law", "LawFit",
    "MIN_R2", "PUBLISHED", "PUBLISHED_MULTIPLIERS", "R_STAR", "SYMBOLS", "TABLE_COLUMNS", "TAO_VOCAB",
    "TAO_VOCAB_UNTIED", "Term", "atlas_multipliers", "data_columns", "design_summary", "effective_data",
    "exponent_table", "extrapolate", "fit_groups", "fit_law", "fitting_table", "fmt_interval", "get_law",
    "language_multipliers", "load_table", "optimal_vocab", "prediction_errors", "turning_point", "weighting_effect",
]
