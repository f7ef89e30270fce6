"""The GPU check (issue 16), in one go and under 8 minutes on one H200: the GPU tests, base and large throughput and
MFU against transformers (with tuning variants and a profile), a gpu-scale training run through the real trainer
and, if time is left, the gpu-slice study; everything under one results folder, the figures merged into
``benchmarks/results/gpu.json``.

    python scripts/gpu_check.py prepare               # here (network): missing wheels + demo corpus -> .whl/
    python scripts/gpu_check.py run --dry-run         # the stages, their exact commands and time budgets
    python3 scripts/gpu_check.py run --out "$OUT"     # on the GPU machine (device tool: carry [".whl"])
    python scripts/gpu_check.py merge DIR             # here: DIR's stage outputs -> benchmarks/results/gpu.json

Each stage runs as child processes with a time budget (killed with their process group when it runs out); a stage
that fails or times out is recorded and the next one starts; ``stages.json`` and ``gpu.json`` in the results folder
are rewritten after every stage, so a run cut short keeps what it measured. The results folder holds at most the
eight files the device tool brings back: gpu.json, stages.json, log.txt, bench_base.json (with the profile),
bench_large.json, train_metrics.jsonl, slice.csv, slice_per_lang.csv. Scratch (installed wheels, the corpus, caches,
run directories) goes to ``--work``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xlmr_core.cliutil import OneLineParser  # noqa: E402 (stdlib only: works before setup)
from xlmr_core.fsutil import atomic_write_json, atomic_write_text  # noqa: E402 (stdlib only: works before setup)

RESULTS = REPO / "benchmarks" / "results" / "gpu.json"
CARRY = ".whl"  # gitignored; the device tool's carry list is [CARRY]
CORPUS_ARCHIVE = "demo-corpus.tar.xz"
# on the device machine's image (KINDS.md): PyTorch, transformers, sentencepiece, scipy, pyyaml, pandas, tqdm,
# pytest; missing there and imported by what the check runs: zstandard (corpus), submitit (jobs, sweeps).
# papermill is not needed: no stage runs a notebook.
MISSING_ON_DEVICE = ("zstandard", "submitit")
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
CARRY_LIMIT = 64 * 2**20  # the working tree plus carried paths, per device call

STAGES = ("setup", "env", "tests", "bench-base", "bench-large", "train", "slice")
BUDGETS = {"setup": 35, "env": 10, "tests": 120, "bench-base": 150, "bench-large": 70, "train": 80, "slice": 0}
"""Seconds per stage (0: whatever is left); with the default --budget they add up to the 8-minute frame."""
TOTAL_BUDGET = 470
MERGE_RESERVE = 5  # seconds kept for the final merge
SLICE_MIN = 90  # the slice starts only with this much time left
SLICE_SCALE, SLICE_SWEEP = "gpu-slice", "capacity_dilution"
TRAIN_TOKENIZER_LINES = 50_000  # the gpu preset's 1M lines would spend the stage on SentencePiece
OUT_FILES = ("gpu.json", "stages.json", "log.txt", "bench_base.json", "bench_large.json", "train_metrics.jsonl",
             "slice.csv", "slice_per_lang.csv")
"""What the results folder holds: the device tool brings back at most 8 files (the profile is in bench_base.json)."""
OUT_LIMIT = 8


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit status 2."""


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------- stages


@dataclass
class Cmd:
    """One step of a stage: a command line (a list, or a function of the seconds it gets) or an internal action."""

    label: str
    argv: list[str] | Callable[[float], list[str]] | None = None
    action: Callable[[], str | None] | None = None
    """Internal step: returns a note, raises on failure."""
    always: bool = False
    """Runs even when an earlier step of the stage failed or timed out."""
    reserve: float = 0.0
    """Seconds of the stage's budget kept for this step (an ``always`` step after a long one)."""
    optional: bool = False
    """Its failure does not fail the stage."""

    def command(self, seconds: float) -> list[str] | None:
        return self.argv(seconds) if callable(self.argv) else self.argv


@dataclass
class Stage:
    name: str
    budget: float
    """Seconds (0: all that is left)."""
    cmds: list[Cmd]
    guard: Callable[[], str | None] | None = None
    """Returns a reason to skip the stage, checked just before it would start."""
    min_s: float = 5.0
    """Skip the stage when less time than this is left."""
    after: Callable[[dict], dict | None] | None = None
    """Reads the stage's outputs into its record (``result``); may set ``status`` and ``reason``."""
    note: str = ""


def _q(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after a few seconds."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGKILL:
                return
        except subprocess.TimeoutExpired:
            continue
    # the leader has exited; members of its group may remain
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_command(argv: list[str], timeout: float, env: dict, log: Path) -> tuple[str, int | None, float]:
    """Run ``argv`` in its own process group, output appended to ``log``: (ok|failed|timeout, rc, seconds)."""
    t = time.monotonic()
    with open(log, "ab") as f:
        f.write(f"\n$ {_q(argv)}\n".encode())
        f.flush()
        try:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=REPO, preexec_fn=os.setpgrp)
        except OSError as e:
            f.write(f"[gpu_check] cannot start: {e}\n".encode())
            return "failed", None, 0.0
        try:
            rc = proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            f.write(f"\n[gpu_check] killed after {timeout:.0f} s (its time budget)\n".encode())
            return "timeout", None, time.monotonic() - t
        except BaseException:  # interrupted (SIGTERM, Ctrl-C): take the stage's processes along
            _kill_group(proc)
            raise
        # a finished leader may leave children of its group behind (a sweep's workers): end them too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return ("ok" if rc == 0 else "failed"), rc, time.monotonic() - t


