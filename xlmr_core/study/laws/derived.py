"""Derived answers from fitted laws, each with its bootstrap interval: ``language_multipliers`` (K → r·K languages
at equal loss; ``atlas_multipliers``, the closed form), ``turning_point`` (the K beyond which a language's loss
rises), ``optimal_vocab`` (the loss-optimal vocabulary under the vocabulary law); and tables that compare fits:
``exponent_table`` (against the published exponents), ``weighting_effect`` (weighted against unweighted). The
formulas are derived in the ``xlmr_core.study.laws`` docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xlmr_core.errors import XlmrError
from xlmr_core.study.laws.fit import LawFit, _interval
from xlmr_core.study.laws.forms import PUBLISHED, PUBLISHED_MULTIPLIERS, _fmt, _sym, fmt_interval


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
    ``xlmr_core.study.laws`` docstring)."""
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
