"""GPU training throughput and MFU of our XLM-R (base, large; seq 512; bf16 autocast) next to transformers.

Both models start from the same weights, take the same masked batches (15 % masking, no padding) and train with
fused AdamW under bf16 autocast; steps alternate between them after a warm-up and the medians are reported.
MFU counts the FLOPs of ``xlmr_core.model.train_flops_for`` with the head at masked tokens only (what the
masked-LM objective needs), against the GPU's dense bf16 peak (989 TFLOP/s for H100/H200 SXM). transformers'
MFU is given both ways: on the same useful FLOPs (comparable with ours) and on the FLOPs it actually runs
(head at every token).

    python benchmarks/gpu.py                                 # base and large, -> results/gpu.json
    python benchmarks/gpu.py --sizes base --batch 32 --steps 20
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import RESULTS, masked_batches  # noqa: E402

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16, SXM
DEFAULT_BATCH = {"base": 32, "large": 16}


def peak_tflops(name: str, override: float | None) -> float:
    """Dense bf16 peak of the GPU named ``name`` (or ``override``); exits naming the flag if unknown."""
    if override:
        return override
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    raise SystemExit(f"no dense bf16 peak known for GPU {name!r}; pass --peak-tflops")


def bench_size(size: str, batch: int, args, dev: torch.device) -> dict:
    """Paired bf16 step times, tokens/s, MFU and peak memory of both models for one named size."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from xlmr_core import hf
    from xlmr_core.model import XLMRForMaskedLM, model_config, train_flops_for

    cfg = model_config(size, args.vocab)
    hcfg = XLMRobertaConfig(**{k: v for k, v in hf.hf_config(cfg).items() if k not in ("architectures", "dtype")},
                            attn_implementation="sdpa")
    torch.manual_seed(0)
    theirs = XLMRobertaForMaskedLM(hcfg).to(dev)
    ours = XLMRForMaskedLM(cfg)
    ours.load_state_dict(hf.from_hf_state_dict(theirs.state_dict(), cfg))
    ours.to(dev)
    batches = [(x.to(dev), y.to(dev)) for x, y in
               masked_batches(args.warmup + args.steps, batch, args.seq, args.vocab, args.mask_rate)]
    amp = torch.autocast("cuda", dtype=torch.bfloat16)

    theirs.eval()
    ours.eval()
    with torch.no_grad(), amp:
        x, y = batches[0]
        first = dict(transformers=theirs(input_ids=x, labels=y).loss.item(), ours=ours(x, y).loss.item())
    if abs(first["transformers"] - first["ours"]) > 2e-2 * abs(first["transformers"]):
        raise SystemExit(f"{size}: first losses differ: {first}")
    theirs.train()
    ours.train()
    model = dict(transformers=theirs, ours=ours)
    if args.compile:
        model = {k: torch.compile(m) for k, m in model.items()}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True) for k, m in model.items()}

    def step(which, x, y):
        with amp:
            m = model[which]
            loss = m(x, y).loss if which == "ours" else m(input_ids=x, labels=y).loss
        loss.backward()
        opts[which].step()
        opts[which].zero_grad(set_to_none=True)

    times = {k: [] for k in model}
    peak = {}
    for i, (x, y) in enumerate(batches):
        for which in model:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            t = time.perf_counter()
            step(which, x, y)
            torch.cuda.synchronize()
            if i >= args.warmup:
                times[which].append(time.perf_counter() - t)
                peak[which] = max(peak.get(which, 0), torch.cuda.max_memory_allocated(dev) - base)
    tokens = batch * args.seq
    useful = train_flops_for(cfg, tokens, args.seq, args.mask_rate, masked_only=True)
    full = train_flops_for(cfg, tokens, args.seq, args.mask_rate, masked_only=False)
    peak_flops = args.peak * 1e12
    med = {k: statistics.median(v) for k, v in times.items()}
    res = dict(size=size, batch=batch, seq=args.seq, vocab=args.vocab, params=ours.param_counts()["total"],
               first_loss=first, step_s=med, tokens_per_s={k: tokens / s for k, s in med.items()},
               mfu=dict(ours=useful / med["ours"] / peak_flops,
                        transformers_useful=useful / med["transformers"] / peak_flops,
                        transformers_executed=full / med["transformers"] / peak_flops),
               speedup=statistics.median(a / b for a, b in zip(times["transformers"], times["ours"])),
               peak_step_memory_bytes=peak, gflop_per_step=dict(useful=useful / 1e9, transformers=full / 1e9))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="base,large", help="named sizes from xlmr_core.model.SIZES")
    ap.add_argument("--batch", type=int, default=None, help="sequences per step (default: base 32, large 16)")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=250002)
    ap.add_argument("--mask-rate", type=float, default=0.15)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per model first")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default: known from the name)")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models")
    ap.add_argument("--json", type=Path, default=RESULTS / "gpu.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU and none is visible (torch.cuda.is_available() is "
                         "False); run it on a GPU machine, e.g. an H100 or H200")
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    args.peak = peak_tflops(name, args.peak_tflops)
    torch.backends.cuda.matmul.allow_tf32 = True

    import transformers

    rows = []
    print(f"{name}, peak {args.peak:.0f} TFLOP/s dense bf16, seq {args.seq}, vocab {args.vocab}, bf16 autocast, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    for size in [s for s in args.sizes.split(",") if s]:
        r = bench_size(size, args.batch or DEFAULT_BATCH.get(size, 16), args, dev)
        rows.append(r)
        torch.cuda.empty_cache()  # the previous size's models are gone: give their cached blocks back
        print(f"{size:<6} batch {r['batch']:>3}: ours {r['tokens_per_s']['ours']:9.0f} tok/s  MFU "
              f"{r['mfu']['ours']:6.1%} | transformers {r['tokens_per_s']['transformers']:9.0f} tok/s  MFU "
              f"{r['mfu']['transformers_useful']:6.1%} useful, {r['mfu']['transformers_executed']:6.1%} executed"
              f" | speed-up {r['speedup']:.2f}x | peak step memory ours "
              f"{r['peak_step_memory_bytes']['ours'] / 2**30:.1f} GiB, transformers "
              f"{r['peak_step_memory_bytes']['transformers'] / 2**30:.1f} GiB", flush=True)

    from xlmr_core.fsutil import atomic_write_json

    meta = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), gpu=name,
                peak_tflops=args.peak, torch=torch.__version__, cuda=torch.version.cuda,
                transformers=transformers.__version__, compile=args.compile,
                command=" ".join([Path(sys.executable).name] + sys.argv))
    atomic_write_json(args.json, dict(meta=meta, sizes=rows))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
