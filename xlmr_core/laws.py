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
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import XlmrError

# ---------------------------------------------------------------- the laws


@dataclass(frozen=True)
class Term:
    """One power-law term: ``coef · Π x ** (sign · exponent)`` over its ``powers`` (variable, exponent, sign)."""

    coef: str
    powers: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, kw_only=True)
class Law:
    """A scaling law: a constant plus power-law terms in the variables (table columns of ``fitting_table``)."""

    name: str
    """Short name (``atlas``, ``chinchilla``, ``vocab``)."""
    title: str
    """What the law is, for figure titles and reprs."""
    formula: str
    variables: tuple[str, ...]
    """The law's variables; by default also the table columns they are read from."""
    constant: str
    terms: tuple[Term, ...]
    negative_constant: bool = False
    """The constant enters with a minus sign (Tao et al.'s −E)."""
    ties: tuple[tuple[str, str], ...] = ()
    """(exponent, the exponent it equals): Tao et al. fit with α1 = β."""
    signed: tuple[str, ...] = ()
    """Exponents that may be negative (ATLAS's φ, ψ); the others are decays, ≥ 0."""
    space: str = "auto"
    """``log`` (Huber on log-loss), ``linear`` (Huber on the loss) or ``auto`` (log where the loss is > 0)."""
    reference: str = ""

    def __post_init__(self):
        if self.space not in ("auto", "log", "linear"):
            raise XlmrError(f"law {self.name}: space must be auto, log or linear, got {self.space!r}")
        used = {v for t in self.terms for v, _, _ in t.powers}
        if not used <= set(self.variables):
            raise XlmrError(f"law {self.name}: terms use {sorted(used - set(self.variables))}, not among its variables")

    @property
    def exponents(self) -> tuple[str, ...]:
        """Every exponent name, in order of first use."""
        return tuple(dict.fromkeys(e for t in self.terms for _, e, _ in t.powers))

    @property
    def free_exponents(self) -> tuple[str, ...]:
        """The exponents fitted (tied ones follow another)."""
        tied = dict(self.ties)
        return tuple(e for e in self.exponents if e not in tied)

    def resolve(self, exponent: str) -> str:
        return dict(self.ties).get(exponent, exponent)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Reported parameters: the constant, the coefficients, then the exponents."""
        return (self.constant, *(t.coef for t in self.terms), *self.exponents)


ATLAS = Law(
    name="atlas", title="ATLAS curse of multilinguality",
    formula="L = L∞ + A·K^φ/N^α + B·K^ψ/D_t^β", variables=("K", "N", "D_t"), constant="L_inf",
    terms=(Term("A", (("K", "phi", 1), ("N", "alpha", -1))), Term("B", (("K", "psi", 1), ("D_t", "beta", -1)))),
    signed=("phi", "psi"), reference="Longpre et al. 2025 (ATLAS), §5")
CHINCHILLA = Law(
    name="chinchilla", title="Chinchilla L(N, D)", formula="L = E + A/N^α + B/D^β", variables=("N", "D"),
    constant="E", terms=(Term("A", (("N", "alpha", -1),)), Term("B", (("D", "beta", -1),))),
    reference="Hoffmann et al. 2022, approach 3")
TAO_VOCAB = Law(
    name="vocab", title="Tao et al. vocabulary law", formula="L_u = −E + A1/N_nv^α1 + A2/N_v^α2 + B/D^β (α1 = β)",
    variables=("N", "N_v", "D"), constant="E", negative_constant=True,
    terms=(Term("A1", (("N", "alpha1", -1),)), Term("A2", (("N_v", "alpha2", -1),)), Term("B", (("D", "beta", -1),))),
    ties=(("beta", "alpha1"),), space="linear", reference="Tao et al. 2024, approach 3")
TAO_VOCAB_UNTIED = Law(
    name="vocab_untied", title="Tao et al. vocabulary law, β free", formula="L_u = −E + A1/N_nv^α1 + A2/N_v^α2 + B/D^β",
    variables=("N", "N_v", "D"), constant="E", negative_constant=True, terms=TAO_VOCAB.terms, space="linear",
    reference="Tao et al. 2024, approach 3 without the tie")
LAWS: dict[str, Law] = {law.name: law for law in (ATLAS, CHINCHILLA, TAO_VOCAB, TAO_VOCAB_UNTIED)}

PUBLISHED: tuple[dict, ...] = (
    {"law": "atlas", "param": "phi", "value": 0.11, "source": "Longpre et al. 2025 (ATLAS), decoder LMs"},
    {"law": "atlas", "param": "psi", "value": -0.04, "source": "Longpre et al. 2025 (ATLAS), decoder LMs"},
    {"law": "chinchilla", "param": "alpha", "value": 0.34, "source": "Hoffmann et al. 2022, approach 3"},
    {"law": "chinchilla", "param": "beta", "value": 0.28, "source": "Hoffmann et al. 2022, approach 3"},
    {"law": "chinchilla", "param": "alpha", "value": 0.3478, "source": "Besiroglu et al. 2024 (replication)"},
    {"law": "chinchilla", "param": "beta", "value": 0.3658, "source": "Besiroglu et al. 2024 (replication)"},
    {"law": "vocab", "param": "alpha1", "value": 0.447, "source": "Tao et al. 2024, approach 3 (α1 = β)"},
    {"law": "vocab", "param": "alpha2", "value": 0.671, "source": "Tao et al. 2024, approach 3 (α1 = β)"},
    {"law": "vocab", "param": "beta", "value": 0.447, "source": "Tao et al. 2024, approach 3 (α1 = β)"},
)
"""Published exponents (decoder LMs, loss in nats per token; coefficients are not comparable across units)."""
PUBLISHED_MULTIPLIERS = {"params": 1.18, "total_tokens": 1.66, "r": 2.0,
                         "source": "Longpre et al. 2025 (ATLAS): K → 2K languages at equal loss"}

SYMBOLS = {"L_inf": "L∞", "alpha": "α", "beta": "β", "phi": "φ", "psi": "ψ", "alpha1": "α1", "alpha2": "α2"}
DELTA = 1e-3
"""Huber δ of Hoffmann et al. (on log-loss; in loss units for a linear-space fit)."""
MIN_R2 = 0.9
EXTRA_POINTS = 3
"""A fit needs at least (free parameters + this) distinct points."""
_DECAY_BOUNDS, _SIGNED_BOUNDS, _COEF_BOUNDS = (0.0, 3.0), (-2.0, 2.0), (-30.0, 30.0)


def get_law(law: str | Law) -> Law:
    """A law by name (``atlas``, ``chinchilla``, ``vocab``, ``vocab_untied``) or the Law itself."""
    if isinstance(law, Law):
        return law
    if law not in LAWS:
        raise XlmrError(f"unknown law {law!r}; laws: {', '.join(LAWS)}")
    return LAWS[law]


def _sym(name: str) -> str:
    base, sep, rest = name.partition("[")  # a per-language constant: L_inf[en] -> L∞[en]
    return SYMBOLS.get(base, base) + sep + rest


def _fmt(v: float, sig: int = 3) -> str:
    if v is None or not np.isfinite(v):
        return "nan" if v is None or np.isnan(v) else ("∞" if v > 0 else "−∞")
    return f"{v:.{sig}g}" if abs(v) < 1e4 and (abs(v) >= 1e-3 or v == 0) else f"{v:.{sig}e}"


def fmt_interval(value: float, lo: float, hi: float, sig: int = 3) -> str:
    """``0.34 [0.30, 0.38]``; a value without a finite interval says so."""
    if not (np.isfinite(lo) or np.isfinite(hi)) and not (np.isinf(lo) and np.isinf(hi)):
        return f"{_fmt(value, sig)} [no interval]"
    return f"{_fmt(value, sig)} [{_fmt(lo, sig)}, {_fmt(hi, sig)}]"


# ---------------------------------------------------------------- the fitting table

LOSS_ALIASES = {"bpb_below_unigram": "unigram_normalised", "unigram_normalized": "unigram_normalised"}
TABLE_COLUMNS = ("K", "N", "D", "D_t", "N_v", "loss")

R_STAR = 15.4
"""Muennighoff et al. 2023 (arXiv 2305.16264), their C4 fit: repeated tokens lose value with a decay constant of
R* ≈ 15.4 repetitions (after about 4 epochs the loss in value becomes visible; after ~40 repeating is worthless)."""


def effective_data(D, U, r_star: float = R_STAR):
    """Muennighoff et al. 2023's repetition-aware data D' = U + U·R*·(1 − exp(−R/R*)), R = max(D/U − 1, 0):
    D tokens seen of U unique tokens (element-wise; D where U is missing or not positive). ATLAS's S_λ has the
    same form with λ = 1/R*. One epoch is worth 1 U, 4 epochs 3.73 U, 16 epochs 10.6 U; D' never exceeds
    U·(1 + R*)."""
    D = np.asarray(D, dtype=float)
    U = np.asarray(U, dtype=float)
    ok = np.isfinite(U) & (U > 0)
    Us = np.where(ok, U, 1.0)
    R = np.maximum(D / Us - 1.0, 0.0)
    eff = np.where(D > Us, Us + Us * r_star * (1.0 - np.exp(-R / r_star)), D)
    out = np.where(ok, eff, D)
    return out if out.ndim else float(out)


def fitting_table(long_df: pd.DataFrame, loss: str = "bpb", *, params: str = "params_non_embedding",
                  target_tokens: str | None = None, select: Mapping[str, object] | None = None,
                  aggregate: str = "lang", trained_only: bool = True) -> pd.DataFrame:
    """The table the laws are fitted on, from ``results.load_long``: one row per finished run and trained language
    (``aggregate="group"``: per run and resource group), with the long table's columns plus

    - ``K`` (``n_langs``), ``N`` (``params``, non-embedding by default), ``D`` (tokens seen, ``tokens``),
    - ``D_t``: tokens of that language seen, ``tokens × prob`` (or the column ``target_tokens``),
    - ``D_t_eff`` and ``D_eff``: the same as repetition-aware effective data (``effective_data``, Muennighoff et
      al. 2023) from each language's unique training tokens (``unique_tokens``, else ``train_tokens``), D_eff
      summed over the run's training languages; ``repeated``: the language was seen for more than one epoch,
    - ``N_v``: vocabulary parameters (``params_vocab``, else ``vocab_pieces × hidden_size``),
    - ``loss``: ``bpb``, or ``unigram_normalised`` (also ``bpb_below_unigram``): bpb − unigram bpb =
      −bpb_below_unigram, Tao et al.'s loss, negative when the model beats its unigram baseline; or any column
      that is a loss (lower is better).

    ``select`` keeps the rows whose columns equal the given values (``{"design": "matched"}``; None values are
    ignored). With ``aggregate="group"`` the loss is the mean over the group's languages and D_t their
    geometric mean. ``table.attrs["loss"]`` says what the loss column holds.
    """
    loss = LOSS_ALIASES.get(loss, loss)
    if aggregate not in ("lang", "group"):
        raise XlmrError(f"fitting_table: aggregate must be 'lang' or 'group', got {aggregate!r}")
    if long_df is None or long_df.empty:
        return _empty_table(loss, "no runs in the results")
    df = long_df.copy()
    if "status" in df.columns:
        df = df[df["status"] == "done"]
    if trained_only and "seen" in df.columns:
        df = df[df["seen"].fillna(False).astype(bool)]
    for col, value in (select or {}).items():
        if value is None:
            continue
        if col not in df.columns:
            raise XlmrError(f"fitting_table: no column {col!r} to select {col}={value!r} on; the sweep's tags "
                            f"are the columns ({', '.join(map(str, df.columns[:30]))})")
        df = df[df[col] == value]
    need = ["n_langs", params, "tokens"] + ([target_tokens] if target_tokens else ["prob"])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise XlmrError(f"fitting_table: the results have no column(s) {', '.join(missing)}; is this a "
                        f"results.load_long table of finished runs?")
    df["K"] = df["n_langs"].astype(float)
    df["N"] = df[params].astype(float)
    df["D"] = df["tokens"].astype(float)
    df["D_t"] = (df[target_tokens] if target_tokens else df["tokens"] * df["prob"]).astype(float)
    # repetition-aware data (Muennighoff et al. 2023): D_t_eff from the language's unique training tokens, D_eff
    # the sum over the run's training languages (the rows of the table before aggregation); equal to D_t and D
    # where nothing is repeated or the unique tokens are unknown
    unique = df["unique_tokens"] if "unique_tokens" in df.columns else df.get("train_tokens")
    df["D_t_eff"] = effective_data(df["D_t"], unique if unique is not None else np.nan)
    df["repeated"] = unique.astype(float).lt(df["D_t"]).to_numpy() if unique is not None else False
    run_keys = [c for c in ("run", "sweep") if c in df.columns]
    if run_keys and "prob" in df.columns and not target_tokens:
        gain = (df["D_t_eff"] - df["D_t"]).fillna(0.0).groupby([df[k] for k in run_keys], dropna=False).transform("sum")
        df["D_eff"] = df["D"] + gain
    else:
        df["D_eff"] = df["D"]
    if "params_vocab" in df.columns:
        df["N_v"] = df["params_vocab"].astype(float)
    elif {"vocab_pieces", "hidden_size"} <= set(df.columns):
        df["N_v"] = df["vocab_pieces"].astype(float) * df["hidden_size"].astype(float)
    else:
        df["N_v"] = np.nan
    if loss == "unigram_normalised":
        if "bpb_below_unigram" in df.columns:
            df["loss"] = -df["bpb_below_unigram"].astype(float)
        elif {"bpb", "unigram_bpb"} <= set(df.columns):
            df["loss"] = df["bpb"].astype(float) - df["unigram_bpb"].astype(float)
        else:
            raise XlmrError("fitting_table: the runs have no unigram baseline (bpb_below_unigram / unigram_bpb): "
                            "evaluate them again with the bpb suite (xlmr eval RUN --suite bpb)")
        what = "bpb − unigram bpb (unigram-normalised)"
        df["loss_se"] = df["bpb_below_unigram_se"].astype(float) if "bpb_below_unigram_se" in df.columns else np.nan
    else:
        if loss not in df.columns:
            raise XlmrError(f"fitting_table: no loss column {loss!r} in the results "
                            f"(bpb, unigram_normalised or a column of the table)")
        df["loss"] = df[loss].astype(float)
        df["loss_se"] = df[f"{loss}_se"].astype(float) if f"{loss}_se" in df.columns else np.nan
        what = "held-out bits per byte" if loss == "bpb" else loss
    if aggregate == "group":
        if "group" not in df.columns:
            raise XlmrError("fitting_table: aggregate='group' needs the group column (high/low tags of the sweep)")
        keys = [c for c in ("run", "sweep", "group") if c in df.columns]
        first = df.groupby(keys, dropna=False).first()
        agg = df.groupby(keys, dropna=False).agg(
            D_t_eff=("D_t_eff", lambda s: float(np.exp(np.log(s[s > 0]).mean())) if (s > 0).any() else np.nan),
            repeated=("repeated", "any"),
            loss=("loss", "mean"), loss_se=("loss_se", lambda s: float(np.sqrt((s ** 2).sum()) / len(s))),
            D_t=("D_t", lambda s: float(np.exp(np.log(s[s > 0]).mean())) if (s > 0).any()
                                        else np.nan), n_group_langs=("lang", "nunique"))
        df = (first.drop(columns=["loss", "loss_se", "D_t", "D_t_eff", "repeated", "lang"], errors="ignore")
              .join(agg).reset_index())
    df = df.reset_index(drop=True)
    df.attrs["loss"] = what
    df.attrs["loss_name"] = loss
    return df


def data_columns(table: pd.DataFrame) -> tuple[dict[str, str], str]:
    """Which data columns a law should be fitted on: ``({"D_t": "D_t_eff", "D": "D_eff"}, note)`` when any point
    of ``table`` repeats a language beyond one epoch (DESIGN.md: a law must use effective data), else ``({}, note)``
    for the tokens seen; ``note`` says which D was used and why (pass the dict as ``fit_law(columns=...)``)."""
    if "repeated" not in table.columns or table.empty:
        return {}, "D = tokens seen (the table has no repetition columns)"
    n = int(table["repeated"].fillna(False).astype(bool).sum())
    if not n:
        return {}, "D = tokens seen: no point repeats a language beyond one epoch"
    return ({"D_t": "D_t_eff", "D": "D_eff"},
            f"D = effective data D_eff, D_t_eff (Muennighoff et al. 2023, R* = {R_STAR:g}): {n} of {len(table)} "
            "points repeat their language beyond one epoch")


def _empty_table(loss: str, note: str) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in TABLE_COLUMNS})
    df.attrs.update(loss=loss, loss_name=loss, note=note)
    return df


def load_table(sweep_dir: str | os.PathLike | Sequence[str | os.PathLike], loss: str = "bpb",
               **kw) -> pd.DataFrame:
    """``fitting_table(results.load_long(sweep_dir), loss, **kw)``; several sweep directories are read into one
    table (the law grid's own runs and the capacity sweep's, its budget-1 points), skipping missing ones. A sweep
    that is missing, has no finished runs or lacks the loss asked for gives an empty table whose
    ``attrs["note"]`` says why (and prints it): fits on it are flagged, not raised, so a notebook runs through
    on whatever results exist."""
    from .results import load_long

    dirs = [Path(sweep_dir)] if isinstance(sweep_dir, (str, os.PathLike)) else [Path(d) for d in sweep_dir]
    frames, errors = [], []
    for d in dirs:
        try:
            frames.append(load_long(d))
        except XlmrError as e:
            errors.append(str(e))
    try:
        if not frames:
            raise XlmrError("; ".join(errors) or "no sweep directory given")
        table = fitting_table(pd.concat(frames, ignore_index=True), loss, **kw)
    except XlmrError as e:
        print(f"no results to fit: {e}")
        return _empty_table(loss, str(e))
    if table.empty:
        table.attrs["note"] = f"no finished runs with a {loss} value in {', '.join(str(d) for d in dirs)}"
        print(f"no results to fit: {table.attrs['note']}")
    return table


def design_summary(table: pd.DataFrame, variables: Sequence[str] = ("K", "N", "D_t", "D", "N_v")) -> pd.DataFrame:
    """What a fit can see: per variable the distinct values, min, max and their ratio (the span of the law)."""
    rows = []
    for v in variables:
        if v not in table.columns:
            continue
        s = table[v].dropna()
        s = s[s > 0]
        rows.append({"variable": v, "distinct": int(s.nunique()), "min": float(s.min()) if len(s) else np.nan,
                     "max": float(s.max()) if len(s) else np.nan,
                     "ratio": float(s.max() / s.min()) if len(s) else np.nan})
    n = len(table)
    rows.append({"variable": "rows", "distinct": n, "min": np.nan, "max": np.nan, "ratio": np.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the engine


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), np.clip(r, -delta, delta)


class _Model:
    """A law laid out on a data set: centred log variables, which exponents and terms the data identify, and
    the map from the parameter vector θ = [constant, log-coefficients (centred), exponents] to predictions."""

    def __init__(self, law: Law, X: np.ndarray, space: str, levels: Sequence[str] = ()):
        self.law, self.space = law, space
        self.levels = tuple(levels)
        """Names of the groups that each have their own constant (``constant_by``); empty: one constant."""
        self.n_const = max(1, len(self.levels))
        logx = np.log(X)  # (n, v)
        self.log_ref = logx.mean(axis=0)  # geometric means: the centre
        self.const_var = np.ptp(logx, axis=0) < 1e-9 if len(X) else np.ones(len(law.variables), bool)
        vidx = {v: j for j, v in enumerate(law.variables)}
        varying = {law.variables[j] for j in range(len(law.variables)) if not self.const_var[j]}
        # an exponent is identified if it multiplies a variable that varies; a term is kept if any of its
        # variables varies (a term in constant variables only is one more constant)
        ident = {law.resolve(e) for t in law.terms for v, e, _ in t.powers if v in varying}
        self.exponents = [e for e in law.free_exponents if e in ident]
        self.terms = [t for t in law.terms if any(v in varying for v, _, _ in t.powers)]
        self.dropped = [t for t in law.terms if t not in self.terms]
        self.eidx = {e: k for k, e in enumerate(self.exponents)}
        self.vidx = vidx
        # (term, variable, exponent index, sign) of the identified powers; the others are fixed by the data
        self.powers = [(i, vidx[v], self.eidx[law.resolve(e)], s) for i, t in enumerate(self.terms)
                       for v, e, s in t.powers if law.resolve(e) in self.eidx]
        self.unknown = [(i, vidx[v]) for i, t in enumerate(self.terms) for v, e, _ in t.powers
                        if law.resolve(e) not in self.eidx]
        self.n_params = self.n_const + len(self.terms) + len(self.exponents)
        self.param_names = _param_names(law, self.levels)
        self.const_names = self.param_names[:self.n_const]

    def z(self, X: np.ndarray) -> np.ndarray:
        return np.log(X) - self.log_ref

    def _M(self, Z: np.ndarray) -> np.ndarray:
        """(exponents, terms · n): d t_i / d p_k, flattened for one matmul."""
        M = np.zeros((len(self.exponents), len(self.terms), len(Z)))
        for i, j, k, s in self.powers:
            M[k, i] += s * Z[:, j]
        return M.reshape(len(self.exponents), -1)

    def _split(self, theta):
        m, g = len(self.terms), self.n_const
        return theta[:g], theta[g:g + m], theta[g + m:]

    def forward(self, theta, Z, g, M=None):
        """Predicted loss (n,), log-space: log L̂; linear: L̂; and d out / d t_i (terms, n), d out / d c (n,).
        ``g``: each row's constant (index into the groups; zeros with one constant)."""
        c, a, p = self._split(theta)
        c = c[g]
        M = self._M(Z) if M is None else M
        n = Z.shape[0]
        T = a[:, None] + (p @ M).reshape(len(a), n)  # (terms, n)
        if self.space == "log":  # log L̂ = logsumexp(c, t_1, ..., t_m)
            top = np.maximum(T.max(axis=0), c)
            e0, eT = np.exp(c - top), np.exp(T - top)
            tot = e0 + eT.sum(axis=0)
            return top + np.log(tot), eT / tot, e0 / tot
        eT = np.exp(T)
        return c + eT.sum(axis=0), eT, np.ones(n)

    def objective(self, theta, Z, g, M, target, delta, weight=None):
        out, w, w0 = self.forward(theta, Z, g, M)
        r = out - target
        h, dh = _huber(r, delta)
        if weight is not None:  # each row's Huber loss times its weight (1 / its standard error, mean 1)
            h, dh = h * weight, dh * weight
        gi = w * dh  # (terms, n)
        grad = np.concatenate([np.bincount(g, weights=w0 * dh, minlength=self.n_const), gi.sum(axis=1),
                               M @ gi.ravel()])
        scale = len(target) * delta
        return float(h.sum() / scale), grad / scale

    def predict(self, theta, X: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Predicted loss in loss units; NaN where the data fixed an exponent that this X would need, or where
        the row's group had no constant fitted (``g`` = −1)."""
        Z = self.z(X)
        out = self.forward(theta, Z, np.maximum(g, 0))[0]
        pred = np.exp(out) if self.space == "log" else out
        bad = g < 0
        for _i, j in self.unknown:
            bad |= np.abs(Z[:, j]) > 1e-9
        for t in self.dropped:
            for v, _, _ in t.powers:
                bad |= np.abs(Z[:, self.vidx[v]]) > 1e-9
        return np.where(bad, np.nan, pred)

    def bounds(self, y: np.ndarray) -> list[tuple[float, float]]:
        if self.space == "log":
            lo = float(np.log(y.min()))
            cb = (lo - 15.0, float(np.log(y.max())) + 0.5)
        else:
            spread = max(float(np.ptp(y)), 1e-3 * float(np.abs(y).mean()), 1e-6)
            cb = (float(y.min()) - 100.0 * spread - 10.0, float(y.max()) + 10.0 * spread)
        eb = [_SIGNED_BOUNDS if e in self.law.signed else _DECAY_BOUNDS for e in self.exponents]
        return [cb] * self.n_const + [_COEF_BOUNDS] * len(self.terms) + eb

    def init_grid(self, y: np.ndarray, g: np.ndarray, max_inits: int, rng) -> list[np.ndarray]:
        """Starts on a grid: the constant(s) below each group's smallest loss, the coefficients and exponents."""
        low = np.array([y[g == k].min() if (g == k).any() else y.min() for k in range(self.n_const)])
        if self.space == "log":
            c0 = [np.log(low * f) for f in (0.95, 0.6, 0.2)]
            a0 = [float(np.log(y.mean() * f)) for f in (0.3, 0.03)]
        else:
            spread = max(float(np.ptp(y)), 1e-3 * float(np.abs(y).mean()), 1e-6)
            c0 = [low - spread * f for f in (0.1, 1.0, 3.0)]
            a0 = [float(np.log(spread * f)) for f in (1.0, 0.1)]
        e0 = [[-0.1, 0.15] if e in self.law.signed else [0.2, 0.5, 1.0] for e in self.exponents]
        axes = [c0] + [a0] * len(self.terms) + e0
        n = math.prod(len(a) for a in axes)
        if n <= max_inits:
            return [np.hstack(point).astype(float) for point in itertools.product(*axes)]
        picks = rng.choice(n, size=max_inits, replace=False)
        out = []
        for flat in sorted(picks):
            point, rest = [], int(flat)
            for a in reversed(axes):
                rest, i = divmod(rest, len(a))
                point.append(a[i])
            out.append(np.hstack(point[::-1]).astype(float))
        return out

    def fit(self, Z, g, target, bounds, starts, delta, weight=None) -> list[tuple[float, np.ndarray]]:
        """L-BFGS-B from each start; (objective, θ) sorted best first (failed starts dropped)."""
        from scipy.optimize import minimize

        M = self._M(Z)
        out = []
        for x0 in starts:
            x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                res = minimize(self.objective, x0, args=(Z, g, M, target, delta, weight), jac=True,
                               method="L-BFGS-B",
                               bounds=bounds, options={"maxiter": 2000, "ftol": 1e-10, "gtol": 1e-8})
            if np.isfinite(res.fun) and np.all(np.isfinite(res.x)):
                out.append((float(res.fun), res.x))
        out.sort(key=lambda t: t[0])
        return out

    def reported(self, theta) -> dict[str, float]:
        """θ → the law's parameters in original units (NaN for what the data do not identify)."""
        law = self.law
        out = dict.fromkeys(self.param_names, math.nan)
        c, a, p = self._split(theta)
        for name, ck in zip(self.const_names, c):
            if self.space == "log":
                out[name] = math.exp(ck)
            else:
                out[name] = float(-ck if law.negative_constant else ck)
        for e in law.exponents:
            r = law.resolve(e)
            if r in self.eidx:
                out[e] = float(p[self.eidx[r]])
        for i, t in enumerate(self.terms):
            log_coef = a[i]
            for v, e, s in t.powers:
                log_coef -= s * out[e] * self.log_ref[self.vidx[v]]
            out[t.coef] = float(np.exp(log_coef)) if np.isfinite(log_coef) else math.nan
        return out


# ---------------------------------------------------------------- fits


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    s = np.asarray(samples, float)
    s = s[~np.isnan(s)]
    if len(s) < 2:
        return math.nan, math.nan
    q = (1 - level) / 2
    lo, hi = np.quantile(s, [q, 1 - q], method="inverted_cdf")  # no interpolation: ∞ stays ∞
    return float(lo), float(hi)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) < 2:
        return math.nan
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan


