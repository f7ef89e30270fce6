"""``xlmr-sweep``: plan, run, evaluate, collect and draw a study (``studies.STUDIES``).

    xlmr-sweep list                                                   # the studies and their scales
    xlmr-sweep plan capacity_dilution --scale paper                   # runs, tokens, epochs, FLOPs, time (= dry-run)
    xlmr-sweep run capacity_dilution --scale demo --executor local
    xlmr-sweep run vocab_scaling --scale paper --executor slurm --partition gpu \\
        --nodes 2 --gpus-per-node 8 --cpus-per-task 10 --mem-gb 480 --time-min 4320 --slurm-config cluster.yaml
    xlmr-sweep status scaling_laws --scale cpu                        # its own runs and capacity_dilution's it shares
    xlmr-sweep eval capacity_dilution --scale demo --suites retrieval,tokenizer,pll --executor local
    xlmr-sweep collect capacity_dilution --scale demo                 # the tidy table in the study's root
    xlmr-sweep figures demo                                           # its notebooks into figures/demo

Paths (``studies``): runs and tables under ``--root`` (default ``$XLMR_RESULTS`` or ``./results``), one directory
per study; figures in ``figures/<study>``; the corpus is the scale's demo corpus in ``$XLMR_CACHE`` unless
``--corpus``. ``python sweeps/launch.py`` is the same command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from xlmr_core.errors import XlmrError
from xlmr_core.study import jobs, results, studies, sweeps
from xlmr_core.train.rundir import final_path
from xlmr_core.units import si


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise XlmrError(f"--seeds {text!r}: give integers separated by commas, e.g. 0,1,2") from None


def parse_suites(text: str | None) -> tuple[str, ...] | None:
    """``--suites``: comma-separated names, ``none``, ``all`` (every offline suite and DDTP transfer), or (not
    given: None) the study's own."""
    if text is None:
        return None
    if text == "all":
        return studies.ALL_SUITES
    return () if text in ("", "none") else tuple(s for s in text.split(",") if s)


def _study(args, scan: bool = False) -> studies.Study:
    """The study the arguments name, with ``--set`` and ``--only`` applied and ``--suites`` for every run; with
    ``scan`` and no ``--scale``, the runs found in its directory."""
    if args.study not in studies.STUDIES:
        raise XlmrError(f"unknown study {args.study!r}; choose one of {', '.join(sorted(studies.STUDIES))}")
    scale = args.scale or (None if scan else studies.STUDIES[args.study].default_scale)
    if scale is None and scan:
        study = studies.found_study(studies.results_root(args.root) / args.study)
    elif scale is None:
        raise XlmrError(f"give --scale: study {args.study} runs at {', '.join(studies.STUDIES[args.study].scales)}")
    else:
        study = studies.get_study(args.study, scale, _seeds(args.seeds), args.root, args.corpus)
        study = study.select(args.only, args.set)
    suites = parse_suites(getattr(args, "suites", None))
    return study if suites is None else study.with_suites(suites)


def _hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f}min" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def _epochs(rep: dict) -> str:
    return f"{rep['epochs']:.2f}" if rep["epochs"] < 100 else f"{rep['epochs']:,.0f}"


# ---------------------------------------------------------------- the stages, also used by sweeps/demo.py


def ensure_suite_data(study: studies.Study, echo=print) -> None:
    """Build the DDTP data set here, before any job runs: compute nodes often have no network, and parallel jobs
    must not build it at once."""
    suites = study.all_suites()
    if "ddtp" in suites:
        from xlmr_core.democorpus.ddtp import ensure_ddtp

        try:
            echo(f"ddtp: {ensure_ddtp()}")
        except XlmrError as e:
            raise XlmrError(f"{e}; or leave DDTP transfer out: --suites {','.join(s for s in suites if s != 'ddtp')}"
                            ) from None


def launch_study(study: studies.Study, executor: str, opts: jobs.LaunchOptions, *, eval_only: bool = False,
                 echo=print, **kwargs) -> dict[str, jobs.RunState]:
    """Submit (``run``) or evaluate (``eval``) the study's runs, its shared ones included; returns {label: state}
    of the runs that did not end done (none for SLURM, whose jobs are still queued), each reported with its error
    and log."""
    out = jobs.launch(list(study.runs), executor, opts, study.root, study.suites, echo=echo,
                      eval_options=dict(study.eval_options), eval_only=eval_only, **kwargs)
    if executor == "slurm":
        return {}
    names = set(out.submitted)
    states = jobs.study_status(study, new=False)
    bad = {label: s for label, s in states.items() if label.rsplit("/", 1)[-1] in names and s.state != "done"}
    for label, s in bad.items():
        echo(f"  {label}: {s.state}: {s.error or s.detail} (log {s.log})")
    return bad