def run_stage(stage: Stage, timeout: float, env: dict, log: Path) -> dict:
    """Run a stage's steps within ``timeout`` seconds; the record of what happened."""
    t0 = time.monotonic()
    end = t0 + timeout
    rec = dict(name=stage.name, status="ok", budget_s=round(timeout, 1), started=_now(), steps=[])
    _log(log, f"==== stage {stage.name} (budget {timeout:.0f} s) ====")
    for i, cmd in enumerate(stage.cmds):
        if rec["status"] != "ok" and not cmd.always:
            rec["steps"].append(dict(label=cmd.label, status="skipped", reason=f"stage {rec['status']}"))
            continue
        later = sum(c.reserve for c in stage.cmds[i + 1:])
        left = end - time.monotonic() - later
        if left <= 0.5:
            rec["steps"].append(dict(label=cmd.label, status="skipped", reason="no time left in the stage"))
            if not cmd.optional:
                rec["status"] = "timeout" if rec["status"] == "ok" else rec["status"]
            continue
        argv = cmd.command(left)
        if argv is not None:
            status, rc, secs = run_command(argv, left, env, log)
            step = dict(label=cmd.label, status=status, rc=rc, seconds=round(secs, 1), command=_q(argv))
        else:
            ts = time.monotonic()
            try:
                note = cmd.action()
                status, step = "ok", dict(label=cmd.label, status="ok")
                if note:
                    step["note"] = note
                    _log(log, f"[gpu_check] {cmd.label}: {note}")
            except Exception as e:  # noqa: BLE001 - recorded, and the check goes on
                status, step = "failed", dict(label=cmd.label, status="failed", error=f"{type(e).__name__}: {e}")
                _log(log, f"[gpu_check] {cmd.label} failed: {type(e).__name__}: {e}")
            step["seconds"] = round(time.monotonic() - ts, 1)
        rec["steps"].append(step)
        if status != "ok" and not cmd.optional and rec["status"] == "ok":
            rec["status"] = status
            rec["reason"] = f"{cmd.label}: {status}" + (f" (exit {step.get('rc')})" if step.get("rc") else "")
    if stage.after is not None:
        try:
            result = stage.after(rec)
            if result is not None:
                rec["result"] = result
                if result.get("status") == "failed" and rec["status"] == "ok":  # e.g. metrics without MFU
                    rec["status"], rec["reason"] = "failed", result.get("reason", "its outputs")
        except Exception as e:  # noqa: BLE001
            rec.setdefault("reason", f"reading its outputs: {type(e).__name__}: {e}")
            rec["status"] = "failed"
    rec["seconds"] = round(time.monotonic() - t0, 1)
    return rec


def _log(log: Path, text: str) -> None:
    with open(log, "a", encoding="utf-8") as f:
        f.write(text + "\n")


def run_stages(stages: list[Stage], *, budget: float, out: Path, env: dict, selected: set[str] | None = None,
               on_stage: Callable[[list[dict]], None] | None = None, echo=print) -> list[dict]:
    """Run ``stages`` in order inside ``budget`` seconds; each stage's record, written to out/stages.json."""
    t0 = time.monotonic()
    deadline = t0 + budget
    log = out / "log.txt"
    records: list[dict] = []
    for stage in stages:
        rec = dict(name=stage.name, status="skipped")
        left = deadline - time.monotonic() - MERGE_RESERVE
        timeout = min(stage.budget, left) if stage.budget else left
        if selected is not None and stage.name not in selected:
            rec["reason"] = "not selected (--stages/--skip)"
        elif (why := stage.guard() if stage.guard else None) is not None:
            rec["reason"] = why
        elif timeout < stage.min_s:
            rec["reason"] = f"time: {max(left, 0):.0f} s left of the {budget:.0f} s budget, {stage.min_s:.0f} s wanted"
        else:
            echo(f"[{time.monotonic() - t0:5.0f} s] {stage.name}: start (budget {timeout:.0f} s)", flush=True)
            try:
                rec = run_stage(stage, timeout, env, log)
            except Exception as e:  # noqa: BLE001 - a bug here must not cost the stages after it
                rec = dict(name=stage.name, status="failed", reason=f"gpu_check itself: {type(e).__name__}: {e}")
        if rec["status"] == "skipped":
            _log(log, f"==== stage {stage.name}: skipped ({rec['reason']}) ====")
        echo(f"[{time.monotonic() - t0:5.0f} s] {stage.name}: {rec['status']}"
             + (f" in {rec['seconds']:.0f} s" if "seconds" in rec else "")
             + (f" ({rec['reason']})" if rec.get("reason") else ""), flush=True)
        records.append(rec)
        atomic_write_json(out / "stages.json", dict(date=_now(), budget_s=budget,
                                                    wall_s=round(time.monotonic() - t0, 1), stages=records))
        if on_stage is not None:
            on_stage(records)
    return records


# ---------------------------------------------------------------- the plan


@dataclass
class Paths:
    out: Path
    work: Path
    carry: Path

    @property
    def site(self) -> Path:
        return self.work / "site"

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    @property
    def corpus(self) -> Path:
        return self.cache / "demo-corpus"


