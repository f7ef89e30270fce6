"""Fitting a law: ``fit_law`` (Huber on log-loss by L-BFGS-B from a grid of starts, a bootstrap over points and
seeds for the intervals, rows optionally weighted by their standard errors, and the flags of a bad fit),
``fit_groups`` (one fit per group) and ``LawFit``, the result: parameters with their intervals, R², the flags,
and predictions with the bootstrap interval of the mean.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xlmr_core.errors import XlmrError
from xlmr_core.study.laws.forms import (
    DELTA,
    EXTRA_POINTS,
    MIN_R2,
    Law,
    _fmt,
    _Model,
    _param_names,
    _sym,
    fmt_interval,
    get_law,
)


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