@dataclass(eq=False)
class LawFit:
    """A law fitted to a table: parameters with bootstrap intervals, R², and the flags of a bad fit."""

    law: Law
    loss: str
    """What the loss column holds."""
    columns: dict[str, str]
    """Law variable -> table column."""
    space: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    boot: pd.DataFrame
    """One row per successful bootstrap refit: the reported parameters."""
    r2: float
    r2_ci: tuple[float, float]
    n_rows: int
    n_points: int
    n_params: int
    flags: list[str]
    data: pd.DataFrame
    """The rows fitted (the table's rows with finite values)."""
    loss_column: str = "loss"
    level: float = 0.95
    n_boot: int = 0
    delta: float = DELTA
    constant_by: str | None = None
    """The column whose values each have their own constant (``fit_law(constant_by=...)``); None: one constant."""
    levels: tuple[str, ...] = ()
    """Those values, in the order of the constants."""
    r2_within: float = math.nan
    """With ``constant_by``: R² of the point means around each group's own mean (what the law explains beyond
    the constants), NaN otherwise."""
    r2_within_ci: tuple[float, float] = (math.nan, math.nan)
    weight_by: str | None = None
    """The column of standard errors the rows were weighted by (``fit_law(weight_by=...)``); None: unweighted."""
    _model: _Model | None = field(default=None, repr=False)
    _theta: np.ndarray | None = field(default=None, repr=False)
    _theta_boot: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when no flag was raised."""
        return not self.flags

    @property
    def fitted(self) -> bool:
        """True when there are parameter values at all (possibly flagged)."""
        return self._theta is not None

    @property
    def param_names(self) -> tuple[str, ...]:
        """Reported parameters: the constant (one per level with ``constant_by``), the coefficients, the exponents."""
        return _param_names(self.law, self.levels)

    def value(self, name: str) -> float:
        return self.params.get(name, math.nan)

    def samples(self, name: str) -> np.ndarray:
        """Bootstrap samples of a parameter (empty without a bootstrap)."""
        return self.boot[name].to_numpy(float) if name in self.boot.columns else np.array([])

    def _X(self, frame) -> np.ndarray:
        if isinstance(frame, Mapping):
            frame = pd.DataFrame({k: np.atleast_1d(v) for k, v in frame.items()})
        cols = [self.columns[v] for v in self.law.variables]
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise XlmrError(f"{self.law.name} law: no column(s) {', '.join(missing)} to predict at")
        return frame[cols].to_numpy(float)

    def _groups(self, frame) -> np.ndarray:
        """Each row's constant: its index among ``levels`` (−1: a level the fit has no constant for)."""
        if isinstance(frame, Mapping):
            frame = pd.DataFrame({k: np.atleast_1d(v) for k, v in frame.items()})
        if not self.constant_by:
            return np.zeros(len(frame), int)
        if self.constant_by not in frame.columns:
            raise XlmrError(f"{self.law.name} law with a constant per {self.constant_by}: give the {self.constant_by} "
                            f"column to predict at (fitted: {', '.join(self.levels)})")
        index = {v: k for k, v in enumerate(self.levels)}
        return np.array([index.get(v, -1) for v in frame[self.constant_by].astype(str)], int)

    def predict(self, frame, *, interval: bool = False):
        """Predicted loss at the rows of ``frame`` (a DataFrame or {variable: values}); with ``interval``, a
        DataFrame (predicted, lo, hi) whose interval is the bootstrap's of the mean prediction."""
        X, g = self._X(frame), self._groups(frame)
        n = len(X)
        if self._theta is None:
            pred = np.full(n, np.nan)
            return pd.DataFrame({"predicted": pred, "lo": pred, "hi": pred}) if interval else pred
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred = self._model.predict(self._theta, X, g)
            if not interval:
                return pred
            if self._theta_boot is not None and len(self._theta_boot) >= 2:
                B = np.stack([self._model.predict(t, X, g) for t in self._theta_boot])  # (boot, n)
                lo, hi = np.array([_interval(B[:, i], self.level) for i in range(n)]).T.reshape(2, n)
            else:
                lo = hi = np.full(n, np.nan)
        return pd.DataFrame({"predicted": pred, "lo": lo, "hi": hi})

    def predict_samples(self, frame) -> np.ndarray:
        """Bootstrap predictions (boot, n) at the rows of ``frame``."""
        X, g = self._X(frame), self._groups(frame)
        if self._theta_boot is None or not len(self._theta_boot):
            return np.empty((0, len(X)))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.stack([self._model.predict(t, X, g) for t in self._theta_boot])

    def r2_text(self) -> str:
        """``R² = 0.98 [0.96, 0.99]`` (of the point means; with ``constant_by`` also the within-group R²)."""
        text = f"R² = {fmt_interval(self.r2, *self.r2_ci, sig=4)}"
        if self.constant_by:
            text += f", within {self.constant_by} R² = {fmt_interval(self.r2_within, *self.r2_within_ci, sig=4)}"
        return text

    def table(self) -> pd.DataFrame:
        """One row per parameter: value, interval, whether it sits at its bound; then R²."""
        at_bound = {p for f in self.flags if f.startswith("at bound: ") for p in f[len("at bound: "):].split(", ")}
        rows = [{"law": self.law.name, "param": p, "symbol": _sym(p), "value": self.params[p],
                 "lo": self.ci[p][0], "hi": self.ci[p][1], "at_bound": _sym(p) in at_bound}
                for p in self.param_names]
        rows.append({"law": self.law.name, "param": "r2", "symbol": "R²", "value": self.r2, "lo": self.r2_ci[0],
                     "hi": self.r2_ci[1], "at_bound": False})
        if self.constant_by:
            rows.append({"law": self.law.name, "param": "r2_within", "symbol": f"R² within {self.constant_by}",
                         "value": self.r2_within, "lo": self.r2_within_ci[0], "hi": self.r2_within_ci[1],
                         "at_bound": False})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        per = f", {_sym(self.law.constant)} per {self.constant_by}" if self.constant_by else ""
        head = (f"{self.law.title}: {self.law.formula}{per}\n"
                f"  on {self.loss}; {self.n_rows} rows, {self.n_points} points, "
                f"{self.n_params} free parameters; {self.space}-space Huber (δ={self.delta:g}); "
                f"bootstrap {len(self.boot)}/{self.n_boot} refits, {self.level:.0%} intervals")
        lines = [head]
        if self.fitted:
            for p in self.param_names:
                lines.append(f"  {_sym(p):>3} = {fmt_interval(self.params[p], *self.ci[p])}")
            lines.append(f"   {self.r2_text()} (point means)")
        lines.append("  flags: " + ("none" if self.ok else "; ".join(self.flags)))
        return "\n".join(lines)


