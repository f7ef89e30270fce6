"""The submitit job of one run, and the state of a run: done, running, pending, failed or not started.

The job holds only the run config (as DINOv2's launcher does): all resume logic lives in the trainer, which
continues from the newest checkpoint in ``run_dir``. ``<run_dir>/job.json`` records the latest submission
(executor, job id, log paths) so that a relaunch can ask the scheduler whether the run is still queued or
running instead of starting a second copy.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import submitit

from .config import RunConfig, from_dict, read_mapping
from .errors import XlmrError
from .fsutil import atomic_write_json
from .rundir import config_path, has_checkpoints, is_done

JOB_FILE = "job.json"
EXECUTORS = ("slurm", "local", "debug")


class TrainJob(submitit.helpers.Checkpointable):
    """prepare → train → evaluate one run; on preemption or timeout submitit requeues it and it resumes."""

    def __init__(self, cfg: RunConfig, suites: tuple[str, ...] | None = None, eval_options: dict | None = None):
        self.cfg = cfg
        self.suites = suites
        """Evaluation suites for ``evaluate.evaluate_run`` (None: its defaults; (): no evaluation)."""
        self.eval_options = dict(eval_options or {})
        """Further keyword arguments of ``evaluate.evaluate_run`` (e.g. retrieval ``sets``, ``max_items``)."""

    def __call__(self) -> dict:
        env = _job_env()
        if env is not None and env.num_tasks > 1:
            # torch.distributed's env:// variables from SLURM's (SLURM_PROCID, SLURM_NTASKS, node list). The
            # trainer picks cuda:LOCAL_RANK itself, so every task keeps all the node's GPUs visible.
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        from .train import train

        final = train(self.cfg)
        if (env is None or env.global_rank == 0) and self.suites != ():
            from .evaluate import evaluate_run

            kwargs = dict(self.eval_options) if self.suites is None else {**self.eval_options, "suites": self.suites}
            final = evaluate_run(self.cfg.run_dir, **kwargs)
        return {"run_dir": self.cfg.run_dir, "name": self.cfg.name, "params": final.get("params"),
                "eval": sorted(final.get("eval", {}))}

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Requeue the same job: the trainer has saved a checkpoint and resumes from it."""
        return submitit.helpers.DelayedSubmission(TrainJob(self.cfg, self.suites, self.eval_options))

    def __repr__(self) -> str:
        return f"TrainJob({self.cfg.run_dir!r})"


def _job_env():
    try:
        return submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job (called directly)
        return None


# ---------------------------------------------------------------- job.json


def job_file(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / JOB_FILE


def read_job(run_dir: str | os.PathLike) -> dict | None:
    """The latest submission record of a run, or None if it was never submitted."""
    path = job_file(run_dir)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise XlmrError(f"{path} is unreadable ({e}): delete it to resubmit the run") from None


def record_job(run_dir: str | os.PathLike, job, executor: str, suites: tuple[str, ...] | None = None) -> dict:
    """Write ``<run_dir>/job.json`` (atomically) for a job just submitted."""
    paths = job.paths
    rec = {"executor": executor, "job_id": str(job.job_id), "folder": str(paths.folder),
           "suites": None if suites is None else list(suites),
           "stdout": str(paths.stdout), "stderr": str(paths.stderr),
           "submitted": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "submitted_unix": time.time(), "host": os.uname().nodename}
    if executor == "local":
        rec["pid"] = int(job.job_id)
        rec["pid_start"] = _proc_start(int(job.job_id))
    elif executor == "debug":
        rec["pid"] = os.getpid()
        rec["pid_start"] = _proc_start(os.getpid())
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(job_file(run_dir), rec)
    return rec


# ---------------------------------------------------------------- scheduler state


def _proc_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (tells a live pid from a reused one), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[19])


def pid_alive(pid: int, start: int | None) -> bool:
    """Whether process ``pid`` still runs and is the one recorded (same start time)."""
    now = _proc_start(pid)
    return now is not None and (start is None or now == start)


# SLURM job states (squeue/sacct), grouped by what they mean for a relaunch
_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED", "PREEMPTED",
            "RESV_DEL_HOLD", "SPECIAL_EXIT", "STOPPED", "RESIZING"}
_RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
          "REVOKED"}


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def slurm_state(job_id: str) -> str | None:
    """SLURM's state of a job (or array task): squeue while it is queued, sacct afterwards; None if unknown."""
    out = _run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"])
    if out and out.split():
        return out.split()[0].upper()
    out = _run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State"])
    if out:
        states = [ln.split("|")[1] for ln in out.splitlines() if ln.split("|")[0] == job_id]
        if states:
            return states[-1].split()[0].upper()  # "CANCELLED by 0" -> CANCELLED
    return None


def submitted_jobs(job_ids: list[str] | None = None, name: str | None = None) -> list[str]:
    """Job ids SLURM's accounting knows (array tasks as ``A_i``), optionally only those with job name ``name``."""
    cmd = ["sacct", "-X", "-n", "-P", "-o", "JobID,JobName", "-S", "now-7days"]
    out = _run(cmd + (["-j", ",".join(job_ids)] if job_ids else []))
    if out is None:
        raise XlmrError("sacct failed: is SLURM accounting (slurmdbd) running?")
    rows = [ln.split("|") for ln in out.splitlines() if ln.strip()]
    return [r[0] for r in rows if name is None or r[1] == name]


@dataclass(frozen=True)
class RunState:
    """What a run is doing, as seen from its run directory and the scheduler."""

    state: str
    """done, running, pending, failed, incomplete (stopped with checkpoints, not queued) or new."""
    job_id: str | None = None
    executor: str | None = None
    log: str | None = None
    """submitit's stderr log of the latest submission."""
    error: str | None = None
    """The last error line of a failed run's log."""
    scheduler_state: str | None = None
    """The scheduler's own word (e.g. SLURM's PENDING, FAILED)."""

    @property
    def active(self) -> bool:
        """Queued or running: a relaunch must not submit it again."""
        return self.state in ("running", "pending")


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt)|error|ERROR)\b.*")


def last_error_line(log: str | os.PathLike | None) -> str | None:
    """The last line of a log that names an error (``XlmrError: …``), else its last non-empty line."""
    if not log or not Path(log).exists():
        return None
    lines = [ln.strip() for ln in Path(log).read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and "%|" not in ln]  # drop tqdm progress bars
    for ln in reversed(lines):
        if _ERROR_LINE.match(ln):
            return ln
    return lines[-1] if lines else None


def _result_outcome(rec: dict) -> str | None:
    """``success``/``error`` from submitit's result pickle of the recorded job, None if it wrote none."""
    folder = Path(rec["folder"])
    paths = submitit.core.utils.JobPaths(folder, job_id=rec["job_id"], task_id=0)
    if not paths.result_pickle.exists():
        return None
    try:
        outcome, _ = submitit.core.utils.pickle_load(paths.result_pickle)
    except Exception:  # noqa: BLE001 - a half-written pickle says nothing
        return None
    return outcome


def run_state(run_dir: str | os.PathLike, need_eval: bool | None = None, grace_s: float = 120.0) -> RunState:
    """The state of the run in ``run_dir`` from final.json, job.json and the scheduler.

    ``need_eval``: whether a finished run needs evaluation results (None: as its job was submitted).
    A SLURM job unknown to both squeue and sacct counts as pending for ``grace_s`` after submission
    (accounting lags submission by a few seconds).
    """
    run_dir = Path(run_dir)
    rec = read_job(run_dir)
    base = {} if rec is None else {"job_id": rec["job_id"], "executor": rec["executor"], "log": rec["stderr"]}
    if need_eval is None:
        need_eval = rec is None or rec.get("suites") != []
    if is_done(run_dir, need_eval):
        return RunState("done", **base)
    if rec is None:
        return RunState("incomplete" if has_checkpoints(run_dir) else "new")
    ex = rec["executor"]
    sched = None
    if ex == "slurm":
        sched = slurm_state(rec["job_id"])
        if sched in _PENDING:
            return RunState("pending", scheduler_state=sched, **base)
        if sched in _RUNNING:
            return RunState("running", scheduler_state=sched, **base)
        if sched is None and time.time() - rec.get("submitted_unix", 0) < grace_s:
            return RunState("pending", scheduler_state="SUBMITTED", **base)
    elif ex in ("local", "debug"):
        # a debug run recorded by this very process has ended by the time anyone here asks
        mine = ex == "debug" and rec["pid"] == os.getpid()
        if not mine and pid_alive(rec["pid"], rec.get("pid_start")) and rec.get("host") == os.uname().nodename:
            return RunState("running", scheduler_state="ALIVE", **base)
        sched = "EXITED"
    # submitted, no longer queued or running, not done: it failed (raised, was cancelled, killed or timed out)
    error = last_error_line(rec["stderr"])
    if error is None and _result_outcome(rec) == "success":
        error = "the job returned but final.json has no evaluation results"
    return RunState("failed", scheduler_state=sched, error=error, **base)


