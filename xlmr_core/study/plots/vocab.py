"""The vocabulary study (Conneau et al. 2019, Figure 6): both modes against the vocabulary size."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from xlmr_core.study.plots.common import (
    PAPER_XNLI,
    _attach,
    _done,
    _errorbar,
    _figure,
    _log2_axis,
    _need,
    fit_log_trend,
    flag,
    frame,
    label,
    seed_stats,
)


def vocab_scaling(long_df: pd.DataFrame, metric: str = "bpb", *, x: str = "vocab", mode: str = "mode",
                  normalised: str | None = "bpb_below_unigram", paper: bool = True) -> Figure:
    """``metric`` against vocabulary size in both modes (fixed Transformer, fixed total parameters), beside it
    the ``normalised`` metric (bits per byte below the unigram baseline of each run's own tokenizer: what the
    model learned from context, which raw bits per byte mixes with the tokenizer's compression), fertility
    (tokens per character) and the embedding share of the parameters."""
    long_df = frame(long_df)
    _need(long_df, ["run", "lang", x, mode, metric, "params_embedding", "params_total"], "vocab_scaling")
    df = _done(long_df).copy()
    if "seen" in df.columns:
        df = df[flag(df["seen"])]
    fert = "tokenizer.tokens_per_char"
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