def _param_names(law: Law, levels: Sequence[str] = ()) -> tuple[str, ...]:
    consts = [f"{law.constant}[{g}]" for g in levels] if levels else [law.constant]
    return (*consts, *(t.coef for t in law.terms), *law.exponents)


def _point_keys(df: pd.DataFrame, cols: Sequence[str], extra: Sequence[str] = ()) -> np.ndarray:
    keys = list(dict.fromkeys([*cols, *[c for c in ("lang", "group") if c in df.columns], *extra]))
    return df.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()


def _r2_within(y: np.ndarray, pred: np.ndarray, g: np.ndarray) -> float:
    """1 − Σ(y − ŷ)² / Σ(y − ȳ_g)²: R² around each group's own mean."""
    means = np.bincount(g, weights=y) / np.maximum(np.bincount(g), 1)
    ss = float(((y - means[g]) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else math.nan


def _flag_collinear(model: _Model, Z: np.ndarray, law: Law) -> list[str]:
    """Variables whose logs are linearly dependent in the data (their exponents cannot be told apart)."""
    cols = [j for j in range(Z.shape[1]) if not model.const_var[j]]
    if len(cols) < 2:
        return []
    sub = Z[:, cols] / np.maximum(Z[:, cols].std(axis=0), 1e-300)
    sv = np.linalg.svd(sub, compute_uv=False)
    if sv[-1] / sv[0] > 1e-3:
        return []
    # name the smallest dependent set: try pairs first
    for a, b in itertools.combinations(range(len(cols)), 2):
        pair = sub[:, [a, b]]
        s = np.linalg.svd(pair, compute_uv=False)
        if s[-1] / s[0] <= 1e-3:
            return [f"{law.variables[cols[a]]} and {law.variables[cols[b]]} are collinear in the data: their "
                    f"exponents are not separately identified"]
    return [f"{', '.join(law.variables[j] for j in cols)} are collinear in the data: their exponents are not "
            f"separately identified"]


def fit_law(table: pd.DataFrame, law: str | Law = "atlas", *, loss: str = "loss",
            columns: Mapping[str, str] | None = None, space: str | None = None, n_boot: int = 200,
            level: float = 0.95, min_r2: float = MIN_R2, delta: float = DELTA, max_inits: int = 64,
            boot_starts: int = 2, seed: int = 0, constant_by: str | None = None,
            weight_by: str | None = None) -> LawFit:
    """Fit ``law`` to ``table`` (from ``fitting_table``): Huber on log-loss by L-BFGS-B from a grid of starts,
    bootstrap over points and seeds (``n_boot`` refits), and the flags of a bad fit. Too few rows give a
    flagged fit with NaN parameters, never an exception. ``columns`` maps law variables to other columns
    (``{"D": "D_t"}``). ``constant_by`` (e.g. ``"lang"``): one constant per value of that column, the rest of
    the law shared; ``min_r2`` then applies to the within-group R². ``weight_by`` (e.g. ``"loss_se"``, which
    ``fitting_table`` writes): a column of each row's standard error; rows are weighted by its inverse (in the
    fitted space: se / loss for a log-space fit), normalised to mean 1, so points measured more precisely count
    more; rows without one get the median weight."""
    law = get_law(law)
    cols = {v: (columns or {}).get(v, v) for v in law.variables}
    missing = [c for c in [*cols.values(), loss, *([constant_by] if constant_by else []),
                           *([weight_by] if weight_by else [])] if c not in table.columns]
    if missing:
        raise XlmrError(f"fit_law({law.name}): the table has no column(s) {', '.join(missing)}; build it with "
                        f"laws.fitting_table")
    what = table.attrs.get("loss", loss)
    X = table[list(cols.values())].to_numpy(float) if len(table) else np.empty((0, len(cols)))
    y = table[loss].to_numpy(float) if len(table) else np.empty(0)
    ok = np.isfinite(y) & np.all(np.isfinite(X) & (X > 0), axis=1)
    data = table[ok].reset_index(drop=True)
    X, y = X[ok], y[ok]
    if constant_by:
        codes, uniques = pd.factorize(data[constant_by].astype(str), sort=True)
        g, levels = codes.astype(int), tuple(str(u) for u in uniques)
    else:
        g, levels = np.zeros(len(y), int), ()
    space = space or law.space
    if space == "auto":
        space = "log" if len(y) and (y > 0).all() else "linear"
    if space == "log" and len(y) and (y <= 0).any():
        raise XlmrError(f"fit_law({law.name}): a log-space fit needs a positive loss; {what} has values ≤ 0 "
                        f"(use space='linear')")
    flags: list[str] = []
    if table.attrs.get("note"):
        flags.append(table.attrs["note"])
    names = _param_names(law, levels)
    extra = dict(constant_by=constant_by, levels=levels, weight_by=weight_by)

    def unfitted(reason: str) -> LawFit:
        return LawFit(law=law, loss=what, columns=cols, space=space, params=dict.fromkeys(names, math.nan),
                      ci={p: (math.nan, math.nan) for p in names}, boot=pd.DataFrame(columns=list(names)),
                      r2=math.nan, r2_ci=(math.nan, math.nan), n_rows=len(y), n_points=0, n_params=0,
                      flags=flags + [reason], data=data, loss_column=loss, level=level, n_boot=n_boot, delta=delta,
                      **extra)

    if len(y) < 2:
        return unfitted(f"no fit: {len(y)} usable rows")
    keys = _point_keys(data, list(cols.values()), [constant_by] if constant_by else [])
    n_points = int(keys.max()) + 1
    model = _Model(law, X, space, levels)
    for j, v in enumerate(law.variables):
        if model.const_var[j]:
            lost = [t.coef for t in model.dropped if any(pv == v for pv, _, _ in t.powers)]
            lost += [_sym(e) for t in law.terms for pv, e, _ in t.powers
                     if pv == v and law.resolve(e) not in model.eidx]
            flags.append(f"{v} takes one value ({_fmt(X[0, j])}): {', '.join(dict.fromkeys(lost)) or 'nothing'} "
                         f"not identified")
    if n_points < model.n_params + EXTRA_POINTS:
        flags.append(f"too few points: {n_points} for {model.n_params} free parameters "
                     f"(need ≥ {model.n_params + EXTRA_POINTS})")
    if n_points <= 1 or not model.terms:
        return unfitted("no fit: nothing varies")
    Z = model.z(X)
    flags += _flag_collinear(model, Z, law)
    target = np.log(y) if space == "log" else y
    weight = _row_weights(data[weight_by].to_numpy(float), y, space) if weight_by else None
    if weight_by and weight is None:
        return unfitted(f"no fit: no row has a standard error in {weight_by!r} (rescore the runs: xlmr eval RUN "
                        f"--suite bpb)")
    bounds = model.bounds(y)
    rng = np.random.default_rng(seed)
    runs = model.fit(Z, g, target, bounds, model.init_grid(y, g, max_inits, rng), delta, weight)
    if not runs:
        return unfitted("no fit: the optimiser failed from every start")
    theta = runs[0][1]
    params = model.reported(theta)

    # bootstrap over points, then over each point's rows (seeds), refitting from the best distinct starts
    starts = [theta]
    for _, t in runs[1:]:
        if len(starts) >= boot_starts:
            break
        if all(np.abs(t - s).max() > 1e-3 for s in starts):
            starts.append(t)
    rows_of = [np.flatnonzero(keys == k) for k in range(n_points)]
    Xp = np.array([X[rows_of[k][0]] for k in range(n_points)])  # each point's sizes
    gp = np.array([g[rows_of[k][0]] for k in range(n_points)])  # and constant
    thetas, reported, r2s, r2ws = [], [], [], []
    for _ in range(n_boot):
        pts = rng.integers(0, n_points, n_points)
        parts = [rows_of[p][rng.integers(0, len(rows_of[p]), len(rows_of[p]))] for p in pts]
        idx = np.concatenate(parts)
        res = model.fit(Z[idx], g[idx], target[idx], bounds, starts, delta,
                        None if weight is None else weight[idx] / weight[idx].mean())
        if res:
            thetas.append(res[0][1])
            rep = model.reported(res[0][1])
            for k in np.setdiff1d(np.arange(len(levels)), g[idx]):  # a level the resample left out: no value
                rep[model.const_names[k]] = math.nan
            reported.append(rep)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # R² of the refit on its resample
                ys, ps = np.array([y[ix].mean() for ix in parts]), model.predict(res[0][1], Xp[pts], gp[pts])
                r2s.append(_r2(ys, ps))
                r2ws.append(_r2_within(ys, ps, gp[pts]))
    boot = pd.DataFrame(reported, columns=list(names))
    ci = {p: _interval(boot[p].to_numpy(float), level) if len(boot) else (math.nan, math.nan) for p in names}
    theta_boot = np.array(thetas) if thetas else None
    if n_boot and len(thetas) < 0.9 * n_boot:
        flags.append(f"bootstrap: {n_boot - len(thetas)} of {n_boot} refits failed")

    # R² of the point means; its interval: each bootstrap refit scored on its own resample
    ymean = data.assign(_y=y, _k=keys).groupby("_k")["_y"].mean().to_numpy()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred_points = model.predict(theta, Xp, gp)
        r2 = _r2(ymean, pred_points)
        r2w = _r2_within(ymean, pred_points, gp) if constant_by else math.nan
    r2_ci = _interval(np.array(r2s), level) if r2s else (math.nan, math.nan)
    r2w_ci = _interval(np.array(r2ws), level) if constant_by and r2ws else (math.nan, math.nan)
    checked, what_r2 = (r2w, f"R² within {constant_by}") if constant_by else (r2, "R²")
    if not np.isfinite(checked) or checked < min_r2:
        flags.append(f"{what_r2} = {_fmt(checked)} < {min_r2:g}")

    theta_names = [*model.const_names, *(t.coef for t in model.terms), *model.exponents]
    hit = []
    for name, v, (lo, hi) in zip(theta_names, theta, bounds):
        tol = 1e-3 * max(1.0, abs(lo), abs(hi))
        if v - lo < tol or hi - v < tol:
            hit.append(_sym(name))
    if hit:
        flags.append("at bound: " + ", ".join(hit))
    return LawFit(law=law, loss=what, columns=cols, space=space, params=params, ci=ci, boot=boot, r2=r2,
                  r2_ci=r2_ci, n_rows=len(y), n_points=n_points, n_params=model.n_params, flags=flags, data=data,
                  loss_column=loss, level=level, n_boot=n_boot, delta=delta, **extra, r2_within=r2w,
                  r2_within_ci=r2w_ci, _model=model, _theta=theta, _theta_boot=theta_boot)


def _row_weights(se: np.ndarray, y: np.ndarray, space: str) -> np.ndarray | None:
    """1 / standard error in the fitted space, mean 1; rows without a usable one get the median (None: no row has)."""
    sd = se / np.abs(y) if space == "log" else se.astype(float)
    good = np.isfinite(sd) & (sd > 0)
    if not good.any():
        return None
    w = np.where(good, 1.0 / np.where(good, sd, 1.0), np.nan)
    w[~good] = np.median(w[good])
    return w / w.mean()


def fit_groups(table: pd.DataFrame, law: str | Law = "chinchilla", *, by: str = "group",
               groups: Sequence[str] | None = ("high", "low"), **kw) -> dict[str, LawFit]:
    """``fit_law`` on each value of ``by`` (``groups``, or every value present): {value: LawFit}."""
    if by not in table.columns:
        if table.empty:
            return {g: fit_law(table, law, **kw) for g in (groups or ())}
        raise XlmrError(f"fit_groups: the table has no column {by!r}")
    values = list(groups) if groups is not None else sorted(table[by].dropna().unique())
    return {g: fit_law(table[table[by] == g], law, **kw) for g in values}


# ---------------------------------------------------------------- prediction as the test


@dataclass(eq=False)
class Extrapolation:
    """A law fitted on the smaller points and scored on the held-out larger ones."""

    by: str
    threshold: float
    """Held out: rows with ``by`` ≥ this."""
    fit: LawFit
    heldout: pd.DataFrame
    points: pd.DataFrame
    """One row per held-out point: observed mean (sd, n), predicted [lo, hi], rel_error [lo, hi]."""
    r2: float
    r2_ci: tuple[float, float]
    mean_abs_rel_error: float
    mean_abs_rel_error_ci: tuple[float, float]
    flags: list[str]
    baseline_mean_abs_rel_error: float = math.nan
    """The baseline a law has to beat: each held-out point predicted by the observed value of the same point
    (the other variables, language and group equal) at the largest ``by`` fitted, as if nothing changed
    beyond it; mean |relative error| over the points that have one (``points["baseline"]``)."""
    law_mean_abs_rel_error_on_baseline: float = math.nan
    """The law's mean |relative error| on those same points."""
    r2_within: float = math.nan
    """With a constant per group (``constant_by``): the held-out R² around each group's own mean of the held-out
    points, what the law predicts beyond each language's level (``r2`` counts the levels too)."""
    mean_eval_rel_se: float = math.nan
    """The evaluation's own standard error of the held-out points, relative, on average (``points["eval_rel_se"]``):
    a prediction error below about twice it cannot be told from zero."""
    share_within_eval_se: float = math.nan
    """Share of the held-out points whose |relative error| is below twice their evaluation standard error."""

    @property
    def ok(self) -> bool:
        return not self.flags and self.fit.ok

    def summary(self) -> str:
        """``held-out R² = … [lo, hi]; mean |relative error| = … [lo, hi]``, and the baseline's."""
        text = f"held-out R² = {fmt_interval(self.r2, *self.r2_ci)}"
        if self.fit.constant_by:
            text += f" (within {self.fit.constant_by}: {_fmt(self.r2_within)})"
        text += f"; mean |relative error| = {fmt_interval(self.mean_abs_rel_error, *self.mean_abs_rel_error_ci)}"
        if np.isfinite(self.baseline_mean_abs_rel_error):
            text += (f"; nearest fitted {self.by} carried forward: {_fmt(self.baseline_mean_abs_rel_error)} "
                     f"(law {_fmt(self.law_mean_abs_rel_error_on_baseline)} on the same points)")
        if np.isfinite(self.mean_eval_rel_se):
            text += (f"; evaluation s.e. {_fmt(self.mean_eval_rel_se)} relative, "
                     f"{self.share_within_eval_se:.0%} of the points within 2 s.e.")
        return text

    def __repr__(self) -> str:
        lines = [f"{self.fit.law.title} fitted on {self.by} < {_fmt(self.threshold)} ({self.fit.n_points} points), "
                 f"predicting {len(self.points)} held-out points with {self.by} ≥ {_fmt(self.threshold)}",
                 f"  held-out R² = {fmt_interval(self.r2, *self.r2_ci)}"
                 + (f", within {self.fit.constant_by} {_fmt(self.r2_within)}" if self.fit.constant_by else ""),
                 f"  mean |relative error| = {fmt_interval(self.mean_abs_rel_error, *self.mean_abs_rel_error_ci)}",
                 f"  baseline (the nearest fitted {self.by} carried forward): mean |relative error| = "
                 f"{_fmt(self.baseline_mean_abs_rel_error)}, the law's on the same points "
                 f"{_fmt(self.law_mean_abs_rel_error_on_baseline)}"]
        for _, r in self.points.iterrows():
            where = ", ".join(f"{v}={_fmt(r[c])}" for v, c in self.fit.columns.items())
            lang = f" {r['lang']}" if "lang" in r and isinstance(r["lang"], str) else ""
            sd = f" ± {_fmt(r['observed_sd'])}" if np.isfinite(r["observed_sd"]) else " (one seed)"
            lines.append(f"   {where}{lang}: observed {_fmt(r['observed'])}{sd}, predicted "
                         f"{fmt_interval(r['predicted'], r['predicted_lo'], r['predicted_hi'])}, relative error "
                         f"{fmt_interval(r['rel_error'], r['rel_error_lo'], r['rel_error_hi'])}")
        lines.append("  flags: " + ("none" if self.ok else "; ".join(self.flags + self.fit.flags)))
        return "\n".join(lines)


def prediction_errors(fit: LawFit, table: pd.DataFrame, *, loss: str = "loss", seed: int = 0):
    """Score ``fit`` on the rows of ``table``: per point (mean over seeds) the predicted value, the relative error
    (predicted − observed)/|observed| with their bootstrap intervals (over the fit's refits); and the R² of the
    point means, 1 − Σ(obs − pred)² / Σ(obs − mean obs)², and the mean |relative error|, whose intervals pair
    each refit with a resample of the scored points. Returns (points, r2, r2_ci, mae, mae_ci)."""
    cols = [fit.columns[v] for v in fit.law.variables]
    t = table[np.isfinite(table[loss].to_numpy(float))] if len(table) else table
    empty = pd.DataFrame(columns=[*cols, "observed", "observed_sd", "n", "predicted", "predicted_lo",
                                  "predicted_hi", "rel_error", "rel_error_lo", "rel_error_hi", "eval_rel_se"])
    if t.empty:
        return empty, math.nan, (math.nan, math.nan), math.nan, (math.nan, math.nan)
    keys = list(dict.fromkeys(cols + [c for c in ("lang", "group", fit.constant_by) if c and c in t.columns]))
    pts = t.groupby(keys, dropna=False, sort=True)[loss].agg(observed="mean", observed_sd="std", n="count")
    pts = pts.reset_index()
    se = (t.groupby(keys, dropna=False, sort=True)["loss_se"].agg(lambda s: float(np.sqrt((s ** 2).sum()) / len(s)))
          .to_numpy(float) if "loss_se" in t.columns else np.full(len(pts), np.nan))
    pts["eval_rel_se"] = se / np.abs(pts["observed"].to_numpy(float))  # the evaluation's own error, relative
    obs = pts["observed"].to_numpy(float)
    pred = fit.predict(pts)
    B = fit.predict_samples(pts)  # (boot, n)
    rel = (pred - obs) / np.abs(obs)
    relB = (B - obs) / np.abs(obs)
    level = fit.level

    def band(M):
        if len(M) < 2:
            return np.full(len(obs), np.nan), np.full(len(obs), np.nan)
        lo_hi = np.array([_interval(M[:, i], level) for i in range(M.shape[1])])
        return lo_hi[:, 0], lo_hi[:, 1]

    pts["predicted"] = pred
    pts["predicted_lo"], pts["predicted_hi"] = band(B)
    pts["rel_error"] = rel
    pts["rel_error_lo"], pts["rel_error_hi"] = band(relB)
    r2 = _r2(obs, pred)
    mae = float(np.nanmean(np.abs(rel))) if np.isfinite(rel).any() else math.nan
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, len(obs), len(obs)) for _ in range(len(B))]
    r2s = np.array([_r2(obs[i], b[i]) for b, i in zip(B, picks)])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a refit that predicts nothing: NaN, dropped
        maes = np.array([np.nanmean(np.abs(r[i])) for r, i in zip(relB, picks)])
    return pts, r2, _interval(r2s, level), mae, _interval(maes, level)


