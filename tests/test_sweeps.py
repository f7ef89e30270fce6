"""Sweep definitions (the paper's language sets, widths, fixed-parameter vocabularies), the local executor
end to end with relaunches, and the results tables. About 1 minute on 2 cores."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xlmr_core.config import ModelSpec
from xlmr_core.study import jobs, results, sweeps

REPO = Path(__file__).resolve().parents[1]
LAUNCH = [sys.executable, str(REPO / "sweeps" / "launch.py")]
# the data of tests/test_train.py (cached tokenizer and shards), a debug model, a few seconds per run
OVERRIDES = ["model.size=debug", "data.langs=en,de,fr,ru", "data.vocab_size=2000",
             "data.tokenizer_sample_lines=1000000", "data.seq_len=32", "data.batch_tokens=256",
             "schedule.steps=12", "schedule.warmup_steps=2", "optim.lr=2e-3", "log_interval=1",
             "checkpoint.interval=4", "eval.max_blocks=2", "eval.draws=1", "precision.device=cpu"]


def test_paper_language_sets_are_nested_and_match_the_paper():
    sets = sweeps.PAPER_LANG_SETS
    assert sorted(sets) == [7, 15, 30, 60, 100]
    for n, langs in sets.items():
        assert len(langs) == len(set(langs)) == n and set(langs) <= set(sweeps.CC100_LANGS)
    for a, b in zip([7, 15, 30, 60], [15, 30, 60, 100]):
        assert set(sets[a]) < set(sets[b])
    assert set(sets[7]) == {"en", "fr", "de", "ru", "zh-Hans", "sw", "ur"}  # XLM-7, §5
    assert [("zh-Hans" if x == "zh" else x) for x in sweeps.XNLI_LANGS] == list(sets[15])
    assert len(sweeps.CC100_LANGS) == len(set(sweeps.CC100_LANGS)) == 100


def test_nested_language_sets_mix_high_and_low_resource():
    sizes = {f"l{i:02d}": 1000 * (50 - i) for i in range(50)} | {"en": 10**6, "de": 9 * 10**5}
    sets, high, low = sweeps.nested_language_sets(sizes, (5, 10, 20, 40))
    assert high == ("en", "de", "l00")  # preferred high-resource languages first, then the largest
    median = sorted(sizes.values())[len(sizes) // 2]
    assert all(sizes[lang] < median for lang in low) and len(low) == 2
    for a, b in zip([5, 10, 20], [10, 20, 40]):
        assert sets[a] == sets[b][:a]
    added = sets[10][5:]  # alternately from the largest and the smallest end
    assert max(sizes[x] for x in added) > median > min(sizes[x] for x in added)
    with pytest.raises(sweeps.XlmrError, match="52 languages"):
        sweeps.nested_language_sets(sizes, (5, 60))


def test_capacity_dilution_paper_grid(tmp_path):
    runs = sweeps.get_sweep("capacity_dilution", "paper", (0, 1), tmp_path)
    # Figure 2 at base width, Figure 4's 7/30/100 at 960 and 1152: 5 + 3 + 3 points × 2 seeds
    assert len(runs) == 22 and len({r.run_dir for r in runs}) == 22
    assert all(Path(r.run_dir).parent == tmp_path / "capacity_dilution" for r in runs)
    tags = [results.parse_tags(r.tags) for r in runs]
    assert {(t["n_langs"], t["width"]) for t in tags} == {(n, 768) for n in (7, 15, 30, 60, 100)} | {
        (n, w) for n in (7, 30, 100) for w in (960, 1152)}
    assert {r.model.size for r in runs} == {"base", "base-w960", "base-w1152"}
    # fixed training compute per width: the same steps × batch for every language set
    assert {(r.schedule.steps, r.data.batch_tokens, r.data.vocab_size) for r in runs} == {(100_000, 2**20, 150_000)}
    for r, t in zip(runs, tags):
        assert len(r.data.langs) == t["n_langs"] and r.name == f"L{t['n_langs']:03d}-h{t['width']}-s{r.seed}"


def test_vocab_scaling_modes_keep_what_they_promise(tmp_path):
    runs = sweeps.get_sweep("vocab_scaling", "paper", (0,), tmp_path)
    counts = {(results.parse_tags(r.tags)["mode"], r.data.vocab_size): sweeps.param_counts(r.model, r.data.vocab_size)
              for r in runs}
    vocabs = (32_000, 64_000, 128_000, 256_000)
    assert set(counts) == {(m, v) for m in ("fixed_transformer", "fixed_total") for v in vocabs}
    ref = counts["fixed_transformer", 32_000]
    for v in vocabs:
        ft, fp = counts["fixed_transformer", v], counts["fixed_total", v]
        assert ft["non_embedding"] == ref["non_embedding"]  # the Transformer is the same
        assert ft["embedding"] == (v + 2 + 514 + 1) * 768  # tokens, positions, one token-type row
        assert abs(fp["total"] / ref["total"] - 1) < 0.02  # total parameters held (the width shrinks)
    widths = [sweeps.hidden_of(r.model) for r in runs if "mode=fixed_total" in r.tags]
    assert widths == sorted(widths, reverse=True) and all(w % 12 == 0 for w in widths)
    # XLM-R base with its 250K vocabulary: 278,295,186 parameters in the released masked-LM model
    assert sweeps.param_counts(ModelSpec(size="base"), 250_000)["total"] == 278_295_186


def test_every_sweep_at_every_scale_has_unique_named_runs(tmp_path, demo_corpus, gpu_corpus):
    for name in sweeps.SWEEPS:
        for scale in sweeps.SCALES:
            if name == "scaling_laws" and scale == "paper":
                with pytest.raises(sweeps.XlmrError, match="no design languages"):
                    sweeps.get_sweep(name, scale, (0,), tmp_path)
                continue
            runs = sweeps.get_sweep(name, scale, (0, 3), tmp_path, _corpus(scale, demo_corpus, gpu_corpus))
            assert len({r.name for r in runs}) == len(runs) > 0
            assert all(r.name.endswith(("-s0", "-s3")) for r in runs)
            if name != "scaling_laws":
                assert all(f"sweep={name}" in r.tags for r in runs)
                continue
            # the law grid's budget-1 points are the capacity sweep's own runs (same config, same directory):
            # trained once for both; at the demo scale that is the whole grid
            capacity = {r.run_dir: r for r in sweeps.get_sweep("capacity_dilution", scale, (0, 3), tmp_path,
                                                               _corpus(scale, demo_corpus, gpu_corpus))}
            shared = [r for r in runs if "sweep=capacity_dilution" in r.tags]
            assert shared and all(capacity[r.run_dir] == r for r in shared)
            assert len(shared) == len(capacity)
            own = [r for r in runs if "sweep=scaling_laws" in r.tags]
            assert len(own) + len(shared) == len(runs)
            assert (len(own) == 0) == (scale not in sweeps.LAW_BUDGETS)
            assert all("budget=" in " ".join(r.tags) and "-b" in r.name for r in own)
    with pytest.raises(sweeps.XlmrError, match="unknown scale 'huge'"):
        sweeps.get_sweep("model_size", "huge")


def test_target_sampling_keeps_the_targets_share_and_their_relative_rates():
    from xlmr_core.data.corpus import sampling_probs, target_sampling_probs

    counts = {"en": 900.0, "gl": 40.0, "es": 600.0, "ar": 50.0, "ta": 10.0}
    q = target_sampling_probs(counts, 0.3, ("en", "gl"), 0.5)
    alone = sampling_probs({"en": 900.0, "gl": 40.0}, 0.3)
    assert sum(q.values()) == pytest.approx(1.0)
    assert q["en"] == pytest.approx(0.5 * alone["en"]) and q["gl"] == pytest.approx(0.5 * alone["gl"])
    rest = sampling_probs({"es": 600.0, "ar": 50.0, "ta": 10.0}, 0.3)
    assert q["ar"] == pytest.approx(0.5 * rest["ar"])
    with pytest.raises(sweeps.XlmrError, match="not training languages"):
        target_sampling_probs(counts, 0.3, ("sw",), 0.5)
    with pytest.raises(sweeps.XlmrError, match="every training language is a target"):
        target_sampling_probs({"en": 1.0}, 0.3, ("en",), 0.5)


@pytest.fixture(scope="module")
def gpu_corpus(demo_corpus, tmp_path_factory) -> Path:
    """A stand-in for the large profile that the gpu scale trains on: the demo corpus's files, the gpu design
    languages it lacks and enough languages above the scale's min_lang_bytes (links to real files)."""
    d = tmp_path_factory.mktemp("gpu_corpus")
    for f in Path(demo_corpus).glob("*.txt"):
        (d / f.name).symlink_to(f)
    p = sweeps.PRESETS["gpu"]
    for lang in (*p.targets, *p.related, *p.unrelated):
        if not (d / f"{lang}.txt").exists():
            (d / f"{lang}.txt").symlink_to(Path(demo_corpus) / "th.txt")
    big = [lang for lang, n in sweeps.corpus_sizes(str(d)).items() if n >= p.min_lang_bytes]
    for i in range(max(p.lang_counts) - len(big)):
        (d / f"x{chr(97 + i // 26)}{chr(97 + i % 26)}.txt").symlink_to(Path(demo_corpus) / "de.txt")
    return d