def gpu_test_files() -> list[str]:
    """Test modules with GPU-marked tests (found by their marker, so new ones join without a change here)."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py")
                  if "mark.gpu" in p.read_text(encoding="utf-8"))


def train_overrides(p: Paths, steps: int) -> list[str]:
    """``xlmr train`` overrides: the gpu preset's model, vocabulary, sequence, batch, masking and learning rate
    (its tokenizer sample capped at TRAIN_TOKENIZER_LINES, its steps replaced by ``steps``)."""
    from xlmr_core.study.sweeps import PRESETS

    g = PRESETS["gpu"]
    over = [f"run_dir={p.work / 'runs' / 'gpu-scale'}", f"data.corpus={p.corpus}", f"model.size={g.model.size}"]
    over += [f"model.{k}={v}" for k, v in g.model.overrides().items()]
    warmup = g.warmup_steps if g.warmup_steps < 0 else min(g.warmup_steps, steps // 3)
    over += [f"data.vocab_size={g.vocab_size}", f"data.seq_len={g.seq_len}", f"data.batch_tokens={g.batch_tokens}",
             f"data.mask_prob={g.mask_prob}", f"optim.lr={g.lr}", f"schedule.steps={steps}",
             f"schedule.warmup_steps={warmup}",
             f"data.tokenizer_sample_lines={min(g.tokenizer_sample_lines, TRAIN_TOKENIZER_LINES)}",
             f"log_interval={max(1, steps // 12)}", f"checkpoint.interval={steps}", "eval.max_blocks=8",
             "precision.device=cuda", "name=gpu-check", "tags=gpu_check"]
    return over


def slice_guard() -> str | None:
    from xlmr_core.study import sweeps

    if SLICE_SCALE not in sweeps.SCALES:
        return f"scale {SLICE_SCALE!r} is not defined in xlmr_core.study.sweeps (scales: {', '.join(sweeps.SCALES)})"
    return None


def build_plan(args, p: Paths) -> list[Stage]:
    """The check's stages, each with its exact commands and budget."""
    py = sys.executable
    budgets = {**BUDGETS, **args.stage_budgets}
    wheels = sorted(p.carry.glob("*.whl"))
    archive = p.carry / CORPUS_ARCHIVE

    def install_wheels() -> list[str] | None:
        return [py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
                "--upgrade", "--target", str(p.site), *map(str, wheels)]

    def extract_corpus() -> str:
        if (p.corpus / "meta.json").exists():
            return f"{p.corpus} is there already"
        if not archive.exists():
            raise FileNotFoundError(f"{archive} is missing: run `python scripts/gpu_check.py prepare` where "
                                    "there is network, and carry .whl")
        p.cache.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:xz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.12 (and backports): no links out of the folder
                tar.extractall(p.cache, filter="data")
            else:
                tar.extractall(p.cache)
        return f"{archive.name} -> {p.corpus}"

    def fresh_run_dir() -> str:
        run = p.work / "runs" / "gpu-scale"
        shutil.rmtree(run, ignore_errors=True)  # a finished run would return at once instead of training
        return f"{run} cleared"

    imports = ("import submitit, zstandard, transformers, sentencepiece, xlmr_core.train.trainer, "
               "xlmr_core.study.jobs; print('ok')")
    setup = [Cmd(f"install {len(wheels)} wheel(s) into {p.site}", argv=install_wheels() if wheels else None,
                 action=None if wheels else (lambda: "no wheels in .whl: nothing to install")),
             Cmd("pip install --no-deps -e . (else PYTHONPATH)", optional=True,
                 argv=[py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-e",
                       str(REPO)]),
             Cmd(f"extract {CORPUS_ARCHIVE}", action=extract_corpus),
             Cmd("imports", argv=[py, "-c", imports]),
             Cmd("demo corpus is current", argv=[py, str(Path(__file__).resolve()), "_corpus"])]
    env_cmds = [Cmd("environment", argv=[py, str(Path(__file__).resolve()), "_env", "--json",
                                         str(p.work / "env.json")]),
                Cmd("nvidia-smi", argv=["nvidia-smi"], optional=True)]
    junit = p.work / "pytest.xml"
    tests = [Cmd("pytest -m gpu", argv=[py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                                        "--timeout", "120", f"--junitxml={junit}", *gpu_test_files()])]
    gpu_py = str(REPO / "benchmarks" / "gpu.py")
    base_json, large_json = p.out / "bench_base.json", p.out / "bench_large.json"

    def bench_base(seconds: float) -> list[str]:
        return [py, gpu_py, "--sizes", "base", "--tune", "--profile", str(p.work / "profile.json"),
                "--json", str(base_json), "--time-budget", f"{max(seconds - 20, 10):.0f}"]

    def bench_large(seconds: float) -> list[str]:
        like = ["--like", str(base_json)] if args.dry_run or base_json.exists() else []
        return [py, gpu_py, "--sizes", "large", *like, "--json", str(large_json),
                "--time-budget", f"{max(seconds - 20, 10):.0f}"]

    xlmr = [py, "-m", "xlmr_core", "train", *train_overrides(p, args.train_steps)]
    slice_root = p.work / "slice"

    def slice_run(seconds: float) -> list[str]:
        return [py, str(REPO / "sweeps" / "launch.py"), "run", SLICE_SWEEP, "--scale", SLICE_SCALE,
                "--executor", "local", "--root", str(slice_root)]

    stages = [
        Stage("setup", budgets["setup"], setup),
        Stage("env", budgets["env"], env_cmds, after=lambda rec: _read_json(p.work / "env.json")),
        Stage("tests", budgets["tests"], tests, after=lambda rec: junit_summary(junit, gpu_expected=True)),
        Stage("bench-base", budgets["bench-base"], [Cmd("gpu.py base --tune --profile", argv=bench_base)],
              min_s=40, after=lambda rec: bench_summary(base_json)),
        Stage("bench-large", budgets["bench-large"], [Cmd("gpu.py large", argv=bench_large)],
              min_s=30, after=lambda rec: bench_summary(large_json),
              note="--like: base's best settings, at large's batch and twice it (dropped if bench-base wrote "
                   "nothing)"),
        Stage("train", budgets["train"], [Cmd("fresh run directory", action=fresh_run_dir),
                                          Cmd("xlmr train, gpu preset", argv=xlmr)],
              min_s=40, after=lambda rec: train_summary(p.work / "runs" / "gpu-scale", p.out)),
        Stage("slice", budgets["slice"],
              [Cmd(f"sweeps/launch.py run {SLICE_SWEEP} --scale {SLICE_SCALE}", argv=slice_run),
               Cmd("collect", always=True, reserve=20,
                   argv=[py, str(REPO / "sweeps" / "launch.py"), "collect", SLICE_SWEEP, "--root", str(slice_root),
                         "--out", str(p.out / "slice.csv")])],
              guard=slice_guard, min_s=SLICE_MIN, after=lambda rec: slice_summary(p.out / "slice.csv"),
              note=f"only with {SLICE_MIN} s left; the runs that finish count, collect always runs"),
    ]
    return stages


