"""Zero-shot transfer (DDTP topic accuracy, fine-tuned in English) of any study's runs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from xlmr_core.errors import XlmrError
from xlmr_core.study.plots.common import (
    GROUP_STYLE,
    PAPER_STYLE,
    PAPER_XNLI,
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
    fit_log_trend,
    flag,
    frame,
    resource_groups,
    seed_stats,
)

TRANSFER_COLUMN = "ddtp.accuracy"
"""Per-language DDTP topic accuracy: the metric of the tidy table (``final.json["eval"]["ddtp"]["per_lang"]``;
``eval.ddtp.accuracy`` in ``results.load_long``, which the figures take too)."""


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
    long_df, column = frame(long_df), column.removeprefix("eval.")
    _need(long_df, ["run", "lang", x, column], "transfer_accuracy")
    df = _done(long_df).copy()
    # the groups from every row (a sweep's low-resource languages may have no DDTP test set), then DDTP rows only
    tagged = "group" in df.columns and {"high", "low"} <= set(df["group"])
    df["group"] = resource_groups(df) if tagged or "train_bytes" in df.columns else "other"
    df = df.dropna(subset=[column])
    if df.empty:
        raise XlmrError(f"transfer_accuracy: no run has {column}: evaluate the runs with the ddtp suite "
                        f"(`xlmr eval RUN --suite ddtp`)")
    seen = flag(df["ddtp.seen"]) if "ddtp.seen" in df.columns else pd.Series(False, df.index)
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
        chance = float(df["ddtp.chance"].mean()) if "ddtp.chance" in df.columns else math.nan
        majority = float(sub["ddtp.majority"].mean()) if "ddtp.majority" in sub.columns else math.nan
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
    steps = df["ddtp.n_train"].dropna().unique() if "ddtp.n_train" in df.columns else []
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
    long_df, column = frame(long_df), column.removeprefix("eval.")
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
    chance = float(df["ddtp.chance"].mean()) if "ddtp.chance" in df.columns else math.nan
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
            majority = float(items["ddtp.majority"].mean()) if "ddtp.majority" in items.columns \
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
    n_train = df["ddtp.n_train"].dropna().unique() if "ddtp.n_train" in df.columns else []
    fig.suptitle("Zero-shot transfer by design: fine-tuned on English DDTP descriptions"
                 + (f" ({int(n_train[0])} examples)" if len(n_train) == 1 else "") + ", tested in each language",
                 fontsize=9)
    return _attach(fig, rows, fits)


def has_transfer(long_df: pd.DataFrame, column: str = TRANSFER_COLUMN) -> bool:
    """Whether any finished run of the frame has DDTP transfer results."""
    long_df, column = frame(long_df), column.removeprefix("eval.")
    return column in long_df.columns and "status" in long_df.columns and _done(long_df)[column].notna().any()


def transfer(long_df: pd.DataFrame, x: str = "n_langs", *, hue: str | None = None) -> Figure | None:
    """A sweep's transfer figure, or None (with a printed note) when no run has DDTP results, so that a
    notebook runs through on sweeps evaluated without the ``ddtp`` suite (the demo scale's): ``transfer_designs``
    for the capacity sweep's design sets, else ``transfer_accuracy`` against ``x``."""
    long_df = frame(long_df)
    if not has_transfer(long_df):
        print("no DDTP transfer results in these runs: evaluate them with `xlmr eval RUN --suite ddtp` "
              "(the sweeps beyond the demo scale do it by default)")
        return None
    if x == "n_langs" and "relation" in long_df.columns and long_df["relation"].isin(("related", "unrelated")).any():
        return transfer_designs(long_df, hue=hue or "width")
    return transfer_accuracy(long_df, x, hue=hue)
