"""The submitit job of one run, and the state of a run: done, trained (suites to evaluate), running, pending,
interrupted (resumable), failed or new.

The job holds only the run config (as DINOv2's launcher does): all resume logic lives in the trainer, which
continues from the newest checkpoint in ``run_dir``. ``<run_dir>/job.json`` records the latest submission
(executor, job id, log paths) so that a relaunch can ask the scheduler whether the run is still queued or
running instead of starting a second copy. ``EvalJob`` evaluates a finished run and never trains (``xlmr-sweep
eval``). Each run has its own launch lock (``run_lock``), so two studies that share a run never submit it twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import submitit

from xlmr_core.config import RunConfig, from_dict, read_mapping
from xlmr_core.errors import XlmrError
from xlmr_core.study.jobstate import (  # noqa: F401  (part of this module's API)
    _ENDED,
    _ERROR_LINE,
    _PENDING,
    _RUNNING,
    _STOP_LINE,
    _STOPPED_BY_SLURM,
    RunState,
    _log_lines,
    _proc_start,
    _result_outcome,
    _run,
    job_ending,
    job_file,
    last_error_line,
    pid_alive,
    read_job,
    record_job,
    run_state,
    slurm_state,
    submitted_jobs,
)
from xlmr_core.train.rundir import (
    check_same_run,
    config_changes,
    final_path,
    is_done,  # noqa: F401  (read through jobs as well)
    missing_suites,
    move_aside,
    read_final,
)

EXECUTORS = ("slurm", "local", "debug")


class TrainJob(submitit.helpers.Checkpointable):
    """prepare → train → evaluate one run; on preemption or timeout submitit requeues it and it resumes.

    A finished run is not trained again: the job evaluates the suites it lacks (or holds with another config).
    """

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
        from xlmr_core.train.trainer import train

        final = train(self.cfg)
        if (env is None or env.global_rank == 0) and self.suites != ():
            from xlmr_core.evaluate.suites import evaluate_run

            todo = missing_suites(read_final(self.cfg.run_dir), wanted_suites(self.suites, self.eval_options))
            if todo:
                evaluate_run(self.cfg.run_dir, todo, **self.eval_options)
            final = read_final(self.cfg.run_dir).to_dict()
        return {"run_dir": self.cfg.run_dir, "name": self.cfg.name, "params": final.get("params"),
                "eval": sorted(final.get("eval", {}))}

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Requeue the same job: the trainer has saved a checkpoint and resumes from it."""
        return submitit.helpers.DelayedSubmission(TrainJob(self.cfg, self.suites, self.eval_options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg.run_dir!r})"


class EvalJob(TrainJob):
    """Evaluate a finished run with the suites it lacks or holds with another config (all of them with
    ``refresh``); never trains, even where the config asks for more steps."""

    def __init__(self, cfg: RunConfig, suites: tuple[str, ...] | None = None, eval_options: dict | None = None,
                 refresh: bool = False):
        super().__init__(cfg, suites, eval_options)
        self.refresh = refresh

    def __call__(self) -> dict:
        env = _job_env()
        run_dir = self.cfg.run_dir
        if (env is None or env.global_rank == 0) and self.suites != ():
            from xlmr_core.evaluate.suites import evaluate_run

            final = read_final(run_dir)
            if final is None:
                raise XlmrError(f"{run_dir} has no final.json: the run is not trained (`run` trains it)")
            wanted = wanted_suites(self.suites, self.eval_options)
            todo = list(wanted) if self.refresh else missing_suites(final, wanted)
            if todo:
                evaluate_run(run_dir, todo, **self.eval_options)
        final = read_final(run_dir)
        return {"run_dir": run_dir, "name": self.cfg.name, "params": final.params if final else None,
                "eval": sorted(final.eval) if final else []}

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        return submitit.helpers.DelayedSubmission(EvalJob(self.cfg, self.suites, self.eval_options, self.refresh))


def wanted_suites(suites: tuple[str, ...] | None, eval_options: dict | None = None) -> dict[str, dict]:
    """{suite: config} a run is evaluated with (``suites`` None: ``evaluate.SUITES``; (): none)."""
    from xlmr_core.evaluate.suites import SUITES, suite_configs  # torch: only where a job is submitted or run

    return suite_configs(SUITES if suites is None else suites, **(eval_options or {}))


def _job_env():
    try:
        return submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job (called directly)
        return None


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


Suites = tuple[str, ...] | None | Mapping[str, tuple[str, ...] | None]
"""Evaluation suites of a launch: one tuple for every run (None: ``evaluate.SUITES``; (): none), or one per run
name (``studies.Study.suites``)."""


def _need_eval(suites) -> bool:
    return suites != ()


