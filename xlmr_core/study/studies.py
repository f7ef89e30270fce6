"""A study: a grid of runs, the suites each run is evaluated with, and the notebooks that turn its results into
figures. Every sweep at every scale it supports, and the demo, is one row of ``STUDIES``; ``xlmr-sweep`` (``study.cli``)
plans, runs, evaluates, collects and draws a study by its name.

Where things go (one default each, set here and nowhere else):

- **corpus**: ``--corpus``, else ``$XLMR_CORPUS``, else the scale's demo corpus profile in the cache,
  ``$XLMR_CACHE/demo-corpus`` (``~/.cache/xlmr/demo-corpus``; ``demo-corpus-large`` at the gpu scale), which
  ``xlmr corpus demo`` writes and every study builds on first use (``presets.corpus_for``, the builder's
  ``democorpus.default_out_dir``). The paper scale has no default: ``--corpus`` (CC-100) to run, none to ``plan``.
- **results root**: ``--root``, else ``$XLMR_RESULTS``, else ``./results`` (``results_root``).
- **a study's root**: ``<results root>/<study>`` (``Study.root``): the directories of the runs it owns, their job
  logs (``logs/``) and the tidy table that ``collect`` writes and the notebooks read.
- **figures**: ``figures/<study>`` (``figures_dir``): the figures and the executed notebooks.

A run shared by two studies is owned by one: ``scaling_laws``' budget-1 points are ``capacity_dilution``'s runs and
stay in ``<results root>/capacity_dilution/``. The law study lists them in ``runs``, evaluates them with their
owner's suites, reports their state and failures, and collects them into its own table; each run's own lock
(``jobs.launch``), not a sweep-wide one, keeps two launches (of either study) from training it twice.

``Study.suites`` maps each run name to its suites (beyond the trainer's held-out bits per byte and unigram baseline,
which ``final.json`` always has); ``Study.run_dirs`` is the one list of a study's runs. A new study is one
``register(Recipe(...))``: a sweep of ``sweeps.SWEEPS`` (or any ``(scale, seeds, results_root, corpus) ->
list[RunConfig]``), its scales, suites, evaluation options and notebooks.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xlmr_core.config import RunConfig, apply_overrides
from xlmr_core.errors import XlmrError
from xlmr_core.study import sweeps
from xlmr_core.study.presets import PRESETS, SCALES
from xlmr_core.train.rundir import found_runs, holds_run  # noqa: F401  (holds_run: read as studies.holds_run)

RESULTS_ENV = "XLMR_RESULTS"
FIGURES_ROOT = Path("figures")

ALL_SUITES: tuple[str, ...] = ("bpb", "retrieval", "pll", "tokenizer", "ddtp")
"""Every offline suite and DDTP transfer (``evaluate.SUITES + evaluate.TRANSFER_SUITES``): ``--suites all``."""
SCALE_SKIPS: Mapping[str, tuple[str, ...]] = {"demo": ("ddtp",)}
"""Suites a scale leaves out of every study: at the demo scale DDTP transfer takes 20-40 s a run, which the demo's
10 minutes do not hold, and models pretrained on 2M tokens stay near chance on it."""
DESIGN_SCALES: tuple[str, ...] = tuple(s for s in SCALES if PRESETS[s].target_high)
"""The scales with design languages (targets, related, unrelated): those of the law grid and the demo."""
DEMO_EVAL_OPTIONS: Mapping[str, object] = {"sets": ("instguide", "udhr_para"), "max_items": 200,
                                           "unseen": ("eu", "sw", "yo", "cy")}
"""Retrieval kept small enough for minutes: two parallel sets, 200 items, four languages never trained on."""


def results_root(root: str | os.PathLike | None = None) -> Path:
    """The results root: ``root``, else ``$XLMR_RESULTS``, else ``./results``."""
    return Path(root or os.environ.get(RESULTS_ENV) or "results")


def figures_dir(study: str, figures: str | os.PathLike | None = None) -> Path:
    """Where a study's figures and executed notebooks go: ``figures``, else ``figures/<study>``."""
    return Path(figures) if figures else FIGURES_ROOT / study