def extrapolate(table: pd.DataFrame, law: str | Law = "atlas", *, by: str = "N", n_holdout: int = 1,
                loss: str = "loss", **fit_kw) -> Extrapolation:
    """Fit ``law`` on the rows whose ``by`` is below its ``n_holdout`` largest values and predict those."""
    law = get_law(law)
    flags: list[str] = []
    if by not in table.columns:
        raise XlmrError(f"extrapolate: the table has no column {by!r}")
    values = np.sort(table[by].dropna().unique())
    if len(values) <= n_holdout:
        flags.append(f"{by} takes {len(values)} value(s): nothing left to fit on after holding out {n_holdout}")
        threshold = float(values[0]) if len(values) else math.nan
    else:
        threshold = float(values[-n_holdout])
    train = table[table[by] < threshold] if np.isfinite(threshold) else table.iloc[:0]
    held = table[table[by] >= threshold] if np.isfinite(threshold) else table.iloc[:0]
    train.attrs, held.attrs = dict(table.attrs), dict(table.attrs)
    fit = fit_law(train, law, loss=loss, **fit_kw)
    points, r2, r2_ci, mae, mae_ci = prediction_errors(fit, held, loss=loss)
    points, base_mae, law_mae = _carried_forward(points, train, by, loss)
    r2w = math.nan
    if fit.constant_by and len(points):
        codes = pd.factorize(points[fit.constant_by].astype(str))[0]
        obs, pred = points["observed"].to_numpy(float), points["predicted"].to_numpy(float)
        have = np.isfinite(pred)
        r2w = _r2_within(obs[have], pred[have], pd.factorize(codes[have])[0]) if have.any() else math.nan
    if len(points) < 2:
        flags.append(f"held-out R² undefined: {len(points)} held-out point(s)")
    if len(points) and not np.isfinite(points["predicted"]).any():
        flags.append("no held-out point could be predicted (an exponent the training points do not identify)")
    se, rel = points["eval_rel_se"].to_numpy(float), points["rel_error"].to_numpy(float)
    has_se = np.isfinite(se) & np.isfinite(rel)
    return Extrapolation(by=by, threshold=threshold, fit=fit, heldout=held.reset_index(drop=True), points=points,
                         r2=r2, r2_ci=r2_ci, mean_abs_rel_error=mae, mean_abs_rel_error_ci=mae_ci, flags=flags,
                         baseline_mean_abs_rel_error=base_mae, law_mean_abs_rel_error_on_baseline=law_mae,
                         r2_within=r2w, mean_eval_rel_se=float(se[has_se].mean()) if has_se.any() else math.nan,
                         share_within_eval_se=float((np.abs(rel[has_se]) < 2 * se[has_se]).mean())
                         if has_se.any() else math.nan)


