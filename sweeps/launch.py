"""Launch the scaling sweeps: ``dry-run | plan | run | status | collect`` (the runs are defined in xlmr_core.sweeps).

    python sweeps/launch.py dry-run capacity_dilution --scale paper
    python sweeps/launch.py plan scaling_laws --scale gpu     # tokens, epochs per language, FLOPs, time
    python sweeps/launch.py run capacity_dilution --scale demo --executor local
    python sweeps/launch.py run vocab_scaling --scale paper --executor slurm --partition gpu \\
        --nodes 2 --gpus-per-node 8 --cpus-per-task 10 --mem-gb 480 --time-min 4320 --slurm-config cluster.yaml
    python sweeps/launch.py status capacity_dilution
    python sweeps/launch.py collect capacity_dilution
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from pathlib import Path

from xlmr_core import jobs, results, sweeps
from xlmr_core.config import apply_overrides
from xlmr_core.errors import XlmrError


def _root(args) -> Path:
    return Path(args.root or os.environ.get("XLMR_RESULTS") or "results")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise XlmrError(f"--seeds {text!r}: give integers separated by commas, e.g. 0,1,2") from None


def _suites(text: str | None) -> tuple[str, ...]:
    """``--suites``: comma-separated names, ``none``, or (not given) every offline suite, DDTP transfer included."""
    from xlmr_core import evaluate

    if text is None:
        return tuple(evaluate.SUITES) + tuple(evaluate.TRANSFER_SUITES)
    return () if text in ("", "none") else tuple(s for s in text.split(",") if s)


def _ensure_suite_data(suites: tuple[str, ...]) -> None:
    """Build the DDTP data set here, before any job runs: compute nodes often have no network, and parallel jobs
    must not build it at once."""
    if "ddtp" in suites:
        from xlmr_core.democorpus.ddtp import ensure_ddtp

        try:
            print(f"ddtp: {ensure_ddtp()}", flush=True)
        except XlmrError as e:
            raise XlmrError(f"{e}; or leave DDTP transfer out: --suites {','.join(s for s in suites if s != 'ddtp')}"
                            ) from None


def _runs(args) -> list:
    """The sweep's run configs, with ``--set`` overrides applied and filtered by ``--only``."""
    cfgs = sweeps.get_sweep(args.sweep, args.scale, _seeds(args.seeds), _root(args), args.corpus)
    if args.set:
        cfgs = [apply_overrides(c, args.set) for c in cfgs]
    if args.only:
        cfgs = [c for c in cfgs if any(fnmatch.fnmatch(c.name, pat) for pat in args.only)]
        if not cfgs:
            raise XlmrError(f"--only {' '.join(args.only)} matches no run of {args.sweep} at scale {args.scale}")
    return cfgs


