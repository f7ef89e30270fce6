"""Studies (``xlmr_core.study.studies``): the table, the default places, runs shared between studies, and the command
line's verbs (``xlmr_core.study.cli``, also ``sweeps/launch.py``): plan = dry-run, status over shared runs, eval
without a training step, collect, figures. About 1 minute on 2 cores."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from test_sweeps import _ended_job

from xlmr_core.errors import XlmrError
from xlmr_core.study import cli as studycli
from xlmr_core.study import jobs, studies, sweeps
from xlmr_core.train import rundir

REPO = Path(__file__).resolve().parents[1]
LAUNCH = [sys.executable, str(REPO / "sweeps" / "launch.py")]


def _cli(*args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([*LAUNCH, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_the_table_lists_every_study_and_one_entry_adds_one(tmp_path, monkeypatch):
    assert {"capacity_dilution", "scaling_laws", "vocab_scaling", "sampling_alpha", "model_size",
            "demo", "curse_lab"} <= set(studies.STUDIES)
    with pytest.raises(XlmrError, match="unknown study 'bogus'; choose one of capacity_dilution, curse_lab, demo, "):
        studies.get_study("bogus")
    with pytest.raises(XlmrError, match="study scaling_laws has no scale 'paper'; choose one of demo, cpu"):
        studies.get_study("scaling_laws", "paper")

    # another study (a grid of its own, here two model sizes) is one register() call
    monkeypatch.setattr(studies, "STUDIES", dict(studies.STUDIES))

    def grid(scale, seeds, root, corpus):  # the runs it owns go to <results root>/<study>/<run>
        return [dataclasses.replace(c, run_dir=str(Path(root) / "toy" / c.name))
                for c in sweeps.get_sweep("model_size", scale, seeds, root, "/nowhere") if c.name[:4] != "mini"]

    studies.register(studies.Recipe("toy", grid, ("demo", "cpu"), ("bpb",), (studies.NotebookSpec("explore"),)))
    with pytest.raises(XlmrError, match="already registered"):
        studies.register(studies.Recipe("toy", grid, ("demo",)))
    toy = studies.get_study("toy", "cpu", (0, 1), tmp_path)
    assert toy.root == tmp_path / "toy" and toy.planned_runs == ("debug-s0", "debug-s1", "tiny-s0", "tiny-s1")
    assert all(Path(c.run_dir).parent == toy.root for c in toy.runs) and not toy.shared_runs
    assert dict(toy.suites) == {n: ("bpb",) for n in toy.planned_runs}


def test_one_default_for_each_place(tmp_path, monkeypatch, demo_corpus):
    from xlmr_core.democorpus.build import default_out_dir
    from xlmr_core.study.presets import corpus_for

    monkeypatch.delenv("XLMR_RESULTS", raising=False)
    monkeypatch.delenv("XLMR_CORPUS", raising=False)
    assert studies.results_root() == Path("results") and studies.figures_dir("demo") == Path("figures/demo")
    monkeypatch.setenv("XLMR_RESULTS", str(tmp_path))
    assert studies.results_root() == tmp_path and studies.results_root("elsewhere") == Path("elsewhere")
    assert corpus_for("demo", None) == str(default_out_dir()) == str(demo_corpus)  # $XLMR_CACHE/demo-corpus
    demo = studies.get_study("demo")
    assert demo.root == tmp_path / "demo" and demo.scale == "demo"
    assert {c.data.corpus for c in demo.runs} == {str(demo_corpus)}


def test_the_demo_is_the_capacity_sweep_in_its_own_directory(tmp_path, demo_corpus):
    demo = studies.get_study("demo", "demo", (0,), tmp_path, demo_corpus)
    capacity = studies.get_study("capacity_dilution", "demo", (0,), tmp_path, demo_corpus)
    assert demo.planned_runs == capacity.planned_runs and len(demo.runs) == 6
    assert all(Path(c.run_dir) == tmp_path / "demo" / c.name for c in demo.runs)
    for a, b in zip(demo.runs, capacity.runs):
        assert a.model == b.model and a.data == b.data and a.schedule == b.schedule and a.tags == b.tags
    assert set(demo.suites.values()) == {("retrieval", "tokenizer")}  # DDTP is left out at the demo scale
    assert demo.eval_options == studies.DEMO_EVAL_OPTIONS
    assert [nb.name for nb in demo.notebooks] == ["capacity_dilution", "scaling_laws", "explore"]
    assert dict(demo.notebooks[1].parameters)["n_boot"] == 50


def test_scaling_laws_lists_the_capacity_runs_it_shares_and_reports_their_state(tmp_path, demo_corpus):
    laws = studies.get_study("scaling_laws", "demo", (0,), tmp_path, demo_corpus)
    capacity = studies.get_study("capacity_dilution", "demo", (0,), tmp_path, demo_corpus)
    # at the demo scale the law grid is the capacity sweep: every run is shared, kept in capacity_dilution/
    assert laws.planned_runs == capacity.planned_runs and laws.shared_runs == laws.runs and not laws.own_runs
    assert [c.run_dir for c in laws.runs] == [c.run_dir for c in capacity.runs]
    assert dict(laws.suites) == dict(capacity.suites)  # evaluated with its owner's suites, whoever launches it
    assert laws.run_dirs() == [] and laws.run_dirs(new=True) == [Path(c.run_dir) for c in capacity.runs]
    # each run has its own launch lock, beside its directory in the owner's
    assert {jobs.run_lock(c.run_dir).parent for c in laws.runs} == {tmp_path / "capacity_dilution"}

    crashed = laws.runs[0].name
    _ended_job(tmp_path / "capacity_dilution" / crashed,
               "Traceback (most recent call last):\nxlmr_core.errors.XlmrError: loss is nan at step 9\n")
    assert laws.run_dirs() == [tmp_path / "capacity_dilution" / crashed]
    status = {n: s.state for n, s in jobs.study_status(laws).items()}
    assert status == {f"capacity_dilution/{n}": "failed" if n == crashed else "new" for n in laws.planned_runs}

    for study in ("scaling_laws", "capacity_dilution"):  # both studies show its state and its failure
        out = _cli("status", study, "--scale", "demo", "--root", tmp_path, "--corpus", demo_corpus)
        assert out.returncode == 0, out.stderr
        row = next(x for x in out.stdout.splitlines() if crashed in x)
        assert " failed " in row and row.endswith("XlmrError: loss is nan at step 9"), out.stdout
        assert row.startswith(f"capacity_dilution/{crashed}" if study == "scaling_laws" else crashed)
        assert out.stdout.rstrip().endswith("1 failed, 5 new"), out.stdout
    # without a scale: the runs found in the study's own directory (none for the law grid at this scale)
    out = _cli("status", "scaling_laws", "--root", tmp_path)
    assert out.returncode == 1 and "no runs under" in out.stdout

    # at the cpu scale the grid has budgets of its own, and its budget-1 points are still the capacity sweep's
    laws = studies.get_study("scaling_laws", "cpu", (0,), tmp_path, demo_corpus)
    capacity = studies.get_study("capacity_dilution", "cpu", (0,), tmp_path, demo_corpus)
    assert {c.run_dir for c in laws.shared_runs} == {c.run_dir for c in capacity.runs}
    assert laws.own_runs and all(Path(c.run_dir).parent == tmp_path / "scaling_laws" for c in laws.own_runs)
    assert all(laws.suites[c.name] == () for c in laws.own_runs)
    assert all(laws.suites[c.name] == ("retrieval", "tokenizer", "ddtp") for c in laws.shared_runs)


def test_plan_and_its_alias_dry_run_print_the_same():
    plan, dry = (_cli(verb, "model_size", "--scale", "paper", "--seeds", "0,1") for verb in ("plan", "dry-run"))
    assert plan.returncode == dry.returncode == 0, plan.stderr + dry.stderr
    assert plan.stdout == dry.stdout and "4 runs (model_size, scale paper, seeds 0,1)" in plan.stdout


def test_the_command_line_is_a_console_script_of_the_package():
    pyproject = (REPO / "pyproject.toml").read_text()
    scripts = pyproject[pyproject.index("[project.scripts]"):].split("\n\n")[0]
    assert 'xlmr-sweep = "xlmr_core.study.cli:main"' in scripts.splitlines()
    out = subprocess.run([sys.executable, "-m", "xlmr_core.study.cli", "list"], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode == 0 and "scaling_laws" in out.stdout and "demo" in out.stdout, out.stderr


# ---------------------------------------------------------------- eval, collect and figures on a finished run


def _overrides(corpus: Path, cache: Path) -> list[str]:
    """model_size's debug run on two small demo languages: a tokenizer, shards and 12 steps in seconds."""
    return ["model.size=debug", f"data.corpus={corpus}", "data.langs=bg,sl", "data.tokenizer_langs=[]",
            "data.vocab_size=1000", "data.tokenizer_sample_lines=20000", f"data.cache_dir={cache}",
            "data.seq_len=32", "data.batch_tokens=256", "schedule.steps=12", "schedule.warmup_steps=2",
            "optim.lr=2e-3", "log_interval=1", "checkpoint.interval=4", "eval.max_blocks=2", "eval.draws=1",
            "precision.device=cpu", "log.tensorboard=false"]