def collect_study(study: studies.Study, out: str | os.PathLike | None = None, echo=print) -> Path | None:
    """The tidy table of the study's runs (``results.tidy``), written to its root (``results.write_table``) and,
    given ``out``, copied there."""
    dirs = study.run_dirs()
    if not dirs:
        raise XlmrError(f"no runs of {study.name} under {study.root} yet: `run {study.name}` first")
    df = results.tidy(dirs)
    path = results.write_table(df, study.root, planned_runs=len(study.runs) if study.runs else None)
    done = sum(final_path(d).exists() for d in dirs)
    echo(f"{len(dirs)} runs, {done} done; table written to {path or study.root}")
    if out is not None and path is not None:
        from xlmr_core.fsutil import atomic_write_text

        atomic_write_text(Path(out), Path(path).read_text(encoding="utf-8"))
        echo(f"copied to {out}")
    return path


def study_figures(study: studies.Study, figures: str | os.PathLike | None = None, partial: bool = False,
                  echo=print) -> dict[str, Path]:
    """Execute the study's notebooks against its table into ``figures`` (default ``figures/<study>``)."""
    from xlmr_core.study.notebooks import run_notebook

    out_dir = studies.figures_dir(study.name, figures)
    done = {}
    for nb in study.notebooks:
        t0 = time.time()
        done[nb.name] = run_notebook(nb.name, study.root, out_dir, parameters=dict(nb.parameters),
                                     planned_runs=study.planned_runs, partial=partial)
        echo(f"notebook {nb.name}: {time.time() - t0:.0f}s -> {done[nb.name]}")
    if not study.notebooks:
        echo(f"study {study.name} has no notebooks")
    return done


# ---------------------------------------------------------------- verbs


def cmd_list(args) -> int:
    rows = [[name, ",".join(r.scales), ",".join(r.suites) or "-", ",".join(nb.name for nb in r.notebooks) or "-",
             r.doc] for name, r in sorted(studies.STUDIES.items())]
    print(_table(["study", "scales", "suites", "notebooks", "what"], rows))
    for scale, skips in studies.SCALE_SKIPS.items():
        print(f"\nat scale {scale} every study leaves out: {', '.join(skips)}")
    return 0


def cmd_plan(args) -> int:
    study = _study(args)
    cfgs, scale = list(study.runs), study.scale
    preset = sweeps.PRESETS[scale]
    plans = sweeps.plan_runs(cfgs, scale)
    rows, total_flops, total_s = [], 0.0, 0.0
    for pl in plans:
        c = pl.cfg
        mcfg = sweeps.model_config_of(c.model, c.data.vocab_size)
        p = sweeps.param_counts(c.model, c.data.vocab_size)
        total_flops += pl.flops
        gpu_h = pl.flops / (args.gpu_tflops * 1e12 * args.mfu) / 3600
        tags = results.parse_tags(c.tags)

        def group_tokens(key, tags=tags, rep=pl.repetition):
            members = [x for x in str(tags.get(key, "")).split(",") if x in rep]
            return si(sum(rep[x]["tokens_seen"] for x in members) / len(members)) if members else "-"

        total_s += pl.seconds or 0.0
        worst = pl.most_repeated()
        rows.append([c.name, tags.get("design", "-"), c.model.size, mcfg.hidden_size, mcfg.num_layers,
                     c.data.vocab_size, len(c.data.langs) or "all", si(p["embedding"]), si(p["non_embedding"]),
                     si(p["total"]), si(pl.tokens), group_tokens("high"), group_tokens("low"), f"{pl.flops:.2e}",
                     _hours(gpu_h), _duration(pl.seconds) if pl.seconds else "-",
                     f"{_epochs(pl.repetition[worst[0]])} {worst[0]}" if worst else "-"])
    print(_table(["run", "design", "size", "hidden", "layers", "vocab", "langs", "embedding", "non-embedding",
                  "total params", "tokens", "tokens/high target", "tokens/low target", "FLOPs", "GPU-h",
                  f"predicted ({scale})", "max epochs"], rows))
    gpu_h = total_flops / (args.gpu_tflops * 1e12 * args.mfu) / 3600
    print(f"\n{len(cfgs)} runs ({study.name}, scale {scale}, seeds {args.seeds}): {total_flops:.2e} FLOPs, "
          f"{_hours(gpu_h)} GPU-hours at {args.mfu:.0%} MFU of {args.gpu_tflops:g} TFLOP/s "
          "(LM head: dense + LayerNorm + bias, projection tied; FLOPs count matmuls, the head at masked tokens)")
    shared = study.shared_runs
    if shared:
        owners = sorted({study.owner(c) for c in shared})
        print(f"{len(shared)} of them are {', '.join(owners)}'s runs, kept in its directory and trained once for both")
    print(f"suites: {', '.join(study.all_suites()) or 'none'} (beyond held-out bits per byte); runs in "
          f"{study.root}; notebooks: {', '.join(nb.name for nb in study.notebooks) or 'none'}")
    if preset.device_flops:
        print(f"predicted time of one run after another at the {scale} scale's "
              f"{preset.device_flops / 1e12:.3g} TFLOP/s sustained per run + {preset.token_overhead_s * 1e6:.3g} µs "
              f"per token ({sweeps.DEVICE_NOTE[scale]}): "
              f"{_duration(total_s)}; tokens per target: tokens × the sampling probability of the run")
    _print_repetition(plans, preset, scale)
    return 0