@dataclass(frozen=True)
class NotebookSpec:
    """A notebook of ``notebooks/`` and the parameters papermill gives it beyond the study's paths."""

    name: str
    parameters: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A grid of runs at one scale, the suites of each run and the notebooks drawn from their results."""

    name: str
    scale: str
    """The preset scale (``presets.PRESETS``); empty for a study read from a directory (``found_study``)."""
    root: Path
    """``<results root>/<name>``: the runs this study owns, their job logs and its tidy table."""
    runs: tuple[RunConfig, ...]
    """Every run the study needs, in grid order, including runs owned by another study (``shared_runs``)."""
    suites: Mapping[str, tuple[str, ...]]
    """Evaluation suites per run name; a shared run gets its owner's, so both studies ask the same of it."""
    eval_options: Mapping[str, object] = field(default_factory=dict)
    """Keyword arguments of ``evaluate.evaluate_run`` for every run (e.g. retrieval ``sets``, ``max_items``)."""
    notebooks: tuple[NotebookSpec, ...] = ()
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self):
        names = [c.name for c in self.runs]
        if len(set(names)) != len(names):
            raise XlmrError(f"study {self.name}: run names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        missing = [n for n in names if n not in self.suites]
        if missing:
            raise XlmrError(f"study {self.name}: no suites for run(s) {', '.join(missing[:5])}")

    @property
    def planned_runs(self) -> tuple[str, ...]:
        """The names of the runs the study needs (what a complete table holds)."""
        return tuple(c.name for c in self.runs)

    def owner(self, cfg: RunConfig) -> str:
        """The study whose directory holds a run (this one, or the one that shares it)."""
        parent = Path(cfg.run_dir).parent
        return self.name if _same(parent, self.root) else parent.name

    @property
    def own_runs(self) -> tuple[RunConfig, ...]:
        return tuple(c for c in self.runs if self.owner(c) == self.name)

    @property
    def shared_runs(self) -> tuple[RunConfig, ...]:
        """Runs owned (and kept) by another study."""
        return tuple(c for c in self.runs if self.owner(c) != self.name)

    def label(self, run_dir: str | os.PathLike) -> str:
        """A run's name in this study's listings: ``name``, or ``owner/name`` for a run another study owns."""
        d = Path(run_dir)
        return d.name if _same(d.parent, self.root) else f"{d.parent.name}/{d.name}"

    def run_dirs(self, new: bool = False) -> list[Path]:
        """The study's run directories: each planned run (owned here or elsewhere) that holds a run (``new``: every
        planned run, started or not), then any other run found in ``root`` (other seeds, an earlier grid)."""
        planned = [Path(c.run_dir) for c in self.runs]
        seen = {os.path.abspath(d) for d in planned}
        out = planned if new else [d for d in planned if holds_run(d)]
        return out + [d for d in found_runs(self.root) if os.path.abspath(d) not in seen]

    def select(self, only: Sequence[str] = (), overrides: Sequence[str] = ()) -> Study:
        """The study with ``key=value`` overrides applied to every run and only the runs matching a glob of
        ``only`` (all when empty)."""
        runs = [apply_overrides(c, list(overrides)) if overrides else c for c in self.runs]
        if only:
            runs = [c for c in runs if any(fnmatch.fnmatch(c.name, pat) for pat in only)]
            if not runs:
                raise XlmrError(f"--only {' '.join(only)} matches no run of {self.name} at scale {self.scale}")
        return dataclasses.replace(self, runs=tuple(runs), suites={c.name: self.suites[c.name] for c in runs})

    def with_suites(self, suites: Sequence[str]) -> Study:
        """The study with the same ``suites`` for every run (``--suites``)."""
        return dataclasses.replace(self, suites={c.name: tuple(suites) for c in self.runs})

    def all_suites(self) -> tuple[str, ...]:
        """Every suite some run of the study asks for."""
        return tuple(dict.fromkeys(s for c in self.runs for s in self.suites[c.name]))


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def found_study(directory: str | os.PathLike, name: str | None = None) -> Study:
    """A study read from a directory alone: no planned runs, its ``run_dirs`` the runs found there."""
    d = Path(directory)
    return Study(name=name or d.name, scale="", root=d, runs=(), suites={})


# ---------------------------------------------------------------- the table of studies

GridFn = Callable[[str, tuple[int, ...], Path, "str | None"], list[RunConfig]]


@dataclass(frozen=True)
class Recipe:
    """One row of ``STUDIES``: how to build a study at a scale. Called as ``(scale, seeds, root, corpus) -> Study``
    with ``root`` the results root (None: ``results_root()``) and ``corpus`` None for the default."""

    name: str
    grid: str | GridFn
    """A sweep of ``sweeps.SWEEPS`` (its runs in ``<results root>/<sweep>/``), or a function ``(scale, seeds,
    results_root, corpus) -> list[RunConfig]`` that puts the runs the study owns in ``<results root>/<name>/`` and
    may list runs of another study in that study's directory."""
    scales: tuple[str, ...]
    suites: tuple[str, ...] = ()
    """What the study's notebooks plot, at every scale but the ones ``skips`` leaves them out of."""
    notebooks: tuple[NotebookSpec, ...] = ()
    eval_options: Mapping[str, object] = field(default_factory=dict)
    skips: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(SCALE_SKIPS))
    run_suites: Callable[[str, RunConfig], tuple[str, ...]] | None = None
    """Suites per run, ``(scale, run config) -> suites``, in place of ``suites`` (``skips`` still apply)."""
    default_scale: str | None = None
    """The scale ``xlmr-sweep`` uses without ``--scale`` (None: ``--scale`` is required)."""
    doc: str = ""

    @property
    def home(self) -> str:
        """The directory under the results root where the grid puts the runs this study owns (they move to the
        study's root); runs the grid puts elsewhere are shared, owned by the study of that directory's name."""
        return self.grid if isinstance(self.grid, str) else self.name

    def suites_at(self, scale: str) -> tuple[str, ...]:
        return tuple(s for s in self.suites if s not in self.skips.get(scale, ()))

    def __call__(self, scale: str, seeds: Sequence[int] = (0,), root: str | os.PathLike | None = None,
                 corpus: str | os.PathLike | None = None) -> Study:
        if scale not in self.scales:
            raise XlmrError(f"study {self.name} has no scale {scale!r}; choose one of {', '.join(self.scales)}")
        results = results_root(root)
        grid = (lambda *a: sweeps.get_sweep(self.grid, *a)) if isinstance(self.grid, str) else self.grid
        study_root = results / self.name
        runs, suites = [], {}
        for c in grid(scale, tuple(seeds), results, corpus):
            parent = Path(c.run_dir).parent
            if _same(parent, results / self.home):
                c = dataclasses.replace(c, run_dir=str(study_root / c.name))
                suites[c.name] = (self.suites_at(scale) if self.run_suites is None else
                                  tuple(x for x in self.run_suites(scale, c) if x not in self.skips.get(scale, ())))
            else:
                owner = STUDIES.get(parent.name, self)
                suites[c.name] = owner.suites_at(scale)
            runs.append(c)
        return Study(name=self.name, scale=scale, root=study_root, runs=tuple(runs), suites=suites,
                     eval_options=dict(self.eval_options), notebooks=self.notebooks, seeds=tuple(seeds))


