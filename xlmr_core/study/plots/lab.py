"""The curse_lab study (derived languages): loss against the number of languages K per width and relatedness level,
beside retrieval and DDTP transfer between the languages. Frames come from ``study.lab.run_points``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xlmr_core.study.plots.common import _attach, _colors, _figure, _log2_axis, _need

LEVEL_TITLES = {"same": "same language (share 1)", "half": "share 0.5", "disjoint": "disjoint vocabularies (share 0)",
                "inverted": "share 0 + inverted word order"}


def _levels(points: pd.DataFrame) -> list[str]:
    order = list(LEVEL_TITLES)
    have = [lv for lv in points["level"].unique() if lv != "base"]
    return sorted(have, key=lambda lv: order.index(lv) if lv in order else len(order))


def k_curves(points: pd.DataFrame, value: str = "loss") -> Figure:
    """``value`` (bits per source byte, averaged over a run's languages; bars ±1 evaluation s.e.) against K, one
    panel per relatedness level, one line per width: the matched design solid, the fixed-total arm dashed. The
    dotted grey line is the unigram baseline on the same tokens (the same for every K: the languages are copies).
    Every panel starts from the same K = 1 runs."""
    _need(points, ["level", "arm", "width", "K", value], "k_curves")
    levels = _levels(points)
    fig, axes = _figure(1, max(1, len(levels)))  # own y-scales: the same-language panel spans far more
    widths = sorted(points["width"].unique())
    colors = dict(zip(widths, _colors(len(widths))))
    rows = []
    for ax, level in zip(axes[0], levels):
        sub = points[points["level"] == level]
        for arm, ls in (("matched", "-"), ("fixed", "--")):
            for w in widths:
                d = sub[(sub["width"] == w) & ((sub["arm"] == arm) | ((sub["K"] == 1) & (arm == "fixed")
                                                                         & (sub["arm"] == "matched")))]
                if arm == "fixed" and not (sub[(sub["width"] == w)]["arm"] == "fixed").any():
                    continue
                g = d.groupby("K").agg(y=(value, "mean"), err=("loss_se", "mean"), n=(value, "size")).reset_index()
                if g.empty:
                    continue
                err = g["err"].fillna(0).to_numpy() if value == "loss" else None
                ax.errorbar(g["K"], g["y"], yerr=err, color=colors[w], ls=ls, marker="o", ms=3.5, lw=1.2,
                            capsize=2, label=f"width {w}" + (" (fixed total)" if arm == "fixed" else ""))
                rows.append(g.rename(columns={"K": "x"}).assign(panel=level, series=f"{arm} h{w}"))
        if value == "loss" and "unigram_bpb" in sub:
            base = sub["unigram_bpb"].mean()
            if np.isfinite(base):
                ax.axhline(base, color="0.6", ls=":", lw=1, label="unigram baseline")
        _log2_axis(ax, sorted(sub["K"].unique()))
        ax.set_title(LEVEL_TITLES.get(level, level), fontsize=9)
        ax.set_xlabel("derived languages K")
    for ax in axes[0]:
        ax.set_ylabel("bits per source byte ↓" if value == "loss" else value)
    axes[0][0].legend(fontsize=7)
    return _attach(fig, rows)


SHORT = {"same": "share 1", "half": "share 0.5", "disjoint": "share 0", "inverted": "share 0, inverted"}
LEVEL_COLORS = {"same": "C0", "half": "C2", "disjoint": "C3", "inverted": "C1"}


def lab_transfer(points: pd.DataFrame, ddtp_chance: float = 1 / 12) -> Figure | None:
    """Retrieval accuracy (held-out documents, language k against language 0, both directions; one panel per width)
    and DDTP topic accuracy (fine-tuned on language 0, tested on the others; chance dotted) against K, one line per
    level; None if neither was measured."""
    have = [c for c in ("retrieval", "ddtp") if c in points and points[c].notna().any()]
    if not have:
        return None
    m = points[points["arm"] == "matched"]
    panels = []
    if "retrieval" in have:
        panels += [("retrieval", w) for w in sorted(m.loc[m["retrieval"].notna(), "width"].unique())]
    if "ddtp" in have:
        panels += [("ddtp", w) for w in sorted(m.loc[m["ddtp"].notna(), "width"].unique())]
    fig, axes = _figure(1, len(panels), sharey=False)
    rows = []
    for ax, (col, w) in zip(axes[0], panels):
        sub = m[(m["width"] == w) & m[col].notna()]
        for level in _levels(sub):
            g = sub[sub["level"] == level].groupby("K")[col].mean().reset_index()
            ax.plot(g["K"], g[col], marker="o", ms=3.5, lw=1.2, color=LEVEL_COLORS.get(level, "0.3"),
                    label=SHORT.get(level, level))
            rows.append(g.rename(columns={"K": "x", col: "y"}).assign(panel=f"{col} h{w}", series=level))
        if col == "ddtp":
            ax.axhline(ddtp_chance, color="0.6", ls=":", lw=1, label="chance")
        _log2_axis(ax, sorted(sub["K"].unique()) or [2])
        ax.set_xlabel("derived languages K")
        ax.set_title(f"{'retrieval vs language 0' if col == 'retrieval' else 'DDTP, zero-shot from language 0'}, "
                     f"width {w}", fontsize=8)
        ax.set_ylabel("accuracy ↑")
    axes[0][0].legend(fontsize=6)
    return _attach(fig, rows)
