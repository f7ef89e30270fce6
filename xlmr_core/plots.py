"""Figures of the scaling studies, drawn from the DataFrames of ``xlmr_core.results``; every function returns a Figure.

Conventions shared by all figures:

- **Seeds.** A run's value for a language group is the mean over the group's languages in that run; a sweep
  point's value is the mean over its seeds, and its error bar is ±1 sample standard deviation over the seeds
  (ddof=1; no bar with one seed).
- **Resource groups.** ``high`` / ``low`` come from the sweep's tags (the languages of the smallest language
  set that the sweep marks as high- or low-resource, as XLM-7's en/fr/de/ru/zh vs sw/ur); without such tags,
  ``resource_groups`` ranks the languages common to every run by training bytes: top third high, bottom third low.
- **Trends.** Least squares of the per-run values (every seed) against log2 of the x value; the slope is the
  change per doubling, with its standard error, and the band is ±1 standard error of the fitted line.
- **The paper.** ``PAPER_XNLI`` holds the numbers that Conneau et al. (2019, arXiv 1911.02116) state in the text
  of §5; they are drawn (capacity) or written (vocabulary, α) beside our curves, labelled "paper (XNLI acc.)".

Every figure carries ``fig.plotted_data``: a DataFrame of exactly what is drawn (columns panel, series, x, y,
err, n), and, where a trend is fitted, ``fig.fits`` (panel, series, slope, slope_se, intercept, n). Figures are
built with ``matplotlib.figure.Figure`` (no pyplot state); sizes suit a paper column (~3.3 in per panel).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .errors import XlmrError
from .fsutil import atomic_write_bytes

PANEL_W, PANEL_H = 3.3, 2.5  # inches: one panel per paper column
PAPER_STYLE = dict(color="0.45", ls="--", marker="s", ms=3.5, lw=1.0)

PAPER_XNLI: dict[str, dict] = {
    "capacity": {"ref": "Conneau et al. 2019, §5 and Figure 2 (BERT-base, 150K vocab)",
                 "n_langs": (7, 100), "xnli_all": (71.8, 67.7),
                 "note": "average XNLI accuracy, 7 → 100 languages"},
    "capacity_width": {"ref": "Conneau et al. 2019, §5 and Figure 4",
                       "note": "widening 768 → 960 → 1152: XLM-30 catches up with XLM-7, XLM-100 still lags"},
    "vocab": {"ref": "Conneau et al. 2019, §5 and Figure 6",
              "fixed_total": "32K → 256K vocabulary: +2.8 avg. XNLI acc.",
              "fixed_transformer": "128K → 512K vocabulary: more than +3 avg. XNLI acc."},
    "alpha": {"ref": "Conneau et al. 2019, §5 and Figure 5", "best": 0.3,
              "note": "α = 0.3 best overall; larger α favours high-resource, smaller α low-resource languages"},
}
"""The paper's numbers as its §5 states them (its figures give the other points only as bars)."""

METRICS: dict[str, str] = {
    "bpb": "held-out bits per byte",
    "unigram_bpb": "unigram baseline, bits per byte",
    "bpb_below_unigram": "bits per byte below unigram",
    "unigram_gain": "gain over unigram (1 − bpb / unigram bpb)",
    "loss_bits": "held-out loss (bits per token)",
    "acc": "masked-token accuracy",
    "retrieval": "retrieval accuracy (↔ en)",
    "tokens_per_char": "tokens per character",
    "loss": "training loss (nats per token)",
    "train_loss_bits": "training loss (bits per masked token)",
}
"""Axis labels, with units."""

LOWER_IS_BETTER = {"bpb", "loss_bits", "tokens_per_char", "loss", "train_loss_bits"}
GROUP_STYLE = {"high": dict(marker="o", ls="-"), "low": dict(marker="v", ls="--"), "all": dict(marker="D", ls=":")}


# ---------------------------------------------------------------- small helpers


def label(metric: str) -> str:
    """Axis label of a metric, with its unit and direction."""
    text = METRICS.get(metric, metric)
    return text + (" ↓" if metric in LOWER_IS_BETTER else " ↑")


