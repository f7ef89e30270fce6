"""What every figure shares: styles and labels, the paper's numbers, seed statistics, trends, saving.

Figures are drawn from a study's tidy results table (``results.read_table``/``results.tidy``; ``frame`` pivots it
with ``results.per_lang``) or from frames that ``results`` derives from it. Conventions shared by all figures:

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

from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_bytes
from xlmr_core.units import si as si  # the one SI formatter (the launcher's tables use it too)

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
RELATION_STYLE = {"related": dict(ls="-", marker="o"), "unrelated": dict(ls="--", marker="s")}


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


def _done(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "done"] if "status" in df.columns else df


def _tidy_names(df: pd.DataFrame) -> pd.DataFrame:
    """A frame of ``results.load_long`` (suites' values as ``eval.<suite>.…``) with the suites' columns under the
    tidy table's metric names (``ddtp.accuracy``); other frames as they are."""
    rename = {c: c.removeprefix("eval.") for c in df.columns
              if isinstance(c, str) and c.startswith("eval.") and c.removeprefix("eval.") not in df.columns}
    return df.rename(columns=rename) if rename else df


def frame(df: pd.DataFrame) -> pd.DataFrame:
    """The per-language frame a figure draws from: a tidy results table (columns ``lang``, ``metric``, ``value``)
    pivoted by ``results.per_lang``; a frame with one row per run and language (``results.per_lang``,
    ``results.load_long``) with the suites' columns under their metric names."""
    if {"lang", "metric", "value"} <= set(df.columns):
        from xlmr_core.study.results import per_lang

        return per_lang(df)
    return _tidy_names(df)


def flag(col: pd.Series) -> pd.Series:
    """A 0/1 (or bool) column as bool, missing as False."""
    return col.astype(float).fillna(0.0).astype(bool)


def retrieval_accuracy(long_df: pd.DataFrame) -> pd.Series:
    """Per row, the mean cross-lingual retrieval accuracy over the parallel sets and both directions (to/from
    the pivot language); NaN where the language has no retrieval result (the pivot itself, no parallel text)."""
    long_df = _tidy_names(long_df)
    cols = [c for c in long_df.columns
            if str(c).startswith("retrieval.") and str(c).endswith((".to_pivot", ".from_pivot"))]
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
    trained = long_df[flag(long_df["seen"])] if "seen" in long_df.columns else long_df
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
        df = df[flag(df["seen"])]
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


def retrieval_chance(long_df: pd.DataFrame) -> float:
    """Chance accuracy of the retrieval suite: the mean over languages and sets of 1 / (items retrieved among)."""
    long_df = _tidy_names(long_df)
    cols = [c for c in long_df.columns if str(c).startswith("retrieval.") and str(c).endswith(".n")]
    n = long_df[cols].to_numpy(dtype=float).ravel() if cols else np.array([])
    n = n[np.isfinite(n) & (n > 0)]
    return float(np.mean(1.0 / n)) if len(n) else math.nan



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