STUDIES: dict[str, Recipe] = {}
"""Every study by name; add one with ``register``."""


def register(recipe: Recipe) -> Recipe:
    """Add a study to ``STUDIES`` (a name already there is an error)."""
    if recipe.name in STUDIES:
        raise XlmrError(f"study {recipe.name!r} is already registered")
    unknown = [s for s in recipe.scales if s not in SCALES]
    if unknown or not recipe.scales:
        raise XlmrError(f"study {recipe.name}: scales {recipe.scales} must be among {', '.join(SCALES)}")
    STUDIES[recipe.name] = recipe
    return recipe


def get_study(name: str, scale: str = "demo", seeds: Sequence[int] = (0,), root: str | os.PathLike | None = None,
              corpus: str | os.PathLike | None = None) -> Study:
    """Study ``name`` at ``scale`` with ``seeds``, its runs under the results root ``root``, trained on ``corpus``
    (None: the scale's default, see the module docstring)."""
    if name not in STUDIES:
        raise XlmrError(f"unknown study {name!r}; choose one of {', '.join(sorted(STUDIES))}")
    if not seeds:
        raise XlmrError("give at least one seed")
    return STUDIES[name](scale, tuple(seeds), root, corpus)


_NB = NotebookSpec
_LAWS = {"extra_roots": []}
"""The law notebook reads the study's own table alone: ``collect`` puts the runs a study shares into it."""
register(Recipe(
    "capacity_dilution", "capacity_dilution", SCALES, ("retrieval", "tokenizer", "ddtp"),
    (_NB("capacity_dilution"), _NB("scaling_laws", _LAWS), _NB("explore")),
    doc="languages added at fixed model widths: matched and fixed designs (demo-gpu), XLM-7 ... XLM-100 (paper)"))
