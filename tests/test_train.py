"""The trainer on the real demo corpus: learning, golden losses, exact resume after SIGKILL, DDP, faults."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TEST_LANGS, TEST_SAMPLE_LINES, TEST_VOCAB

from xlmr_core.config import RunConfig, apply_overrides, load_config, to_dict
from xlmr_core.errors import XlmrError
from xlmr_core.train.rundir import list_checkpoints, load_run, read_checkpoint_state
from xlmr_core.train.trainer import train

LANGS = TEST_LANGS  # the same tokenizer and shards as the demo_tokenizer fixture (built once)


def small_config(corpus: Path, run_dir: Path, **over) -> RunConfig:
    """A debug-size run on ten demo languages that takes a few seconds."""
    cfg = load_config(None, [
        f"run_dir={run_dir}", "model.size=debug", f"data.corpus={corpus}", f"data.langs={','.join(LANGS)}",
        f"data.vocab_size={TEST_VOCAB}", f"data.tokenizer_sample_lines={TEST_SAMPLE_LINES}", "data.seq_len=64",
        "data.batch_tokens=512", "schedule.steps=12",
        "schedule.warmup_steps=2", "optim.lr=2e-3", "log_interval=1", "checkpoint.interval=4",
        "eval.max_blocks=2", "eval.draws=1", "precision.device=cpu"])
    return apply_overrides(cfg, [f"{k}={v}" for k, v in over.items()])


def write_config(cfg: RunConfig, path: Path) -> Path:
    path.write_text(yaml.safe_dump(to_dict(cfg)), encoding="utf-8")
    return path


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    final = json.loads((run_dir / "final.json").read_text())
    return torch.load(final["checkpoint"], map_location="cpu", weights_only=True)["model"]


def losses(run_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.fixture(scope="module")
def reference_run(demo_corpus, tmp_path_factory) -> Path:
    """An uninterrupted run of ``small_config``."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    train(small_config(demo_corpus, run_dir))
    return run_dir


@pytest.mark.timeout(300)
def test_loss_falls_and_results_written(demo_corpus, tmp_path):
    run_dir = tmp_path / "run"
    final = train(small_config(demo_corpus, run_dir, **{"schedule.steps": 40, "checkpoint.interval": 20}))
    ls = losses(run_dir)
    assert len(ls) == 40
    # ln(2002) ≈ 7.6 nats at initialisation; 40 steps of a debug model must get well below it
    assert ls[0] == pytest.approx(7.6, abs=0.3)
    assert sum(ls[-5:]) / 5 < sum(ls[:5]) / 5 - 1.0
    info = json.loads((run_dir / "config.json").read_text())
    assert info["config"]["data"]["langs"] == LANGS and info["total_steps"] == 40 and info["versions"]["torch"]
    assert set(final["per_lang"]) == set(LANGS)
    for r in final["per_lang"].values():
        assert 0 < r["bpb"] < 8 and 0 <= r["acc"] <= 1
    assert final["tokens"] == 40 * 512 and final["flops"] > 0
    p = final["params"]
    model, tok, _ = load_run(run_dir)
    assert p["total"] == sum(x.numel() for x in model.parameters()) and model.config.vocab_size == tok.vocab_size
    assert p["embedding"] == model.embed.tokens.weight.numel() + model.embed.positions.weight.numel() + \
        model.embed.token_type.weight.numel()
    # a finished run returns its result at once (the same run: a shorter schedule would be another one)
    t0 = time.time()
    assert train(small_config(demo_corpus, run_dir, **{"schedule.steps": 40}))["checkpoint"] == final["checkpoint"]
    assert time.time() - t0 < 5


@pytest.mark.timeout(300)
def test_golden_losses(reference_run):
    """The first losses of the fixed-seed debug run: catches silent changes to data, masking, model, optimizer."""
    got = losses(reference_run)[:4]
    golden = json.loads((Path(__file__).parent / "golden_losses.json").read_text())["debug_run"]
    assert got == pytest.approx(golden, abs=1e-4)