def _print_repetition(plans: list, preset, scale: str) -> None:
    """Epochs per training language (the most any run of the study asks), the 4-epoch warning and the limit."""
    with_data = [pl for pl in plans if pl.repetition]
    if not with_data:
        print("\nepochs per language: no corpus to count unique tokens in (give --corpus)")
        return
    most: dict[str, tuple] = {}
    for pl in with_data:
        for lang, rep in pl.repetition.items():
            if lang not in most or rep["epochs"] > most[lang][0]["epochs"]:
                most[lang] = (rep, pl)
    how = ("unique tokens counted in the shards of each run's tokenizer" if all(pl.exact for pl in with_data)
           else f"unique tokens estimated at {sweeps.ESTIMATE_BYTES_PER_TOKEN:g} bytes per token")
    rows = [[lang, f"{rep['unique_tokens']:,}", si(rep["tokens_seen"]), _epochs(rep), pl.cfg.name]
            for lang, (rep, pl) in sorted(most.items(), key=lambda kv: -kv[1][0]["epochs"])]
    print(f"\nepochs per training language, the most any run asks ({how}):")
    print(_table(["lang", "unique tokens", "tokens seen", "epochs", "run"], rows))
    warn = sweeps.WARN_EPOCHS
    over = sorted(lang for lang, (rep, _) in most.items() if rep["epochs"] > warn)
    n_runs = sum(1 for pl in with_data if pl.most_repeated()[1] > warn)
    if not over:
        print(f"no language above {warn:g} epochs in any run")
        return
    print(f"warning: {n_runs} of {len(plans)} runs train {', '.join(over)} for more than {warn:g} epochs; beyond "
          f"about {warn:g}, repeated tokens are worth less than unique ones (Muennighoff et al. 2023): the laws fit "
          "effective data D_eff")
    if preset.repeat_reason:
        print(f"the {scale} preset repeats on purpose: {preset.repeat_reason}")
    worst = max(rep["epochs"] for rep, _ in most.values())
    if worst > preset.max_epochs:
        print(f"`run` refuses above {preset.max_epochs:g} epochs at scale {scale} (this study asks "
              f"{worst:.1f}): give more text, a smaller budget, or --allow-repeat")


def _options(args) -> jobs.LaunchOptions:
    return jobs.load_options(args.slurm_config, partition=args.partition, nodes=args.nodes,
                             gpus_per_node=args.gpus_per_node, tasks_per_node=args.tasks_per_node,
                             cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, time_min=args.time_min,
                             account=args.account, qos=args.qos, constraint=args.constraint,
                             array_parallelism=args.array_parallelism)


def _status_hint(study: studies.Study, args) -> str:
    return f"`status {study.name} --scale {study.scale}" + (f" --root {args.root}`" if args.root else "`")


def cmd_run(args) -> int:
    study = _study(args)
    # before any job starts: a corpus too small for the budget is one error line naming the language
    sweeps.check_repetition(sweeps.plan_runs(list(study.runs), study.scale), study.scale, args.allow_repeat)
    opts = _options(args)
    if study.scale == "paper" and not study.runs[0].data.corpus:
        raise XlmrError("the paper scale trains on CC-100: give --corpus DIR (one <lang>.txt[.xz] per language)")
    ensure_suite_data(study)
    bad = launch_study(study, args.executor, opts, wait=args.wait, restart=args.restart)
    if bad:
        print(f"{len(bad)} run(s) did not finish; `run` again resumes them, {_status_hint(study, args)} shows them")
    return 1 if bad else 0


def cmd_eval(args) -> int:
    study = _study(args)
    ensure_suite_data(study)
    bad = launch_study(study, args.executor, _options(args), eval_only=True, wait=args.wait, refresh=args.refresh)
    return 1 if bad else 0


