"""Training curves of any study (``results.load_curves``)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from xlmr_core.study.plots.common import METRICS, PANEL_H, PANEL_W, _attach, _colors, _figure, _need, label, seed_stats


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