def _carried_forward(points: pd.DataFrame, train: pd.DataFrame, by: str, loss: str):
    """``points`` with ``baseline`` (the mean observed loss of the same point at the largest ``by`` in ``train``)
    and ``baseline_rel_error``; the baseline's and the law's mean |relative error| where there is a baseline."""
    keys = [c for c in points.columns if c not in ("observed", "observed_sd", "n", "eval_rel_se") and not c.startswith(
        ("predicted", "rel_error"))]
    points = points.copy()
    points["baseline"] = np.nan
    other = [c for c in keys if c != by]
    if not len(points) or train.empty or by not in keys or any(c not in train.columns for c in keys):
        points["baseline_rel_error"] = np.nan
        return points, math.nan, math.nan

    def key(df):  # sizes compared on a log scale to 6 decimals: the same point in two runs, not float noise
        return [tuple(np.round(np.log(v), 6) if isinstance(v, float) and v > 0 else v for v in row)
                for row in df[other].itertuples(index=False)]

    fitted = train[np.isfinite(train[loss].to_numpy(float))].groupby(keys, dropna=False)[loss].mean().reset_index()
    fitted = fitted.sort_values(by)
    last = dict(zip(key(fitted), fitted[loss]))  # sorted by ``by``: the largest fitted value of each point wins
    points["baseline"] = [last.get(k, np.nan) for k in key(points)]
    obs = points["observed"].to_numpy(float)
    points["baseline_rel_error"] = (points["baseline"].to_numpy(float) - obs) / np.abs(obs)
    has = np.isfinite(points["baseline_rel_error"].to_numpy()) & np.isfinite(points["rel_error"].to_numpy(float))
    if not has.any():
        return points, math.nan, math.nan
    return (points, float(np.abs(points["baseline_rel_error"][has]).mean()),
            float(np.abs(points["rel_error"][has]).mean()))