def _corpus(scale: str, demo_corpus: Path, gpu_corpus: Path) -> Path | None:
    if scale == "paper":
        return None
    return gpu_corpus if sweeps.PRESETS[scale].corpus_profile == "large" else demo_corpus


def test_matched_design_holds_each_targets_tokens_while_languages_are_added(tmp_path, gpu_corpus):
    runs = sweeps.get_sweep("capacity_dilution", "gpu", (0,), tmp_path, gpu_corpus)
    sizes = sweeps.corpus_sizes(str(gpu_corpus))
    by = {(t["design"], t["relation"], t["width"]): r for r in runs for t in [results.parse_tags(r.tags)]}
    p = sweeps.PRESETS["gpu"]
    assert {d for d, _, _ in by} == {"matched", "fixed"} and {w for _, _, w in by} == set(p.widths)
    widths = sorted(p.widths)
    ne = [sweeps.param_counts(sweeps.with_width(p.model, w), p.vocab_size)["non_embedding"] for w in widths]
    assert ne[-1] / ne[0] >= 8  # model size over at least 8× in non-embedding parameters
    for w in widths:
        alone = sweeps.expected_lang_tokens(by["matched", "none", w], sizes)
        for rel in ("related", "unrelated", "both"):
            run = by["matched", rel, w]
            assert set(run.data.langs) > set(p.targets) and run.data.target_langs == p.targets
            added = sweeps.expected_lang_tokens(run, sizes)
            for t in p.targets:  # the same expected tokens for every target, the others on top
                assert added[t] == pytest.approx(alone[t], rel=1e-9)
            assert sum(added.values()) == pytest.approx(sum(alone.values()) / p.target_share)
            fixed = sweeps.expected_lang_tokens(by["fixed", rel, w], sizes)
            fixed_alone = sweeps.expected_lang_tokens(by["fixed", "none", w], sizes)
            assert sum(fixed.values()) == pytest.approx(sum(added.values()))  # one budget for the fixed design
            assert all(fixed[t] < fixed_alone[t] for t in p.targets)  # … so every target gets fewer tokens
    related = by["matched", "related", widths[0]].data.langs
    assert set(p.related) <= set(related) and len(p.related) == len(p.unrelated) == 2 * len(p.target_low)
    assert not set(by["matched", "unrelated", widths[0]].data.langs) & set(p.related)
    # one tokenizer for every run of the sweep
    assert len({r.data.tokenizer_langs for r in runs}) == 1


