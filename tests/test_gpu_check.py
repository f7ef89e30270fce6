"""The GPU check's CPU-runnable parts: argument handling, the dry run, stage budgets and timeouts, the merge into
gpu.json, and benchmarks/gpu.py's argument handling, variants and a CPU smoke run of its code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(SCRIPTS))

import gpu  # noqa: E402
import gpu_check as gc  # noqa: E402


def one_line_error(capsys, fn, *args) -> str:
    """Run ``fn(*args)`` expecting exit status 2 with exactly one line on stderr; that line."""
    with pytest.raises(SystemExit) as e:
        rc = fn(*args)
        raise SystemExit(rc)
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- arguments and the dry run


def test_dry_run_prints_every_stage_with_commands_and_budgets(capsys, tmp_path):
    out = tmp_path / "out"
    assert gc.main(["run", "--dry-run", "--out", str(out), "--work", str(tmp_path / "w")]) == 0
    text = capsys.readouterr().out
    assert not out.exists()  # a dry run writes nothing
    for i, stage in enumerate(gc.STAGES, 1):
        budget = gc.BUDGETS[stage]
        assert f"{i}. {stage} [{f'{budget} s' if budget else 'what is left'}]" in text
    # the stages' own budgets fit the 8-minute frame with the merge's reserve; the GPU tests get 2 minutes
    assert sum(gc.BUDGETS.values()) + gc.MERGE_RESERVE <= gc.TOTAL_BUDGET <= 480
    assert gc.BUDGETS["tests"] >= 120
    # every command's own path up to the device ran: gpu.py parsed its arguments, the trainer resolved its config
    checks = [line.strip() for line in text.splitlines() if line.strip().startswith("check:")]
    assert len(checks) == text.count("     $ ") and checks and all(c == "check: ok" for c in checks), checks
    assert "-m pytest -m gpu" in text and "tests/test_gpu.py" in text and "--junitxml=" in text
    work = tmp_path / "w"
    assert f"gpu.py --sizes base --tune --profile {work / 'profile.json'} --json {out / 'bench_base.json'}" in text
    assert f"--sizes large --like {out / 'bench_base.json'}" in text
    # the training run: the real trainer with the gpu preset's shape
    from xlmr_core.study.sweeps import PRESETS

    g = PRESETS["gpu"]
    assert "-m xlmr_core train " in text and "precision.device=cuda" in text and "schedule.steps=300" in text
    for item in (f"model.size={g.model.size}", f"data.seq_len={g.seq_len}", f"data.batch_tokens={g.batch_tokens}",
                 f"data.vocab_size={g.vocab_size}"):
        assert item in text
    if gc.slice_guard() is None:
        assert f"run capacity_dilution --scale {gc.SLICE_SCALE} --executor local" in text
        assert "collect capacity_dilution" in text and "(always)" in text
    else:
        assert "7. slice [what is left]: skipped (scale" in text


def test_dry_run_of_a_subset_with_budgets(capsys, tmp_path):
    assert gc.main(["run", "--dry-run", "--out", str(tmp_path), "--stages", "tests,train", "--stage-budget",
                    "train=200", "--train-steps", "500", "--budget", "300"]) == 0
    text = capsys.readouterr().out
    assert f"1. setup [{gc.BUDGETS['setup']} s]: skipped (not selected)" in text and "6. train [200 s]" in text
    assert "schedule.steps=500" in text and "total budget 300 s" in text


@pytest.mark.parametrize("argv, words", [
    (["run", "--budget", "0"], "--budget 0"),
    (["run", "--budget", "nan"], "--budget nan"),
    (["run", "--stages", "tests,nope"], "unknown stage 'nope'"),
    (["run", "--skip", "benchmark"], "unknown stage 'benchmark'"),
    (["run", "--stages", "train", "--skip", "train"], "no stage left"),
    (["run", "--stage-budget", "tests"], "STAGE=SECONDS"),
    (["run", "--stage-budget", "tests=soon"], "'soon' is not a number"),
    (["run", "--stage-budget", "tests=-1"], "must be >= 0"),
    (["run", "--train-steps", "0"], "--train-steps 0"),
    (["run", "--budget", "ten"], "invalid float value: 'ten'"),
    (["merge"], "the following arguments are required: dir"),
    (["launch"], "invalid choice: 'launch'"),
])
def test_bad_arguments_give_one_clear_line(capsys, argv, words):
    line = one_line_error(capsys, gc.main, argv + (["--dry-run"] if argv[0] == "run" else []))
    assert line.startswith("scripts/gpu_check.py") and words in line


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine")
def test_run_without_a_gpu_says_so(capsys, tmp_path):
    line = one_line_error(capsys, gc.main, ["run", "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")])
    assert "no NVIDIA GPU" in line and "--dry-run" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, words", [
    (["--sizes", "huge"], "unknown size 'huge'"),
    (["--sizes", ","], "--sizes is empty"),
    (["--variant", "flash=1"], "'flash=1' is not key=value"),
    (["--variant", "sdpa=fastest"], "sdpa='fastest'"),
    (["--variant", "compile=all"], "compile='all'"),
    (["--variant", "ce=2^x"], "ce='2^x' is not a number"),
    (["--variant", "batch=0"], "batch='0' must be a positive integer"),
    (["--variant", "ckpt=maybe"], "ckpt='maybe'"),
    (["--ce-budget", "1.5"], "--ce-budget='1.5' must be a positive integer"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--like", "/nonexistent/bench.json"], "no such file"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
])
def test_bad_gpu_py_arguments_give_one_clear_line(capsys, argv, words):
    line = one_line_error(capsys, gpu.parse_args, argv)
    assert line.startswith("benchmarks/gpu.py: error:") and words in line


def test_variants_parse_and_copy_the_best_settings(tmp_path):
    base = gpu.Variant(batch=32)
    v = gpu.parse_variant("compile=layers, ce=2^27 ,sdpa=flash,ckpt=yes", base)
    assert v == gpu.Variant(batch=32, compile="layers", ce=2**27, sdpa="flash", ckpt=True)
    assert v.name == "b32 ce=2^27 sdpa=flash compile=layers ckpt"
    assert gpu.parse_variant("batch=64,ce=1e6", base).settings() == dict(batch=64, compile="none", sdpa="auto",
                                                                           ce=1_000_000, ckpt=False)
    assert gpu.format_count(3 * 2**20) == str(3 * 2**20) and gpu.parse_count("2**29", "ce") == 2**29
    bench = tmp_path / "bench.json"
    ok = dict(status="ok", tokens_per_s=100.0, settings=v.settings())
    slow = dict(status="ok", tokens_per_s=50.0, settings=base.settings())
    bench.write_text(json.dumps({"sizes": [{"variants": [slow, dict(status="oom", settings={}), ok]}]}))
    assert gpu.like_variants(bench, 16) == [gpu.Variant(batch=16, compile="layers", ce=2**27, sdpa="flash",
                                                        ckpt=True),
                                            gpu.Variant(batch=32, compile="layers", ce=2**27, sdpa="flash",
                                                        ckpt=True)]
    bench.write_text(json.dumps({"sizes": [{"variants": [dict(status="oom", settings={})]}]}))
    with pytest.raises(gpu.UsageError, match="none of its variants ran"):
        gpu.like_variants(bench, 16)


# ---------------------------------------------------------------- gpu.py on the CPU


@pytest.fixture(scope="module")
def cpu_bench(tmp_path_factory) -> Path:
    """A smoke run of benchmarks/gpu.py's code on the CPU: debug size, both models, two variants and a profile."""
    d = tmp_path_factory.mktemp("bench")
    assert gpu.main(["--device", "cpu", "--sizes", "debug", "--vocab", "1000", "--seq", "64", "--batch", "2",
                     "--steps", "2", "--warmup", "1", "--variant", "ce=2^12", "--variant", "sdpa=math,batch=3",
                     "--profile", str(d / "profile.json"), "--json", str(d / "bench_base.json")]) == 0
    return d


