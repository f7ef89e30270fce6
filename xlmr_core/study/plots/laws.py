"""Fitted scaling laws (``xlmr_core.study.laws``: ``LawFit``, ``Extrapolation``) against their points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from xlmr_core.errors import XlmrError
from xlmr_core.study.plots.common import _attach, _colors, _errorbar, _figure, si

LAW_AXES = {"N": "non-embedding parameters N", "K": "languages K", "D_t": "target-language tokens D_t",
            "D": "training tokens D", "N_v": "vocabulary parameters N_v"}


def _law_points(df: pd.DataFrame, keys: Sequence[str], loss: str) -> pd.DataFrame:
    """Mean, sample s.d. (ddof=1; NaN with one row) and count of ``loss`` per ``keys`` group."""
    out = df.groupby(list(keys), dropna=False)[loss].agg(y="mean", err="std", n="count").reset_index()
    out["err"] = out["err"].where(out["n"] > 1)
    return out


def _law_panel(label_: str, panel: str) -> str:
    return f"{label_}: {panel}" if label_ else panel


def _law_x_axis(ax, values) -> None:
    ax.set_xscale("log")
    ticks = sorted({float(v) for v in values if np.isfinite(v) and v > 0})
    if 1 < len(ticks) <= 8:
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())


def _law_at(both: pd.DataFrame, others: Sequence[str], at: dict | None) -> dict:
    """The value of each other variable that the curve panel is drawn at: ``at``, else the most frequent one."""
    out = {}
    for c in others:
        if at and c in at:
            out[c] = float(at[c])
        elif c in both.columns and both[c].notna().any():
            out[c] = float(both[c].round(6).mode().iloc[0])
    return out


def _law_slice(d: pd.DataFrame, at: dict) -> pd.DataFrame:
    keep = np.ones(len(d), bool)
    for c, v in at.items():
        keep &= np.isclose(d[c].to_numpy(float), v, rtol=1e-6)
    return d[keep]


def _law_row(axes, fit, x: str, hue: str | None, label_: str, at: dict | None = None, held=None, held_points=None,
             held_note: str = "") -> list:
    """Two panels for one fit: loss against ``x`` at fixed values of the other variables (``at``; default the most
    frequent), one curve per ``hue`` value; and predicted against observed for every point."""
    ax, par = axes
    xc, hc = fit.columns.get(x, x), (fit.columns.get(hue, hue) if hue else None)
    loss, data = fit.loss_column, fit.data
    held = held if held is not None and len(held) else data.iloc[:0]
    cb = fit.constant_by if fit.constant_by not in (None, xc, hc) else None
    # a constant per language (or other column): the curves are drawn for one of them, ``at[cb]`` or en or the first
    level = ((at or {}).get(cb) or ("en" if "en" in fit.levels else fit.levels[0])) if cb and fit.levels else None
    shown, shown_held = data, held  # the rows of the curve panel
    if level is not None:
        shown, shown_held = data[data[cb].astype(str) == level], held[held[cb].astype(str) == level]
    both = pd.concat([shown, shown_held], ignore_index=True)
    if hc is not None and hc not in both.columns:
        hc = None
    hues = sorted(both[hc].dropna().unique()) if hc is not None and len(both) else [None]
    colors = _colors(len(hues))
    xs = both[xc].to_numpy(float) if xc in both.columns and len(both) else np.array([])
    others = [fit.columns[v] for v in fit.law.variables if fit.columns[v] not in (xc, hc)]
    at = _law_at(both, others, at)
    rows = []
    for h, color in zip(hues, colors):
        sub = _law_slice(shown if h is None else shown[shown[hc] == h], at)
        subh = _law_slice(shown_held if h is None else shown_held[shown_held[hc] == h], at)
        name = "all" if h is None else f"{hue}={si(h)}"
        for part, d, style in ((name, sub, {}), (f"{name} held-out", subh, {"mfc": "white"})):
            if d.empty:
                continue
            pts = _law_points(d, [xc], loss).rename(columns={xc: "x"})
            _errorbar(ax, pts, color=color, marker="o", ls="none", label=part, **style)
            pts = pts.assign(panel=_law_panel(label_, "curve"), series=part)
            rows.append(pts[["panel", "series", "x", "y", "err", "n"]])
        if fit.fitted and len(xs) and (len(sub) or len(subh)):
            grid = np.geomspace(np.nanmin(xs), np.nanmax(xs), 60)
            frame = {xc: grid, **({hc: np.full(len(grid), h)} if hc is not None else {})}
            frame.update({c: np.full(len(grid), v) for c, v in at.items()})
            if level is not None:
                frame[cb] = np.full(len(grid), level)
            pr = fit.predict(pd.DataFrame(frame), interval=True)
            ax.plot(grid, pr["predicted"], color=color, lw=0.9)
            band = (np.isfinite(pr["lo"]) & np.isfinite(pr["hi"])).to_numpy()
            if band.any():
                ax.fill_between(grid[band], pr["lo"][band], pr["hi"][band], color=color, alpha=0.15, lw=0)
    _law_x_axis(ax, xs if len(np.unique(xs)) <= 5 else [])
    ax.set_xlabel(LAW_AXES.get(x, x))
    ax.set_ylabel(f"{fit.loss} ↓", fontsize=6)
    where = ", ".join([f"{c}={si(v)}" for c, v in at.items()] + ([f"{cb}={level}"] if level is not None else []))
    ax.set_title(f"{fit.law.title}{f' ({label_})' if label_ else ''}" + (f"\nat {where}" if where else ""),
                 fontsize=7)
    if rows:
        ax.legend(fontsize=5, ncol=2 if len(hues) > 4 else 1)
    if not fit.fitted:
        reasons = "\n".join(f.removeprefix("no fit: ") for f in fit.flags)
        ax.text(0.5, 0.5, "no fit:\n" + reasons, transform=ax.transAxes, ha="center", va="center",
                fontsize=5, color="C3", wrap=True)

    # predicted against observed, per point (mean over seeds), every point of the fit
    keys = [fit.columns[v] for v in fit.law.variables] + [c for c in ("lang", "group") if c in data.columns]
    keys += [cb] if cb and cb not in keys else []
    parity = []
    if len(data):
        pts = _law_points(data, keys, loss)
        pts["predicted"] = fit.predict(pts)
        par.scatter(pts["y"], pts["predicted"], s=8, color="C0", label=f"fitted ({fit.r2_text()})")
        parity.append(pd.DataFrame({"panel": _law_panel(label_, "parity"), "series": "fitted", "x": pts["y"],
                                    "y": pts["predicted"], "err": np.nan, "n": pts["n"]}))
    if held_points is not None and len(held_points):
        hp = held_points
        yerr = np.vstack([hp["predicted"] - hp["predicted_lo"], hp["predicted_hi"] - hp["predicted"]])
        par.errorbar(hp["observed"], hp["predicted"], yerr=np.nan_to_num(np.abs(yerr)), fmt="o", ms=4, mfc="white",
                     color="C3", capsize=2, lw=0.8, label="held out")
        parity.append(pd.DataFrame({"panel": _law_panel(label_, "parity"), "series": "held out",
                                    "x": hp["observed"], "y": hp["predicted"],
                                    "err": (hp["predicted_hi"] - hp["predicted_lo"]) / 2, "n": hp["n"]}))
    vals = np.concatenate([p[["x", "y"]].to_numpy(float).ravel() for p in parity] or [np.array([])])
    vals = vals[np.isfinite(vals)]
    if len(vals):
        lo, hi = vals.min(), vals.max()
        pad = 0.05 * (hi - lo or 1.0)
        par.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.7, ls="--")
        par.legend(fontsize=5, loc="upper left")
    par.set_xlabel("observed (mean over seeds)", fontsize=7)
    par.set_ylabel("predicted by the law", fontsize=7)
    notes = ([held_note] if held_note else []) + ["flags: " + ("; ".join(fit.flags) if fit.flags else "none")]
    par.set_title("\n".join(notes), fontsize=5, color="0.2" if fit.ok else "C3", wrap=True)
    return rows + parity


def law_fit(fit, *, x: str = "N", hue: str | None = "K", at: dict | None = None) -> Figure:
    """A fitted law (``laws.LawFit``, or {label: LawFit}: one row each) against its points. Left: loss against
    ``x``, one colour per ``hue`` value, at fixed values of the law's other variables (``at``, default the most
    frequent value of each): points are the rows there, mean ± s.d. over seeds (and languages at the same sizes);
    curves the law, band its bootstrap interval. Right: predicted against observed for every point of the fit,
    with the fit's R² and its flags. ``fig.fits`` holds the parameters with their intervals."""
    fits = fit if isinstance(fit, dict) else {"": fit}
    if not fits:
        raise XlmrError("law_fit: no fits to draw")
    fig, axes = _figure(len(fits), 2)
    rows, tables = [], []
    for r, (name, f) in enumerate(fits.items()):
        rows += _law_row(axes[r], f, x, hue, name, at=at)
        tables.append(f.table().assign(fit=name))
    _attach(fig, rows)
    fig.fits = pd.concat(tables, ignore_index=True)
    return fig


def law_extrapolation(ext, *, x: str | None = None, hue: str | None = "K", at: dict | None = None) -> Figure:
    """A law fitted on the smaller points (filled) predicting the held-out larger ones (open), with the prediction
    intervals, the relative errors and the held-out R² (``laws.Extrapolation``). ``fig.fits``: the held-out points."""
    fig, axes = _figure(1, 2)
    rows = _law_row(axes[0], ext.fit, x or ext.by, hue, "", at=at, held=ext.heldout, held_points=ext.points,
                    held_note="; ".join([ext.summary(), *ext.flags]))
    axes[0, 0].axvline(ext.threshold, color="0.6", lw=0.6, ls=":")
    _attach(fig, rows)
    fig.fits = ext.points.copy()
    return fig
