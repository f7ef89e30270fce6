"""GPU checks (``pytest -m gpu``; skipped without CUDA): bf16 autocast with the flash and efficient SDPA kernels, the
masked-only head against the full head in bf16, a fused-AdamW bf16 step, the trainer's CUDA path (loss read back
only where used, tokens/s and MFU in metrics.jsonl, the NaN guard still naming the first bad step) and the
benchmark's variants on a small model. ``scripts/gpu_check.py`` runs these first on the GPU machine.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from xlmr_core.model.encoder import XLMRForMaskedLM, model_config

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def masked_batch(vocab: int, batch: int, seq: int, rate: float = 0.15, seed: int = 0):
    """(input_ids, labels) on the GPU: <s> + random tokens, ``rate`` of them masked (<mask> = vocab - 1)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab - 1, (batch, seq), generator=g)
    ids[:, 0] = 0
    pick = torch.rand(batch, seq, generator=g) < rate
    pick[:, 0] = False
    labels = torch.where(pick, ids, torch.full_like(ids, -100))
    return torch.where(pick, torch.full_like(ids, vocab - 1), ids).cuda(), labels.cuda()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30))


def loss_and_grads(model, x, y, *, backends=None, bf16=True, full_head=False):
    """Loss and parameter gradients of one forward/backward; SDPA limited to ``backends`` (default: math)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model.zero_grad(set_to_none=True)
    with sdpa_kernel(backends or [SDPBackend.MATH]), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        if full_head:  # transformers' way: logits at every position, then cross-entropy where labels are set
            logits = model.logits(x)
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100)
        else:
            loss = model(x, y).loss
    loss.backward()
    return loss.detach().float(), {n: p.grad.detach().clone() for n, p in model.named_parameters()
                                   if p.grad is not None}


def test_bf16_flash_and_efficient_sdpa_match_fp32_math():
    """Restricted to one kernel SDPA fails rather than fall back, so passing shows that kernel ran."""
    from torch.nn.attention import SDPBackend

    cfg = model_config("debug", 1000, hidden_size=128, num_heads=2, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    model = XLMRForMaskedLM(cfg).cuda().train()
    x, y = masked_batch(cfg.vocab_size, 4, 128)
    ref_loss, ref_grads = loss_and_grads(model, x, y, bf16=False)
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
        loss, grads = loss_and_grads(model, x, y, backends=[backend])
        assert torch.isfinite(loss) and abs(loss - ref_loss) < 2e-2 * ref_loss, backend
        for name in ("layers.0.attn.qkv.weight", "layers.1.ffn.up.weight", "embed.tokens.weight"):
            assert rel(grads[name], ref_grads[name]) < 5e-2, (backend, name)


def test_masked_only_head_matches_full_head_in_bf16():
    """Head, last layer's queries and FFN only at masked rows, chunked bf16 cross-entropy: the full head's numbers."""
    cfg = model_config("debug", 32000, hidden_size=128, num_heads=2, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    model = XLMRForMaskedLM(cfg).cuda().train()
    model.logits_budget = 1 << 20  # 32 rows per chunk: several chunks, as at 250K vocabulary
    x, y = masked_batch(cfg.vocab_size, 8, 128, seed=1)
    full_loss, full_grads = loss_and_grads(model, x, y, full_head=True)
    loss, grads = loss_and_grads(model, x, y)
    fp32_loss, _ = loss_and_grads(model, x, y, bf16=False)
    assert abs(loss - full_loss) < 5e-3 * full_loss and abs(loss - fp32_loss) < 1e-2 * fp32_loss
    assert grads.keys() == full_grads.keys()
    for name in ("embed.tokens.weight", "head.bias", "head.dense.weight", "layers.1.ffn.down.weight",
                 "layers.0.attn.qkv.weight"):
        assert rel(grads[name], full_grads[name]) < 3e-2, name


def test_bf16_step_with_fused_adamw_learns():
    cfg = model_config("debug", 2000)
    torch.manual_seed(0)
    model = XLMRForMaskedLM(cfg).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, fused=True)
    x, y = masked_batch(cfg.vocab_size, 8, 128)
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x, y).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    losses = torch.stack(losses).tolist()
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.8 * losses[0]


def _cuda_config(corpus: Path, run_dir: Path, **over):
    from test_train import small_config

    return small_config(corpus, run_dir, **{"precision.device": "cuda", **over})


@pytest.mark.timeout(300)
def test_trainer_on_cuda_logs_tokens_per_s_and_mfu(demo_corpus, tmp_path):
    from xlmr_core.model.device import peak_bf16_flops
    from xlmr_core.train.trainer import train

    run_dir = tmp_path / "run"
    final = train(_cuda_config(demo_corpus, run_dir, **{"log_interval": 4, "checkpoint.interval": 6}))
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [4, 8, 12]
    assert all(r["tokens_per_s"] > 0 and math.isfinite(r["loss"]) for r in steps)
    if peak_bf16_flops(torch.device("cuda")) is not None:  # a GPU whose dense bf16 peak the table knows
        assert all(0 < r["mfu"] < 1 for r in steps)
    assert final["final_train_loss_bits"] == pytest.approx(steps[-1]["loss_bits"])
    assert final["steps"] == 12 and (run_dir / "final.json").exists()


@pytest.mark.timeout(300)
def test_resume_on_cuda_continues_the_run(demo_corpus, tmp_path):
    """A requeued GPU job: checkpoints read onto the CPU, the RNG state set from a CPU ByteTensor."""
    from xlmr_core.train.trainer import train

    run_dir = tmp_path / "run"
    cfg = _cuda_config(demo_corpus, run_dir, **{"schedule.steps": 6, "log_interval": 2})
    assert train(cfg, stop_after=4) is None
    final = train(cfg)
    assert final["steps"] == 6 and json.loads((run_dir / "config.json").read_text())["resumed_from"]


@pytest.mark.timeout(300)
def test_nan_guard_on_cuda_names_the_first_bad_step(demo_corpus, tmp_path):
    """Read back every step or only at logs/checkpoints: the same (first) non-finite step is named."""
    from xlmr_core.errors import XlmrError
    from xlmr_core.train.rundir import read_checkpoint_state
    from xlmr_core.train.trainer import train

    blow_up = {"optim.lr": 1e30, "schedule.warmup_steps": 0, "optim.grad_clip": 0}
    named = []
    for i, every in enumerate((1, 6)):
        run_dir = tmp_path / f"run{i}"
        cfg = _cuda_config(demo_corpus, run_dir, **blow_up, **{"log_interval": every, "checkpoint.interval": every})
        with pytest.raises(XlmrError, match=r"loss is (nan|inf) at step \d+") as e:
            train(cfg)
        step = int(str(e.value).split(" at step ")[1].split()[0])
        named.append(step)
        state, _ = read_checkpoint_state(run_dir)
        assert state is None or state["step"] < step  # nothing saved from the bad step on
    assert named[0] == named[1]


def test_benchmark_variants_run_on_a_small_model(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    import gpu

    out = tmp_path / "bench.json"
    assert gpu.main(["--sizes", "debug", "--vocab", "4000", "--seq", "128", "--batch", "4", "--steps", "3",
                     "--warmup", "1", "--variant", "sdpa=flash", "--variant", "sdpa=efficient,ce=2^16",
                     "--variant", "ckpt=true", "--profile", str(tmp_path / "profile.json"), "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["sizes"][0]
    assert rec["first_loss"]["agree"]
    assert [v["status"] for v in rec["variants"]] == ["ok"] * 4, rec["variants"]
    assert all(v["peak_memory_bytes"] > 0 and v["losses_finite"] for v in rec["variants"])
    prof = json.loads((tmp_path / "profile.json").read_text())
    assert prof["top_ops"] and prof["top_kernels"] and 0 < prof["device_busy_share"] <= 1.01