@pytest.fixture(scope="module")
def finished(demo_corpus, tmp_path_factory) -> dict:
    """One finished tiny run of the model_size study, evaluated with bpb only (a local job: a debug job's record
    would name this test process, alive, so a command started from here would see the run as running)."""
    root, cache = tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("cache")
    sets = _overrides(demo_corpus, cache)
    study = studies.get_study("model_size", "demo", (0,), root, demo_corpus).select(["debug-*"], sets)
    jobs.launch(list(study.runs), "local", jobs.LaunchOptions(), study.root, ("bpb",), echo=lambda *_: None)
    run = Path(study.runs[0].run_dir)
    assert set(rundir.read_final(run).suites) == {"bpb"}
    return {"root": root, "run": run, "sets": [x for o in sets for x in ("--set", o)], "corpus": demo_corpus}


def _untouched(run_dir: Path) -> dict:
    """What any training step would change: the checkpoints (names and times), the training records, config.json."""
    return {"checkpoints": {p.name: p.stat().st_mtime_ns for p in rundir.list_checkpoints(run_dir)},
            "steps": [r["step"] for r in rundir.read_metrics(run_dir) if "loss" in r],
            "config": rundir.config_path(run_dir).read_text()}


@pytest.mark.timeout(300)
def test_eval_adds_a_suite_to_finished_runs_without_a_training_step(finished):
    run, root = finished["run"], finished["root"]
    first, before = rundir.read_final(run), _untouched(run)
    assert before["steps"] == list(range(1, 13))
    common = ["model_size", "--scale", "demo", "--only", "debug-*", "--root", root, *finished["sets"]]
    # seed 1 was never trained: eval leaves it to `run`
    out = _cli("eval", *common, "--seeds", "0,1", "--suites", "bpb,tokenizer", "--executor", "local")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "skip debug-s1: not trained (new): `run` trains it" in out.stdout
    assert "start debug-s0 (local job" in out.stdout and "evaluation only (to evaluate: tokenizer)" in out.stdout
    final = rundir.read_final(run)
    assert set(final.suites) == {"bpb", "tokenizer"} and final.eval["tokenizer"]
    assert final.suites["bpb"] == first.suites["bpb"]  # not evaluated again
    assert _untouched(run) == before  # no training step, no checkpoint, config.json as it was
    assert jobs.read_job(run)["kind"] == "eval" and not (root / "model_size" / "debug-s1").exists()

    again = _cli("eval", *common, "--suites", "bpb,tokenizer", "--executor", "local")
    assert again.returncode == 0 and "skip debug-s0: done" in again.stdout and "start" not in again.stdout
    status = _cli("status", *common, "--suites", "bpb,tokenizer")
    assert status.stdout.rstrip().endswith("1 done"), status.stdout