# ---------------------------------------------------------------- derived answers


def atlas_multipliers(phi: float, psi: float, alpha: float, beta: float, r: float = 2.0) -> dict[str, float]:
    """Closed form: going from K to r·K languages at equal loss under the ATLAS law multiplies N by r^(φ/α), the
    target's tokens D_t by r^(ψ/β) and the total tokens D = K·D_t by r^(1+ψ/β) (each term held equal)."""
    # numpy division: an exponent fitted at 0 gives inf or nan (a flagged fit), not an exception
    phi, psi, alpha, beta = (np.asarray(v, dtype=float) for v in (phi, psi, alpha, beta))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = {"params": r ** (phi / alpha), "target_tokens": r ** (psi / beta),
               "total_tokens": r ** (1.0 + psi / beta)}
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}


def _derived(rows: list[tuple[str, float, np.ndarray, str]], level: float) -> pd.DataFrame:
    out = []
    for name, value, samples, note in rows:
        lo, hi = _interval(samples, level) if len(samples) else (math.nan, math.nan)
        out.append({"quantity": name, "value": value, "lo": lo, "hi": hi,
                    "n_boot": int(np.isfinite(samples).sum()) if len(samples) else 0, "note": note})
    return pd.DataFrame(out)


def _need_law(fit: LawFit, names: Sequence[str], what: str) -> None:
    if fit.law.name not in names:
        raise XlmrError(f"{what} needs a fit of the {' or '.join(names)} law, got {fit.law.name}")


