"""Sweeps on a real single-node SLURM cluster (scripts/slurm-up.sh): arrays, status, preemption, DDP, faults.

Budget: ~3–4 minutes on 2 cores once the cluster is up (its first start installs packages: 1–2 minutes).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xlmr_core.study import jobs, results, sweeps

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
LAUNCH = [sys.executable, str(REPO / "sweeps" / "launch.py")]
# the data of tests/test_train.py (conftest's first four languages, 2,000 pieces): its tokenizer and shards are
# cached once for both
LANGS = ["en", "de", "fr", "ru"]
TEST_VOCAB = 2000
# a debug-size run of a few seconds (model_size sweep, debug point, demo scale)
OVERRIDES = ["model.size=debug", f"data.langs={','.join(LANGS)}", f"data.vocab_size={TEST_VOCAB}",
             "data.tokenizer_sample_lines=1000000", "data.seq_len=32", "data.batch_tokens=256",
             "schedule.steps=12", "schedule.warmup_steps=2", "optim.lr=2e-3", "log_interval=1",
             "checkpoint.interval=4", "eval.max_blocks=2", "eval.draws=1", "precision.device=cpu",
             # no dropout: a 2-process run must then give the single-process losses
             "model.dropout=0", "model.attention_dropout=0"]
SLURM_FLAGS = ["--executor", "slurm", "--partition", "debug", "--cpus-per-task", "1", "--mem-gb", "1",
               "--time-min", "60"]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the SLURM test cluster is started as root (scripts/slurm-up.sh); run the tests as root"
    if not shutil.which("sbatch") and not shutil.which("apt-get"):
        return "neither SLURM nor apt-get (to install it) is available"
    return None


DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")


def running_daemons() -> set[tuple[str, int]]:
    """(comm, pid) of every SLURM, MariaDB or munge daemon running on this machine (a zombie, dead but not yet
    reaped by a PID 1 that does not reap, is not running)."""
    out = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                comm = (proc / "comm").read_text().strip()
                state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if comm in DAEMONS and state != "Z":
                out.add((comm, int(proc.name)))
    return out


def started_daemons(path: Path) -> set[tuple[str, int]]:
    """The ``COMM PID`` lines slurm-up.sh wrote for the daemons it started."""
    if not path.exists():
        return set()
    return {(c, int(p)) for c, p in (line.split() for line in path.read_text().splitlines() if line.strip())}


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Start (or re-check) the single-node cluster; exports SLURM_CONF for submitit and the CLI. At the end of the
    session it stops the daemons it started and only those (``make test`` passes SLURM_CI_STARTED so that it can
    stop them even if pytest is killed), and fails if one of them is still running."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    started = Path(os.environ.get("SLURM_CI_STARTED") or tmp_path_factory.mktemp("slurm") / "started")
    before = running_daemons()
    out = subprocess.run(["bash", str(REPO / "scripts" / "slurm-up.sh")], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "SLURM_CI_STARTED": str(started)})
    assert out.returncode == 0, f"slurm-up.sh failed:\n{out.stderr[-5000:]}"
    ours = started_daemons(started)
    assert not ours & before, f"slurm-up.sh claims daemons that were running before it: {ours & before}"
    os.environ["SLURM_CONF"] = out.stdout.strip().splitlines()[-1].split("=", 1)[1]
    yield os.environ["SLURM_CONF"]
    down = subprocess.run(["bash", str(REPO / "scripts" / "slurm-down.sh"), "--started", str(started)],
                          capture_output=True, text=True, timeout=180)
    survivors = ours & running_daemons()
    assert down.returncode == 0 and not survivors, f"still running: {survivors}\n{down.stderr[-3000:]}"


@pytest.mark.timeout(60)
def test_slurm_down_stops_only_the_daemons_listed_as_started(tmp_path):
    """No cluster needed: stand-ins named slurmd and slurmctld (copies of sleep, so /proc's comm matches); the one
    listed as started stops, the one that was already up (its pidfile in place) keeps running."""
    d = tmp_path / "cluster"
    (d / "run").mkdir(parents=True)
    procs = {}
    for comm in ("slurmd", "slurmctld"):
        exe = tmp_path / comm
        shutil.copy(shutil.which("sleep"), exe)
        procs[comm] = subprocess.Popen([str(exe), "300"])
        (d / "run" / f"{comm}.pid").write_text(f"{procs[comm].pid}\n")
    started = tmp_path / "started"
    started.write_text(f"slurmd {procs['slurmd'].pid}\n")
    try:
        out = subprocess.run(["bash", str(REPO / "scripts" / "slurm-down.sh"), "--started", str(started)],
                             env={**os.environ, "SLURM_CI_DIR": str(d)}, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert procs["slurmd"].wait(timeout=10) is not None and not (d / "run" / "slurmd.pid").exists()
        assert procs["slurmctld"].poll() is None and (d / "run" / "slurmctld.pid").exists()
        assert ("slurmctld", procs["slurmctld"].pid) in running_daemons()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def warm_cache(demo_corpus, tmp_path_factory):
    """Build the runs' tokenizer and shards once, here, so the jobs time only their own work."""
    from xlmr_core.config import apply_overrides
    from xlmr_core.train.trainer import prepare

    cfg = sweeps.get_sweep("model_size", "demo", (0,), tmp_path_factory.mktemp("warm"))[0]
    prepare(apply_overrides(cfg, OVERRIDES))
    return demo_corpus


def launch(*args, root: Path, overrides=OVERRIDES, check=True, timeout=120) -> subprocess.CompletedProcess:
    cmd = [*LAUNCH, *args, "--root", str(root)]
    if args[0] in ("run", "dry-run") and "--scale" not in args:
        cmd += ["--scale", "demo"]
    if args[0] in ("run", "dry-run"):
        cmd += [x for o in overrides for x in ("--set", o)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check:
        assert out.returncode == 0, f"{' '.join(cmd)}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr[-4000:]}"
    return out


def count_jobs(name: str) -> int:
    """Submitted jobs (array tasks) named ``name`` that SLURM's accounting knows."""
    return len(jobs.submitted_jobs(name=name))


def wait_states(sweep_dir: Path, want: set[str], n: int, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        states = jobs.sweep_status(sweep_dir)
        if len(states) == n and all(s.state in want for s in states.values()):
            return states
        assert time.time() < deadline, f"runs not {want} after {timeout}s: {states}"
        time.sleep(1)


def steps_logged(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [r["step"] for r in map(json.loads, path.read_text().splitlines()) if "loss" in r]


@pytest.fixture(scope="module")
def array_sweep(slurm_cluster, warm_cache, tmp_path_factory):
    """Three seeds of the debug point submitted as one array; status seen while it runs."""
    root = tmp_path_factory.mktemp("slurm-array")
    name = "xlmr-model_size"
    before = count_jobs(name)
    out = launch("run", "model_size", "--seeds", "0,1,2", "--only", "debug-*", "--suites", "bpb",
                 *SLURM_FLAGS, root=root)
    assert "as array job" in out.stdout
    sweep_dir = root / "model_size"
    recs = {d.name: jobs.read_job(d) for d in sweep_dir.iterdir() if (d / "job.json").exists()}
    assert sorted(recs) == ["debug-s0", "debug-s1", "debug-s2"]
    array_ids = {r["job_id"].split("_")[0] for r in recs.values()}
    assert len(array_ids) == 1 and all("_" in r["job_id"] for r in recs.values())
    # status while the array runs: the node has 2 CPUs, so at least one of the 3 tasks is still queued
    status = launch("status", "model_size", root=root, overrides=())
    lines = [ln for ln in status.stdout.splitlines() if ln.startswith("debug-")]
    assert len(lines) == 3 and all(any(f" {s} " in ln for s in ("pending", "running", "done")) for ln in lines)
    assert any(" pending " in ln or " running " in ln for ln in lines), status.stdout
    # relaunching while it runs submits nothing
    again = launch("run", "model_size", "--seeds", "0,1,2", "--only", "debug-*", "--suites", "bpb",
                   *SLURM_FLAGS, root=root)
    assert again.stdout.count("skip debug-") == 3
    return {"root": root, "sweep_dir": sweep_dir, "name": name, "before": before}


@pytest.mark.timeout(240)
def test_array_status_collect_and_no_duplicates(array_sweep):
    root, sweep_dir, name = array_sweep["root"], array_sweep["sweep_dir"], array_sweep["name"]
    states = wait_states(sweep_dir, {"done", "failed"}, 3, timeout=200)
    assert {s.state for s in states.values()} == {"done"}, states
    assert count_jobs(name) - array_sweep["before"] == 3

    status = launch("status", "model_size", root=root, overrides=())
    assert "3 done" in status.stdout
    out = launch("collect", "model_size", root=root, overrides=())
    df = results.load(sweep_dir)
    assert (sweep_dir / "results.csv").exists() and "3 runs, 3 done" in out.stdout
    assert sorted(df["run"]) == ["debug-s0", "debug-s1", "debug-s2"]
    assert sorted(df["seed"]) == [0, 1, 2] and set(df["sweep"]) == {"model_size"} and set(df["size"]) == {"debug"}
    expect = sweeps.param_counts(sweeps.ModelSpec(size="debug"), TEST_VOCAB)
    assert (df["params_total"] == expect["total"]).all()
    assert (df["steps"] == 12).all() and df["bpb_mean"].between(0.5, 20).all()
    long = results.load_long(sweep_dir)
    assert set(long["lang"]) >= set(LANGS) and long["eval.bpb.bpb"].notna().sum() >= 3 * len(LANGS)

    # relaunching a finished sweep submits nothing
    again = launch("run", "model_size", "--seeds", "0,1,2", "--only", "debug-*", "--suites", "bpb",
                   *SLURM_FLAGS, root=root)
    assert again.stdout.count("skip debug-s") == 3 and "submitted" not in again.stdout
    assert count_jobs(name) - array_sweep["before"] == 3


@pytest.mark.timeout(240)
def test_preempted_job_resumes_from_its_checkpoint(slurm_cluster, warm_cache, tmp_path):
    # long enough to be caught mid-run (the signal makes the trainer checkpoint at the next step)
    over = [o for o in OVERRIDES if not o.startswith(("schedule.steps", "checkpoint.interval"))]
    over += ["schedule.steps=300", "checkpoint.interval=100"]
    launch("run", "model_size", "--only", "debug-s0", "--suites", "none", *SLURM_FLAGS, root=tmp_path,
           overrides=over)
    run_dir = tmp_path / "model_size" / "debug-s0"
    job_id = jobs.read_job(run_dir)["job_id"]
    deadline = time.time() + 120
    while not steps_logged(run_dir) or steps_logged(run_dir)[-1] < 3:
        assert time.time() < deadline, "the low-priority job never started training"
        assert jobs.run_state(run_dir, need_eval=False).state in ("pending", "running")
        time.sleep(0.1)
    # a job in the high-priority partition needs the whole node: SLURM preempts (requeues) ours
    high = subprocess.run(["sbatch", "--parsable", "-p", "high", "-c", "2", "--mem", "100M", "-J", "xlmr-high",
                           "--output", str(tmp_path / "high-%j.out"),
                           "--wrap", "sleep 2"], capture_output=True, text=True, check=True).stdout.strip()
    states = wait_states(tmp_path / "model_size", {"done", "failed"}, 1, timeout=200)
    assert states["debug-s0"].state == "done", states
    assert jobs.slurm_state(high) == "COMPLETED"

    final = json.loads((run_dir / "final.json").read_text())
    meta = json.loads((run_dir / "config.json").read_text())
    assert final["steps"] == 300
    # the second start resumed from a checkpoint written after the signal, not from step 0
    resumed = meta["resumed_from"]
    assert resumed and int(Path(resumed).stem.split("_")[1]) >= 3, meta["resumed_from"]
    steps = steps_logged(run_dir)
    assert steps == list(range(1, 301)), "metrics.jsonl should hold each step once, in order"
    rec = jobs.read_job(run_dir)
    log = Path(rec["stderr"]).read_text() + Path(rec["stdout"]).read_text()
    assert "this job is preempted" in log and "Requeued job" in log  # submitit's handler, via the trainer's
    # accounting keeps the preempted first start of the same job id
    hist = subprocess.run(["sacct", "-X", "-n", "-P", "--duplicates", "-j", job_id, "-o", "JobID,State"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert any(h.endswith(("PREEMPTED", "REQUEUED")) for h in hist[:-1]), hist
    assert hist[-1].endswith(("RUNNING", "COMPLETING", "COMPLETED")), hist  # accounting may lag final.json


@pytest.mark.timeout(200)
def test_two_task_job_trains_with_gloo_across_tasks(array_sweep, tmp_path):
    """Two SLURM tasks form one torch.distributed (gloo) group and reproduce the single-process run."""
    array_sweep_dir = array_sweep["sweep_dir"]
    wait_states(array_sweep_dir, {"done", "failed"}, 3, timeout=150)
    launch("run", "model_size", "--only", "debug-s0", "--suites", "bpb", *SLURM_FLAGS, "--tasks-per-node", "2",
           root=tmp_path)
    run_dir = tmp_path / "model_size" / "debug-s0"
    states = wait_states(tmp_path / "model_size", {"done", "failed"}, 1, timeout=150)
    assert states["debug-s0"].state == "done", states
    final = json.loads((run_dir / "final.json").read_text())
    assert final["world_size"] == 2
    # both tasks ran (submitit writes one log per task) and rank 1 knew it was rank 1
    job_id = jobs.read_job(run_dir)["job_id"]
    assert (run_dir.parent / "logs" / job_id / f"{job_id}_1_log.out").exists()
    # batches are a function of the global batch: 2 processes give the single-process losses
    def losses(d):
        return [r["loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines()) if "loss" in r]

    one, two = losses(array_sweep_dir / "debug-s0"), losses(run_dir)
    assert len(one) == len(two) == 12
    assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4) for a, b in zip(one, two)), (one, two)


@pytest.mark.timeout(200)
def test_failed_job_shows_its_error_and_leaves_others_intact(slurm_cluster, warm_cache, tmp_path):
    launch("run", "model_size", "--only", "debug-s0", "--suites", "none", *SLURM_FLAGS, root=tmp_path)
    # a missing corpus is refused before anything is submitted
    bad = tmp_path / "no-such-corpus"
    out = launch("run", "model_size", "--seeds", "1", "--only", "debug-s1", "--suites", "none", *SLURM_FLAGS,
                 root=tmp_path, overrides=[*OVERRIDES, f"data.corpus={bad}"], check=False)
    assert out.returncode == 2 and str(bad) in out.stderr and not (tmp_path / "model_size" / "debug-s1").exists()
    # a run that fails in its job (its loss diverges) is reported failed with its error line
    launch("run", "model_size", "--seeds", "1", "--only", "debug-s1", "--suites", "none", *SLURM_FLAGS, root=tmp_path,
           overrides=[*OVERRIDES, "optim.lr=1e30", "optim.grad_clip=0"])  # fp32 overflows
    states = wait_states(tmp_path / "model_size", {"done", "failed"}, 2, timeout=150)
    assert states["debug-s0"].state == "done" and states["debug-s1"].state == "failed", states
    status = launch("status", "model_size", root=tmp_path, overrides=())
    line = next(ln for ln in status.stdout.splitlines() if ln.startswith("debug-s1"))
    assert "failed" in line and "XlmrError" in line and "loss is" in line, status.stdout
    assert states["debug-s1"].log and Path(states["debug-s1"].log).exists()
    assert states["debug-s1"].scheduler_state == "FAILED"
    # the good run is complete and untouched by the failure
    good = tmp_path / "model_size" / "debug-s0"
    assert json.loads((good / "final.json").read_text())["steps"] == 12
    df = results.load(tmp_path / "model_size")
    row = df.set_index("run").loc["debug-s1"]
    assert row["status"] != "done" and math.isnan(row["bpb_mean"])