def test_gpu_py_help_and_cpu_smoke_run(cpu_bench):
    r = subprocess.run([sys.executable, str(BENCHMARKS / "gpu.py"), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "--variant" in r.stdout and "--tune" in r.stdout
    data = json.loads((cpu_bench / "bench_base.json").read_text())
    assert data["meta"]["device"] == "cpu" and data["meta"]["peak_tflops"] is None
    rec = data["sizes"][0]
    assert rec["size"] == "debug" and rec["first_loss"]["agree"] and rec["transformers"]["tokens_per_s"] > 0
    names = [v["name"] for v in rec["variants"]]
    assert names == ["b2 ce=2^25 sdpa=auto compile=none", "b2 ce=2^12 sdpa=auto compile=none",
                     "b3 ce=2^25 sdpa=math compile=none"]
    assert all(v["status"] == "ok" and v["losses_finite"] and v["mfu"] is None for v in rec["variants"])
    assert rec["variants"][0]["baseline"] and rec["best"] in names
    prof = json.loads((cpu_bench / "profile.json").read_text())
    assert prof["variant"] == rec["best"] and prof["top_ops"] and "matmul" in prof["groups_ms_per_step"]


def test_gpu_py_skips_variants_when_its_time_is_up(tmp_path):
    out = tmp_path / "b.json"
    assert gpu.main(["--device", "cpu", "--sizes", "debug", "--vocab", "500", "--seq", "32", "--batch", "2",
                     "--steps", "1", "--warmup", "0", "--variant", "ce=2^10", "--time-budget", "0.001",
                     "--no-transformers", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["sizes"][0]
    assert rec["transformers"] is None and rec["variants"][0]["status"] == "ok"  # the baseline always runs
    assert rec["variants"][1]["status"] == "skipped" and "time" in rec["variants"][1]["error"]


# ---------------------------------------------------------------- stages, budgets, timeouts


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_stages_keep_to_their_budgets(tmp_path):
    """A stage over its budget is killed with its children; the next still runs; stages.json tells it all."""
    marker = tmp_path / "grandchild-survived"
    grandchild = f"import time; time.sleep(3); open({str(marker)!r}, 'w').write('x')"
    slow = _py(f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); "
               "time.sleep(60)")
    seen = []
    stages = [
        gc.Stage("slow", 4.5, [gc.Cmd("sleeps", argv=slow), gc.Cmd("skipped after a timeout", argv=_py("pass")),
                               gc.Cmd("always", argv=_py("print('collected')"), always=True, reserve=3)],
                 min_s=1),
        gc.Stage("fails", 10, [gc.Cmd("exit 3", argv=_py("raise SystemExit(3)")),
                               gc.Cmd("optional", argv=_py("raise SystemExit(1)"), optional=True, always=True)]),
        gc.Stage("guarded", 10, [gc.Cmd("never", argv=_py("pass"))], guard=lambda: "scale 'x' is not defined"),
        gc.Stage("fine", 10, [gc.Cmd("internal", action=lambda: "did it")],
                 after=lambda rec: dict(figure=1.0)),
        gc.Stage("too-late", 0, [gc.Cmd("never", argv=_py("pass"))], min_s=60),
        gc.Stage("unselected", 10, [gc.Cmd("never", argv=_py("pass"))]),
    ]
    t = time.monotonic()
    records = gc.run_stages(stages, budget=40, out=tmp_path, env=dict(os.environ),
                            selected={s.name for s in stages} - {"unselected"},
                            on_stage=lambda recs: seen.append(len(recs)), echo=lambda *a, **k: None)
    assert time.monotonic() - t < 20
    by = {r["name"]: r for r in records}
    assert by["slow"]["status"] == "timeout"
    assert [s["status"] for s in by["slow"]["steps"]] == ["timeout", "skipped", "ok"]
    assert by["fails"]["status"] == "failed" and by["fails"]["reason"] == "exit 3: failed (exit 3)"
    assert by["fails"]["steps"][1]["status"] == "failed"  # optional: it did not change the reason
    assert by["guarded"]["status"] == "skipped" and "not defined" in by["guarded"]["reason"]
    assert by["fine"]["status"] == "ok" and by["fine"]["result"] == {"figure": 1.0}
    assert by["fine"]["steps"][0]["note"] == "did it"
    assert by["too-late"]["status"] == "skipped" and by["too-late"]["reason"].startswith("time:")
    assert by["unselected"]["reason"].startswith("not selected")
    assert seen == [1, 2, 3, 4, 5, 6]
    assert json.loads((tmp_path / "stages.json").read_text())["stages"] == records
    log = (tmp_path / "log.txt").read_text()
    assert "killed after" in log and "collected" in log and "stage guarded: skipped" in log
    time.sleep(3.5)
    assert not marker.exists(), "the timed-out stage's grandchild was left running"


def test_setup_extracts_the_carried_corpus(tmp_path):
    carry, src = tmp_path / "carry", tmp_path / "src" / "demo-corpus"
    src.mkdir(parents=True)
    carry.mkdir()
    (src / "meta.json").write_text("{}")
    (src / "en.txt").write_text("hello\n")
    with tarfile.open(carry / gc.CORPUS_ARCHIVE, "w:xz") as tar:
        tar.add(src, arcname="demo-corpus")
    args = gc.build_parser().parse_args(["run", "--dry-run"])
    gc.check_run_args(args)
    p = gc.Paths(out=tmp_path / "out", work=tmp_path / "work", carry=carry)
    setup = gc.build_plan(args, p)[0]
    extract = next(c for c in setup.cmds if c.label.startswith("extract"))
    assert "demo-corpus.tar.xz" in extract.action() and (p.corpus / "en.txt").read_text() == "hello\n"
    assert "already" in extract.action()
    assert gc.child_env(p)["XLMR_CACHE"] == str(p.cache)  # where ensure_demo_corpus looks
    (carry / gc.CORPUS_ARCHIVE).unlink()
    shutil.rmtree(p.corpus)
    with pytest.raises(FileNotFoundError, match="gpu_check.py prepare"):
        extract.action()


def test_environment_record_on_cpu(tmp_path):
    assert gc.main(["_env", "--json", str(tmp_path / "env.json")]) == 0
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["torch"] and env["python"] and env["cuda_available"] in (True, False)


def test_prepare_downloads_wheels_for_the_device_python(tmp_path):
    cmd = gc.wheel_download_command("zstandard", "0.25.0", tmp_path, python="python3")
    assert cmd[:4] == ["python3", "-m", "pip", "download"] and "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.12" and cmd[-1] == "zstandard==0.25.0"
    assert "manylinux_2_17_x86_64" in cmd and cmd[cmd.index("-d") + 1] == str(tmp_path)


# ---------------------------------------------------------------- reading outputs and merging


def _variant(name, batch, tps, mfu, *, status="ok", baseline=False, peak=40 * 2**30):
    v = dict(name=name, settings=dict(batch=batch, compile="none", sdpa="auto", ce=2**25, ckpt=False),
             status=status)
    if status == "ok":
        v.update(tokens_per_s=tps, mfu=mfu, peak_memory_bytes=peak, losses_finite=True)
    if baseline:
        v["baseline"] = True
    return v


def _bench(size, variants, tf_tps, date="2026-12-01T10:00:00+00:00"):
    return dict(meta=dict(gpu="NVIDIA H200", torch="2.11.0+cu130", date=date, command="python3 benchmarks/gpu.py"),
                sizes=[dict(size=size, first_loss=dict(agree=True), variants=variants,
                            transformers=dict(batch=variants[0]["settings"]["batch"], tokens_per_s=tf_tps,
                                              mfu_useful=0.1, mfu_executed=0.3, peak_memory_bytes=60 * 2**30,
                                              paired_speedup=1.9))])


def _stages(out: Path, **status):
    recs = [dict(name=n, status=status.get(n, "ok"), seconds=1.0, budget_s=10, started="2026-12-01T10:00:00")
            for n in gc.STAGES]
    by = {r["name"]: r for r in recs}
    by["train"]["result"] = dict(steps=300, tokens_per_s=9e5, mfu=0.12, metrics_have_tokens_per_s_and_mfu=True)
    by["tests"]["result"] = dict(tests=6, passed=6, failures=0, errors=0, skipped=0, failed=[])
    (out / "stages.json").write_text(json.dumps(dict(date="2026-12-01T10:08:00", budget_s=470, wall_s=400,
                                                     stages=recs)))


def test_merge_writes_gpu_json_atomically_and_keeps_earlier_figures(tmp_path):
    out, results = tmp_path / "out", tmp_path / "results" / "gpu.json"
    out.mkdir()
    _stages(out)
    (out / "bench_base.json").write_text(json.dumps(_bench("base", [
        _variant("b32 eager", 32, 300e3, 0.30, baseline=True), _variant("b64 compiled", 64, 500e3, 0.52),
        _variant("b128", 128, None, None, status="oom")], tf_tps=200e3)))
    (out / "bench_large.json").write_text(json.dumps(_bench("large", [
        _variant("b16", 16, 100e3, 0.35, baseline=True), _variant("b32", 32, 110e3, 0.38)], tf_tps=60e3)))
    (out / "profile.json").write_text(json.dumps(dict(variant="b64 compiled", device_busy_share=0.93, top_ops=[
        dict(name="aten::mm", share_of_step=0.5), dict(name="aten::_flash_attention_backward", share_of_step=0.1),
        dict(name="aten::_fused_adamw_", share_of_step=0.05)])))
    merged = gc.merge(out, results, command="test")
    assert json.loads(results.read_text()) == merged
    assert [p.name for p in results.parent.iterdir()] == ["gpu.json"]  # no temporary left behind
    base, large = merged["summary"]
    assert base["size"] == "base" and base["best"] == "b64 compiled" and base["batch"] == 64
    assert base["speedup"] == pytest.approx(2.5) and base["transformers_mfu_executed"] == 0.3
    assert base["variants_tried"] == 3 and base["variants_ok"] == 2 and base["ours_peak_memory_gib"] == 40
    assert large["speedup"] == pytest.approx(110 / 60)
    assert merged["goals"] == dict(base_mfu_at_least_50pct=True, base_at_least_2x_transformers=True,
                                   large_trains_at_useful_batch=True, train_metrics_have_tokens_per_s_and_mfu=True)
    assert merged["train"]["mfu"] == 0.12 and merged["tests"]["passed"] == 6
    assert merged["history"][-1]["stages"]["bench-base"] == "ok" and "aten::mm 50%" in gc.format_summary(merged)

    # a second run whose large benchmark ran out of memory everywhere and whose training failed: the earlier
    # figures stay, the new base figures replace the old ones
    out2 = tmp_path / "out2"
    out2.mkdir()
    _stages(out2, train="failed")
    rec2 = json.loads((out2 / "stages.json").read_text())
    next(r for r in rec2["stages"] if r["name"] == "train")["result"] = dict(status="failed", reason="no mfu")
    (out2 / "stages.json").write_text(json.dumps(rec2))
    (out2 / "bench_base.json").write_text(json.dumps(_bench("base", [
        _variant("b32 eager", 32, 320e3, 0.32, baseline=True)], tf_tps=200e3, date="2026-12-02T10:00:00+00:00")))
    (out2 / "bench_large.json").write_text(json.dumps(_bench("large", [
        _variant("b16", 16, None, None, status="oom", baseline=True)], tf_tps=60e3)))
    merged2 = gc.merge(out2, results)
    assert merged2["sizes"]["base"]["meta"]["date"].startswith("2026-12-02")
    assert merged2["sizes"]["large"]["variants"][1]["name"] == "b32"  # kept from the first run
    assert merged2["train"]["mfu"] == 0.12  # the failed training run did not replace the good record
    assert merged2["goals"]["base_mfu_at_least_50pct"] is False and len(merged2["history"]) == 2
    assert merged2["stages"][5] == dict(name="train", status="failed", seconds=1.0, budget_s=10, reason=None)


def test_merge_errors_are_one_line_and_leave_gpu_json_alone(capsys, tmp_path):
    results = tmp_path / "gpu.json"
    results.write_text('{"summary": [], "keep": 1}')
    line = one_line_error(capsys, gc.main, ["merge", str(tmp_path / "missing"), "--results", str(results)])
    assert "is not a directory" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "nothing to merge" in one_line_error(capsys, gc.main, ["merge", str(empty), "--results", str(results)])
    (empty / "bench_base.json").write_text('{"sizes": [')
    line = one_line_error(capsys, gc.main, ["merge", str(empty), "--results", str(results)])
    assert "bench_base.json is not valid JSON" in line
    assert json.loads(results.read_text()) == {"summary": [], "keep": 1}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    (empty / "bench_base.json").write_text(json.dumps(_bench("base", [_variant("b", 8, 1.0, 0.1)], tf_tps=1.0)))
    assert "is not valid JSON" in one_line_error(capsys, gc.main, ["merge", str(empty), "--results", str(bad)])
    assert bad.read_text() == "{not json"


def test_merge_of_the_cpu_smoke_run(cpu_bench, tmp_path, capsys):
    results = tmp_path / "gpu.json"
    assert gc.main(["merge", str(cpu_bench), "--results", str(results)]) == 0
    merged = json.loads(results.read_text())
    row = merged["summary"][0]
    assert row["size"] == "debug" and row["ours_mfu"] is None and row["speedup"] > 0
    assert merged["goals"]["base_mfu_at_least_50pct"] is None and merged["profile"]["top_ops"]
    assert "debug" in capsys.readouterr().out


def test_train_summary_needs_tokens_per_s_and_mfu(tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    out.mkdir()
    rows = [dict(step=s, loss=10.0 - s / 100, tokens_per_s=1e5 * (s > 25) + 1e3, mfu=0.1 + 0.1 * (s > 25))
            for s in (25, 50, 75)]
    rows.append(dict(step=75, eval={"en": {"bpb": 2.0}}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "final.json").write_text(json.dumps(dict(wall_s=12.0, per_lang={"en": {"bpb": 2.0}})))
    res = gc.train_summary(run, out)
    assert res["steps"] == 75 and res["records"] == 3 and res["metrics_have_tokens_per_s_and_mfu"]
    assert res["tokens_per_s"] == pytest.approx(1.01e5) and res["mfu"] == pytest.approx(0.2)  # first record left out
    assert res["complete"] and res["heldout_bpb_mean"] == 2.0 and "status" not in res
    assert (out / "train_metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    rows[1].pop("mfu")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = gc.train_summary(run, out)
    assert res["status"] == "failed" and res["reason"] == "metrics.jsonl records lack mfu"


def test_junit_summary(tmp_path):
    xml = tmp_path / "p.xml"
    xml.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
                   '<testcase classname="tests.test_gpu" name="test_a"/>'
                   '<testcase classname="tests.test_gpu" name="test_b"><failure message="x"/></testcase>'
                   '<testcase classname="tests.test_gpu" name="test_c"><skipped/></testcase>'
                   '</testsuite></testsuites>')
    s = gc.junit_summary(xml)
    assert (s["tests"], s["passed"], s["failures"], s["skipped"]) == (3, 1, 1, 1)
    assert s["failed"] == ["tests.test_gpu::test_b"] and gc.junit_summary(tmp_path / "none.xml") is None
    assert "status" not in gc.junit_summary(xml, gpu_expected=True)
    xml.write_text('<testsuite tests="1" failures="0" errors="0" skipped="1">'
                   '<testcase classname="tests.test_gpu" name="test_a"><skipped message="needs CUDA"/></testcase>'
                   '</testsuite>')
    assert gc.junit_summary(xml)["skipped"] == 1 and "status" not in gc.junit_summary(xml)
    assert gc.junit_summary(xml, gpu_expected=True)["status"] == "failed"  # on the GPU machine: CUDA is broken


def test_gpu_py_records_a_kernel_that_cannot_run_and_goes_on(tmp_path):
    """cuDNN attention does not exist on the CPU: the failure is a recorded result; the next variant still runs."""
    out = tmp_path / "b.json"
    assert gpu.main(["--device", "cpu", "--sizes", "debug", "--vocab", "500", "--seq", "32", "--batch", "2",
                     "--steps", "1", "--warmup", "0", "--sdpa", "cudnn", "--variant", "sdpa=math",
                     "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["sizes"][0]
    assert rec["transformers"]["status"] == "error" and "kernel" in rec["transformers"]["error"].lower()
    assert [v["status"] for v in rec["variants"]] == ["error", "ok"] and rec["variants"][0]["baseline"]
    assert rec["best"] == "b2 ce=2^25 sdpa=math compile=none"