def language_multipliers(fit: LawFit, r: float = 2.0) -> pd.DataFrame:
    """Parameter and token multipliers to go from K to ``r``·K languages at equal loss (ATLAS's table), from an
    ``atlas`` fit, with bootstrap intervals; the published K → 2K values beside them."""
    _need_law(fit, ("atlas",), "language_multipliers")
    p = fit.params
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        m = atlas_multipliers(p["phi"], p["psi"], p["alpha"], p["beta"], r)
        b = atlas_multipliers(fit.samples("phi"), fit.samples("psi"), fit.samples("alpha"), fit.samples("beta"), r)
    pub = PUBLISHED_MULTIPLIERS if r == PUBLISHED_MULTIPLIERS["r"] else {}
    note = {"params": "N × r^(φ/α)", "target_tokens": "D_t × r^(ψ/β)", "total_tokens": "D × r^(1+ψ/β), D = K·D_t"}
    df = _derived([(f"{k} ×", m[k], b[k], note[k]) for k in m], fit.level)
    df["published"] = [pub.get("params", np.nan), np.nan, pub.get("total_tokens", np.nan)]
    df["r"] = r
    return df


def _turning_k(phi, psi_eff, A, B, N, D, alpha, beta):
    """K* where dL/dK changes sign (vectorised over bootstrap samples): 1 if L only rises, ∞ if it only falls."""
    phi, psi_eff = np.asarray(phi, float), np.asarray(psi_eff, float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ratio = (-psi_eff / phi) * (B / A) * N ** alpha / D ** beta
        k = ratio ** (1.0 / (phi - psi_eff))
    opposite = phi * psi_eff < 0
    out = np.where(opposite, np.maximum(k, 1.0), np.where((phi >= 0) & (psi_eff >= 0), 1.0, np.inf))
    return np.where(np.isnan(phi) | np.isnan(psi_eff), np.nan, out)


def turning_point(fit: LawFit, n_params=None, *, budget: str = "matched", tokens: float | None = None,
                  total_column: str = "D") -> pd.DataFrame:
    """The number of languages K* beyond which a target language's loss rises, at each of ``n_params`` (default:
    the model sizes fitted), from an ``atlas`` fit. ``budget="matched"``: the target's tokens D_t held at
    ``tokens`` (default: the median D_t fitted). ``budget="fixed"``: the total D held at ``tokens`` (default: the
    median of ``total_column`` fitted) and D_t = D/K. K* = 1: every added language hurts; ∞: none does (see the
    module docstring)."""
    _need_law(fit, ("atlas",), "turning_point")
    if budget not in ("matched", "fixed"):
        raise XlmrError(f"turning_point: budget must be 'matched' or 'fixed', got {budget!r}")
    if n_params is None:
        n_params = np.sort(fit.data[fit.columns["N"]].unique()) if len(fit.data) else [math.nan]
    p = fit.params
    s = {k: fit.samples(k) for k in ("phi", "psi", "A", "B", "alpha", "beta")}
    col = fit.columns["D_t"] if budget == "matched" else total_column
    if tokens is None:
        tokens = float(fit.data[col].median()) if len(fit.data) and col in fit.data.columns else math.nan
    D = float(tokens)
    if budget == "fixed":
        design, psi, psi_s = f"fixed budget D = {_fmt(D)} (D_t = D/K)", p["psi"] + p["beta"], s["psi"] + s["beta"]
    else:
        design, psi, psi_s = f"matched: D_t = {_fmt(D)}", p["psi"], s["psi"]
    rows = []
    for N in np.atleast_1d(n_params):
        v = float(_turning_k(p["phi"], psi, p["A"], p["B"], N, D, p["alpha"], p["beta"]))
        bs = _turning_k(s["phi"], psi_s, s["A"], s["B"], N, D, s["alpha"], s["beta"]) if len(s["phi"]) else []
        rows.append((f"K* at N = {_fmt(N)}", v, np.asarray(bs, float), design))
    df = _derived(rows, fit.level)
    df["N"] = np.atleast_1d(n_params).astype(float)
    return df


def _vocab_fixed_total(A1, a1, A2, a2, P):
    """N_v in (0, P) minimising A1/(P − N_v)^a1 + A2/N_v^a2 (the derivative is increasing: one root)."""
    from scipy.optimize import brentq

    if not all(np.isfinite([A1, a1, A2, a2, P])) or P <= 0 or A1 <= 0 or A2 <= 0:
        return math.nan
    if a2 <= 0:
        return 0.0  # the vocabulary term does not fall with N_v: spend nothing on it
    if a1 <= 0:
        return float(P)

    def g(u):  # u = log(N_v / (P − N_v)); sign of dL/dN_v
        nv, rest = P / (1.0 + math.exp(-u)), P / (1.0 + math.exp(u))
        return math.log(a1 * A1) - (a1 + 1) * math.log(rest) - math.log(a2 * A2) + (a2 + 1) * math.log(nv)

    lo, hi = -60.0, 60.0
    if g(lo) > 0:
        return 0.0
    if g(hi) < 0:
        return float(P)
    u = brentq(g, lo, hi, xtol=1e-10)
    return float(P / (1.0 + math.exp(-u)))


def _vocab_fixed_flops(A2, a2, B, beta, Nnv, F):
    """N_v minimising A2/N_v^a2 + B/(F / (6·(N_nv + N_v)))^β (Tao et al.'s fixed-compute optimum)."""
    from scipy.optimize import minimize_scalar

    if not all(np.isfinite([A2, a2, B, beta, Nnv, F])) or a2 <= 0:
        return math.nan

    def loss(lv):
        nv = math.exp(lv)
        return A2 * nv ** -a2 + B * (6.0 * (Nnv + nv) / F) ** beta

    res = minimize_scalar(loss, bounds=(0.0, math.log(Nnv * 1e4)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


def optimal_vocab(fit: LawFit, total_params: float | None = None, *, width: float | None = None,
                  non_embedding: float | None = None, flops: float | None = None) -> pd.DataFrame:
    """The loss-optimal vocabulary under a ``vocab`` fit, with bootstrap intervals: vocabulary parameters N_v*,
    the non-embedding size that goes with them and the vocabulary size N_v*/``width`` (default: the median
    ``hidden_size`` fitted, if the table has it).

    Fixed total parameters (default; ``total_params`` defaults to the median N + N_v fitted): the split of
    P = N_nv + N_v that minimises the law. With ``non_embedding`` and ``flops``: Tao et al.'s optimum at a fixed
    non-embedding size and compute, D = F/(6·(N_nv + N_v)). At a fixed non-embedding size and fixed tokens the
    law falls with N_v without end, so there is no optimum to report.
    """
    _need_law(fit, ("vocab", "vocab_untied"), "optimal_vocab")
    if width is None and "hidden_size" in fit.data.columns and len(fit.data):
        width = float(fit.data["hidden_size"].median())
    p, s = fit.params, {k: fit.samples(k) for k in ("A1", "alpha1", "A2", "alpha2", "B", "beta")}
    nb = len(s["A1"])
    if flops is not None:
        if non_embedding is None:
            raise XlmrError("optimal_vocab: flops needs non_embedding (the non-embedding size it is for)")
        mode = f"fixed N_nv = {_fmt(non_embedding)} and compute F = {_fmt(flops)}"
        v = _vocab_fixed_flops(p["A2"], p["alpha2"], p["B"], p["beta"], non_embedding, flops)
        bs = np.array([_vocab_fixed_flops(s["A2"][i], s["alpha2"][i], s["B"][i], s["beta"][i], non_embedding, flops)
                       for i in range(nb)])
        nnv, nnv_s = float(non_embedding), np.full(nb, float(non_embedding))
    else:
        if total_params is None:
            total_params = (float((fit.data[fit.columns["N"]] + fit.data[fit.columns["N_v"]]).median())
                            if len(fit.data) else math.nan)
        mode = f"fixed total N_nv + N_v = {_fmt(total_params)}"
        v = _vocab_fixed_total(p["A1"], p["alpha1"], p["A2"], p["alpha2"], total_params)
        bs = np.array([_vocab_fixed_total(s["A1"][i], s["alpha1"][i], s["A2"][i], s["alpha2"][i], total_params)
                       for i in range(nb)])
        nnv, nnv_s = total_params - v, total_params - bs
    rows = [("vocab params N_v*", v, bs, mode), ("non-embedding N_nv", nnv, nnv_s, mode)]
    if width is not None:
        rows.append((f"vocab size V* (width {_fmt(width)})", v / width, bs / width, mode))
    return _derived(rows, fit.level)


def exponent_table(fits: Mapping[str, LawFit | Mapping[str, LawFit]]) -> pd.DataFrame:
    """The fitted exponents of several fits ({label: fit}, or {label: {group: fit}} as ``fit_groups`` gives) with
    their intervals, next to the published ones."""
    flat = {}
    for label, f in fits.items():
        flat.update({f"{label}: {g}": v for g, v in f.items()} if isinstance(f, Mapping) else {label: f})
    rows = []
    for label, fit in flat.items():
        pub = [p for p in PUBLISHED if p["law"] == fit.law.name.replace("_untied", "")]
        for e in fit.law.exponents:
            ref = [p for p in pub if p["param"] == e]
            lo, hi = fit.ci[e]
            rows.append({"fit": label, "law": fit.law.name, "exponent": _sym(e), "value": fit.params[e],
                         "lo": lo, "hi": hi, "ours": fmt_interval(fit.params[e], lo, hi),
                         "published": "; ".join(f"{r['value']:g} ({r['source']})" for r in ref),
                         "fit_ok": fit.ok, "flags": "; ".join(fit.flags)})
    return pd.DataFrame(rows, columns=["fit", "law", "exponent", "value", "lo", "hi", "ours", "published", "fit_ok",
                                       "flags"])


def weighting_effect(unweighted: LawFit, weighted: LawFit) -> pd.DataFrame:
    """Does weighting the rows by their evaluation standard errors change the exponents? Per exponent, both
    values with their intervals and ``moved``: the weighted value outside the unweighted fit's interval."""
    rows = []
    for e in unweighted.law.exponents:
        lo, hi = unweighted.ci[e]
        w, wlo, whi = weighted.params[e], *weighted.ci[e]
        rows.append({"exponent": _sym(e), "unweighted": fmt_interval(unweighted.params[e], lo, hi),
                     "weighted by s.e.": fmt_interval(w, wlo, whi),
                     "moved": bool(np.isfinite(w) and np.isfinite(lo) and not lo <= w <= hi)})
    return pd.DataFrame(rows, columns=["exponent", "unweighted", "weighted by s.e.", "moved"])
