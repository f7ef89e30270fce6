"""Training-step time and peak memory of our XLM-R against transformers' XLMRobertaForMaskedLM, same weights.

Both models start from the same random weights (transformers' init, copied into ours through xlmr_core.model.hf),
get the same pre-generated masked batches (fairseq 80/10/10 masking, no padding, as in pretraining) and train
with fused AdamW and the same dropout. The first losses are checked to agree (dropout off for that check), then
timed steps alternate between the models after a warm-up, so that load from other jobs on a shared machine hits
both alike; the script reports the median step time of each, tokens/s, the median of the paired step-time
ratios and, beside it, the FLOP-count prediction of the ratio (``train_flops_for``). Peak memory is measured
for each model alone in a fresh process (CPU: RSS high-water mark above the RSS after building the model;
GPU: ``torch.cuda.max_memory_allocated`` above the allocation after building it).

Precisions: ``fp32`` (the parity setting) and ``bf16`` (both models under bf16 autocast). With both in one run,
the rotation also pairs our bf16 step with transformers' fp32 step, reported on its own line.

    python benchmarks/train_step.py --config a                      # fp32 and bf16, config (a)
    python benchmarks/train_step.py --config b --precision fp32 --threads 1
    python benchmarks/train_step.py --all --threads 1               # (a), (b), (c) -> results/train_step_cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"

# (a) tiny with a 32K vocabulary, (b) the same with XLM-R's 250002, (c) a wider and deeper model at seq 256
CONFIGS: dict[str, dict] = {
    "a": dict(layers=4, hidden=256, heads=4, ffn=1024, vocab=32000, seq=128, batch=16),
    "b": dict(layers=4, hidden=256, heads=4, ffn=1024, vocab=250002, seq=128, batch=16),
    "c": dict(layers=6, hidden=512, heads=8, ffn=2048, vocab=64000, seq=256, batch=8),
}
TARGETS = {"a": 3.0, "b": 6.0, "c": 2.5}  # speed-up targets (transformers step time / ours)


def masked_batches(n: int, batch: int, seq: int, vocab: int, mask_rate: float, seed: int = 0):
    """``n`` (input_ids, labels) pairs: <s> + random tokens, fairseq masking (80 % <mask>, 10 % random)."""
    g = torch.Generator().manual_seed(seed)
    mask_id, out = vocab - 1, []
    for _ in range(n):
        ids = torch.randint(4, vocab - 1, (batch, seq), generator=g)
        ids[:, 0] = 0
        pick = torch.rand(batch, seq, generator=g) < mask_rate
        pick[:, 0] = False
        labels = torch.where(pick, ids, torch.full_like(ids, -100))
        r = torch.rand(batch, seq, generator=g)
        inp = torch.where(pick & (r < 0.8), torch.full_like(ids, mask_id), ids)
        inp = torch.where(pick & (r >= 0.8) & (r < 0.9), torch.randint(4, vocab - 1, ids.shape, generator=g), inp)
        out.append((inp, labels))
    return out


def model_configs(shape: dict):
    """(our ModelConfig, transformers XLMRobertaConfig with sdpa attention) for a benchmark shape."""
    from transformers import XLMRobertaConfig

    from xlmr_core.model import hf
    from xlmr_core.model.encoder import model_config

    cfg = model_config("tiny", shape["vocab"], hidden_size=shape["hidden"], num_layers=shape["layers"],
                       num_heads=shape["heads"], ffn_size=shape["ffn"], max_positions=max(512, shape["seq"]))
    hcfg = XLMRobertaConfig(**{k: v for k, v in hf.hf_config(cfg).items() if k not in ("architectures", "dtype")},
                            attn_implementation="sdpa")
    return cfg, hcfg


def build(which: str, shape: dict, dev: torch.device, seed: int = 0):
    """A freshly initialised model (``which`` = "ours" or "transformers") on ``dev``, in train mode."""
    from transformers import XLMRobertaForMaskedLM

    from xlmr_core.model.encoder import XLMRForMaskedLM

    cfg, hcfg = model_configs(shape)
    torch.manual_seed(seed)
    model = XLMRForMaskedLM(cfg) if which == "ours" else XLMRobertaForMaskedLM(hcfg)
    return model.to(dev).train()


def step_fn(model, which: str, dev: torch.device, precision: str):
    """One training step (forward, backward, fused AdamW step) as a function of (input_ids, labels)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type in ("cuda", "cpu"))
    amp = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if precision == "bf16" else nullcontext

    def step(x, y):
        with amp():
            loss = model(x, y).loss if which == "ours" else model(input_ids=x, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _rss_bytes(field: str = "VmRSS") -> int:
    """Resident set size (``VmRSS``) or its high-water mark (``VmHWM``) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_memory(which: str, shape: dict, dev: torch.device, precision: str, steps: int = 2) -> int:
    """Peak bytes that training steps add above the built model (run in a fresh process: one model only)."""
    batches = [(x.to(dev), y.to(dev)) for x, y in
               masked_batches(steps, shape["batch"], shape["seq"], shape["vocab"], 0.15)]
    model = build(which, shape, dev)
    step = step_fn(model, which, dev, precision)
    if dev.type == "cuda":
        _sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        # VmHWM, unlike ru_maxrss, is not inherited from the parent across fork + exec; writing 5 to
        # clear_refs resets it to the current RSS, so the model's build-time transients do not count
        Path("/proc/self/clear_refs").write_text("5")
        base = _rss_bytes()
    # the second step is the peak: AdamW's moments exist from the first step on
    for x, y in batches:
        step(x, y)
    _sync(dev)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) - base
    return _rss_bytes("VmHWM") - base


def peak_memory(which: str, shape: dict, dev: torch.device, precision: str, threads: int) -> int:
    """:func:`measure_memory` in a subprocess, so that the other model's allocations cannot count."""
    cmd = [sys.executable, __file__, "--memory-of", which, "--shape-json", json.dumps(shape),
           "--device", str(dev), "--precision", precision, "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_bytes"])