@pytest.mark.timeout(600)
def test_sigkill_resume_is_bit_exact(demo_corpus, reference_run, tmp_path):
    """Kill a real training process at random moments, restart it each time: same final weights, bit for bit."""
    run_dir = tmp_path / "run"
    cfg_file = write_config(small_config(demo_corpus, run_dir, **{"checkpoint.interval": 2}), tmp_path / "c.yaml")
    cmd = [sys.executable, "-m", "xlmr_core", "train", str(cfg_file)]
    metrics = run_dir / "metrics.jsonl"
    rng = random.Random(1234)
    # kill once the run has logged a random step (then a random few milliseconds later: inside a step, a
    # checkpoint write or the metrics append), three times; the fourth start runs to completion
    targets = sorted(rng.sample(range(2, 12), 3))
    for target in targets:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while proc.poll() is None and (len(losses(run_dir)) if metrics.exists() else 0) < target:
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert not (run_dir / "final.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads((run_dir / "config.json").read_text())
    assert info["resumed_from"], "the last start must have resumed from a checkpoint"
    ref, got = final_weights(reference_run), final_weights(run_dir)
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    assert losses(run_dir) == losses(reference_run)


@pytest.mark.timeout(300)
def test_two_process_gloo_matches_one_process(demo_corpus, tmp_path):
    """torchrun with 2 CPU processes (gloo), same global batch: same training within float tolerance.

    Dropout is off: its noise is drawn per process, so only the noise-free computation can match.
    """
    no_dropout = {"model.dropout": 0.0, "model.attention_dropout": 0.0, "schedule.steps": 6}
    one = tmp_path / "one"
    train(small_config(demo_corpus, one, **no_dropout))
    run_dir = tmp_path / "two"
    peak_tflops = 0.5  # a made-up peak: the figure must follow the formula with whatever peak it is given
    cfg_file = write_config(small_config(demo_corpus, run_dir, **no_dropout, **{"precision.peak_tflops": peak_tflops}),
                            tmp_path / "c.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "xlmr_core", "train", str(cfg_file)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads((run_dir / "config.json").read_text())
    assert info["world_size"] == 2
    assert losses(run_dir) == pytest.approx(losses(one), rel=1e-5)
    ref, got = final_weights(one), final_weights(run_dir)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-5, msg=k)
    # MFU per device: the global batch's FLOPs over the step time, the world size and one device's peak
    assert info["peak_flops"] == peak_tflops * 1e12
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in (r for r in rows if "loss" in r):
        assert r["step_s"] > 0
        assert r["mfu"] == pytest.approx(info["flops_per_step"] / r["step_s"] / (2 * peak_tflops * 1e12), rel=1e-9)
        assert r["tokens_per_s"] == pytest.approx(info["tokens_per_step"] / r["step_s"], rel=1e-9)
    assert all(r["mfu"] is None for r in map(json.loads, (one / "metrics.jsonl").read_text().splitlines())
               if "loss" in r), "no peak on a CPU without precision.peak_tflops: MFU unknown"


@pytest.mark.timeout(300)
def test_corrupt_checkpoint_falls_back(demo_corpus, reference_run, tmp_path):
    run_dir = tmp_path / "run"
    cfg = small_config(demo_corpus, run_dir)
    train(cfg)
    newest, previous = list_checkpoints(run_dir)[:2]
    (run_dir / "final.json").unlink()
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated by a crash
    with pytest.warns(UserWarning, match="unreadable"):
        state, path = read_checkpoint_state(run_dir)
    assert path == previous and state["step"] == 8
    with pytest.warns(UserWarning, match="unreadable"):
        train(cfg)
    ref, got = final_weights(reference_run), final_weights(run_dir)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


@pytest.mark.timeout(300)
def test_nan_guard_stops_and_keeps_last_good_checkpoint(demo_corpus, tmp_path):
    run_dir = tmp_path / "run"
    cfg = small_config(demo_corpus, run_dir, **{"optim.lr": 1e30, "schedule.warmup_steps": 0,
                                                 "checkpoint.interval": 1, "optim.grad_clip": 0})
    with pytest.raises(XlmrError, match=r"loss is (nan|inf) at step \d+") as e:
        train(cfg)
    step = int(str(e.value).split(" at step ")[1].split()[0])
    assert not (run_dir / "final.json").exists()
    state, path = read_checkpoint_state(run_dir)
    assert state is not None and state["step"] == step - 1 and str(path) in str(e.value)


@pytest.mark.parametrize("override, message", [
    ("data.batch_tokens=1000", "not a multiple of data.seq_len"),
    ("data.alpha=0", "data.alpha=0"),
    ("data.nope=1", "unknown config key 'data.nope'"),
    ("schedule.steps=ten", "schedule.steps: expected an integer"),
    ("checkpoint.keep=1", "checkpoint.keep=1"),
    ("precision.dtype=fp8", "precision.dtype='fp8'"),
    ("data.loader_workers=-1", "data.loader_workers=-1"),
])
def test_bad_config_values_give_one_clear_error(override, message):
    with pytest.raises(XlmrError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_cli_prints_one_line_for_bad_input(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  corpus: /nonexistent/corpus\nrun_dir: " + str(tmp_path / "r") + "\n")
    r = subprocess.run([sys.executable, "-m", "xlmr_core", "train", str(cfg), "schedule.steps=1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xlmr: error:") and "/nonexistent/corpus" in lines[0]


def test_budget_in_tokens_and_flops(demo_corpus, tmp_path):
    from xlmr_core.train.trainer import build_model, resolve_budget

    cfg = small_config(demo_corpus, tmp_path, **{"schedule.tokens": 512 * 7 + 1})
    model = build_model(cfg, 2002)
    assert resolve_budget(cfg, model).total_steps == 8
    per_step = model.train_flops(512, 64, 0.15)
    cfg = small_config(demo_corpus, tmp_path, **{"schedule.flops": per_step * 5})
    assert resolve_budget(cfg, model).total_steps == 5


@pytest.mark.timeout(300)
def test_activation_checkpointing_trains_the_same(demo_corpus, reference_run, tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(demo_corpus, run_dir, **{"precision.activation_checkpointing": True}))
    assert losses(run_dir) == pytest.approx(losses(reference_run), rel=1e-5)
    ref, got = final_weights(reference_run), final_weights(run_dir)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.timeout(300)
def test_loader_processes_train_the_same(demo_corpus, reference_run, tmp_path):
    from xlmr_core.train.rundir import check_same_run

    cfg = small_config(demo_corpus, tmp_path / "run", **{"data.loader_workers": 2})
    check_same_run(reference_run, cfg)  # the loader's processes may change on resume: batches do not depend on them
    train(cfg)
    assert losses(tmp_path / "run") == losses(reference_run)


def test_loader_workers_default(monkeypatch):
    from xlmr_core.train.trainer import loader_workers

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert loader_workers(None, cpu) == 0 and loader_workers(3, cpu) == 3 and loader_workers(0, cuda) == 0
    assert loader_workers(None, cuda) == 4  # 16 cores, one GPU process
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert loader_workers(None, cuda) == 1  # 2 cores per GPU process: one trains, one builds batches
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert loader_workers(None, cuda) == 0