def _si(x: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


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


def cmd_dry_run(args) -> int:
    cfgs = _runs(args)
    preset = sweeps.PRESETS[args.scale]
    plans = sweeps.plan_runs(cfgs, args.scale)
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
            return _si(sum(rep[x]["tokens_seen"] for x in members) / len(members)) if members else "-"

        total_s += pl.seconds or 0.0
        worst = pl.most_repeated()
        rows.append([c.name, tags.get("design", "-"), c.model.size, mcfg.hidden_size, mcfg.num_layers,
                     c.data.vocab_size, len(c.data.langs) or "all", _si(p["embedding"]), _si(p["non_embedding"]),
                     _si(p["total"]), _si(pl.tokens), group_tokens("high"), group_tokens("low"), f"{pl.flops:.2e}",
                     _hours(gpu_h), _duration(pl.seconds) if pl.seconds else "-",
                     f"{_epochs(pl.repetition[worst[0]])} {worst[0]}" if worst else "-"])
    print(_table(["run", "design", "size", "hidden", "layers", "vocab", "langs", "embedding", "non-embedding",
                  "total params", "tokens", "tokens/high target", "tokens/low target", "FLOPs", "GPU-h",
                  f"predicted ({args.scale})", "max epochs"], rows))
    gpu_h = total_flops / (args.gpu_tflops * 1e12 * args.mfu) / 3600
    print(f"\n{len(cfgs)} runs ({args.sweep}, scale {args.scale}, seeds {args.seeds}): {total_flops:.2e} FLOPs, "
          f"{_hours(gpu_h)} GPU-hours at {args.mfu:.0%} MFU of {args.gpu_tflops:g} TFLOP/s "
          "(LM head: dense + LayerNorm + bias, projection tied; FLOPs count matmuls, the head at masked tokens)")
    if preset.device_flops:
        print(f"predicted time of one run after another at the {args.scale} scale's "
              f"{preset.device_flops / 1e12:.3g} TFLOP/s sustained per run + {preset.token_overhead_s * 1e6:.3g} µs "
              f"per token ({sweeps.DEVICE_NOTE[args.scale]}): "
              f"{_duration(total_s)}; tokens per target: tokens × the sampling probability of the run")
    _print_repetition(plans, preset, args)
    return 0


def _print_repetition(plans: list, preset, args) -> None:
    """Epochs per training language (the most any run of the sweep asks), the 4-epoch warning and the limit."""
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
    rows = [[lang, f"{rep['unique_tokens']:,}", _si(rep["tokens_seen"]), _epochs(rep), pl.cfg.name]
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
        print(f"the {args.scale} preset repeats on purpose: {preset.repeat_reason}")
    worst = max(rep["epochs"] for rep, _ in most.values())
    if worst > preset.max_epochs:
        print(f"`run` refuses above {preset.max_epochs:g} epochs at scale {args.scale} (this sweep asks "
              f"{worst:.1f}): give more text, a smaller budget, or --allow-repeat")


def cmd_run(args) -> int:
    cfgs = _runs(args)
    # before any job starts: a corpus too small for the budget is one error line naming the language
    sweeps.check_repetition(sweeps.plan_runs(cfgs, args.scale), args.scale, args.allow_repeat)
    opts = jobs.load_options(args.slurm_config, partition=args.partition, nodes=args.nodes,
                             gpus_per_node=args.gpus_per_node, tasks_per_node=args.tasks_per_node,
                             cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, time_min=args.time_min,
                             account=args.account, qos=args.qos, constraint=args.constraint,
                             array_parallelism=args.array_parallelism)
    if args.executor == "slurm" and args.corpus is None and args.scale == "paper" and not cfgs[0].data.corpus:
        raise XlmrError("the paper scale trains on CC-100: give --corpus DIR (one <lang>.txt[.xz] per language)")
    suites = _suites(args.suites)
    _ensure_suite_data(suites)
    out = jobs.launch(cfgs, args.executor, opts, _root(args) / args.sweep, suites, wait=args.wait,
                      restart=args.restart)
    if args.executor != "slurm":
        states = jobs.sweep_status(_root(args) / args.sweep)
        bad = [n for n in out.submitted if states.get(n) and states[n].state != "done"]
        return 1 if bad else 0
    return 0


def cmd_status(args) -> int:
    sweep_dir = _root(args) / args.sweep
    extra = [c.run_dir for c in _runs(args)] if args.scale else []
    suites = None if args.suites is None else _suites(args.suites)
    wanted = jobs.wanted_suites(suites) if suites else None  # None: as each run's job was submitted
    states = jobs.sweep_status(sweep_dir, None if suites is None else suites != (), extra, suites=wanted)
    if not states:
        print(f"no runs under {sweep_dir}: launch the sweep with `run {args.sweep} --scale ...`")
        return 1
    rows = [[name, s.state, s.scheduler_state or "", s.job_id or "", s.log or "", s.error or s.detail or ""]
            for name, s in states.items()]
    print(_table(["run", "state", "scheduler", "job", "log", "error or detail"], rows))
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    print("\n" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_collect(args) -> int:
    import pandas as pd

    sweep_dir = _root(args) / args.sweep
    df = results.load(sweep_dir)
    out = Path(args.out) if args.out else sweep_dir / "results.csv"
    from xlmr_core.fsutil import atomic_write_text

    atomic_write_text(out, df.to_csv(index=False))
    cols = [c for c in ("run", "status", "n_langs", "width", "vocab", "mode", "alpha", "model_size", "seed",
                        "params_total", "tokens", "wall_s", "bpb_mean", "acc_mean") if c in df.columns]
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 30):
        print(df[cols].to_string(index=False))
    print(f"\n{len(df)} runs, {int((df['status'] == 'done').sum()) if len(df) else 0} done; table written to {out}")
    long_out = out.with_name(out.stem + "_per_lang.csv")
    atomic_write_text(long_out, results.load_long(sweep_dir).to_csv(index=False))
    print(f"per-language table written to {long_out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sweeps/launch.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p, sweep_args=True, scale_required=True):
        p.add_argument("sweep", choices=sorted(sweeps.SWEEPS))
        p.add_argument("--root", help="results root (default $XLMR_RESULTS or ./results); runs go to ROOT/SWEEP/RUN")
        if sweep_args:
            p.add_argument("--scale", choices=sweeps.SCALES, required=scale_required,
                           help="demo (2 CPU cores), gpu (one GPU) or paper (a cluster)")
            p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
            p.add_argument("--corpus", help="corpus directory (default: the demo corpus; required at scale paper)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="config override applied to every run, e.g. schedule.steps=20 (repeatable)")
            p.add_argument("--only", action="append", default=[], metavar="GLOB",
                           help="only the runs whose name matches (repeatable), e.g. 'L005-*'")
            p.add_argument("--suites", help="evaluation suites, comma-separated, or 'none' (default: all offline, "
                                                         "DDTP transfer included)")

    for name in ("dry-run", "plan"):
        p = sub.add_parser(name, help="list the runs with parameters, tokens, epochs per language, FLOPs, GPU-hours "
                                      "and predicted time" + (" (= dry-run)" if name == "plan" else ""))
        common(p)
        p.add_argument("--mfu", type=float, default=0.4, help="assumed model FLOPs utilisation (default 0.4)")
        p.add_argument("--gpu-tflops", type=float, default=312.0,
                       help="peak dense bf16 TFLOP/s of one GPU (default 312, A100; H100 SXM 989)")
        p.set_defaults(func=cmd_dry_run)

    p = sub.add_parser("run", help="submit the runs not done and not queued (slurm array, local or debug)")
    common(p)
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
    p.add_argument("--allow-repeat", action="store_true",
                   help="train even where a language would exceed the scale's epoch limit (see `plan`)")
    p.add_argument("--restart", action="store_true",
                   help="where a run directory holds a run of another config, move it aside (to .old/ in the "
                        "sweep directory) and start afresh")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="done / trained / running / pending / interrupted / failed / new per run, "
                                      "with logs and errors")
    common(p, scale_required=False)  # with --scale, runs never submitted are listed too
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("collect", help="one results table (CSV) through xlmr_core.results")
    common(p, sweep_args=False)
    p.add_argument("--out", help="CSV path (default ROOT/SWEEP/results.csv)")
    p.set_defaults(func=cmd_collect)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except XlmrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
