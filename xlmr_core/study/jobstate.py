"""The state of a run as the launcher sees it: its latest submission (``<run_dir>/job.json``), the scheduler's
or the local process's view of that job, its log's last error or interruption, and from all of these one
``RunState``: done, trained (suites to evaluate), running, pending, interrupted (resumable), failed or new."""

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

from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_json
from xlmr_core.train.rundir import JOB_FILE, has_checkpoints, missing_suites, read_final

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


def record_job(run_dir: str | os.PathLike, job, executor: str, suites: tuple[str, ...] | None = None,
               wanted: dict[str, dict] | None = None, kind: str = "train") -> dict:
    """Write ``<run_dir>/job.json`` (atomically) for a job just submitted; ``wanted``: its suites' configs;
    ``kind``: ``train`` (train, then evaluate) or ``eval`` (evaluate only)."""
    paths = job.paths
    rec = {"executor": executor, "job_id": str(job.job_id), "kind": kind, "folder": str(paths.folder),
           "suites": None if suites is None else list(suites), "suite_configs": wanted,
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
    """done; trained (final.json, but suites to evaluate: ``detail``); running; pending; interrupted (stopped by a
    signal, a preemption, a timeout or a kill, not queued: a relaunch resumes it from its checkpoint); failed
    (``error``); or new."""
    job_id: str | None = None
    executor: str | None = None
    log: str | None = None
    """submitit's stderr log of the latest submission."""
    error: str | None = None
    """The last error line of a failed run's log."""
    detail: str | None = None
    """Why an interrupted run stopped (the signal line of its log), or a trained run's suites still to evaluate."""
    scheduler_state: str | None = None
    """The scheduler's own word (e.g. SLURM's PENDING, FAILED)."""

    @property
    def active(self) -> bool:
        """Queued or running: a relaunch must not submit it again."""
        return self.state in ("running", "pending")


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt)|error|ERROR)\b.*")
_STOP_LINE = re.compile(r"xlmr: interrupted by SIG|Bypassing signal SIG|Caught signal SIG|Requeued job|"
                        r"preemption/timeout|UncompletedJobError|Job not requeued because")
"""Lines of a job log that say it was stopped (our trainer's line, submitit's signal handlers), not that it broke."""
_STOPPED_BY_SLURM = {"CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "DEADLINE"}


def _log_lines(log: str | os.PathLike | None) -> list[str]:
    if not log or not Path(log).exists():
        return []
    lines = [ln.strip() for ln in Path(log).read_text(encoding="utf-8", errors="replace").splitlines()]
    return [ln for ln in lines if ln and "%|" not in ln]  # drop tqdm progress bars


def last_error_line(log: str | os.PathLike | None) -> str | None:
    """The last line of a log that names an error (``XlmrError: …``), else its last non-empty line."""
    lines = _log_lines(log)
    for ln in reversed(lines):
        if _ERROR_LINE.match(ln) and not _STOP_LINE.search(ln):
            return ln
    return lines[-1] if lines else None


def job_ending(log: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """``(error, stop)``: the last line of a job log naming an error, or the last line saying the job was stopped
    (signal, preemption, timeout), whichever came later; the other is None (both None: the log says neither)."""
    error = stop = None
    for ln in _log_lines(log):
        if _STOP_LINE.search(ln):
            # the trainer's own line (step and checkpoint) over submitit's about the same signal that follow it
            error, stop = None, stop if stop and stop.startswith("xlmr:") and not ln.startswith("xlmr:") else ln
        elif _ERROR_LINE.match(ln):
            error, stop = ln, None
    return error, stop


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


def run_state(run_dir: str | os.PathLike, need_eval: bool | None = None, grace_s: float = 120.0,
              suites: dict[str, dict] | None = None) -> RunState:
    """The state of the run in ``run_dir`` from final.json, job.json, the scheduler and the job's log.

    ``need_eval``: whether a finished run needs evaluation results (None: as its job was submitted).
    ``suites``: the {suite: config} a finished run needs (None: those its job was submitted with).
    A SLURM job unknown to both squeue and sacct counts as pending for ``grace_s`` after submission
    (accounting lags submission by a few seconds). A job that ended is interrupted (resumable) when its log
    says it was stopped, or it left checkpoints and no error line; failed otherwise, with its error line.
    """
    run_dir = Path(run_dir)
    rec = read_job(run_dir)
    base = {} if rec is None else {"job_id": rec["job_id"], "executor": rec["executor"], "log": rec["stderr"]}
    if need_eval is None:
        need_eval = rec is None or rec.get("suites") != []
    if suites is None and rec is not None:
        suites = rec.get("suite_configs")
    try:
        final = read_final(run_dir)
    except (OSError, XlmrError):
        final = None
    todo = None  # None: training not done; else the suites still to evaluate
    if final is not None:
        todo = [] if not need_eval else (missing_suites(final, suites) if suites is not None
                                         else ([] if final.eval else ["any suite"]))
        if not todo:
            return RunState("done", **base)
    to_eval = f"to evaluate: {', '.join(todo)}" if todo else None
    if rec is None:
        if final is not None:
            return RunState("trained", detail=to_eval)
        return RunState("interrupted", detail="stopped, never submitted") if has_checkpoints(run_dir) \
            else RunState("new")
    ex = rec["executor"]
    sched = None
    if ex == "slurm":
        sched = slurm_state(rec["job_id"])
        if sched in _PENDING:
            return RunState("pending", scheduler_state=sched, detail=to_eval, **base)
        if sched in _RUNNING:
            return RunState("running", scheduler_state=sched, detail=to_eval, **base)
        if sched is None and time.time() - rec.get("submitted_unix", 0) < grace_s:
            return RunState("pending", scheduler_state="SUBMITTED", detail=to_eval, **base)
    elif ex in ("local", "debug"):
        # a debug run recorded by this very process has ended by the time anyone here asks
        mine = ex == "debug" and rec["pid"] == os.getpid()
        if not mine and pid_alive(rec["pid"], rec.get("pid_start")) and rec.get("host") == os.uname().nodename:
            return RunState("running", scheduler_state="ALIVE", detail=to_eval, **base)
        sched = "EXITED"
    # submitted, no longer queued or running, not done
    error, stop = job_ending(rec["stderr"])
    if error is None and stop is None and sched == "OUT_OF_MEMORY":
        error = "SLURM: OUT_OF_MEMORY (the job was killed for memory)"
    if error is not None:
        return RunState("failed", scheduler_state=sched, error=error, detail=to_eval, **base)
    if final is not None:  # trained; the suites asked now were not part of its job
        return RunState("trained", scheduler_state=sched, detail=to_eval, **base)
    if stop is None and sched in _STOPPED_BY_SLURM:
        stop = f"SLURM: {sched}"
    if stop is not None:
        return RunState("interrupted", scheduler_state=sched, detail=stop, **base)
    if _result_outcome(rec) == "success":
        return RunState("failed", scheduler_state=sched, error="the job returned but final.json is missing", **base)
    if has_checkpoints(run_dir):
        return RunState("interrupted", scheduler_state=sched, detail="the job ended without an error line (killed?); "
                        "a relaunch resumes from its newest checkpoint", **base)
    return RunState("failed", scheduler_state=sched,
                    error=last_error_line(rec["stderr"]) or "the job ended with no error line and no checkpoint",
                    **base)
