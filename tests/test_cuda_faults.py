"""Faults that only CUDA would show, caught on the CPU: loads onto the device, host reads of device values in the
step, recompiles as the mask count changes."""

from __future__ import annotations

import threading
import traceback

import pytest
import torch
from test_train import losses, small_config

from xlmr_core.model.encoder import XLMRForMaskedLM, model_config
from xlmr_core.train import rundir
from xlmr_core.train.trainer import _Trainer, train


@pytest.mark.timeout(300)
def test_every_loader_reads_onto_the_cpu_and_the_rng_state_is_a_cpu_byte_tensor(demo_corpus, tmp_path,
                                                                                   monkeypatch):
    """A load that does not ask for "cpu" gets its tensors on the meta device, as a GPU load would put them
    off the CPU: ``torch.set_rng_state`` then raises the TypeError a CUDA resume raised, and copies fail."""
    run_dir = tmp_path / "run"
    cfg = small_config(demo_corpus, run_dir, **{"schedule.steps": 6})
    assert train(cfg, stop_after=4) is None
    asked, rng_states = [], []
    real_load, real_set_rng = torch.load, torch.set_rng_state

    def load(*args, map_location=None, **kwargs):
        asked.append(map_location)
        state = real_load(*args, map_location="cpu", **kwargs)
        if map_location != "cpu":
            state = _to_meta(state)
        return state

    def set_rng_state(t):
        rng_states.append((t.device.type, t.dtype))
        return real_set_rng(t)

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(torch, "set_rng_state", set_rng_state)
    final = train(cfg)  # resumes from step 4
    assert final["steps"] == 6 and len(losses(run_dir)) == 6
    model, _, _ = rundir.load_run(final["checkpoint"])  # a checkpoint file (export-hf)
    model, _, _ = rundir.load_run(run_dir)  # a run directory (evaluation, fine-tuning)
    model, _, _ = rundir.load_run(run_dir, device="meta")  # as on a GPU: read on the CPU, then the model moved
    assert asked and all(m == "cpu" for m in asked), asked
    assert rng_states == [("cpu", torch.uint8)]


def _to_meta(obj):
    if torch.is_tensor(obj):
        return obj.to("meta")
    if isinstance(obj, dict):
        return {k: _to_meta(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_meta(v) for v in obj)
    return obj


READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "nonzero")


@pytest.mark.timeout(300)
def test_the_step_reads_nothing_back_and_the_loop_once_per_log_interval(demo_corpus, tmp_path, monkeypatch):
    """Each read of a tensor's value (item, bool(), float(), a boolean-mask index, …) is a host-device sync on a
    GPU. Counted here over 8 steps: none inside the step outside its host part, one read-back per log interval."""
    state = {"on": False, "reads": [], "read_backs": 0}
    main = threading.main_thread()

    def counting(name, fn):
        def wrapper(self, *args, **kwargs):
            if state["on"] and threading.current_thread() is main:
                if name != "__getitem__" or _bool_mask(args[0]):
                    state["reads"].append(f"{name}\n" + "".join(traceback.format_stack(limit=6)[:-1]))
            return fn(self, *args, **kwargs)
        return wrapper

    for name in (*READS, "__getitem__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))

    def scoped(fn, on):
        def wrapper(*args, **kwargs):
            before, state["on"] = state["on"], on
            try:
                return fn(*args, **kwargs)
            finally:
                state["on"] = before
        return wrapper

    real_read_back = _Trainer.read_back

    def read_back(self, *args):
        state["read_backs"] += 1
        return real_read_back(self, *args)

    monkeypatch.setattr(_Trainer, "step", scoped(_Trainer.step, True))
    monkeypatch.setattr(_Trainer, "host_plan", scoped(_Trainer.host_plan, False))  # CPU batches: no device
    monkeypatch.setattr(_Trainer, "read_back", read_back)
    cfg = small_config(demo_corpus, tmp_path / "run", **{"schedule.steps": 8, "log_interval": 4,
                                                          "checkpoint.interval": 100})
    train(cfg)
    assert not state["reads"], "host reads in the step:\n" + "\n".join(state["reads"][:3])
    assert state["read_backs"] == 3  # the first step (NaN guard at once), then steps 4 and 8


def _bool_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(torch.is_tensor(i) and i.dtype == torch.bool for i in items)


def test_compiled_layers_do_not_recompile_as_the_mask_count_changes():
    """The layers are compiled (as benchmarks/gpu.py does); the parts whose shapes follow the number of masked
    positions stay eager, so four batches with four different mask counts compile once."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = XLMRForMaskedLM(model_config("debug", 300, num_layers=3, dropout=0.0, attention_dropout=0.0))
    model.compile_layers(backend="eager")
    x = torch.randint(4, 299, (2, 32))
    graphs = []
    for k in (3, 9, 14, 5):
        y = torch.full_like(x, -100)
        y[:, 1:1 + k] = x[:, 1:1 + k]
        model(x, y).loss.backward()
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1 and graphs == [graphs[0]] * 4, graphs
    assert not counters["recompiles"], dict(counters["recompiles"])
    torch._dynamo.reset()


@pytest.mark.timeout(300)
def test_trainer_compiles_the_layers_not_the_model(demo_corpus, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(XLMRForMaskedLM, "compile_layers", lambda self, **kw: calls.append(kw))
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("torch.compile of the whole model"))
    train(small_config(demo_corpus, tmp_path / "run", **{"schedule.steps": 2, "precision.compile": True}))
    assert calls == [{}]