def compare(shape: dict, precisions: list[str], dev: torch.device, steps: int, warmup: int,
            mask_rate: float = 0.15) -> dict:
    """Same-weights loss check, then alternating timed steps of both models in each precision."""
    from xlmr_core.model import hf
    from xlmr_core.model.encoder import XLMRForMaskedLM, train_flops_for

    cfg, _ = model_configs(shape)
    theirs = build("transformers", shape, dev)
    ours = XLMRForMaskedLM(cfg)
    ours.load_state_dict(hf.from_hf_state_dict(theirs.state_dict(), cfg))
    ours.to(dev).train()
    batches = [(x.to(dev), y.to(dev)) for x, y in
               masked_batches(warmup + steps, shape["batch"], shape["seq"], shape["vocab"], mask_rate)]

    # same function: first losses agree with dropout off (bf16 rounds differently in the two)
    first = {}
    theirs.eval()
    ours.eval()
    x, y = batches[0]
    for p in precisions:
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=p == "bf16"):
            lt, lo = theirs(input_ids=x, labels=y).loss.item(), ours(x, y).loss.item()
        tol = 2e-2 if p == "bf16" else 1e-5
        if not abs(lt - lo) <= tol * max(1.0, abs(lt)):
            raise SystemExit(f"first losses differ in {p}: transformers {lt:.6f}, ours {lo:.6f}")
        first[p] = dict(transformers=lt, ours=lo)
    theirs.train()
    ours.train()

    # one optimizer per (model, precision): the rotation keeps each one's state and timing apart
    runs = {(w, p): step_fn(m, w, dev, p) for p in precisions for w, m in (("transformers", theirs), ("ours", ours))}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    for i, (x, y) in enumerate(batches):
        for k, fn in runs.items():
            _sync(dev)
            t = time.perf_counter()
            fn(x, y)
            _sync(dev)
            if i >= warmup:
                times[k].append(time.perf_counter() - t)

    tokens = shape["batch"] * shape["seq"]
    f_ours = train_flops_for(cfg, tokens, shape["seq"], mask_rate, masked_only=True)
    f_theirs = train_flops_for(cfg, tokens, shape["seq"], mask_rate, masked_only=False)

    def paired(a, b):
        return statistics.median(s / t for s, t in zip(times[a], times[b]))

    out = dict(first_loss=first, flop_prediction=f_theirs / f_ours,
               gflop_per_step=dict(transformers=f_theirs / 1e9, ours=f_ours / 1e9), precisions={})
    for p in precisions:
        med = {w: statistics.median(times[(w, p)]) for w in ("transformers", "ours")}
        out["precisions"][p] = dict(
            step_s=med, tokens_per_s={w: tokens / s for w, s in med.items()},
            gflop_per_s=dict(transformers=f_theirs / med["transformers"] / 1e9, ours=f_ours / med["ours"] / 1e9),
            speedup=paired(("transformers", p), ("ours", p)))
    if "bf16" in precisions and "fp32" in precisions:
        out["ours_bf16_vs_transformers_fp32"] = paired(("transformers", "fp32"), ("ours", "bf16"))
    return out


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_config(name: str, shape: dict, precisions: list[str], dev: torch.device, args) -> dict:
    """Timing comparison plus fresh-process peak memory of each model, printed as it goes."""
    desc = (f"({name}) {shape['layers']} x {shape['hidden']}, {shape['heads']} heads, FFN {shape['ffn']}, "
            f"vocab {shape['vocab']}, seq {shape['seq']}, batch {shape['batch']}")
    runs = "peak memory only" if args.memory_only else f"{args.steps} timed steps after {args.warmup} warm-up"
    print(f"\n{desc}: {runs}, {torch.get_num_threads()} threads, {dev}", flush=True)
    if args.memory_only:
        res = dict(shape=shape, precisions={p: {} for p in precisions})
        for p, r in res["precisions"].items():
            r["peak_memory_bytes"] = {w: peak_memory(w, shape, dev, p, torch.get_num_threads())
                                      for w in ("transformers", "ours")}
            mt, mo = r["peak_memory_bytes"]["transformers"], r["peak_memory_bytes"]["ours"]
            print(f"  [{p}] peak memory above the model: transformers {mt / 2**20:.0f} MiB, ours {mo / 2**20:.0f} "
                  f"MiB ({mo / mt:.2f} of transformers)", flush=True)
        return res
    res = dict(shape=shape, **compare(shape, precisions, dev, args.steps, args.warmup))
    for p, r in res["precisions"].items():
        if p in args.memory.split(","):
            r["peak_memory_bytes"] = {w: peak_memory(w, shape, dev, p, torch.get_num_threads())
                                      for w in ("transformers", "ours")}
        _print_precision(p, r, res)
    if "ours_bf16_vs_transformers_fp32" in res:
        print(f"  ours in bf16 against transformers in fp32 (paired median): "
              f"{res['ours_bf16_vs_transformers_fp32']:.2f}x", flush=True)
    return res


