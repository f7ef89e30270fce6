"""Live curves: a tiny training run writes TensorBoard event files that tensorboard's own reader parses, with
held-out bits per byte per language, each step once across a resume; ``results.load_curves`` returns the same
held-out evaluations; W&B is optional."""

from __future__ import annotations

import logging

import pytest
from test_train import LANGS, small_config

from xlmr_core.study import results
from xlmr_core.train import rundir
from xlmr_core.train.tracking import Tracker
from xlmr_core.train.trainer import train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard shows them (purged points dropped)."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.timeout(300)
def test_event_files_hold_heldout_bpb_per_language_once_across_a_resume(demo_corpus, tmp_path):
    run_dir = tmp_path / "study" / "run"
    cfg = small_config(demo_corpus, run_dir, **{"schedule.steps": 8, "eval.interval": 4, "checkpoint.interval": 4})
    assert train(cfg, stop_after=6) is None  # checkpoints at 4 and 6
    # as if killed after step 6 before its checkpoint: steps 5 and 6 are logged but the run resumes from 4
    newest = rundir.list_checkpoints(run_dir)[0]
    assert rundir.checkpoint_step(newest) == 6
    newest.unlink()
    final = train(cfg)
    assert list(run_dir.glob("events.out.tfevents.*")), "no TensorBoard event files beside metrics.jsonl"

    tb = scalars(run_dir)
    steps = [s for s, _ in tb["train/loss_bits"]]
    assert steps == list(range(1, 9)), "each step once: the points logged after the checkpoint were purged"
    for tag in ("train/lr", "train/grad_norm", "train/tokens_per_s"):
        assert [s for s, _ in tb[tag]] == steps
    for lang in LANGS:
        bpb, gap = tb[f"heldout/bpb/{lang}"], tb[f"heldout/bpb_below_unigram/{lang}"]
        assert [s for s, _ in bpb] == [4, 8] and [s for s, _ in gap] == [4, 8]
        assert bpb[-1][1] == pytest.approx(final["per_lang"][lang]["bpb"], rel=1e-6)  # float32 in the file
        assert gap[-1][1] == pytest.approx(final["per_lang"][lang]["bpb_below_unigram"], rel=1e-6)

    # load_curves returns the same held-out evaluations, next to the training steps
    curves = results.load_curves(run_dir.parent)
    train_rows, held = curves[curves["kind"] == "train"], curves[curves["kind"] == "heldout"]
    assert train_rows["step"].tolist() == list(range(1, 9)) and held["loss_bits"].isna().all()
    assert sorted(held["lang"].unique()) == sorted(LANGS) and set(held["step"]) == {4, 8}
    for lang in LANGS:
        mine = held[held["lang"] == lang].sort_values("step")
        want = [v for _, v in tb[f"heldout/bpb/{lang}"]]
        assert mine["bpb"].tolist() == pytest.approx(want, rel=1e-6)
        assert mine["heldout_loss_bits"].notna().all()


def test_tensorboard_off_writes_no_event_files(tmp_path):
    t = Tracker(tmp_path, tensorboard=False)
    t.log_train({"step": 1, "loss_bits": 3.0, "lr": 1e-3})
    t.log_heldout(1, {"en": {"bpb": 1.5, "bpb_below_unigram": 0.2}})
    t.close()
    assert not list(tmp_path.iterdir())


def test_wandb_is_never_required(tmp_path, caplog, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="xlmr_core.train.tracking"):
        t = Tracker(tmp_path, wandb="offline")
    assert t.wandb_run is None and "pip install wandb" in caplog.text
    t.log_train({"step": 1, "loss_bits": 3.0, "lr": float("nan"), "mfu": None})  # non-finite values skipped
    t.close()
    assert scalars(tmp_path) == {"train/loss_bits": [(1, 3.0)]}


def test_a_failing_writer_stops_the_event_files_not_the_run(tmp_path, caplog):
    class Full:
        def add_scalar(self, *args, **kwargs):
            raise OSError(27, "File too large")

        close = add_scalar

    t = Tracker(tmp_path)
    t.writer.close()
    t.writer = Full()
    with caplog.at_level(logging.WARNING, logger="xlmr_core.train.tracking"):
        t.log_train({"step": 1, "loss_bits": 3.0})
        t.log_heldout(1, {"en": {"bpb": 1.5}})
        t.flush()
        t.close()
    assert t.writer is None and caplog.text.count("stop here") == 1 and "File too large" in caplog.text
