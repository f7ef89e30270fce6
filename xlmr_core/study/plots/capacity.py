"""The capacity-dilution study (Conneau et al. 2019, Figures 2 and 4): scores against the number of languages,
by model width, for the paper's nested sets and the design sets (matched and fixed budgets), and the paired
gains of added languages over the targets alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from xlmr_core.errors import XlmrError
from xlmr_core.study.plots.common import (
    GROUP_STYLE,
    RELATION_STYLE,
    _attach,
    _colors,
    _done,
    _draw_trend,
    _errorbar,
    _figure,
    _log2_axis,
    _need,
    _paper_capacity_axis,
    _single,
    fit_log_trend,
    frame,
    label,
    retrieval_accuracy,
    retrieval_chance,
    run_group_means,
    seed_stats,
    si,
)


def capacity_dilution(long_df: pd.DataFrame, metric: str = "bpb", *, x: str = "n_langs", hue: str = "width",
                      retrieval: bool = True, paper: bool = True) -> Figure:
    """Per-language ``metric`` and retrieval accuracy against the number of languages, high- and low-resource
    groups apart, one curve per width, ±1 s.d. over seeds, a log-linear trend ± s.e.; the last row compares
    at matched per-language tokens (Chang et al. 2023: x = tokens the run spent on each language).

    A sweep with design language sets (tags ``design`` and ``relation``: the demo, cpu and gpu scales) is drawn
    by ``capacity_designs`` instead."""
    long_df = frame(long_df)
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
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{group}-resource, matched tokens per language", fontsize=8)
        ax.set_xlabel("tokens per language (log; labels: languages)", fontsize=8)
        ax.set_ylabel(label(metric))
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Capacity dilution: more languages at a fixed model and budget", fontsize=10)
    return _attach(fig, rows, fits)


def capacity_designs(long_df: pd.DataFrame, metric: str = "bpb_below_unigram", *, hue: str = "width",
                     retrieval: bool = True) -> Figure:
    """The capacity sweep's designs: ``metric`` of the target languages against the number of languages, one
    row per design (``matched``: each target's tokens fixed; ``fixed``: one budget for all), high- and
    low-resource targets apart, one colour per model width, related (solid) and unrelated (dashed) added
    languages; each line runs targets alone → + related or + unrelated → + both. ±1 s.d. over seeds.

    For the unigram-relative metrics the unigram baseline (0) is drawn; for retrieval, chance."""
    long_df = frame(long_df)
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
                        series = f"{hue}={h:g}" + (f" ({si(n_ne)} non-emb.)" if n_ne else "") + f", {rel}"
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