def _print_precision(p: str, r: dict, res: dict) -> None:
    lt, lo = res["first_loss"][p]["transformers"], res["first_loss"][p]["ours"]
    st, so = r["step_s"]["transformers"], r["step_s"]["ours"]
    print(f"  [{p}] first loss transformers {lt:.6f} ours {lo:.6f}")
    print(f"  [{p}] step {st * 1e3:9.1f} ms vs {so * 1e3:8.1f} ms   tokens/s {r['tokens_per_s']['transformers']:8.0f}"
          f" vs {r['tokens_per_s']['ours']:8.0f}   speed-up {r['speedup']:.2f}x "
          f"(FLOP-count prediction {res['flop_prediction']:.2f}x)")
    if "peak_memory_bytes" in r:
        mt, mo = r["peak_memory_bytes"]["transformers"], r["peak_memory_bytes"]["ours"]
        print(f"  [{p}] peak memory above the model: transformers {mt / 2**20:.0f} MiB, ours {mo / 2**20:.0f} MiB "
              f"({mo / mt:.2f} of transformers)", flush=True)


def print_table(results: dict) -> None:
    """One row per (config, precision): times, tokens/s, measured and predicted ratio, memory."""
    head = (f"{'cfg':<4}{'prec':<6}{'HF ms':>9}{'ours ms':>9}{'HF tok/s':>10}{'ours tok/s':>11}"
            f"{'speed-up':>9}{'FLOP pred':>10}{'target':>8}{'HF MiB':>9}{'ours MiB':>9}{'mem ratio':>10}")
    print("\n" + head + "\n" + "-" * len(head))
    for name, res in results.items():
        for p, r in res["precisions"].items():
            mem = r.get("peak_memory_bytes")
            mcols = (f"{mem['transformers'] / 2**20:9.0f}{mem['ours'] / 2**20:9.0f}"
                     f"{mem['ours'] / mem['transformers']:10.2f}") if mem else f"{'':>28}"
            print(f"{name:<4}{p:<6}{r['step_s']['transformers'] * 1e3:9.0f}{r['step_s']['ours'] * 1e3:9.0f}"
                  f"{r['tokens_per_s']['transformers']:10.0f}{r['tokens_per_s']['ours']:11.0f}"
                  f"{r['speedup']:8.2f}x{res['flop_prediction']:9.2f}x{TARGETS.get(name, 0):7.1f}x{mcols}")
        if "ours_bf16_vs_transformers_fp32" in res:
            print(f"{name:<4}ours bf16 vs HF fp32 (paired median): {res['ours_bf16_vs_transformers_fp32']:.2f}x")


