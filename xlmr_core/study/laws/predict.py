"""Prediction as the test of a law: ``extrapolate`` fits on the smaller points and predicts the held-out larger
ones, ``prediction_errors`` scores a fit on any rows (relative errors and R² with their intervals), and
``Extrapolation`` holds the result next to the baseline a law has to beat: each held-out point's value at the
largest size fitted, carried forward (``_carried_forward``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xlmr_core.errors import XlmrError
from xlmr_core.study.laws.fit import LawFit, _interval, _r2, _r2_within, fit_law
from xlmr_core.study.laws.forms import Law, _fmt, fmt_interval, get_law


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