def test_collect_writes_the_study_table_and_figures_run_its_notebooks(finished, tmp_path, monkeypatch):
    from xlmr_core.study import notebooks, results

    root = finished["root"]
    out = _cli("collect", "model_size", "--root", root)  # without a scale: the runs in its directory
    assert out.returncode == 0, out.stderr
    assert "1 runs, 1 done; table written to" in out.stdout and (root / "model_size" / "results.csv").exists()
    assert set(results.read_table(root / "model_size")["run"]) == {"debug-s0"}

    calls = []

    def fake_run_notebook(name, results_dir, figures_dir, *, parameters=None, planned_runs=None, partial=False):
        calls.append((name, Path(results_dir), Path(figures_dir), parameters, planned_runs, partial))
        return Path(figures_dir) / f"{name}.ipynb"

    monkeypatch.setattr(notebooks, "run_notebook", fake_run_notebook)
    args = ["figures", "demo", "--root", str(root), "--corpus", str(finished["corpus"]),
            "--figures", str(tmp_path / "figs"), "--partial"]
    assert studycli.main(args) == 0
    demo = studies.get_study("demo", "demo", (0,), root, finished["corpus"])
    assert [c[0] for c in calls] == ["capacity_dilution", "scaling_laws", "explore"]
    assert all(c[1] == root / "demo" and c[2] == tmp_path / "figs" and c[5] for c in calls)
    assert all(c[4] == demo.planned_runs for c in calls) and calls[1][3]["n_boot"] == 50


def test_the_demo_script_runs_the_demo_study_stage_by_stage(tmp_path, monkeypatch, demo_corpus, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_sweeps_demo", REPO / "sweeps" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    stages = []
    monkeypatch.setattr(studycli, "launch_study", lambda study, kind, opts: stages.append(
        ("run", study.name, kind, opts.array_parallelism)) or {})
    monkeypatch.setattr(studycli, "collect_study", lambda study: stages.append(("collect", study.root)))
    monkeypatch.setattr(studycli, "study_figures", lambda study, figures: stages.append(
        ("figures", study.name, studies.figures_dir(study.name, figures))) or {})
    monkeypatch.setenv("XLMR_RESULTS", str(tmp_path))
    assert demo.main([]) == 0
    assert stages == [("run", "demo", "local", 2), ("run", "curse_lab", "local", 2), ("collect", tmp_path / "demo"),
                      ("collect", tmp_path / "curse_lab"), ("figures", "demo", Path("figures/demo")),
                      ("figures", "curse_lab", Path("figures/curse_lab"))]
    out = capsys.readouterr().out
    for banner in ("demo corpus", "run demo", "run curse_lab", "collect", "figures"):
        assert f"] {banner}" in out, out
    assert f"corpus: {demo_corpus}" in out and "=== demo finished in" in out