def _merge(old: dict, new: dict) -> dict:
    """``old`` with ``new``'s entries, nested dicts merged key by key (a re-measured part replaces only itself)."""
    out = dict(old)
    for k, v in new.items():
        out[k] = _merge(old[k], v) if isinstance(v, dict) and isinstance(old.get(k), dict) else v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="a", help="comma-separated benchmark configs among " + ",".join(CONFIGS))
    ap.add_argument("--all", action="store_true", help="configs a,b,c; write results/train_step_<device>.json")
    for k in ("layers", "hidden", "heads", "ffn", "vocab", "seq", "batch"):
        ap.add_argument(f"--{k}", type=int, default=None, help=f"override the config's {k}")
    ap.add_argument("--precision", default="fp32,bf16", help="fp32, bf16 or both (comma-separated)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model and precision")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model and precision first")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--memory", default="fp32,bf16",
                    help="precisions whose peak memory is measured in fresh processes ('' for none)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--update", action="store_true",
                    help="merge these configs into results/train_step_<device>.json (or --json), keeping others")
    ap.add_argument("--memory-only", action="store_true", help="only the fresh-process peak-memory runs")
    ap.add_argument("--memory-of", choices=("ours", "transformers"), help=argparse.SUPPRESS)
    ap.add_argument("--shape-json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    precisions = [p for p in args.precision.split(",") if p]
    if not precisions or set(precisions) - {"fp32", "bf16"}:
        raise SystemExit(f"--precision must list fp32 and/or bf16, got {args.precision!r}")

    if args.memory_of:  # child process of peak_memory()
        peak = measure_memory(args.memory_of, json.loads(args.shape_json), dev, precisions[0])
        print(json.dumps({"peak_bytes": peak}))
        return

    names = list(CONFIGS) if args.all else [c for c in args.config.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; choose among {', '.join(CONFIGS)}")
    overrides = {k: getattr(args, k) for k in ("layers", "hidden", "heads", "ffn", "vocab", "seq", "batch")
                 if getattr(args, k) is not None}
    load_start, results = os.getloadavg(), {}
    for name in names:
        shape = {**CONFIGS[name], **overrides}
        results[name if not overrides else f"{name}*"] = run_config(name, shape, precisions, dev, args)
    if not args.memory_only:
        print_table(results)

    import transformers

    meta = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), device=str(dev),
                cpu=cpu_model(), gpu=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                threads=torch.get_num_threads(), cpus=os.cpu_count(), load_avg_1_5_15_start=load_start,
                load_avg_1_5_15_end=os.getloadavg(),
                torch=torch.__version__, transformers=transformers.__version__,
                steps=args.steps, warmup=args.warmup, command=" ".join([Path(sys.executable).name] + sys.argv))
    for res in results.values():
        res["memory_run" if args.memory_only else "run"] = meta
    out = args.json or (RESULTS / f"train_step_{dev.type}.json" if args.all or args.update else None)
    if out:
        from xlmr_core.fsutil import atomic_write_json, file_lock

        with file_lock(Path(tempfile.gettempdir()) / f"{out.name}.lock"):
            # --update replaces these configs in the existing file and keeps the others (one run per config)
            configs = json.loads(out.read_text())["configs"] if args.update and out.exists() else {}
            for name, res in results.items():
                configs[name] = _merge(configs.get(name, {}), res)
                configs[name].update({k: res[k] for k in ("run", "memory_run") if k in res})  # whole, not merged
            atomic_write_json(out, dict(targets=TARGETS, configs=configs))
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