def _suites_by_run(cfgs: list[RunConfig], suites, eval_options: dict | None
                   ) -> dict[str, tuple[tuple[str, ...] | None, dict[str, dict] | None]]:
    """{run name: (its suites, their {suite: config} or None for no evaluation)}."""
    memo: dict = {}
    out = {}
    for cfg in cfgs:
        s = suites.get(cfg.name) if isinstance(suites, Mapping) else suites
        s = None if s is None else tuple(s)
        if s not in memo:
            memo[s] = wanted_suites(s, eval_options) if s != () else None
        out[cfg.name] = (s, memo[s])
    return out


def run_lock(run_dir: str | os.PathLike) -> Path:
    """The lock file of a run's launches, beside its directory (which may be moved aside while it is held)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


@contextlib.contextmanager
def _locked(cfgs: list[RunConfig]):
    """Hold the launch locks of ``cfgs``, taken in one global order (no two launches wait on each other)."""
    from xlmr_core.fsutil import file_lock

    with contextlib.ExitStack() as stack:
        for path in sorted({os.path.abspath(run_lock(c.run_dir)) for c in cfgs}):
            stack.enter_context(file_lock(path))
        yield


def _check_same_run(cfg: RunConfig, suites, wanted, restart: bool) -> None:
    """Before anything is submitted: the run directory holds the run its config asks for (or none), or, with
    ``restart``, the other run there is not queued or running (it is moved aside when its turn comes)."""
    changes = config_changes(cfg.run_dir, cfg)
    if changes is None or not changes.differ:
        return
    if not restart:
        check_same_run(cfg.run_dir, cfg, restart="--restart")
    st = run_state(cfg.run_dir, _need_eval(suites), suites=wanted)
    if st.active:
        raise XlmrError(f"{cfg.run_dir} holds another run that is {st.state} (job {st.job_id}): cancel it "
                        "before --restart")


def _to_submit(cfgs: list[RunConfig], per_run, restart: bool = False, eval_only: bool = False,
               refresh: bool = False) -> tuple[list[RunConfig], dict[str, str], dict[str, str]]:
    """(runs to submit, {run: why skipped}, {run: what its job does besides training from the start or on})."""
    todo, skipped, notes = [], {}, {}
    for cfg in cfgs:
        suites, wanted = per_run[cfg.name]
        st = run_state(cfg.run_dir, _need_eval(suites), suites=wanted)
        if st.active:
            skipped[cfg.name] = st.state
            continue
        changes = config_changes(cfg.run_dir, cfg)
        if eval_only:
            if changes is not None and changes.differ:
                skipped[cfg.name] = (f"holds a run of another config ({changes.describe(changes.differ)}); "
                                     "`run --restart` replaces it")
                continue
            if not final_path(cfg.run_dir).exists():
                skipped[cfg.name] = f"not trained ({st.state}): `run` trains it"
                continue
            if st.state == "done" and not (refresh and suites != ()):
                skipped[cfg.name] = st.state
                continue
            notes[cfg.name] = "evaluation only" + (" (every suite again)" if refresh else f" ({st.detail})")
        elif changes is not None and changes.differ:
            if not restart:
                check_same_run(cfg.run_dir, cfg, restart="--restart")
            notes[cfg.name] = f"restarted, the old run moved to {move_aside(cfg.run_dir)}"
        elif changes is not None and changes.grown and st.state in ("done", "trained"):
            notes[cfg.name] = f"trains on: {changes.describe(changes.grown)}"
        elif st.state == "done":
            skipped[cfg.name] = st.state
            continue
        elif st.state == "trained":
            notes[cfg.name] = f"evaluation only ({st.detail})"
        todo.append(cfg)
    return todo, skipped, notes


def launch(cfgs: list[RunConfig], kind: str, opts: LaunchOptions, sweep_dir: str | os.PathLike,
           suites: Suites = None, wait: bool | None = None, echo=print, eval_options: dict | None = None,
           restart: bool = False, eval_only: bool = False, refresh: bool = False) -> Submitted:
    """Submit the runs that are neither done nor queued/running; SLURM runs go as one job array.

    ``suites``: one tuple for every run or one per run name. A finished run that lacks some of its suites (or
    holds one with another config) gets a job that only evaluates them. With ``eval_only`` (``xlmr-sweep eval``)
    only finished runs are submitted, as ``EvalJob``s that never train (``refresh``: every suite again). A run
    directory holding a run of another config is refused before anything is submitted, or with ``restart``
    moved aside. The check and the submission of a run happen under its own lock (``run_lock``), so two
    launches at once, of one study or of two that share the run, never submit it twice. Job logs go to
    ``sweep_dir/logs``. The local executor runs at most ``array_parallelism`` (default 1) runs at a time and
    waits for them; the debug executor runs them one after the other in this process.
    """
    per_run = _suites_by_run(cfgs, suites, eval_options)
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    # SLURM: one log folder per job; local/debug: one folder (submitit's local controller would create a
    # literal "%j" directory)
    logs = sweep_dir / "logs" / ("%j" if kind == "slurm" else kind)
    name = f"xlmr-{sweep_dir.name}" + ("-eval" if eval_only else "")
    job_kind = "eval" if eval_only else "train"

    def make_job(cfg):
        s = per_run[cfg.name][0]
        return EvalJob(cfg, s, eval_options, refresh) if eval_only else TrainJob(cfg, s, eval_options)

    def record(cfg, job):
        record_job(cfg.run_dir, job, kind, *per_run[cfg.name], kind=job_kind)

    submitted: list[str] = []
    jobs: dict[str, str] = {}
    if not eval_only:
        for cfg in cfgs:
            with _locked([cfg]):
                _check_same_run(cfg, *per_run[cfg.name], restart)
    if kind == "slurm":
        with _locked(cfgs):
            todo, skipped, notes = _to_submit(cfgs, per_run, restart, eval_only, refresh)
            if todo:
                ex = make_executor(kind, logs, opts, name)
                with ex.batch():
                    handles = [ex.submit(make_job(cfg)) for cfg in todo]
                for cfg, job in zip(todo, handles):
                    record(cfg, job)
                    submitted.append(cfg.name)
                    jobs[cfg.name] = job.job_id
        for n, why in skipped.items():
            echo(f"skip {n}: {why}")
        for n, what in notes.items():
            echo(f"{n}: {what}")
        if todo:
            echo(f"submitted {len(todo)} run(s) as array job {handles[0].job_id.split('_')[0]} ({name})")
        if wait and todo:
            for job in handles:
                job.wait()
        return Submitted(submitted, skipped, jobs)

    # local and debug: run here, a few at a time, re-checking each run under its lock just before it starts
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
            with _locked([cfg]):
                todo, skip, notes = _to_submit([cfg], per_run, restart, eval_only, refresh)
                if todo:
                    job = ex.submit(make_job(cfg))
                    record(cfg, job)
            if skip:
                skipped.update(skip)
                echo(f"skip {cfg.name}: {skip[cfg.name]}")
                continue
            submitted.append(cfg.name)
            jobs[cfg.name] = str(job.job_id)
            what = f": {notes[cfg.name]}" if cfg.name in notes else ""
            echo(f"[{time.time() - t0:6.0f}s] start {cfg.name} ({kind} job {job.job_id}){what}")
            if kind == "debug":
                job.results()  # runs the job in this process
            running.append((cfg, job))
        for cfg, job in list(running):
            if job.done():
                running.remove((cfg, job))
                s, wanted = per_run[cfg.name]
                st = run_state(cfg.run_dir, _need_eval(s), suites=wanted)
                failed += st.state != "done"
                msg = st.state if st.state == "done" else f"{st.state}: {st.error or st.detail} (log {st.log})"
                echo(f"[{time.time() - t0:6.0f}s] {msg:>4} {cfg.name}")
        if running:
            time.sleep(0.5)
    if submitted:
        echo(f"[{time.time() - t0:6.0f}s] finished {len(submitted) - failed} of {len(submitted)} run(s)"
             + (f", {failed} failed" if failed else ""))
    return Submitted(submitted, skipped, jobs)


def sweep_runs(study) -> list[Path]:
    """The run directories of a study (``studies.Study.run_dirs``, the one list of a study's runs) or of a
    directory (the runs found in it)."""
    from xlmr_core.study.studies import Study, found_study

    return (study if isinstance(study, Study) else found_study(study)).run_dirs()


def study_status(study, suites: tuple[str, ...] | None = None, *, new: bool = True) -> dict[str, RunState]:
    """{label: state} of every run of a study (``Study.label``: ``owner/name`` for a run another study owns), its
    runs not yet started included (``new``). A planned run is judged by the study's suites for it (with the
    study's ``eval_options``) or, given, by ``suites``; a run found in the study's directory but not planned, by
    ``suites`` or as its job was submitted."""
    per_run = _suites_by_run(list(study.runs), study.suites if suites is None else suites, study.eval_options)
    by_dir = {os.path.abspath(c.run_dir): c.name for c in study.runs}
    found_wanted = None if suites is None else (wanted_suites(suites, study.eval_options) if suites != () else None)
    out = {}
    for d in study.run_dirs(new=new):
        name = by_dir.get(os.path.abspath(d))
        if name is not None:
            s, wanted = per_run[name]
            out[study.label(d)] = run_state(d, _need_eval(s), suites=wanted)
        else:
            out[study.label(d)] = run_state(d, None if suites is None else _need_eval(suites), suites=found_wanted)
    return dict(sorted(out.items()))


def sweep_status(sweep_dir, need_eval: bool | None = None, extra: list[str | os.PathLike] = (),
                 suites: dict[str, dict] | None = None) -> dict[str, RunState]:
    """The state of every run of a study or a directory (plus ``extra`` run directories not yet submitted);
    ``suites``: the {suite: config} a finished run needs (None: as each run's job was submitted). A study's own
    suites per run: ``study_status``."""
    dirs = {p.name: p for p in sweep_runs(sweep_dir)}
    for d in extra:
        dirs.setdefault(Path(d).name, Path(d))
    return {name: run_state(d, need_eval, suites=suites) for name, d in sorted(dirs.items())}