# ---------------------------------------------------------------- submitting a sweep


@dataclass(frozen=True, kw_only=True)
class LaunchOptions:
    """Where and how jobs run: SLURM resources (also read from a small YAML file) and local parallelism."""

    partition: str = ""
    """SLURM partition (empty: the cluster's default)."""
    nodes: int = 1
    """Nodes per run (multi-node DDP)."""
    gpus_per_node: int = 0
    """GPUs per node; one task (process) per GPU unless tasks_per_node is given."""
    tasks_per_node: int = 0
    """Processes per node (0: one per GPU, at least one)."""
    cpus_per_task: int = 0
    """CPUs per process (0: the cluster's default)."""
    mem_gb: float = 0.0
    """Memory per node in GB (0: the cluster's default)."""
    time_min: int = 24 * 60
    """Wall-clock limit per job in minutes; a run that needs longer is requeued and resumes (submitit treats
    a signal within 10 min of the start of a job ≤ 10 min long as a timeout, not a preemption)."""
    account: str = ""
    """SLURM account."""
    qos: str = ""
    """SLURM quality of service."""
    constraint: str = ""
    """SLURM node features (e.g. a GPU type)."""
    array_parallelism: int = 0
    """Most array tasks (SLURM) or processes (local executor) running at once (0: SLURM no limit, local 1)."""
    signal_delay_s: int = 120
    """Seconds before the time limit when SLURM sends USR2 (the trainer checkpoints and the job is requeued)."""
    max_num_timeout: int = 20
    """How many timeouts a run may take (each resumes from its checkpoint) before it counts as failed."""

    def __post_init__(self):
        for name in ("nodes", "time_min"):
            if getattr(self, name) < 1:
                raise XlmrError(f"launch option {name}={getattr(self, name)} must be >= 1")
        for name in ("gpus_per_node", "tasks_per_node", "cpus_per_task", "array_parallelism"):
            if getattr(self, name) < 0:
                raise XlmrError(f"launch option {name}={getattr(self, name)} must be >= 0")

    @property
    def tasks(self) -> int:
        return self.tasks_per_node or max(1, self.gpus_per_node)


def load_options(path: str | os.PathLike | None, **flags) -> LaunchOptions:
    """Launch options from a YAML file (keys as the field names), then the command-line flags that were given."""
    data = read_mapping(path, "SLURM config file") if path else {}
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return from_dict(LaunchOptions, data, "")
    except XlmrError as e:
        raise XlmrError(f"{path or 'launch options'}: {e}") from None


def make_executor(kind: str, folder: str | os.PathLike, opts: LaunchOptions, name: str = "xlmr"):
    """A submitit executor: ``slurm`` (sbatch), ``local`` (subprocesses on this machine) or ``debug`` (in-process)."""
    if kind not in EXECUTORS:
        raise XlmrError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    ex = submitit.AutoExecutor(folder=folder, cluster=kind, slurm_max_num_timeout=opts.max_num_timeout)
    params: dict = {"name": name, "timeout_min": opts.time_min, "tasks_per_node": opts.tasks,
                    "gpus_per_node": opts.gpus_per_node}
    if kind == "slurm":
        params.update(nodes=opts.nodes, slurm_signal_delay_s=opts.signal_delay_s)
        if opts.cpus_per_task:
            params["cpus_per_task"] = opts.cpus_per_task
        if opts.mem_gb:
            params["mem_gb"] = opts.mem_gb
        for key in ("partition", "account", "qos", "constraint", "array_parallelism"):
            if getattr(opts, key):
                params[f"slurm_{key}"] = getattr(opts, key)
    elif kind == "local":
        if opts.nodes > 1:
            raise XlmrError("the local executor runs on one node: use --nodes 1")
    ex.update_parameters(**params)
    return ex


@dataclass(frozen=True)
class Submitted:
    """The outcome of one launch: what was submitted and what was left alone."""

    submitted: list[str]
    skipped: dict[str, str]
    """run name -> why (done, running, pending)."""
    jobs: dict[str, str]
    """run name -> job id."""


def _need_eval(suites) -> bool:
    return suites != ()


def _to_submit(cfgs: list[RunConfig], suites) -> tuple[list[RunConfig], dict[str, str]]:
    todo, skipped = [], {}
    for cfg in cfgs:
        st = run_state(cfg.run_dir, _need_eval(suites))
        if st.state == "done" or st.active:
            skipped[cfg.name] = st.state
        else:
            todo.append(cfg)
    return todo, skipped


