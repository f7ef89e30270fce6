"""Figures of the scaling studies; every function returns a matplotlib Figure (no pyplot state).

They draw from a study's tidy results table (``results.read_table`` / ``results.tidy``) or frames that
``results`` derives from it (``per_lang``, ``paired_differences``/``arm_effects``, ``load_curves``); a frame of
``results.load_long`` works too. ``common`` holds what every figure shares (styles, the paper's numbers, seed
statistics and trends, ``save``: PNG + PDF + the plotted numbers as CSV); one module per study draws its figures:
``capacity``, ``vocab``, ``sampling``, ``lab`` (derived languages), ``laws`` (fitted scaling laws), ``transfer``
(zero-shot DDTP accuracy of any study) and ``curves`` (training curves). Conventions: ``common``'s docstring.
"""

from xlmr_core.study.plots.capacity import arm_effects, capacity_designs, capacity_dilution
from xlmr_core.study.plots.common import (
    GROUP_STYLE,
    LOWER_IS_BETTER,
    METRICS,
    PANEL_H,
    PANEL_W,
    PAPER_STYLE,
    PAPER_XNLI,
    RELATION_STYLE,
    fit_log_trend,
    frame,
    label,
    resource_groups,
    retrieval_accuracy,
    retrieval_chance,
    run_group_means,
    save,
    seed_stats,
    si,
)
from xlmr_core.study.plots.curves import training_curves
from xlmr_core.study.plots.lab import LEVEL_TITLES, k_curves, lab_transfer
from xlmr_core.study.plots.laws import LAW_AXES, law_extrapolation, law_fit
from xlmr_core.study.plots.sampling import sampling_alpha
from xlmr_core.study.plots.transfer import (
    TRANSFER_COLUMN,
    TRANSFER_PANELS,
    has_transfer,
    transfer,
    transfer_accuracy,
    transfer_designs,
)
from xlmr_core.study.plots.vocab import vocab_scaling

__all__ = [
    "GROUP_STYLE", "LAW_AXES", "LEVEL_TITLES", "LOWER_IS_BETTER", "METRICS", "PANEL_H", "PANEL_W", "PAPER_STYLE",
    "PAPER_XNLI", "RELATION_STYLE", "TRANSFER_COLUMN", "TRANSFER_PANELS", "arm_effects", "capacity_designs",
    "capacity_dilution", "fit_log_trend", "frame", "has_transfer", "k_curves", "lab_transfer", "label",
    "law_extrapolation", "law_fit", "resource_groups", "retrieval_accuracy", "retrieval_chance", "run_group_means",
    "sampling_alpha", "save", "seed_stats", "si", "training_curves", "transfer", "transfer_accuracy",
    "transfer_designs", "vocab_scaling",
]