def test_dry_run_shows_tokens_per_target_flops_and_predicted_time(demo_corpus):
    out = subprocess.run([*LAUNCH, "dry-run", "capacity_dilution", "--scale", "demo", "--corpus", str(demo_corpus)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    head, *rows = [line for line in out.stdout.splitlines() if line.startswith(("run ", "matched-"))]
    assert "tokens/high target" in head and "tokens/low target" in head and "predicted (demo)" in head
    assert len(rows) == len(sweeps.get_sweep("capacity_dilution", "demo", (0,), "x", demo_corpus))
    assert "predicted time of one run after another" in out.stdout
    gpu = subprocess.run([*LAUNCH, "dry-run", "capacity_dilution", "--scale", "gpu-slice", "--corpus",
                          str(demo_corpus)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert gpu.returncode == 0 and gpu.stdout.count("-s0 ") == 8, gpu.stdout + gpu.stderr


def _launch(*args, root: Path, timeout=240) -> subprocess.CompletedProcess:
    cmd = [*LAUNCH, *args, "--root", str(root)]
    if args[0] == "run":
        cmd += ["--scale", "demo"] + [x for o in OVERRIDES for x in ("--set", o)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.timeout(300)
def test_local_executor_runs_skips_and_collects(demo_corpus, tmp_path):
    from xlmr_core.config import apply_overrides
    from xlmr_core.train.trainer import prepare

    prepare(apply_overrides(sweeps.get_sweep("model_size", "demo", (0,), tmp_path / "warm")[0], OVERRIDES))
    args = ["run", "model_size", "--seeds", "0,1", "--only", "debug-*", "--executor", "local",
            "--array-parallelism", "2", "--suites", "bpb"]
    # a second launch started while the first runs must not start the same runs again
    first = subprocess.Popen([*LAUNCH, *args, "--root", str(tmp_path), "--scale", "demo",
                              *[x for o in OVERRIDES for x in ("--set", o)]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    sweep_dir = tmp_path / "model_size"
    deadline = time.time() + 60
    while len(list(sweep_dir.glob("*/job.json"))) < 2:
        assert time.time() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.2)
    pids = {d.name: jobs.read_job(d)["pid"] for d in sweep_dir.glob("debug-*")}
    second = _launch(*args, root=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("skip debug-") == 2 and "start" not in second.stdout
    out, err = first.communicate(timeout=240)
    assert first.returncode == 0, out + err
    assert "finished 2 of 2 run(s)" in out
    assert {d.name: jobs.read_job(d)["pid"] for d in sweep_dir.glob("debug-*")} == pids

    states = jobs.sweep_status(sweep_dir)
    assert {n: s.state for n, s in states.items()} == {"debug-s0": "done", "debug-s1": "done"}
    third = _launch(*args, root=tmp_path)
    assert third.stdout.count("skip debug-") == 2 and "start" not in third.stdout

    collect = _launch("collect", "model_size", root=tmp_path)
    assert collect.returncode == 0, collect.stderr
    df = results.load(sweep_dir)
    assert list(df["run"]) == ["debug-s0", "debug-s1"] and (df["status"] == "done").all()
    assert df["bpb_mean"].notna().all() and (df["tokens"] == 12 * 256).all()
    long = results.load_long(sweep_dir)
    assert set(long.loc[long["run"] == "debug-s0", "lang"]) >= {"en", "de", "fr", "ru"}
    curves = results.load_curves(sweep_dir)
    train_rows = curves[(curves["run"] == "debug-s1") & (curves["kind"] == "train")]
    assert sorted(train_rows["step"]) == list(range(1, 13))

    # a missing score is NaN, never 0: drop one run's final.json
    (sweep_dir / "debug-s1" / "final.json").unlink()
    df = results.load(sweep_dir).set_index("run")
    assert df.loc["debug-s1", "status"] == "started" and math.isnan(df.loc["debug-s1", "bpb_mean"])
    assert df.loc["debug-s1", "steps"] == 12  # progress from metrics.jsonl
    status = _launch("status", "model_size", root=tmp_path)
    assert "debug-s1" in status.stdout and "failed" in status.stdout


def test_status_of_a_killed_local_run_shows_failed_with_its_error(tmp_path):
    run_dir = tmp_path / "sw" / "r0"
    run_dir.mkdir(parents=True)
    log = tmp_path / "log.err"
    log.write_text("xlmr: encoding\nTraceback (most recent call last):\n  File \"x\"\n"
                   "xlmr_core.errors.XlmrError: corpus directory /nope not found\nsrun: error: task 0\n")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (run_dir / "job.json").write_text(json.dumps({"executor": "local", "job_id": str(proc.pid), "pid": proc.pid,
                                                  "pid_start": None, "folder": str(tmp_path), "suites": [],
                                                  "stdout": "", "stderr": str(log), "submitted_unix": 0,
                                                  "host": "elsewhere"}))
    st = jobs.run_state(run_dir)
    assert st.state == "failed" and st.error == "xlmr_core.errors.XlmrError: corpus directory /nope not found"


def test_default_suites_include_ddtp_transfer_beyond_the_demo_scale():
    from xlmr_core.evaluate import suites as evaluate
    from xlmr_core.study import studies
    from xlmr_core.study.cli import parse_suites

    assert parse_suites("all") == (*evaluate.SUITES, *evaluate.TRANSFER_SUITES) == studies.ALL_SUITES
    assert parse_suites("none") == () and parse_suites("bpb,ddtp") == ("bpb", "ddtp") and parse_suites(None) is None
    # every study with a notebook runs DDTP at every scale but the demo's (its 10 minutes)
    for name in ("capacity_dilution", "vocab_scaling", "sampling_alpha", "demo"):
        recipe = studies.STUDIES[name]
        assert "ddtp" in recipe.suites_at("cpu") and "ddtp" not in recipe.suites_at("demo"), name
    assert studies.SCALE_SKIPS == {"demo": ("ddtp",)}
    assert "scaling_laws" in [nb.name for nb in studies.STUDIES["scaling_laws"].notebooks]


def test_every_study_at_every_scale_it_claims(tmp_path, demo_corpus, gpu_corpus):
    from xlmr_core.study import studies

    assert "demo" in studies.STUDIES
    for name, recipe in studies.STUDIES.items():
        for scale in recipe.scales:
            study = studies.get_study(name, scale, (0, 3), tmp_path, _corpus(scale, demo_corpus, gpu_corpus))
            assert study.name == name and study.scale == scale and study.root == tmp_path / name
            assert len(study.runs) > 0 and set(study.planned_runs) == set(study.suites)
            for c in study.own_runs:
                assert Path(c.run_dir) == study.root / c.name
            for c in study.shared_runs:  # owned by another study of the table, kept in its directory
                assert study.owner(c) in studies.STUDIES and Path(c.run_dir).parent == tmp_path / study.owner(c)
            if name == "scaling_laws":
                assert {study.owner(c) for c in study.shared_runs} == {"capacity_dilution"}
            else:
                assert not study.shared_runs, name
            for nb in study.notebooks:
                assert (REPO / "notebooks" / f"{nb.name}.ipynb").exists() or (
                    REPO / "xlmr_core" / "nb" / f"{nb.name}.ipynb").exists(), nb.name
        for scale in set(sweeps.SCALES) - set(recipe.scales):
            with pytest.raises(sweeps.XlmrError, match=f"study {name} has no scale '{scale}'; choose one of"):
                studies.get_study(name, scale, (0,), tmp_path)
    # the paper scale plans without a corpus, as the sweeps do
    assert len(studies.get_study("capacity_dilution", "paper", (0,), tmp_path).runs) == 11


# ---------------------------------------------------------------- done means done for what was asked


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _small_sweep(corpus: Path, cache_root: Path, root: Path) -> list:
    """model_size's debug run on two small demo languages: a tokenizer, shards and 12 steps in seconds."""
    from xlmr_core.config import apply_overrides

    over = ["model.size=debug", f"data.corpus={corpus}", "data.langs=bg,sl", "data.tokenizer_langs=[]",
            "data.vocab_size=1000", "data.tokenizer_sample_lines=20000", f"data.cache_dir={cache_root}",
            "data.seq_len=32", "data.batch_tokens=256", "schedule.steps=12", "schedule.warmup_steps=2",
            "optim.lr=2e-3", "log_interval=1", "checkpoint.interval=4", "eval.max_blocks=2", "eval.draws=1",
            "precision.device=cpu", "log.tensorboard=false"]
    return [apply_overrides(c, over) for c in sweeps.get_sweep("model_size", "demo", (0,), root)
            if c.name.startswith("debug")]


def _untouched(run_dir: Path) -> dict:
    """What any training step would change: the checkpoints (names and times), the training records, config.json."""
    from xlmr_core.train import rundir

    return {"checkpoints": {p.name: p.stat().st_mtime_ns for p in rundir.list_checkpoints(run_dir)},
            "steps": [r["step"] for r in rundir.read_metrics(run_dir) if "loss" in r],
            "config": rundir.config_path(run_dir).read_text()}


@pytest.mark.timeout(300)
def test_a_suite_added_to_a_finished_sweep_is_evaluated_without_training(demo_corpus, small_cache, tmp_path):
    from xlmr_core.train import rundir

    cfgs = _small_sweep(demo_corpus, small_cache, tmp_path)
    sweep_dir, opts, said = tmp_path / "model_size", jobs.LaunchOptions(), []
    jobs.launch(cfgs, "debug", opts, sweep_dir, ("bpb",), echo=said.append)
    run = Path(cfgs[0].run_dir)
    first = rundir.read_final(run)
    assert set(first.suites) == {"bpb"} and first.suites["bpb"]["keys"] == ["bpb"]
    before = _untouched(run)
    assert before["steps"] == list(range(1, 13))

    wanted = jobs.wanted_suites(("bpb", "tokenizer"))
    st = jobs.run_state(run, suites=wanted)
    assert st.state == "trained" and st.detail == "to evaluate: tokenizer"
    said.clear()
    out = jobs.launch(cfgs, "debug", opts, sweep_dir, ("bpb", "tokenizer"), echo=said.append)
    assert out.submitted == [cfgs[0].name]
    assert any("evaluation only (to evaluate: tokenizer)" in x for x in said), said
    final = rundir.read_final(run)
    assert set(final.eval) == {"bpb", "tokenizer"} and set(final.suites) == {"bpb", "tokenizer"}
    assert final.suites["bpb"] == first.suites["bpb"]  # not evaluated again
    assert _untouched(run) == before  # no training step, no checkpoint, config.json as it was
    assert jobs.run_state(run).state == "done" and jobs.run_state(run, suites=wanted).state == "done"
    said.clear()
    assert jobs.launch(cfgs, "debug", opts, sweep_dir, ("bpb", "tokenizer"), echo=said.append).submitted == []

    # a suite asked with another config is due again, and only that one
    fewer = {"tokenizer_lines": 5}
    assert jobs.run_state(run, suites=jobs.wanted_suites(("bpb", "tokenizer"), fewer)).state == "trained"
    jobs.launch(cfgs, "debug", opts, sweep_dir, ("bpb", "tokenizer"), echo=said.append, eval_options=fewer)
    again = rundir.read_final(run)
    assert again.suites["tokenizer"]["config"]["tokenizer_lines"] == 5 and again.suites["bpb"] == first.suites["bpb"]
    assert _untouched(run) == before


# ---------------------------------------------------------------- interrupted or failed


def _ended_job(run_dir: Path, log: str, checkpoints: int = 0) -> Path:
    """A run whose local job has exited, with ``log`` as its stderr and ``checkpoints`` saved."""
    from xlmr_core.train import rundir

    run_dir.mkdir(parents=True)
    (run_dir / "job.err").write_text(log)
    for step in range(4, 4 * checkpoints + 1, 4):
        path = rundir.checkpoint_path(run_dir, step)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (run_dir / "job.json").write_text(json.dumps({"executor": "local", "job_id": str(proc.pid), "pid": proc.pid,
                                                  "pid_start": None, "folder": str(run_dir), "suites": [],
                                                  "stdout": "", "stderr": str(run_dir / "job.err"),
                                                  "submitted_unix": 0, "host": "elsewhere"}))
    return run_dir


SIGTERM_LOG = ("submitit INFO (2025-01-01 00:00:00,000) - Starting with JobEnvironment(job_id=1)\n"
               "xlmr: interrupted by SIGTERM at step 8: saved r/checkpoints/step_00000008.pt; the run resumes from it\n"
               "submitit WARNING (2025-01-01 00:00:01,000) - Bypassing signal SIGTERM\n")
CRASH = "Traceback (most recent call last):\n  File \"x\"\nxlmr_core.errors.XlmrError: loss is nan at step 9\n"


def test_status_tells_interrupted_runs_from_failed_ones(tmp_path):
    sw = tmp_path / "model_size"
    st = jobs.run_state(_ended_job(sw / "sigterm", SIGTERM_LOG, checkpoints=2))
    assert st.state == "interrupted" and st.error is None and st.detail.startswith("xlmr: interrupted by SIGTERM")
    # requeued after a preemption, then crashed: the crash is what counts
    st = jobs.run_state(_ended_job(sw / "crash", SIGTERM_LOG + CRASH, checkpoints=2))
    assert st.state == "failed" and st.error == "xlmr_core.errors.XlmrError: loss is nan at step 9"
    usr2 = ("submitit WARNING (x) - Caught signal SIGUSR2 on host: this job is timed-out.\n"
            "submitit INFO (x) - Job not requeued because: timed-out too many times.\nTraceback (most recent call "
            "last):\nsubmitit.core.utils.UncompletedJobError: Job not requeued because: timed-out too many times.\n")
    assert jobs.run_state(_ended_job(sw / "usr2", usr2, checkpoints=1)).state == "interrupted"
    # killed (SIGKILL, out of memory) without a word: resumable if it left a checkpoint
    assert jobs.run_state(_ended_job(sw / "killed", "submitit INFO - Starting\n", checkpoints=1)).state \
        == "interrupted"
    st = jobs.run_state(_ended_job(sw / "early", "submitit INFO - Starting\n"))
    assert st.state == "failed" and st.error == "submitit INFO - Starting"
    status = subprocess.run([*LAUNCH, "status", "model_size", "--root", str(tmp_path)], capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    rows = {x.split()[0]: x for x in status.stdout.splitlines()[1:] if x.strip() and not x[0].isdigit()}
    assert "interrupted" in rows["sigterm"] and "Bypassing" not in rows["sigterm"], status.stdout
    assert "failed" in rows["crash"] and rows["crash"].endswith("XlmrError: loss is nan at step 9"), status.stdout
    assert status.stdout.rstrip().endswith("2 failed, 3 interrupted"), status.stdout