def launch(cfgs: list[RunConfig], kind: str, opts: LaunchOptions, sweep_dir: str | os.PathLike,
           suites: tuple[str, ...] | None = None, wait: bool | None = None, echo=print,
           eval_options: dict | None = None) -> Submitted:
    """Submit the runs that are neither done nor queued/running; SLURM runs go as one job array.

    The check and the submission happen under a lock on the sweep directory, so two launches at once never
    submit the same run twice. The local executor runs at most ``array_parallelism`` (default 1) runs at a
    time and waits for them; the debug executor runs them one after the other in this process.
    """
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = sweep_dir / ".launch.lock"
    # SLURM: one log folder per job; local/debug: one folder (submitit's local controller would create a
    # literal "%j" directory)
    logs = sweep_dir / "logs" / ("%j" if kind == "slurm" else kind)
    name = f"xlmr-{sweep_dir.name}"
    submitted: list[str] = []
    jobs: dict[str, str] = {}
    from .fsutil import file_lock

    if kind == "slurm":
        with file_lock(lock):
            todo, skipped = _to_submit(cfgs, suites)
            if todo:
                ex = make_executor(kind, logs, opts, name)
                with ex.batch():
                    handles = [ex.submit(TrainJob(cfg, suites, eval_options)) for cfg in todo]
                for cfg, job in zip(todo, handles):
                    record_job(cfg.run_dir, job, kind, suites)
                    submitted.append(cfg.name)
                    jobs[cfg.name] = job.job_id
        for n, why in skipped.items():
            echo(f"skip {n}: {why}")
        if todo:
            echo(f"submitted {len(todo)} run(s) as array job {handles[0].job_id.split('_')[0]} ({name})")
        if wait and todo:
            for job in handles:
                job.wait()
        return Submitted(submitted, skipped, jobs)

    # local and debug: run here, a few at a time, re-checking each run under the lock just before it starts
    ex = make_executor(kind, logs, opts, name)
    limit = max(1, opts.array_parallelism) if kind == "local" else 1
    skipped: dict[str, str] = {}
    running: list[tuple[RunConfig, object]] = []
    failed = 0
    queue = list(cfgs)
    t0 = time.time()
    while queue or running:
        while queue and len(running) < limit:
            cfg = queue.pop(0)
            with file_lock(lock):
                todo, skip = _to_submit([cfg], suites)
                if todo:
                    job = ex.submit(TrainJob(cfg, suites, eval_options))
                    record_job(cfg.run_dir, job, kind, suites)
            if skip:
                skipped.update(skip)
                echo(f"skip {cfg.name}: {skip[cfg.name]}")
                continue
            submitted.append(cfg.name)
            jobs[cfg.name] = str(job.job_id)
            echo(f"[{time.time() - t0:6.0f}s] start {cfg.name} ({kind} job {job.job_id})")
            if kind == "debug":
                job.results()  # runs the job in this process
            running.append((cfg, job))
        for cfg, job in list(running):
            if job.done():
                running.remove((cfg, job))
                st = run_state(cfg.run_dir, _need_eval(suites))
                failed += st.state != "done"
                msg = st.state if st.state == "done" else f"{st.state}: {st.error} (log {st.log})"
                echo(f"[{time.time() - t0:6.0f}s] {msg:>4} {cfg.name}")
        if running:
            time.sleep(0.5)
    if submitted:
        echo(f"[{time.time() - t0:6.0f}s] finished {len(submitted) - failed} of {len(submitted)} run(s)"
             + (f", {failed} failed" if failed else ""))
    return Submitted(submitted, skipped, jobs)


def sweep_runs(sweep_dir: str | os.PathLike) -> list[Path]:
    """Run directories of a sweep that were ever submitted or started."""
    root = Path(sweep_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and ((p / JOB_FILE).exists() or config_path(p).exists()))


def sweep_status(sweep_dir: str | os.PathLike, need_eval: bool | None = None,
                 extra: list[str | os.PathLike] = ()) -> dict[str, RunState]:
    """The state of every run of a sweep directory (plus ``extra`` run directories not yet submitted)."""
    dirs = {p.name: p for p in sweep_runs(sweep_dir)}
    for d in extra:
        dirs.setdefault(Path(d).name, Path(d))
    return {name: run_state(d, need_eval) for name, d in sorted(dirs.items())}