def _figure(nrows: int, ncols: int, **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(PANEL_W * ncols, PANEL_H * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _need(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise XlmrError(f"{what}: the results table has no column(s) {', '.join(missing)} "
                        f"(columns: {', '.join(map(str, df.columns[:40]))}); is this the right sweep?")
    if df.empty:
        raise XlmrError(f"{what}: the results table is empty: no finished runs to plot")


def _log2_axis(ax, values) -> None:
    """A log2 x axis with plain tick labels at the given values."""
    ax.set_xscale("log", base=2)
    ticks = sorted({float(v) for v in values if np.isfinite(v) and v > 0})
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _si(v: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def _done(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "done"] if "status" in df.columns else df


def retrieval_accuracy(long_df: pd.DataFrame) -> pd.Series:
    """Per row, the mean cross-lingual retrieval accuracy over the parallel sets and both directions (to/from
    the pivot language); NaN where the language has no retrieval result (the pivot itself, no parallel text)."""
    cols = [c for c in long_df.columns
            if str(c).startswith("eval.retrieval.") and str(c).endswith((".to_pivot", ".from_pivot"))]
    if not cols:
        return pd.Series(np.nan, index=long_df.index, name="retrieval")
    return long_df[cols].mean(axis=1, skipna=True).rename("retrieval")


def resource_groups(long_df: pd.DataFrame) -> pd.Series:
    """``high`` / ``low`` / ``other`` per row: the sweep's tags if they name both groups, else by training bytes.

    Without tags, the languages trained on in every run are ranked by their training bytes; the top third is
    ``high`` and the bottom third ``low`` (so the groups hold the same languages at every sweep point).
    """
    if "group" in long_df.columns and {"high", "low"} <= set(long_df["group"]):
        return long_df["group"]
    _need(long_df, ["run", "lang", "train_bytes"], "resource groups")
    trained = long_df[long_df["seen"].astype(bool)] if "seen" in long_df.columns else long_df
    runs = trained.groupby("lang")["run"].nunique()
    common = runs.index[runs == trained["run"].nunique()]
    size = trained[trained["lang"].isin(common)].groupby("lang")["train_bytes"].mean().sort_values(ascending=False)
    k = max(1, len(size) // 3)
    group = {lang: "high" for lang in size.index[:k]} | {lang: "low" for lang in size.index[len(size) - k:]}
    return long_df["lang"].map(group).fillna("other").rename("group")


def seed_stats(df: pd.DataFrame, keys: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and count over the rows (one per run) of each ``keys`` group."""
    g = df.dropna(subset=[value]).groupby(list(keys))[value]
    out = g.agg(y="mean", err="std", n="count").reset_index()
    out["err"] = out["err"].where(out["n"] > 1)
    return out


def run_group_means(long_df: pd.DataFrame, metric: str, groups: Sequence[str] = ("high", "low"),
                    keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per run and resource group: the mean of ``metric`` over the group's trained languages."""
    df = _done(long_df).copy()
    df["group"] = resource_groups(df)
    if metric == "retrieval":
        df["retrieval"] = retrieval_accuracy(df)
    if "seen" in df.columns:
        df = df[df["seen"].astype(bool)]
    keep = ["run", "seed", *keys]
    parts = []
    for g in groups:
        sub = df if g == "all" else df[df["group"] == g]
        m = sub.groupby(keep, dropna=False)[metric].mean().reset_index()
        parts.append(m.assign(group=g))
    return pd.concat(parts, ignore_index=True)


def fit_log_trend(x, y) -> dict:
    """Least squares ``y = a + b·log2(x)``: slope b (per doubling of x) ± its standard error, intercept a.

    Standard errors use the residual variance RSS/(n−2); they are NaN with fewer than three points.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    t, y = np.log2(x[ok]), y[ok]
    n = len(t)
    if n < 2 or np.ptp(t) == 0:
        return dict(slope=math.nan, slope_se=math.nan, intercept=math.nan, intercept_se=math.nan, n=n,
                    s2=math.nan, t_mean=math.nan, sxx=math.nan)
    t_mean = t.mean()
    sxx = float(((t - t_mean) ** 2).sum())
    slope = float(((t - t_mean) * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * t_mean)
    s2 = float(((y - intercept - slope * t) ** 2).sum() / (n - 2)) if n > 2 else math.nan
    return dict(slope=slope, slope_se=math.sqrt(s2 / sxx), intercept=intercept,
                intercept_se=math.sqrt(s2 * (1 / n + t_mean ** 2 / sxx)), n=n, s2=s2, t_mean=float(t_mean),
                sxx=sxx)


def _draw_trend(ax, fit: dict, xs, color) -> None:
    """The fitted line over the x range and its ±1 standard-error band."""
    if not np.isfinite(fit["slope"]):
        return
    grid = np.geomspace(min(xs), max(xs), 50)
    t = np.log2(grid)
    line = fit["intercept"] + fit["slope"] * t
    ax.plot(grid, line, color=color, lw=0.8, alpha=0.8)
    if np.isfinite(fit["s2"]):
        se = np.sqrt(fit["s2"] * (1 / fit["n"] + (t - fit["t_mean"]) ** 2 / fit["sxx"]))
        ax.fill_between(grid, line - se, line + se, color=color, alpha=0.15, lw=0)


def _errorbar(ax, d: pd.DataFrame, **kw):
    return ax.errorbar(d["x"], d["y"], yerr=d["err"].fillna(0).to_numpy(), capsize=2, ms=4, lw=1.2, **kw)


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.15 + 0.7 * i / max(1, n - 1)) for i in range(n)]


def _attach(fig: Figure, rows: list[pd.DataFrame], fits: list[dict] | None = None) -> Figure:
    fig.plotted_data = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    fig.fits = pd.DataFrame(fits or [])
    return fig


def _single(df: pd.DataFrame, col: str, what: str):
    vals = df[col].dropna().unique()
    if len(vals) > 1:
        raise XlmrError(f"{what}: runs differ in {col} ({', '.join(map(str, sorted(vals)))}); "
                        f"compare runs of one budget (filter the table first)")
    return vals[0] if len(vals) else None


def _paper_capacity_axis(ax, xs, panel: str) -> pd.DataFrame:
    """The paper's stated XNLI endpoints (7 → 100 languages) on a secondary axis of ``ax``, whose x is the
    number of languages; the legend merges both axes. Returns the drawn rows (for ``plotted_data``)."""
    p = PAPER_XNLI["capacity"]
    ax.set_xlim(min(xs[0], p["n_langs"][0]) / 1.2, max(xs[-1], p["n_langs"][-1]) * 1.2)
    _log2_axis(ax, [*xs, *p["n_langs"]])
    twin = ax.twinx()
    twin.plot(p["n_langs"], p["xnli_all"], label="paper (XNLI acc.), all languages", **PAPER_STYLE)
    twin.set_ylabel("paper (XNLI acc., %)", fontsize=7, color="0.45")
    twin.tick_params(labelsize=6, colors="0.45")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=5.5, loc="best")
    return pd.DataFrame({"x": p["n_langs"], "y": p["xnli_all"], "err": np.nan, "n": 1, "panel": panel,
                         "series": "paper (XNLI acc.)"})


# ---------------------------------------------------------------- capacity dilution (Figures 2 and 4)


def capacity_dilution(long_df: pd.DataFrame, metric: str = "bpb", *, x: str = "n_langs", hue: str = "width",
                      retrieval: bool = True, paper: bool = True) -> Figure:
    """Per-language ``metric`` and retrieval accuracy against the number of languages, high- and low-resource
    groups apart, one curve per width, ±1 s.d. over seeds, a log-linear trend ± s.e.; the last row compares
    at matched per-language tokens (Chang et al. 2023: x = tokens the run spent on each language).

    A sweep with design language sets (tags ``design`` and ``relation``: the demo, cpu and gpu scales) is drawn
    by ``capacity_designs`` instead."""
    if "relation" in long_df.columns and long_df["relation"].isin(("none", "related", "unrelated", "both")).any():
        return capacity_designs(long_df, metric, hue=hue, retrieval=retrieval)
    _need(long_df, ["run", "lang", x, metric, "tokens"], "capacity_dilution")
    df = _done(long_df).copy()
    if hue not in df.columns:
        df[hue] = "all"
    steps = _single(df, "steps", "capacity_dilution") if "steps" in df.columns else None
    df["lang_tokens"] = df["tokens"] * df["prob"] if "prob" in df.columns else np.nan
    ys = [metric] + (["retrieval"] if retrieval and retrieval_accuracy(df).notna().any() else [])
    chance = retrieval_chance(df)
    fig, axes = _figure(len(ys) + 1, 2)
    hues = sorted(df[hue].dropna().unique())
    colors = dict(zip(hues, _colors(len(hues))))
    xs = sorted(df[x].dropna().unique())
    rows, fits = [], []
    for r, ycol in enumerate(ys):
        per_run = run_group_means(df, ycol, keys=[x, hue])
        for c, group in enumerate(("high", "low")):
            ax = axes[r, c]
            for h in hues:
                runs = per_run[(per_run["group"] == group) & (per_run[hue] == h)]
                pts = seed_stats(runs, [x], ycol).rename(columns={x: "x"})
                if pts.empty:
                    continue
                fit = fit_log_trend(runs[x], runs[ycol])
                panel = f"{ycol}:{group}"
                series = f"{hue}={h:g}" if isinstance(h, (int, float, np.number)) else f"{hue}={h}"
                lab = f"{series}  slope {fit['slope']:+.3f} ± {fit['slope_se']:.3f}/2×"
                _errorbar(ax, pts, color=colors[h], label=lab, **GROUP_STYLE[group])
                _draw_trend(ax, fit, xs, colors[h])
                rows.append(pts.assign(panel=panel, series=series))
                fits.append(dict(panel=panel, series=series, **{k: fit[k] for k in
                                                                ("slope", "slope_se", "intercept", "n")}))
            if ycol == "retrieval" and np.isfinite(chance):
                ax.axhline(chance, color="0.3", lw=0.8, ls=":", label=f"chance ({chance:.3f})")
            if ycol in ("bpb_below_unigram", "unigram_gain"):
                ax.axhline(0.0, color="0.3", lw=0.8, ls=":", label="unigram baseline")
            ax.set_title(f"{group}-resource languages" + (f", {steps:g} steps" if steps and r == 0 else ""),
                         fontsize=9)
            ax.set_xlabel("languages in training (log scale)")
            ax.set_ylabel(label(ycol))
            _log2_axis(ax, xs)
            ax.legend(fontsize=6, loc="best")
    if paper and x == "n_langs":
        # the paper's stated endpoints on a secondary axis of the first panel (its x: number of languages too)
        rows.append(_paper_capacity_axis(axes[0, 0], xs, f"{metric}:high"))

    # matched per-language tokens: more languages in a fixed budget means fewer tokens for each of them
    per_run = run_group_means(df, metric, keys=[x, hue])
    tok = run_group_means(df, "lang_tokens", keys=[x, hue])
    per_run = per_run.merge(tok, on=["run", "seed", x, hue, "group"])
    for c, group in enumerate(("high", "low")):
        ax = axes[-1, c]
        for h in hues:
            runs = per_run[(per_run["group"] == group) & (per_run[hue] == h)]
            if runs.empty:
                continue
            pts = seed_stats(runs, [x], metric)
            pts = pts.merge(runs.groupby(x)["lang_tokens"].mean().rename("x").reset_index(), on=x)
            series = f"{hue}={h:g}" if isinstance(h, (int, float, np.number)) else f"{hue}={h}"
            _errorbar(ax, pts, color=colors[h], label=series, **GROUP_STYLE[group])
            for _, p in pts.iterrows():
                ax.annotate(f"{p[x]:g}", (p["x"], p["y"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
            rows.append(pts.drop(columns=[x]).assign(panel=f"{metric}:tokens:{group}", series=series,
                                                     n_langs=pts[x].to_numpy()))
        ax.set_xscale("log")
        ticks = sorted({float(v) for d in rows if d["panel"].iloc[0] == f"{metric}:tokens:{group}" for v in d["x"]})
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{group}-resource, matched tokens per language", fontsize=8)
        ax.set_xlabel("tokens per language (log; labels: languages)", fontsize=8)
        ax.set_ylabel(label(metric))
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Capacity dilution: more languages at a fixed model and budget", fontsize=10)
    return _attach(fig, rows, fits)


def retrieval_chance(long_df: pd.DataFrame) -> float:
    """Chance accuracy of the retrieval suite: the mean over languages and sets of 1 / (items retrieved among)."""
    cols = [c for c in long_df.columns if str(c).startswith("eval.retrieval.") and str(c).endswith(".n")]
    n = long_df[cols].to_numpy(dtype=float).ravel() if cols else np.array([])
    n = n[np.isfinite(n) & (n > 0)]
    return float(np.mean(1.0 / n)) if len(n) else math.nan


RELATION_STYLE = {"related": dict(ls="-", marker="o"), "unrelated": dict(ls="--", marker="s")}


def capacity_designs(long_df: pd.DataFrame, metric: str = "bpb_below_unigram", *, hue: str = "width",
                     retrieval: bool = True) -> Figure:
    """The capacity sweep's designs: ``metric`` of the target languages against the number of languages, one
    row per design (``matched``: each target's tokens fixed; ``fixed``: one budget for all), high- and
    low-resource targets apart, one colour per model width, related (solid) and unrelated (dashed) added
    languages; each line runs targets alone → + related or + unrelated → + both. ±1 s.d. over seeds.

    For the unigram-relative metrics the unigram baseline (0) is drawn; for retrieval, chance."""
    _need(long_df, ["run", "lang", "n_langs", "design", "relation", metric], "capacity_designs")
    df = _done(long_df).copy()
    df = df[df["relation"] != "nested"]
    if hue not in df.columns:
        df[hue] = "all"
    ys = [metric] + (["retrieval"] if retrieval and retrieval_accuracy(df).notna().any() else [])
    designs = [d for d in ("matched", "fixed") if d in set(df["design"])]
    if not designs:
        raise XlmrError("capacity_designs: no run of the matched or fixed design with design sets; "
                        "is this a capacity_dilution sweep of the demo, cpu or gpu scale?")
    fig, axes = _figure(len(designs) * len(ys), 2)
    hues = sorted(df[hue].dropna().unique())
    colors = dict(zip(hues, _colors(len(hues))))
    size_of = {}
    if "params_non_embedding" in df.columns:
        size_of = df.groupby(hue)["params_non_embedding"].first().to_dict()
    chance = retrieval_chance(df)
    rows, fits = [], []
    for di, design in enumerate(designs):
        sub = df[df["design"] == design]
        for yi, ycol in enumerate(ys):
            per_run = run_group_means(sub, ycol, keys=["n_langs", "relation", hue])
            for c, group in enumerate(("high", "low")):
                ax = axes[di * len(ys) + yi, c]
                for h in hues:
                    runs = per_run[(per_run["group"] == group) & (per_run[hue] == h)]
                    if runs.empty:
                        continue
                    for rel in ("related", "unrelated"):
                        path = runs[runs["relation"].isin(("none", rel, "both"))]
                        pts = seed_stats(path, ["n_langs"], ycol).rename(columns={"n_langs": "x"})
                        if pts.empty:
                            continue
                        fit = fit_log_trend(path["n_langs"], path[ycol])
                        n_ne = size_of.get(h)
                        series = f"{hue}={h:g}" + (f" ({_si(n_ne)} non-emb.)" if n_ne else "") + f", {rel}"
                        lab = f"{series}  {fit['slope']:+.3f}/2×"
                        _errorbar(ax, pts, color=colors[h], label=lab, **RELATION_STYLE[rel])
                        panel = f"{design}:{ycol}:{group}"
                        rows.append(pts.assign(panel=panel, series=series))
                        fits.append(dict(panel=panel, series=series,
                                         **{k: fit[k] for k in ("slope", "slope_se", "intercept", "n")}))
                if ycol in ("bpb_below_unigram", "unigram_gain"):
                    ax.axhline(0.0, color="0.3", lw=0.8, ls=":", label="unigram baseline")
                if ycol == "retrieval" and np.isfinite(chance):
                    ax.axhline(chance, color="0.3", lw=0.8, ls=":", label=f"chance ({chance:.3f})")
                ax.set_title(f"{design} design: {group}-resource targets", fontsize=8)
                ax.set_xlabel("languages in training (log scale)")
                ax.set_ylabel(label(ycol), fontsize=8)
                _log2_axis(ax, sorted(sub["n_langs"].unique()))
                ax.legend(fontsize=5, loc="best")
    what = {"matched": "matched: each target's tokens fixed", "fixed": "fixed: one budget for every set"}
    fig.suptitle("Capacity dilution: target languages as languages are added ("
                 + "; ".join(what[d] for d in designs) + ")", fontsize=9)
    return _attach(fig, rows, fits)


def arm_effects(effects: pd.DataFrame, *, arm: str = "relation", x: str = "width",
                baseline: str = "targets alone") -> Figure:
    """Paired gains of each arm over its baseline (``results.arm_effects``): one row per design, high- and
    low-resource targets apart, against ``x``. Each point carries two bars, drawn apart: the evaluation's
    standard error (thick, no caps: measurement error on the shared held-out tokens) and ±1 s.d. over seeds
    (thin, capped: training noise). Zero is "no effect"."""
    _need(effects, [arm, x, "group", "diff", "eval_se", "seed_sd"], "arm_effects")
    designs = sorted(effects["design"].dropna().unique()) if "design" in effects.columns else [None]
    fig, axes = _figure(len(designs), 2)
    arms = sorted(effects[arm].dropna().unique())
    colors = dict(zip(arms, _colors(len(arms))))
    xs = sorted(effects[x].dropna().unique())
    rows = []
    for di, design in enumerate(designs):
        sub = effects if design is None else effects[effects["design"] == design]
        for c, group in enumerate(("high", "low")):
            ax = axes[di, c]
            for k, a in enumerate(arms):
                d = sub[(sub["group"] == group) & (sub[arm] == a)].sort_values(x)
                if d.empty:
                    continue
                shift = 2 ** (0.06 * (k - (len(arms) - 1) / 2))  # side by side on the log axis
                px = d[x].to_numpy(dtype=float) * shift
                style = RELATION_STYLE.get(a, dict(ls="-", marker="o"))
                ax.errorbar(px, d["diff"], yerr=d["seed_sd"].fillna(0).to_numpy(), color=colors[a], capsize=3,
                            lw=0.8, ms=4, label=f"+ {a}: ±1 s.d. over seeds", **style)
                # beside the marker, not under it: the evaluation's error is often smaller than the marker
                ax.errorbar(px * 2 ** 0.025, d["diff"], yerr=d["eval_se"].to_numpy(), color=colors[a], fmt="none",
                            lw=3, alpha=0.6, capsize=0, label=f"+ {a}: ±1 s.e. of evaluation")
                panel = f"{design}:{group}" if design else group
                rows.append(pd.DataFrame({"panel": panel, "series": a, "x": d[x].to_numpy(), "y": d["diff"].to_numpy(),
                                          "err": d["seed_sd"].to_numpy(), "eval_se": d["eval_se"].to_numpy(),
                                          "n": d["n_seeds"].to_numpy() if "n_seeds" in d else np.nan}))
            ax.axhline(0.0, color="0.3", lw=0.8, ls=":", label=f"no change from {baseline}")
            ax.set_title((f"{design} design: " if design else "") + f"{group}-resource targets", fontsize=8)
            ax.set_xlabel(f"model {x}")
            ax.set_ylabel(f"gain over {baseline}\n(bits per byte below unigram)", fontsize=8)
            _log2_axis(ax, xs)
            ax.legend(fontsize=5, loc="best")
    fig.suptitle("Added languages: paired gain over the targets alone, on the same held-out tokens", fontsize=9)
    return _attach(fig, rows)


# ---------------------------------------------------------------- vocabulary (Figure 6)


def vocab_scaling(long_df: pd.DataFrame, metric: str = "bpb", *, x: str = "vocab", mode: str = "mode",
                  normalised: str | None = "bpb_below_unigram", paper: bool = True) -> Figure:
    """``metric`` against vocabulary size in both modes (fixed Transformer, fixed total parameters), beside it
    the ``normalised`` metric (bits per byte below the unigram baseline of each run's own tokenizer: what the
    model learned from context, which raw bits per byte mixes with the tokenizer's compression), fertility
    (tokens per character) and the embedding share of the parameters."""
    _need(long_df, ["run", "lang", x, mode, metric, "params_embedding", "params_total"], "vocab_scaling")
    df = _done(long_df).copy()
    if "seen" in df.columns:
        df = df[df["seen"].astype(bool)]
    fert = "eval.tokenizer.tokens_per_char"
    df["tokens_per_char"] = df[fert] if fert in df.columns else np.nan
    df["embedding_share"] = df["params_embedding"] / df["params_total"]
    if normalised and normalised not in df.columns:
        normalised = None
    aggs = {metric: (metric, "mean"), "tokens_per_char": ("tokens_per_char", "mean"),
            "embedding_share": ("embedding_share", "first")}
    if normalised:
        aggs[normalised] = (normalised, "mean")
    runs = df.groupby(["run", "seed", x, mode], dropna=False).agg(**aggs).reset_index()
    panels = [metric, *([normalised] if normalised else []), "tokens_per_char", "embedding_share"]
    fig, axes = _figure(1, len(panels))
    modes = sorted(runs[mode].unique())
    styles = {m: dict(color=c, marker=mk) for m, c, mk in zip(modes, ("C0", "C3", "C2", "C1"), "osD^")}
    xs = sorted(runs[x].unique())
    rows, fits = [], []
    for ax, col in zip(axes[0], panels):
        for m in modes:
            sub = runs[runs[mode] == m]
            pts = seed_stats(sub, [x], col).rename(columns={x: "x"})
            if pts.empty:
                continue
            lab = m.replace("_", " ")
            if col in (metric, normalised):
                fit = fit_log_trend(sub[x], sub[col])
                fits.append(dict(panel=col, series=m, **{k: fit[k] for k in ("slope", "slope_se", "intercept", "n")}))
                lab += f"  {fit['slope']:+.3f} ± {fit['slope_se']:.3f}/2×"
            _errorbar(ax, pts, label=lab, **styles[m])
            rows.append(pts.assign(panel=col, series=m))
        _log2_axis(ax, xs)
        ax.set_xlabel("vocabulary (SentencePiece pieces, log)")
        ax.set_ylabel("embedding share of parameters" if col == "embedding_share" else label(col), fontsize=9)
        ax.legend(fontsize=6, loc="best")
    axes[0, 0].set_title("masked LM, both modes", fontsize=9)
    if normalised:
        axes[0, 1].set_title("below the unigram baseline (learned from context)", fontsize=8)
        axes[0, 1].axhline(0.0, color="0.3", lw=0.8, ls=":")
    axes[0, -2].set_title("fertility (held-out text)", fontsize=9)
    axes[0, -1].set_title("parameters in the embeddings", fontsize=9)
    axes[0, -1].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    if paper:
        p = PAPER_XNLI["vocab"]
        # the paper's vocabularies (32K–512K) are off our axis: its stated gains as a note
        fig.supxlabel(f"paper (XNLI acc.): fixed total parameters, {p['fixed_total']}; fixed Transformer, "
                      f"{p['fixed_transformer']} ({p['ref']})", fontsize=6, color="0.35")
    fig.suptitle("Vocabulary size: fixed Transformer vs fixed total parameters", fontsize=10)
    return _attach(fig, rows, fits)


# ---------------------------------------------------------------- sampling exponent (Figure 5)


def sampling_alpha(long_df: pd.DataFrame, metric: str = "bpb", *, x: str = "alpha", paper: bool = True) -> Figure:
    """Low- and high-resource ``metric`` per sampling exponent α (q_i ∝ p_i^α), and the trade-off between them."""
    _need(long_df, ["run", "lang", x, metric], "sampling_alpha")
    per_run = run_group_means(long_df, metric, groups=("high", "low", "all"), keys=[x])
    fig, axes = _figure(1, 2)
    rows = []
    ax = axes[0, 0]
    for g, color in zip(("high", "low", "all"), ("C0", "C3", "0.3")):
        pts = seed_stats(per_run[per_run["group"] == g], [x], metric).rename(columns={x: "x"})
        if pts.empty:
            continue
        _errorbar(ax, pts, color=color, label=f"{g}-resource" if g != "all" else "all languages", **GROUP_STYLE[g])
        rows.append(pts.assign(panel=metric, series=g))
    ax.set_xticks(sorted(per_run[x].unique()))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("sampling exponent α")
    ax.set_ylabel(label(metric))
    if paper:
        ax.axvline(PAPER_XNLI["alpha"]["best"], label="paper (XNLI acc.): best α",
                   **{k: v for k, v in PAPER_STYLE.items() if k in ("color", "ls", "lw")})
    ax.legend(fontsize=6)
    # the trade-off: each α a point (high, low)
    ax = axes[0, 1]
    wide = pd.concat([seed_stats(per_run[per_run["group"] == g], [x], metric).set_index(x).add_prefix(g + "_")
                      for g in ("high", "low")], axis=1).dropna(subset=["high_y", "low_y"]).reset_index()
    ax.errorbar(wide["high_y"], wide["low_y"], xerr=wide["high_err"].fillna(0), yerr=wide["low_err"].fillna(0),
                fmt="o-", color="C2", capsize=2, ms=4, lw=1)
    for _, r in wide.iterrows():
        ax.annotate(f"α={r[x]:g}", (r["high_y"], r["low_y"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    rows.append(pd.DataFrame({"x": wide["high_y"], "y": wide["low_y"], "err": wide["low_err"],
                              "n": wide["low_n"], "alpha": wide[x], "panel": "tradeoff", "series": "high vs low"}))
    short = {"bpb": "bits/byte"}.get(metric, metric)
    ax.set_xlabel(f"high-resource {short}" + (" ↓" if metric in LOWER_IS_BETTER else " ↑"))
    ax.set_ylabel(f"low-resource {short}" + (" ↓" if metric in LOWER_IS_BETTER else " ↑"))
    ax.set_title("trade-off between the groups", fontsize=9)
    fig.suptitle("Language sampling exponent α", fontsize=10)
    return _attach(fig, rows)


# ---------------------------------------------------------------- training curves


def training_curves(curves_df: pd.DataFrame, y: str = "loss_bits", *, x: str = "tokens", hue: str = "point",
                    logx: bool = True) -> Figure:
    """Training loss against tokens seen, one line per sweep point (mean over seeds, band ±1 s.d.)."""
    _need(curves_df, [x, y], "training_curves")
    df = curves_df.dropna(subset=[x, y]).copy()
    if hue not in df.columns:
        df[hue] = df["run"]
    fig, axes = _figure(1, 1)
    ax = axes[0, 0]
    fig.set_size_inches(PANEL_W * 1.4, PANEL_H * 1.2)
    hues = sorted(df[hue].astype(str).unique())
    colors = dict(zip(hues, _colors(len(hues))))
    rows = []
    for h in hues:
        pts = seed_stats(df[df[hue].astype(str) == h], [x], y).rename(columns={x: "x"})
        ax.plot(pts["x"], pts["y"], color=colors[h], lw=1, label=h)
        if pts["err"].notna().any():
            ax.fill_between(pts["x"], pts["y"] - pts["err"].fillna(0), pts["y"] + pts["err"].fillna(0),
                            color=colors[h], alpha=0.2, lw=0)
        rows.append(pts.assign(panel=y, series=h))
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel({"tokens": "training tokens seen", "step": "optimizer steps", "flops": "training FLOPs"}.get(x, x)
                  + (" (log scale)" if logx else ""))
    ax.set_ylabel(METRICS["train_loss_bits"] if y == "loss_bits" else label(y))
    ax.legend(fontsize=6, ncol=2 if len(hues) > 6 else 1)
    return _attach(fig, rows)


# ---------------------------------------------------------------- saving


def save(fig: Figure, figures_dir: str | os.PathLike, name: str, dpi: int = 200) -> list[Path]:
    """Write ``figures_dir/name.png`` (``dpi``) and ``name.pdf``, and the numbers drawn as ``name.csv``
    (``fig.plotted_data``), each atomically; returns the paths."""
    out = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=dpi if ext == "png" else None)
        out.append(atomic_write_bytes(Path(figures_dir) / f"{name}.{ext}", buf.getvalue()))
    data = getattr(fig, "plotted_data", None)
    if isinstance(data, pd.DataFrame) and not data.empty:
        out.append(atomic_write_bytes(Path(figures_dir) / f"{name}.csv", data.to_csv(index=False).encode()))
    return out


# ---------------------------------------------------------------- scaling laws (fits of xlmr_core.laws)

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
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
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
        name = "all" if h is None else f"{hue}={_si(h)}"
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
    where = ", ".join([f"{c}={_si(v)}" for c, v in at.items()] + ([f"{cb}={level}"] if level is not None else []))
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


# ---------------------------------------------------------------- zero-shot transfer (DDTP topic accuracy)

TRANSFER_COLUMN = "eval.ddtp.accuracy"
"""Per-language DDTP topic accuracy in ``results.load_long`` (``final.json["eval"]["ddtp"]["per_lang"]``)."""


def transfer_accuracy(long_df: pd.DataFrame, x: str = "n_langs", *, hue: str | None = None,
                      groups: Sequence[str] = ("high", "low", "all"), column: str = TRANSFER_COLUMN,
                      logx: bool | None = None, paper: bool = True) -> Figure:
    """Zero-shot transfer accuracy (fine-tuned in English, tested in every DDTP language) against ``x``, one panel
    per language group, ±1 s.d. over seeds, chance and the majority-class rate marked.

    groups: ``high`` / ``low`` (the sweep's resource groups, ``resource_groups``), ``seen`` / ``unseen`` (the
    language was / was not in the run's training set), ``all`` (every DDTP language, English included: the
    paper's all-language average) or ``zero-shot`` (every language but English). A group without DDTP languages
    gets an empty panel that says so. With ``x='n_langs'`` the paper's XNLI averages (7 → 100 languages) sit on
    a secondary axis of the ``all`` panel; with ``x='alpha'`` its best α is marked.
    """
    _need(long_df, ["run", "lang", x, column], "transfer_accuracy")
    df = _done(long_df).copy()
    # the groups from every row (a sweep's low-resource languages may have no DDTP test set), then DDTP rows only
    tagged = "group" in df.columns and {"high", "low"} <= set(df["group"])
    df["group"] = resource_groups(df) if tagged or "train_bytes" in df.columns else "other"
    df = df.dropna(subset=[column])
    if df.empty:
        raise XlmrError(f"transfer_accuracy: no run has {column}: evaluate the runs with the ddtp suite "
                        f"(`xlmr eval RUN --suite ddtp`)")
    seen = df["eval.ddtp.seen"].astype(bool) if "eval.ddtp.seen" in df.columns else pd.Series(False, df.index)
    if hue is None or hue not in df.columns:
        df["_hue"], hue_label = "all", None
    else:
        df["_hue"], hue_label = df[hue], hue
    members = {"all": df.index == df.index, "zero-shot": (df["lang"] != "en").to_numpy(),
               "seen": seen.to_numpy(), "unseen": (~seen).to_numpy()}
    logx = x in ("n_langs", "vocab", "vocab_pieces", "width") if logx is None else logx
    xs = sorted(df[x].dropna().unique())
    hues = sorted(df["_hue"].dropna().unique(), key=str)
    colors = dict(zip(hues, _colors(len(hues))))
    fig, axes = _figure(1, len(groups))
    rows, fits = [], []
    for ax, g in zip(axes[0], groups):
        sub = df[members[g]] if g in members else df[df["group"] == g]
        style = GROUP_STYLE.get(g, GROUP_STYLE["all"])
        if sub.empty:
            ax.text(0.5, 0.5, f"no DDTP test language\nin the {g} group", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8, color="0.4")
        for h in hues:
            per_run = sub[sub["_hue"] == h].groupby(["run", x], dropna=False)[column].mean().reset_index()
            pts = seed_stats(per_run, [x], column).rename(columns={x: "x"})
            if pts.empty:
                continue
            series = "all runs" if hue_label is None else f"{hue_label}={h:g}" if isinstance(
                h, (int, float, np.number)) else f"{hue_label}={h}"
            lab = series
            if logx:
                fit = fit_log_trend(per_run[x], per_run[column])
                lab += f"  slope {fit['slope']:+.3f} ± {fit['slope_se']:.3f}/2×"
                _draw_trend(ax, fit, xs, colors[h])
                fits.append(dict(panel=f"transfer:{g}", series=series,
                                 **{k: fit[k] for k in ("slope", "slope_se", "intercept", "n")}))
            _errorbar(ax, pts, color=colors[h], label=lab, **style)
            rows.append(pts.assign(panel=f"transfer:{g}", series=series))
        # baselines: chance (1 / labels) and the majority-class rate of the evaluated items of this group
        chance = float(df["eval.ddtp.chance"].mean()) if "eval.ddtp.chance" in df.columns else math.nan
        majority = float(sub["eval.ddtp.majority"].mean()) if "eval.ddtp.majority" in sub.columns else math.nan
        for name, v, ls in (("chance", chance, ":"), ("majority class", majority, "-.")):
            if np.isfinite(v):
                ax.axhline(v, color="0.55", ls=ls, lw=0.9, label=f"{name} {v:.3f}")
                rows.append(pd.DataFrame({"x": [np.nan], "y": [v], "err": [np.nan], "n": [np.nan],
                                          "panel": [f"transfer:{g}"], "series": [name]}))
        langs = sorted(sub["lang"].unique())
        ax.set_title(f"{g}: {', '.join(langs[:8])}{' …' if len(langs) > 8 else ''}" if langs else g, fontsize=8)
        ax.set_xlabel({"n_langs": "languages in training", "alpha": "sampling exponent α",
                       "vocab": "vocabulary (pieces)"}.get(x, x) + (" (log scale)" if logx else ""))
        ax.set_ylabel("DDTP topic accuracy ↑")
        if logx:
            _log2_axis(ax, xs)
        else:
            ax.set_xticks(xs)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        if paper and x == "alpha":
            ax.axvline(PAPER_XNLI["alpha"]["best"], label="paper (XNLI acc.): best α",
                       **{k: v for k, v in PAPER_STYLE.items() if k in ("color", "ls", "lw")})
        if paper and x == "n_langs" and g == "all":
            rows.append(_paper_capacity_axis(ax, xs, "transfer:all"))
        else:
            ax.legend(fontsize=5.5, loc="best")
    steps = df["eval.ddtp.n_train"].dropna().unique() if "eval.ddtp.n_train" in df.columns else []
    fig.suptitle("Zero-shot transfer: fine-tuned on English DDTP descriptions, tested in each language"
                 + (f" ({int(steps[0])} training examples)" if len(steps) == 1 else ""), fontsize=9)
    return _attach(fig, rows, fits)


TRANSFER_PANELS = {"en": "English (the fine-tuning language)", "targets": "zero-shot: the other high-resource targets",
                   "others": "zero-shot: every other DDTP language"}
"""The language groups of ``transfer_designs``' panels."""


def transfer_designs(long_df: pd.DataFrame, column: str = TRANSFER_COLUMN, *, hue: str = "width") -> Figure:
    """The capacity sweep's designs seen through zero-shot transfer: DDTP topic accuracy against the number of
    languages, one row per design, one panel per language group (``TRANSFER_PANELS``: English, in which the
    classifier is fine-tuned; the other high-resource targets; every other DDTP language, the paper's
    all-language average without English), one colour per model width, related (solid) and unrelated (dashed)
    added languages, ±1 s.d. over seeds; chance and the majority-class rate marked. Languages added in a set
    (e.g. es, pt, ru, uk with the related set) are trained on there and unseen in the others: the last panel
    mixes both, as the paper's average over XNLI languages does."""
    _need(long_df, ["run", "lang", "n_langs", "design", "relation", column], "transfer_designs")
    df = _done(long_df).copy()
    df = df[df["relation"] != "nested"]
    if hue not in df.columns:
        df[hue] = "all"
    df["_cat"] = np.where(df["lang"] == "en", "en", np.where(resource_groups(df) == "high", "targets", "others"))
    df = df.dropna(subset=[column])
    designs = [d for d in ("matched", "fixed") if d in set(df["design"])]
    if df.empty or not designs:
        raise XlmrError(f"transfer_designs: no run of the matched or fixed design has {column}: evaluate the "
                        "runs with the ddtp suite (`xlmr eval RUN --suite ddtp`)")
    per_run = df.groupby(["run", "seed", "design", "n_langs", "relation", hue, "_cat"], dropna=False)[column] \
        .mean().reset_index()
    chance = float(df["eval.ddtp.chance"].mean()) if "eval.ddtp.chance" in df.columns else math.nan
    fig, axes = _figure(len(designs), len(TRANSFER_PANELS))
    hues = sorted(df[hue].dropna().unique())
    colors = dict(zip(hues, _colors(len(hues))))
    rows, fits = [], []
    for di, design in enumerate(designs):
        for c, (cat, title) in enumerate(TRANSFER_PANELS.items()):
            ax = axes[di, c]
            sub = per_run[(per_run["design"] == design) & (per_run["_cat"] == cat)]
            panel = f"{design}:transfer:{cat}"
            for h in hues:
                for rel in ("related", "unrelated"):
                    path = sub[(sub[hue] == h) & sub["relation"].isin(("none", rel, "both"))]
                    pts = seed_stats(path, ["n_langs"], column).rename(columns={"n_langs": "x"})
                    if pts.empty:
                        continue
                    fit = fit_log_trend(path["n_langs"], path[column])
                    series = f"{hue}={h:g}, {rel}" if isinstance(h, (int, float, np.number)) else f"{h}, {rel}"
                    _errorbar(ax, pts, color=colors[h], label=f"{series}  {fit['slope']:+.3f}/2×",
                              **RELATION_STYLE[rel])
                    rows.append(pts.assign(panel=panel, series=series))
                    fits.append(dict(panel=panel, series=series,
                                     **{k: fit[k] for k in ("slope", "slope_se", "intercept", "n")}))
            items = df[(df["design"] == design) & (df["_cat"] == cat)]
            majority = float(items["eval.ddtp.majority"].mean()) if "eval.ddtp.majority" in items.columns \
                else math.nan
            for name, v, ls in (("chance", chance, ":"), ("majority class", majority, "-.")):
                if np.isfinite(v):
                    ax.axhline(v, color="0.55", ls=ls, lw=0.9, label=f"{name} {v:.3f}")
                    rows.append(pd.DataFrame({"x": [np.nan], "y": [v], "err": [np.nan], "n": [np.nan],
                                              "panel": [panel], "series": [name]}))
            langs = sorted(items["lang"].unique())
            if not langs:
                ax.text(0.5, 0.5, "no DDTP language in this group", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="0.4")
            ax.set_title(f"{design} design: {title}\n{', '.join(langs[:9])}{' …' if len(langs) > 9 else ''}",
                         fontsize=7)
            ax.set_xlabel("languages in training (log scale)")
            ax.set_ylabel("DDTP topic accuracy ↑", fontsize=8)
            _log2_axis(ax, sorted(df["n_langs"].unique()))
            ax.legend(fontsize=5, loc="best")
    n_train = df["eval.ddtp.n_train"].dropna().unique() if "eval.ddtp.n_train" in df.columns else []
    fig.suptitle("Zero-shot transfer by design: fine-tuned on English DDTP descriptions"
                 + (f" ({int(n_train[0])} examples)" if len(n_train) == 1 else "") + ", tested in each language",
                 fontsize=9)
    return _attach(fig, rows, fits)


def has_transfer(long_df: pd.DataFrame, column: str = TRANSFER_COLUMN) -> bool:
    """Whether any finished run of the frame has DDTP transfer results."""
    return column in long_df.columns and "status" in long_df.columns and _done(long_df)[column].notna().any()


def transfer(long_df: pd.DataFrame, x: str = "n_langs", *, hue: str | None = None) -> Figure | None:
    """A sweep's transfer figure, or None (with a printed note) when no run has DDTP results, so that a
    notebook runs through on sweeps evaluated without the ``ddtp`` suite (the demo scale's): ``transfer_designs``
    for the capacity sweep's design sets, else ``transfer_accuracy`` against ``x``."""
    if not has_transfer(long_df):
        print("no DDTP transfer results in these runs: evaluate them with `xlmr eval RUN --suite ddtp` "
              "(the sweeps beyond the demo scale do it by default)")
        return None
    if x == "n_langs" and "relation" in long_df.columns and long_df["relation"].isin(("related", "unrelated")).any():
        return transfer_designs(long_df, hue=hue or "width")
    return transfer_accuracy(long_df, x, hue=hue)