def cmd_status(args) -> int:
    study = _study(args, scan=True)
    states = jobs.study_status(study)
    if not states:
        print(f"no runs under {study.root}: launch the study with `run {study.name} --scale ...`")
        return 1
    rows = [[label, s.state, s.scheduler_state or "", s.job_id or "", s.log or "", s.error or s.detail or ""]
            for label, s in states.items()]
    print(_table(["run", "state", "scheduler", "job", "log", "error or detail"], rows))
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    print("\n" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_collect(args) -> int:
    collect_study(_study(args, scan=True), args.out)
    return 0


def cmd_figures(args) -> int:
    study_figures(_study(args), args.figures, partial=args.partial)
    return 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = ap.add_subparsers(dest="command", required=True)
    names = sorted(studies.STUDIES)

    def common(p, scan=False, suites=True):
        p.add_argument("study", metavar="STUDY", help=f"one of {', '.join(names)}")
        p.add_argument("--root", help="results root (default $XLMR_RESULTS or ./results); a study's runs and table "
                                      "go to ROOT/STUDY")
        p.add_argument("--scale", choices=sweeps.SCALES,
                       help="demo (2 CPU cores), cpu, gpu / gpu-slice (one GPU) or paper (a cluster)"
                            + ("; without it, the runs found in the study's directory" if scan
                               else " (the demo study: demo by default)"))
        p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
        p.add_argument("--corpus", help="corpus directory (default: the scale's demo corpus in $XLMR_CACHE; "
                                        "required to run at scale paper)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="config override applied to every run, e.g. schedule.steps=20 (repeatable)")
        p.add_argument("--only", action="append", default=[], metavar="GLOB",
                       help="only the runs whose name matches (repeatable), e.g. 'matched-none-*'")
        if suites:
            p.add_argument("--suites", help="evaluation suites for every run, comma-separated, 'all' (every offline "
                                            "suite and DDTP transfer) or 'none' (default: the study's own)")

    def executor(p):
        p.add_argument("--executor", choices=jobs.EXECUTORS, default="slurm")
        p.add_argument("--slurm-config", help="YAML file of launch options (keys: the flags below, with underscores)")
        p.add_argument("--partition")
        p.add_argument("--nodes", type=int)
        p.add_argument("--gpus-per-node", type=int)
        p.add_argument("--tasks-per-node", type=int, help="processes per node (default: one per GPU)")
        p.add_argument("--cpus-per-task", type=int)
        p.add_argument("--mem-gb", type=float)
        p.add_argument("--time-min", type=int)
        p.add_argument("--account")
        p.add_argument("--qos")
        p.add_argument("--constraint")
        p.add_argument("--array-parallelism", type=int,
                       help="most runs at once (SLURM array throttle; local executor: processes, default 1)")
        p.add_argument("--wait", action="store_true", help="wait for the SLURM jobs to end")

    p = sub.add_parser("list", help="the studies: scales, suites, notebooks")
    p.set_defaults(func=cmd_list)

    for name in ("plan", "dry-run"):
        p = sub.add_parser(name, help="list the runs with parameters, tokens, epochs per language, FLOPs, GPU-hours "
                                      "and predicted time" + (" (= plan)" if name == "dry-run" else ""))
        common(p)
        p.add_argument("--mfu", type=float, default=0.4, help="assumed model FLOPs utilisation (default 0.4)")
        p.add_argument("--gpu-tflops", type=float, default=312.0,
                       help="peak dense bf16 TFLOP/s of one GPU (default 312, A100; H100 SXM 989)")
        p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="train and evaluate the runs not done and not queued (slurm array, local or "
                                   "debug); finished runs lacking a suite are only evaluated")
    common(p)
    executor(p)
    p.add_argument("--allow-repeat", action="store_true",
                   help="train even where a language would exceed the scale's epoch limit (see `plan`)")
    p.add_argument("--restart", action="store_true",
                   help="where a run directory holds a run of another config, move it aside (to .old/ in the "
                        "study directory) and start afresh")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="evaluate finished runs with the suites they lack (or hold with other settings), "
                                    "as jobs on the same executors, without any training step")
    common(p)
    executor(p)
    p.add_argument("--refresh", action="store_true", help="evaluate every suite again, even those up to date")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("status", help="done / trained / running / pending / interrupted / failed / new per run, "
                                      "shared runs included, with logs and errors")
    common(p, scan=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("collect", help="the study's tidy results table, written to its directory")
    common(p, scan=True, suites=False)
    p.add_argument("--out", help="also copy the table to this path")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("figures", help="execute the study's notebooks against its table into figures/STUDY")
    common(p, suites=False)
    p.add_argument("--figures", help="figures and executed notebooks (default figures/STUDY)")
    p.add_argument("--partial", action="store_true", help="draw from the runs finished so far, not only from a "
                                                          "complete table")
    p.set_defaults(func=cmd_figures)
    return ap


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return args.func(args)
    except XlmrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
