"""A run directory holds one run: a changed config is refused with the differing keys and the ways on,
``--restart`` moves the old run aside, a larger budget trains a finished run on, a run directory (or its
config.json) resumes; and every config error that shows up front comes before any tokenizer is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlmr_core.cli import main
from xlmr_core.config import load_config, to_dict
from xlmr_core.errors import XlmrError
from xlmr_core.train import rundir
from xlmr_core.train import trainer as train_module
from xlmr_core.train.trainer import check_config, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _overrides(corpus: Path, cache_root: Path, run_dir: Path, steps: int = 8) -> list[str]:
    """A debug-size run on two small demo languages: a few seconds."""
    return [f"run_dir={run_dir}", "model.size=debug", f"data.corpus={corpus}", "data.langs=bg,sl",
            "data.vocab_size=1000", "data.tokenizer_sample_lines=20000", f"data.cache_dir={cache_root}",
            "data.seq_len=32", "data.batch_tokens=256", f"schedule.steps={steps}", "schedule.warmup_steps=2",
            "optim.lr=2e-3", "log_interval=1", "checkpoint.interval=4", "eval.max_blocks=2", "eval.draws=1",
            "precision.device=cpu", "log.tensorboard=false"]


def _train_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in rundir.read_metrics(run_dir) if "loss" in r]


def _no_preparing(monkeypatch):
    def fail(cfg):
        raise AssertionError("the tokenizer and shards were about to be built")

    monkeypatch.setattr(train_module, "prepare", fail)


@pytest.mark.timeout(300)
def test_a_changed_config_is_refused_and_restart_moves_the_old_run_aside(demo_corpus, cache_root, tmp_path,
                                                                         monkeypatch, capsys):
    run_dir = tmp_path / "runs" / "r"
    over = _overrides(demo_corpus, cache_root, run_dir)
    first = train(load_config(None, over))
    config = rundir.config_path(run_dir).read_text()
    capsys.readouterr()
    with monkeypatch.context() as m:
        _no_preparing(m)
        # keys that leave the trajectory as it is may differ: the finished run's result, nothing rebuilt
        same = train(load_config(None, [*over, "name=renamed", "log_interval=4", "checkpoint.keep=3",
                                        "eval.draws=2", "data.micro_batch_blocks=4"]))
        assert same["per_lang"] == first["per_lang"] and same["steps"] == 8
        assert main(["train", *over, "data.langs=bg", "seed=1"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith(f"xlmr: error: {run_dir} holds another run")
    assert "data.langs bg,sl → bg" in line and "seed 0 → 1" in line and "--restart" in line
    assert "new run_dir" in line and "schedule" not in line
    assert rundir.config_path(run_dir).read_text() == config  # nothing overwritten

    assert main(["train", "--restart", *over, "data.langs=bg"]) == 0
    (old,) = (run_dir.parent / ".old").iterdir()
    assert old.name.startswith("r-") and "moved the old run" in capsys.readouterr().err
    assert json.loads((old / "final.json").read_text())["langs"] == ["bg", "sl"]
    assert rundir.read_final(run_dir).langs == ["bg"] and _train_steps(run_dir) == list(range(1, 9))
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [".old", "r"]  # no second run beside it


@pytest.mark.timeout(300)
def test_a_larger_budget_trains_a_finished_run_on(demo_corpus, cache_root, tmp_path, capsys):
    run_dir = tmp_path / "r"
    train(load_config(None, _overrides(demo_corpus, cache_root, run_dir, steps=8)))
    capsys.readouterr()
    final = train(load_config(None, _overrides(demo_corpus, cache_root, run_dir, steps=12)))
    assert "schedule.steps 8 → 12: the run trains on" in capsys.readouterr().err
    assert final["steps"] == 12 and _train_steps(run_dir) == list(range(1, 13))  # steps 1-8 not trained again
    info = rundir.read_info(run_dir)
    assert info["resumed_from"] == str(rundir.checkpoint_path(run_dir, 8)) and info["warmup_steps"] == 2
    assert json.loads((run_dir / "final.step_00000008.json").read_text())["steps"] == 8  # the old result, kept
    # a smaller budget than the run has trained is another run
    with pytest.raises(XlmrError, match="schedule.steps 12 → 4"):
        train(load_config(None, _overrides(demo_corpus, cache_root, run_dir, steps=4)))


@pytest.mark.timeout(300)
def test_train_resumes_a_run_from_its_directory_or_config_json(demo_corpus, cache_root, tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "r"
    assert train(load_config(None, _overrides(demo_corpus, cache_root, run_dir)), stop_after=4) is None
    monkeypatch.chdir(tmp_path)  # the recorded run_dir is absolute; the path given here is relative
    assert main(["train", "runs/r/config.json"]) == 0
    assert rundir.read_final(run_dir).steps == 8 and _train_steps(run_dir) == list(range(1, 9))
    assert rundir.read_info(run_dir)["resumed_from"] == str(rundir.checkpoint_path(run_dir, 4))
    assert main(["train", "runs/r", "schedule.steps=10"]) == 0  # a directory too, with overrides
    assert rundir.read_final(run_dir).steps == 10


def test_config_errors_come_before_any_tokenizer_is_built(demo_corpus, tmp_path, monkeypatch, capsys):
    _no_preparing(monkeypatch)
    # the defaults train a debug model (max_positions 128) on blocks of 512 tokens: said at once, with the
    # corpus's problem in the same line
    assert main(["train", f"run_dir={tmp_path / 'r'}", f"data.corpus={tmp_path / 'none'}"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and f"corpus directory {tmp_path / 'none'} does not exist" in line
    assert "data.seq_len=512 exceeds the model's max_positions=128 (model.size=debug)" in line
    with pytest.raises(XlmrError, match="no file for language.*xx"):
        check_config(load_config(None, [f"run_dir={tmp_path}", f"data.corpus={demo_corpus}", "data.langs=en,xx",
                                        "data.seq_len=128", "data.batch_tokens=1024"]))
    with pytest.raises(XlmrError, match="hidden_size"):
        check_config(load_config(None, [f"run_dir={tmp_path}", f"data.corpus={demo_corpus}", "data.seq_len=128",
                                        "data.batch_tokens=1024", "model.hidden_size=65"]))
    assert not (tmp_path / "r").exists()


def test_the_example_config_passes_the_checks(demo_corpus, tmp_path):
    cfg = load_config(REPO / "examples" / "run.yaml", [f"data.corpus={demo_corpus}", f"run_dir={tmp_path}"])
    check_config(cfg)
    assert cfg.run_dir and cfg.schedule.steps and cfg.data.langs


def test_config_changes_name_only_the_keys_that_change_the_trajectory(tmp_path):
    base = load_config(None, [f"run_dir={tmp_path}", "data.corpus=/c", "data.seq_len=128", "data.batch_tokens=1024"])
    rundir.write_info(tmp_path, {"config": to_dict(base)})
    free = load_config(None, [f"run_dir={tmp_path}/elsewhere", "data.corpus=/c", "data.seq_len=128",
                              "data.batch_tokens=1024", "name=x", "tags=[a]", "log_interval=3", "eval.interval=5",
                              "checkpoint.interval=7", "precision.device=cpu", "precision.compile=true",
                              "data.cache_dir=/elsewhere", "log.wandb=offline"])
    ch = rundir.config_changes(tmp_path, free)
    assert ch.differ == {} and ch.grown == {}
    other = load_config(None, ["data.corpus=/c", "data.seq_len=64", "data.batch_tokens=1024", "model.size=tiny",
                               "optim.lr=1e-3", "data.vocab_size=500", "schedule.steps=200"])
    ch = rundir.config_changes(tmp_path, other)
    assert set(ch.differ) == {"data.seq_len", "model.size", "optim.lr", "data.vocab_size"}
    assert ch.grown == {"schedule.steps": (100, 200)}
    tokens = load_config(None, ["data.corpus=/c", "data.seq_len=128", "data.batch_tokens=1024",
                                "schedule.tokens=1e6"])
    assert set(rundir.config_changes(tmp_path, tokens).differ) == {"schedule.steps", "schedule.tokens"}
    assert rundir.config_changes(tmp_path / "nothing", base) is None