register(Recipe(
    "scaling_laws", "scaling_laws", DESIGN_SCALES, (), (_NB("scaling_laws", _LAWS),),
    doc="the law grid over languages, parameters and target tokens; its budget-1 points are capacity_dilution's"))
register(Recipe(
    "vocab_scaling", "vocab_scaling", SCALES, ("tokenizer", "ddtp"), (_NB("vocab_scaling"),),
    doc="vocabulary sizes at a fixed Transformer and at fixed total parameters"))
register(Recipe(
    "sampling_alpha", "sampling_alpha", SCALES, ("tokenizer", "ddtp"), (_NB("sampling_alpha"),),
    doc="the language sampling exponent alpha"))
register(Recipe(
    "model_size", "model_size", SCALES, ("retrieval", "tokenizer", "ddtp"),
    doc="the scale's named model sizes on the same data and tokens"))
register(Recipe(
    "demo", "capacity_dilution", DESIGN_SCALES, ("retrieval", "tokenizer", "ddtp"),
    # fewer bootstrap refits of the laws than the notebook's default: seconds, not minutes
    (_NB("capacity_dilution"), _NB("scaling_laws", {**_LAWS, "n_boot": 50}), _NB("explore")),
    eval_options=DEMO_EVAL_OPTIONS, default_scale="demo",
    doc="`make demo`: the capacity sweep's matched design with its figures, the laws fitted on the same runs "
        "and explore; its runs are its own (small retrieval settings)"))


def _lab_grid(scale: str, seeds: tuple[int, ...], root: Path, corpus: str | None) -> list[RunConfig]:
    from xlmr_core.study import lab

    return lab.curse_lab(scale, seeds, root, corpus)


def _lab_suites(scale: str, cfg: RunConfig) -> tuple[str, ...]:
    from xlmr_core.study import lab

    return lab.suites(scale, cfg)


register(Recipe(
    "curse_lab", _lab_grid, ("demo", "cpu"), ("retrieval", "ddtp"), (_NB("curse_lab"),),
    run_suites=_lab_suites, skips={},
    doc="the curse of multilinguality on K languages derived from one source: widths x relatedness levels "
        "(share, word order), matched and fixed-total designs, with retrieval and DDTP transfer between them"))
