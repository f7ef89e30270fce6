"""The sampling-exponent study (Conneau et al. 2019, Figure 5): the groups' scores per α and their trade-off."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from xlmr_core.study.plots.common import (
    GROUP_STYLE,
    LOWER_IS_BETTER,
    PAPER_STYLE,
    PAPER_XNLI,
    _attach,
    _errorbar,
    _figure,
    _need,
    frame,
    label,
    run_group_means,
    seed_stats,
)


def sampling_alpha(long_df: pd.DataFrame, metric: str = "bpb", *, x: str = "alpha", paper: bool = True) -> Figure:
    """Low- and high-resource ``metric`` per sampling exponent α (q_i ∝ p_i^α), and the trade-off between them."""
    long_df = frame(long_df)
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