def child_env(p: Paths) -> dict:
    """The environment of every stage: carried wheels and the repository importable, offline, caches in work."""
    path = [str(p.site), str(REPO)] + [x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "XLMR_CACHE": str(p.cache), "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "TORCHINDUCTOR_CACHE_DIR": str(p.work / "inductor"), "MPLBACKEND": "Agg"}


# ---------------------------------------------------------------- reading stage outputs


def _read_json(path: Path) -> dict | None:
    """The JSON in ``path``, None if there is no such file; a ValueError naming the file if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None


def junit_summary(path: Path, gpu_expected: bool = False) -> dict | None:
    """Counts and failing test ids from pytest's JUnit XML (on the GPU machine, nothing may be skipped for CUDA)."""
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed, skipped = [], []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append(name)
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    res = dict(**counts, failed=failed, skipped_tests=skipped)
    if gpu_expected and counts["tests"] and not counts["passed"] and counts["skipped"]:
        res.update(status="failed", reason="every GPU test was skipped: CUDA is not usable from pytest")
    return res


def bench_summary(path: Path) -> dict | None:
    """The one-line figures of a gpu.py output: best variant and the transformers baseline per size."""
    data = _read_json(path)
    if not data:
        return None
    return dict(sizes=[size_summary(s, data.get("meta", {})) for s in data.get("sizes", [])])


def _best(size_record: dict) -> dict | None:
    ok = [v for v in size_record.get("variants", []) if v.get("status") == "ok"]
    return max(ok, key=lambda v: v["tokens_per_s"]) if ok else None


def size_summary(rec: dict, meta: dict) -> dict:
    """The table row of one size: ours (best variant) against transformers."""
    best, tf = _best(rec), rec.get("transformers") or {}
    base = next((v for v in rec.get("variants", []) if v.get("baseline")), None)
    gib = 2**30
    row = dict(size=rec.get("size"), gpu=meta.get("gpu"), torch=meta.get("torch"), date=meta.get("date"),
               variants_tried=len(rec.get("variants", [])),
               variants_ok=sum(v.get("status") == "ok" for v in rec.get("variants", [])),
               first_loss=rec.get("first_loss"))
    if best:
        row.update(best=best["name"], batch=best["settings"]["batch"], ours_tokens_per_s=best["tokens_per_s"],
                   ours_mfu=best["mfu"], ours_peak_memory_gib=_div(best.get("peak_memory_bytes"), gib),
                   ours_losses_finite=best.get("losses_finite"))
    if base and base.get("status") == "ok":
        row.update(baseline=base["name"], baseline_tokens_per_s=base["tokens_per_s"], baseline_mfu=base["mfu"])
    if tf:
        row.update(transformers_batch=tf.get("batch"), transformers_tokens_per_s=tf.get("tokens_per_s"),
                   transformers_mfu_useful=tf.get("mfu_useful"), transformers_mfu_executed=tf.get("mfu_executed"),
                   transformers_peak_memory_gib=_div(tf.get("peak_memory_bytes"), gib),
                   paired_speedup_at_baseline=tf.get("paired_speedup"))
        if best and tf.get("tokens_per_s"):
            row["speedup"] = best["tokens_per_s"] / tf["tokens_per_s"]
    return row


def _div(x, d):
    return x / d if x else None


def train_summary(run_dir: Path, out: Path) -> dict:
    """What the gpu-scale run wrote: tokens/s and MFU per logged step (both must be there), losses, final record."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        raise FileNotFoundError(f"{metrics} was not written")
    shutil.copyfile(metrics, out / "train_metrics.jsonl")
    rows = [json.loads(x) for x in metrics.read_text(encoding="utf-8").splitlines() if x.strip()]
    steps = [r for r in rows if "loss" in r]
    if not steps:
        raise ValueError(f"{metrics} has no training records")
    missing = sorted({k for r in steps for k in ("tokens_per_s", "mfu") if r.get(k) is None})
    # the first record includes start-up (allocator, kernels' first launch): the rest show the steady rate
    steady = steps[1:] or steps
    res = dict(steps=steps[-1]["step"], records=len(steps), loss_first=steps[0]["loss"], loss_last=steps[-1]["loss"],
               tokens_per_s=_mean([r.get("tokens_per_s") for r in steady]), mfu=_mean([r.get("mfu") for r in steady]),
               tokens_per_s_last=steps[-1].get("tokens_per_s"), mfu_last=steps[-1].get("mfu"),
               metrics_have_tokens_per_s_and_mfu=not missing)
    config = _read_json(run_dir / "config.json") or {}
    final = _read_json(run_dir / "final.json")
    res.update(model=config.get("model_config"), params=config.get("params"),
               tokens_per_step=config.get("tokens_per_step"), complete=final is not None,
               wall_s=final.get("wall_s") if final else None,
               heldout_bpb_mean=_mean([v.get("bpb") for v in (final or {})
                                                                  .get("per_lang", {}).values()]))
    if missing:
        res["status"], res["reason"] = "failed", f"metrics.jsonl records lack {', '.join(missing)}"
    return res


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def slice_summary(path: Path) -> dict | None:
    if not path.exists():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return dict(runs=len(rows), csv=path.name)


# ---------------------------------------------------------------- merging into gpu.json


def collect(out: Path) -> dict:
    """The sections a results folder holds: benchmark sizes, profile, training, tests, slice, stages, env."""
    new: dict = {}
    stages = _read_json(out / "stages.json") or {}
    records = {r["name"]: r for r in stages.get("stages", [])}
    for name in ("bench_base.json", "bench_large.json"):
        data = _read_json(out / name)
        for s in (data or {}).get("sizes", []):
            new.setdefault("sizes", {})[s["size"]] = dict(meta=data.get("meta", {}), **s)
        if data and data.get("profile"):
            new["profile"] = data["profile"]
    prof = _read_json(out / "profile.json")
    if prof:
        new["profile"] = prof
    for key, stage in (("train", "train"), ("tests", "tests"), ("slice", "slice"), ("env", "env")):
        r = records.get(stage)
        if r and r["status"] != "skipped":
            section = dict(r.get("result") or {})
            section.update(status=r["status"], reason=r.get("reason") or section.get("reason"),
                           seconds=r.get("seconds"), date=r.get("started"))
            new[key] = section
    if records:
        new["stages"] = [{k: r.get(k) for k in ("name", "status", "seconds", "budget_s", "reason")}
                         for r in stages["stages"]]
        new["run"] = dict(date=stages.get("date"), budget_s=stages.get("budget_s"), wall_s=stages.get("wall_s"))
    return new


def _ok(section) -> bool:
    if not isinstance(section, dict):
        return False
    if "variants" in section:
        return any(v.get("status") == "ok" for v in section["variants"])
    return section.get("status", "ok") in ("ok", None)


def merge_records(old: dict, new: dict, command: str) -> dict:
    """``old`` updated by ``new``: a section is replaced unless the new one failed where the old one had figures."""
    merged = {k: v for k, v in old.items() if k not in ("summary", "goals")}
    sizes = dict(old.get("sizes", {}))
    for size, rec in new.get("sizes", {}).items():
        if _ok(rec) or not _ok(sizes.get(size)):
            sizes[size] = rec
    if sizes:
        merged["sizes"] = sizes
    for key in ("profile", "train", "tests", "slice", "env"):
        if key in new and (_ok(new[key]) or not _ok(old.get(key))):
            merged[key] = new[key]
    for key in ("stages", "run"):
        if key in new:
            merged[key] = new[key]
    if "run" in new:
        merged["run"]["command"] = command
        entry = dict(date=new["run"].get("date"), command=command,
                     stages={s["name"]: s["status"] for s in new.get("stages", [])})
        merged["history"] = (list(old.get("history", [])) + [entry])[-20:]
    merged["summary"] = [size_summary(rec, rec.get("meta", {})) for _, rec in sorted(sizes.items())]
    merged["goals"] = goals(merged)
    merged["updated"] = _now()
    return merged


def goals(rec: dict) -> dict:
    """The issue's goals, read off the figures (None where not measured)."""
    rows = {r["size"]: r for r in rec.get("summary", [])}
    base, large = rows.get("base", {}), rows.get("large", {})
    return dict(
        base_mfu_at_least_50pct=None if base.get("ours_mfu") is None else base["ours_mfu"] >= 0.5,
        base_at_least_2x_transformers=None if base.get("speedup") is None else base["speedup"] >= 2.0,
        large_trains_at_useful_batch=None if not large else bool(large.get("ours_losses_finite")
                                                                  and (large.get("batch") or 0) >= 16),
        train_metrics_have_tokens_per_s_and_mfu=(rec.get("train") or {}).get("metrics_have_tokens_per_s_and_mfu"))


def merge(out: Path, results: Path, command: str = "") -> dict:
    """Merge the stage outputs in ``out`` into ``results`` (written atomically); the merged record."""
    if not out.is_dir():
        raise UsageError(f"{out} is not a directory: give the results folder of a run (files_at of the device call)")
    try:
        new = collect(out)
    except ValueError as e:
        raise UsageError(f"unreadable stage output: {e}") from None
    except (KeyError, TypeError) as e:
        raise UsageError(f"{out}: a stage output lacks what gpu.py and gpu_check.py write ({type(e).__name__}: "
                         f"{e})") from None
    if not new:
        raise UsageError(f"{out} holds none of {', '.join(OUT_FILES)}: nothing to merge")
    try:
        old = _read_json(results) or {}
    except ValueError as e:
        raise UsageError(f"{e}: fix or move it, then merge again") from None
    merged = merge_records(old, new, command or (new.get("run") or {}).get("command", ""))
    atomic_write_json(results, merged)
    return merged


def format_summary(rec: dict) -> str:
    """A short table of the merged figures (printed last: the device tool returns the end of the output)."""
    lines = ["size   batch  ours tok/s   MFU   | HF tok/s   MFU useful/exec | speed-up | peak GiB ours/HF | best"]
    f = f_
    for r in rec.get("summary", []):
        lines.append(f"{r['size']:<6} {f(r.get('batch'), '>5')}  {f(r.get('ours_tokens_per_s'), '>10.0f')} "
                     f"{f(r.get('ours_mfu'), '>6.1%')} | {f(r.get('transformers_tokens_per_s'), '>8.0f')} "
                     f"{f(r.get('transformers_mfu_useful'), '>6.1%')}/{f(r.get('transformers_mfu_executed'), '.1%')}"
                     f" | {f(r.get('speedup'), '>6.2f')}x | {f(r.get('ours_peak_memory_gib'), '.1f')}/"
                     f"{f(r.get('transformers_peak_memory_gib'), '.1f')} | {r.get('best', '-')}")
    prof = rec.get("profile") or {}
    if prof.get("top_ops"):
        lines.append("profile (" + str(prof.get("variant")) + "): " + ", ".join(
            f"{o['name']} {o['share_of_step']:.0%}" for o in prof["top_ops"][:3])
            + (f"; device busy {prof['device_busy_share']:.0%}" if prof.get("device_busy_share") else ""))
    t = rec.get("train") or {}
    if t and t.get("steps") is None:
        lines.append(f"train: {t.get('status')} ({t.get('reason')})")
    elif t:
        lines.append(f"train ({t.get('status')}): {t.get('steps')} steps, {f_(t.get('tokens_per_s'), '.0f')} tok/s, "
                     f"MFU {f_(t.get('mfu'), '.1%')}, loss {f_(t.get('loss_first'), '.3f')} -> "
                     f"{f_(t.get('loss_last'), '.3f')}, tokens_per_s and mfu in metrics.jsonl: "
                     f"{t.get('metrics_have_tokens_per_s_and_mfu')}")
    tests = rec.get("tests") or {}
    if tests:
        lines.append(f"tests ({tests.get('status')}): {tests.get('passed')} passed, {tests.get('failures')} failed, "
                     f"{tests.get('errors')} errors, {tests.get('skipped')} skipped"
                     + (f"; failed: {', '.join(tests['failed'])}" if tests.get("failed") else ""))
    lines.append("goals: " + ", ".join(f"{k} {v}" for k, v in rec.get("goals", {}).items()))
    lines.append("stages: " + ", ".join(f"{s['name']} {s['status']}" for s in rec.get("stages", [])))
    return "\n".join(lines)


def f_(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


# ---------------------------------------------------------------- prepare (here, with network)


def wheel_download_command(name: str, version: str, dest: Path, python: str = sys.executable) -> list[str]:
    """pip download of one binary wheel for the device's Python (README of the device tool)."""
    cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", DEVICE_PYTHON,
           "--implementation", "cp"]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    return cmd + ["-d", str(dest), f"{name}=={version}"]


def _dist_name(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower().replace("_", "-")


def prepare(dest: Path, *, wheels: bool = True, corpus: bool = True, echo=print) -> None:
    """Download the wheels the device lacks and archive the demo corpus into ``dest`` (the carried folder)."""
    from importlib.metadata import PackageNotFoundError, version

    dest.mkdir(parents=True, exist_ok=True)
    if wheels:
        for name in MISSING_ON_DEVICE:
            try:
                ver = version(name)
            except PackageNotFoundError:
                raise UsageError(f"{name} is not installed here, so its version is unknown: run prepare with the "
                                 "project's venv (.venv/bin/python)") from None
            for old in dest.glob("*.whl"):  # one version of each: two stop the whole install
                if _dist_name(old) == name and f"-{ver}-" not in old.name:
                    old.unlink()
            if not any(_dist_name(w) == name for w in dest.glob("*.whl")):
                subprocess.run(wheel_download_command(name, ver, dest), check=True)
            echo(f"wheel {name}=={ver}: ok")
    if corpus:
        from xlmr_core.democorpus import ensure_demo_corpus, read_meta

        src = ensure_demo_corpus()
        meta = read_meta(src)
        stamp = dest / "demo-corpus.json"
        archive = dest / CORPUS_ARCHIVE
        if archive.exists() and _read_json(stamp) == meta:
            echo(f"{archive}: up to date")
        else:
            tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
            try:
                with tarfile.open(tmp, "w:xz") as tar:
                    tar.add(src, arcname="demo-corpus")
                os.replace(tmp, archive)
            finally:
                tmp.unlink(missing_ok=True)
            atomic_write_json(stamp, meta)
            echo(f"{archive}: {archive.stat().st_size / 2**20:.1f} MiB from {src}")
    carried = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    echo(f"{dest}: {carried / 2**20:.1f} MiB to carry (with the working tree at most {CARRY_LIMIT / 2**20:.0f} MiB "
         "per device call)")
    echo('device call: run(command=\'python3 scripts/gpu_check.py run --out "$OUT"\', carry=[".whl"], '
         'timeout_s=600)')


# ---------------------------------------------------------------- environment (a stage's child process)


def environment() -> dict:
    """GPU, driver and library versions, the SDPA kernels enabled; nvidia-smi's query fields."""
    import platform

    import torch

    env = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
               cuda_available=torch.cuda.is_available(), host_cpus=os.cpu_count())
    for mod in ("transformers", "sentencepiece", "triton", "numpy", "zstandard", "submitit"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            env[mod] = f"missing ({type(e).__name__})"
    if torch.cuda.is_available():
        prop = torch.cuda.get_device_properties(0)
        env.update(gpu=prop.name, capability=f"{prop.major}.{prop.minor}", sms=prop.multi_processor_count,
                   memory_gib=prop.total_memory / 2**30, cudnn=torch.backends.cudnn.version(),
                   sdpa=dict(flash=torch.backends.cuda.flash_sdp_enabled(),
                             efficient=torch.backends.cuda.mem_efficient_sdp_enabled(),
                             cudnn=torch.backends.cuda.cudnn_sdp_enabled(),
                             math=torch.backends.cuda.math_sdp_enabled()))
    fields = "name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu"
    try:
        q = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=10)
        if q.returncode == 0 and q.stdout.strip():
            env["nvidia_smi"] = dict(zip(fields.split(","), (x.strip() for x in q.stdout.splitlines()[0].split(","))))
    except (OSError, subprocess.SubprocessError):
        pass
    return env


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="scripts/gpu_check.py", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    p = sub.add_parser("run", help="run the stages (on the GPU machine), or --dry-run to list them")
    p.add_argument("--out", type=Path, default=None, help="results folder (default $OUT, else results/gpu_check)")
    p.add_argument("--work", type=Path, default=Path("/tmp/xlmr-gpu-check"), help="scratch folder")
    p.add_argument("--carry", type=Path, default=REPO / CARRY, help="the carried folder (wheels, corpus archive)")
    p.add_argument("--results", type=Path, default=RESULTS, help="the gpu.json the figures are merged into")
    p.add_argument("--budget", type=float, default=TOTAL_BUDGET, help="seconds for all stages (default %(default)s)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset, in this order: "
                                                               + ",".join(STAGES))
    p.add_argument("--skip", default="", help="comma-separated stages to leave out")
    p.add_argument("--stage-budget", action="append", default=[], metavar="STAGE=SECONDS",
                   help="override one stage's budget (repeatable)")
    p.add_argument("--train-steps", type=int, default=300, help="steps of the gpu-scale training run")
    p.add_argument("--dry-run", action="store_true", help="print the stages, commands and budgets; run nothing")
    p = sub.add_parser("merge", help="merge a results folder's stage outputs into benchmarks/results/gpu.json")
    p.add_argument("dir", type=Path)
    p.add_argument("--results", type=Path, default=RESULTS)
    p = sub.add_parser("prepare", help="download the wheels the device lacks and archive the demo corpus into .whl/")
    p.add_argument("--dest", type=Path, default=REPO / CARRY)
    p.add_argument("--no-wheels", action="store_true")
    p.add_argument("--no-corpus", action="store_true")
    p = sub.add_parser("_env")  # the env stage's child process
    p.add_argument("--json", type=Path, required=True)
    sub.add_parser("_corpus")  # a setup step's child process
    return ap


def _stage_list(text: str, flag: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise UsageError(f"{flag}: unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    return names


def check_run_args(args) -> None:
    """Every bad value of ``run`` as one clear line (UsageError)."""
    if not 0 < args.budget <= 3600:
        raise UsageError(f"--budget {args.budget:g} must be in (0, 3600] seconds (the device allows 600 per call)")
    if args.train_steps < 1:
        raise UsageError(f"--train-steps {args.train_steps} must be at least 1")
    selected = set(_stage_list(args.stages, "--stages")) - set(_stage_list(args.skip, "--skip"))
    if not selected:
        raise UsageError("no stage left to run: check --stages and --skip")
    args.selected = selected
    args.stage_budgets = {}
    for item in args.stage_budget:
        name, sep, value = item.partition("=")
        if not sep or name not in STAGES:
            raise UsageError(f"--stage-budget {item!r}: write STAGE=SECONDS with a stage among {', '.join(STAGES)}")
        try:
            seconds = float(value)
        except ValueError:
            raise UsageError(f"--stage-budget {item!r}: {value!r} is not a number of seconds") from None
        if seconds < 0:
            raise UsageError(f"--stage-budget {item!r}: seconds must be >= 0 (0: what is left)")
        args.stage_budgets[name] = seconds
    if args.out is None:
        args.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "results" / "gpu_check"


def _size_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.is_dir() else 0.0


def check_corpus() -> int:
    """The ``_corpus`` step of setup: the extracted demo corpus is the one this code's ensure_demo_corpus accepts
    (another builder version would make the trainer and the tests try a rebuild, and there is no network there)."""
    from xlmr_core.democorpus.build import BUILDER_VERSION, DEFAULT_SETTINGS, default_out_dir, read_meta

    out = default_out_dir()
    meta = read_meta(out) or {}
    if meta.get("builder_version") == BUILDER_VERSION and meta.get("settings") == DEFAULT_SETTINGS:
        print(f"demo corpus {out}: current")
        return 0
    print(f"demo corpus {out}: missing or stale (builder version {meta.get('builder_version')}, this code's is "
          f"{BUILDER_VERSION}): run `python scripts/gpu_check.py prepare` again where there is network")
    return 1


def corpus_archive_state(carry: Path) -> str:
    """Whether the carried demo corpus is there and was built by this code's builder version and settings."""
    if not (carry / CORPUS_ARCHIVE).exists():
        return "MISSING: run `python scripts/gpu_check.py prepare`"
    stamp = _read_json(carry / "demo-corpus.json") or {}
    try:
        from xlmr_core.democorpus.build import BUILDER_VERSION, DEFAULT_SETTINGS
    except ImportError as e:
        return f"present (freshness not checked: {e})"
    if stamp.get("builder_version") != BUILDER_VERSION or stamp.get("settings") != DEFAULT_SETTINGS:
        return (f"STALE (builder version {stamp.get('builder_version')}, this code's is {BUILDER_VERSION}): run "
                "`python scripts/gpu_check.py prepare` again")
    return "present, current"


def print_plan(stages: list[Stage], args, p: Paths, echo=print) -> None:
    total = sum(s.budget for s in stages if s.name in args.selected and s.budget)
    echo(f"gpu_check dry run: {len(stages)} stages; total budget {args.budget:.0f} s (stages' own budgets add to "
         f"{total:.0f} s; a stage gets at most what is left, {MERGE_RESERVE} s are kept for the merge)")
    echo(f"results folder {p.out}  (files: {', '.join(OUT_FILES)}); scratch {p.work}; merged into {args.results}")
    wheels = ", ".join(w.name for w in sorted(p.carry.glob("*.whl"))) or "none"
    echo(f"carried folder {p.carry} ({_size_mib(p.carry):.1f} MiB): wheels {wheels}; corpus archive "
         f"{corpus_archive_state(p.carry)}")
    env = child_env(p)
    echo("environment: " + " ".join(f"{k}={env[k]}" for k in ("PYTHONPATH", "XLMR_CACHE", "HF_HUB_OFFLINE",
                                                              "TORCHINDUCTOR_CACHE_DIR")))
    for i, s in enumerate(stages, 1):
        budget = f"{s.budget:.0f} s" if s.budget else "what is left"
        head = f"{i}. {s.name} [{budget}]"
        if s.name not in args.selected:
            echo(f"{head}: skipped (not selected)")
            continue
        why = s.guard() if s.guard else None
        echo(head + (f": skipped ({why})" if why else "") + (f"  -- {s.note}" if s.note and not why else ""))
        if why:
            continue
        for c in s.cmds:
            argv = c.command(s.budget or args.budget)
            flags = "".join([" (always)" if c.always else "", " (optional)" if c.optional else "",
                             f" (keeps {c.reserve:.0f} s)" if c.reserve else ""])
            echo(f"     $ {_q(argv)}{flags}" if argv is not None else f"     - {c.label}{flags}")
            if argv is not None:
                echo(f"       check: {dry_check(argv)}")
    echo("then: merge the stage outputs into gpu.json (results folder and --results)")


def dry_check(argv: list[str]) -> str:
    """Take a command's own path up to the device: parse gpu.py's arguments, resolve ``xlmr train``'s config,
    find the test files and scripts it names; "ok" or "FAILED: <why>"."""
    try:
        if len(argv) > 1 and argv[1].endswith("gpu.py"):
            sys.path.insert(0, str(REPO / "benchmarks"))
            import gpu  # noqa: PLC0415 (torch: only when a dry run checks the benchmark)

            args = argv[2:]
            if "--like" in args and not Path(args[args.index("--like") + 1]).exists():
                i = args.index("--like")  # written by the stage before: not there in a dry run
                args = args[:i] + args[i + 2:]
            gpu.parse_args(args)
        elif argv[1:4] == ["-m", "xlmr_core", "train"]:
            from xlmr_core.config import load_config  # noqa: PLC0415

            load_config(None, argv[4:])
        elif argv[1:3] == ["-m", "pytest"]:
            missing = [a for a in argv if a.startswith("tests/") and not (REPO / a).exists()]
            if missing:
                raise FileNotFoundError(", ".join(missing))
        elif len(argv) > 1 and argv[1].endswith(".py") and not Path(argv[1]).exists():
            raise FileNotFoundError(argv[1])
    except (Exception, SystemExit) as e:  # noqa: BLE001 - reported, the dry run goes on to the next command
        return f"FAILED: {type(e).__name__}: {e}"
    return "ok"


def cmd_run(args) -> int:
    check_run_args(args)
    p = Paths(out=args.out.absolute(), work=args.work.absolute(), carry=args.carry.absolute())
    stages = build_plan(args, p)
    if args.dry_run:
        print_plan(stages, args, p)
        return 0
    if shutil.which("nvidia-smi") is None or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode:
        raise UsageError("no NVIDIA GPU here (nvidia-smi is missing or sees none): run this on the GPU machine, "
                         "or look at the plan with --dry-run")
    p.out.mkdir(parents=True, exist_ok=True)
    p.work.mkdir(parents=True, exist_ok=True)
    command = "python3 scripts/gpu_check.py run " + _q(sys.argv[2:])
    atomic_write_text(p.out / "log.txt", f"gpu_check started {_now()}: {command}\n")

    def merge_now(records):
        try:
            merged = merge_records(_read_json(args.results) or {}, collect(p.out), command)
        except (ValueError, KeyError, TypeError) as e:  # reported; the stages go on
            print(f"merge failed: {type(e).__name__}: {e}", flush=True)
            return {}
        atomic_write_json(p.out / "gpu.json", merged)
        return merged

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    try:
        records = run_stages(stages, budget=args.budget, out=p.out, env=child_env(p), selected=args.selected,
                             on_stage=merge_now)
    except KeyboardInterrupt as e:
        print(f"interrupted ({e}): merging what the finished stages wrote", flush=True)
        records = (_read_json(p.out / "stages.json") or {}).get("stages", [])
        records.append(dict(name="interrupted", status="failed", reason=str(e)))
    merged = merge_now(records)
    extra = sorted(x.name for x in p.out.rglob("*") if x.is_file())
    if len(extra) > OUT_LIMIT:
        print(f"warning: {p.out} holds {len(extra)} files, more than the {OUT_LIMIT} the device tool brings back: "
              f"{', '.join(extra)}", flush=True)
    try:
        atomic_write_json(args.results, merged)
    except OSError as e:
        print(f"could not write {args.results} ({e}); {p.out / 'gpu.json'} holds the same", flush=True)
    print(format_summary(merged))
    return 0 if all(r["status"] in ("ok", "skipped") for r in records) else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "merge":
            merged = merge(args.dir, args.results, command=f"python scripts/gpu_check.py merge {args.dir}")
            print(format_summary(merged))
            print(f"wrote {args.results}")
            return 0
        if args.cmd == "prepare":
            prepare(args.dest, wheels=not args.no_wheels, corpus=not args.no_corpus)
            return 0
        if args.cmd == "_env":
            atomic_write_json(args.json, environment())
            return 0
        if args.cmd == "_corpus":
            return check_corpus()
    except UsageError as e:
        print(f"scripts/gpu_check.py: error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
