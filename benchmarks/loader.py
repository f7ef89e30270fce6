"""Loader throughput next to the trainer's consumption rate, and shard-encoding throughput.

    python benchmarks/loader.py                       # demo corpus, 8K vocabulary, seq 512, batch 16
    python benchmarks/loader.py --sizes tiny,small --device cuda --json benchmarks/results/loader.json
    python benchmarks/loader.py --seq-len 128 --batch-blocks 64 --workers 0,1,2 --sizes '' --no-encode  # gpu scale

The loader must keep far ahead of the trainer: the ratio printed is loader tokens/s over trainer
tokens/s (forward + backward + optimizer step of ``xlmr_core.model.encoder`` on the same batch shape).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from xlmr_core import data
from xlmr_core.data.corpus import language_stats, sampling_probs, select_languages
from xlmr_core.data.tokenizer import Tokenizer, tokenizer_for
from xlmr_core.fsutil import atomic_write_json


def _timed(fn, min_seconds: float, min_calls: int = 3) -> tuple[int, float]:
    """Call ``fn(i)`` until both limits are met; returns (calls, seconds)."""
    fn(0)  # warm-up (memory maps, caches)
    t0, n = time.perf_counter(), 0
    while n < min_calls or time.perf_counter() - t0 < min_seconds:
        fn(n + 1)
        n += 1
    return n, time.perf_counter() - t0


def loader_rates(shards, tok, probs, args) -> dict:
    """Batches/s and tokens/s of make_batch and of the prefetching iterator."""
    kw = dict(seed=0, rank=0, world_size=1, batch_blocks=args.batch_blocks, seq_len=args.seq_len,
              mask=data.MaskConfig(whole_word=args.whole_word), vocab_size=tok.vocab_size, mask_id=tok.mask_id,
              special_ids=tok.special_ids, word_starts=tok.is_word_start)
    cpu0 = time.process_time()
    n, s = _timed(lambda i: data.make_batch(shards, probs, step=i, **kw), args.seconds)
    cpu = (time.process_time() - cpu0) * n / (n + 1)  # the warm-up call is in the CPU time, not in n
    tokens = args.batch_blocks * args.seq_len
    # tokens per CPU-second: what one free core builds, whatever else the machine runs meanwhile
    out = {"make_batch": {"batches_per_s": n / s, "tokens_per_s": n / s * tokens, "tokens_per_cpu_s": n * tokens / cpu}}
    steps = max(50, int(out["make_batch"]["batches_per_s"] * args.seconds))
    for workers in args.workers:
        with data.BatchIterator(shards, probs, start=0, end=steps + 10, prefetch=8, workers=workers, **kw) as it:
            for _ in range(10):  # start-up (worker processes) not counted
                next(it)
            t0 = time.perf_counter()
            for _ in it:
                pass
            s = time.perf_counter() - t0
        name = "iterator (thread)" if workers == 0 else f"iterator ({workers} procs)"
        out[name] = {"batches_per_s": steps / s, "tokens_per_s": steps / s * args.batch_blocks * args.seq_len}
    return out


def gpu_scale_demand() -> list[dict]:
    """Tokens/s that the gpu scale's least and most expensive models consume at its assumed MFU.

    The shapes are the scale's: the capacity widths, the vocabulary study (fixed Transformer and fixed total
    parameters) and the named sizes of the model-size sweep, built with :mod:`xlmr_core.study.sweeps`' own helpers.
    """
    from xlmr_core.model.encoder import model_config, train_flops_for
    from xlmr_core.study.sweeps import PRESETS, fixed_total_width, param_counts, with_width

    g = PRESETS["gpu"]
    shapes = [(f"capacity h{w}", with_width(g.model, w), g.vocab_size) for w in g.widths]
    target = param_counts(g.model, g.vocabs[0])["total"]
    shapes += [(f"vocab {v // 1000}K fixed-total", fixed_total_width(g.model, v, target), v) for v in g.vocabs]
    shapes += [(f"vocab {v // 1000}K", g.model, v) for v in g.vocabs]
    models = [(name, model_config(spec.size, v + 2, **spec.overrides())) for name, spec, v in shapes]
    models += [(f"size {s}", model_config(s, g.vocab_size + 2)) for s in g.sizes]
    rows = []
    for name, cfg in models:
        per_token = train_flops_for(cfg, 1, g.seq_len, g.mask_prob)
        # tokens_per_s: at the assumed MFU alone; with_overhead: the scale's own time model (predicted_seconds)
        rows.append({"model": f"{name} ({cfg.num_layers} x {cfg.hidden_size}, V {cfg.vocab_size})",
                     "seq_len": g.seq_len, "batch_tokens": g.batch_tokens, "device_flops": g.device_flops,
                     "flops_per_token": per_token, "tokens_per_s": g.device_flops / per_token,
                     "tokens_per_s_with_overhead": 1 / (per_token / g.device_flops + g.token_overhead_s)})
    rows.sort(key=lambda r: r["tokens_per_s"])
    return [rows[-1], rows[0]]  # the hungriest (least FLOPs per token) and the least hungry


def trainer_rate(size: str, tok, batch: dict, args) -> dict | None:
    """Tokens/s of forward + backward + AdamW step for a named model size (None without xlmr_core.model.encoder)."""
    if importlib.util.find_spec("xlmr_core.model.encoder") is None:
        return None
    import torch

    from xlmr_core.model import encoder as M

    cfg = M.model_config(size, tok.vocab_size)
    net = M.XLMRForMaskedLM(cfg).to(args.device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    ids, labels = batch["input_ids"].to(args.device), batch["labels"].to(args.device)
    use_bf16 = args.device.startswith("cuda")

    def step(_):
        with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=use_bf16):
            loss = net(ids, labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if use_bf16:
            torch.cuda.synchronize()

    n, s = _timed(step, args.seconds, min_calls=2)
    return {"size": size, "params": net.param_counts()["total"], "batches_per_s": n / s,
            "tokens_per_s": n / s * ids.numel()}


def encode_rates(tok, files: dict[str, Path], workers: list[int]) -> list[dict]:
    """MB/s of UTF-8 text encoded into shards (chunks + merge) with different numbers of processes."""
    total = sum(p.stat().st_size for p in files.values())
    rows = []
    for w in workers:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            data.encode_corpus(tok.model_file, files, Path(tmp) / "shards", workers=w, chunk_bytes=1 << 20)
            s = time.perf_counter() - t0
        rows.append({"workers": w, "seconds": s, "mb_per_s": total / 1e6 / s, "mb": total / 1e6})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=None, help="corpus directory (default: the demo corpus)")
    p.add_argument("--langs", default="", help="comma-separated languages (default: all)")
    p.add_argument("--tokenizer", default=None, help="an existing spm.model (default: train/cache one)")
    p.add_argument("--vocab-size", type=int, default=8000, help="pieces of the trained tokenizer")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-blocks", type=int, default=16)
    p.add_argument("--whole-word", action="store_true")
    p.add_argument("--workers", default="", help="comma-separated BatchIterator worker processes to time "
                   "(0: its background thread only; default: 0, 1 and all cores)")
    p.add_argument("--sizes", default="tiny,small", help="model sizes for the trainer rate")
    p.add_argument("--device", default=None, help="trainer device (default: cuda if available, else cpu)")
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    p.add_argument("--no-encode", action="store_true", help="skip the encoding benchmark")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    # torch is imported here, not at the top: the encoding workers re-import this script (spawn)
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    args.workers = [int(x) for x in args.workers.split(",") if x] or sorted({0, 1, cores})

    if args.corpus is None:
        from xlmr_core.democorpus import ensure_demo_corpus

        args.corpus = str(ensure_demo_corpus())
    langs = [x for x in args.langs.split(",") if x] or None
    files = select_languages(args.corpus, langs)
    tok = Tokenizer(args.tokenizer) if args.tokenizer else tokenizer_for(args.corpus, list(files), args.vocab_size)
    shards = data.shards_for(tok, args.corpus, list(files))
    stats = language_stats(args.corpus, list(files))
    probs = sampling_probs({lang: s.lines for lang, s in stats.items()}, 0.3)
    print(f"{len(files)} languages, vocabulary {tok.vocab_size}, shards {shards.root}")
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, trainer device {args.device}")

    result = {"langs": len(files), "vocab_size": tok.vocab_size, "seq_len": args.seq_len,
              "batch_blocks": args.batch_blocks, "device": args.device}
    result["loader"] = loader_rates(shards, tok, probs, args)
    print(f"\nloader (seq {args.seq_len}, batch {args.batch_blocks}, one process)")
    for name, r in result["loader"].items():
        print(f"  {name:<20} {r['batches_per_s']:9.1f} batches/s {r['tokens_per_s'] / 1e6:9.3f} M tokens/s")
    print(f"  make_batch per CPU-second (one free core): {result['loader']['make_batch']['tokens_per_cpu_s'] / 1e6:.3f}"
          " M tokens")
    result["gpu_scale_demand"] = gpu_scale_demand()
    iters = {k: r["tokens_per_s"] for k, r in result["loader"].items() if k.startswith("iterator")}
    print("what the gpu scale's models consume on one GPU at its assumed MFU (and with its 1 us/token overhead), "
          "and each iterator over the first:")
    for r in result["gpu_scale_demand"]:
        ratios = "  ".join(f"{k[10:-1]} {tps / r['tokens_per_s']:.2f}x" for k, tps in iters.items())
        print(f"  {r['model']:<42} {r['tokens_per_s'] / 1e6:7.2f} M tokens/s "
              f"({r['tokens_per_s_with_overhead'] / 1e6:.2f}) at seq {r['seq_len']}, "
              f"{r['device_flops'] / 1e12:.0f} TFLOP/s   loader/demand: {ratios}")

    batch = data.make_batch(shards, probs, seed=0, step=0, rank=0, world_size=1, batch_blocks=args.batch_blocks,
                            seq_len=args.seq_len, mask=data.MaskConfig(), vocab_size=tok.vocab_size,
                            mask_id=tok.mask_id, special_ids=tok.special_ids)
    result["trainer"] = []
    loader_tps = max(r["tokens_per_s"] for r in result["loader"].values())
    for size in [s for s in args.sizes.split(",") if s]:
        r = trainer_rate(size, tok, batch, args)
        if r is None:
            print("\n(xlmr_core.model.encoder not available: no trainer rate)")
            break
        r["loader_over_trainer"] = loader_tps / r["tokens_per_s"]
        result["trainer"].append(r)
        print(f"trainer {size:<6} ({r['params'] / 1e6:6.1f} M params, {args.device}) "
              f"{r['batches_per_s']:8.2f} batches/s {r['tokens_per_s'] / 1e6:8.4f} M tokens/s   "
              f"loader/trainer = {r['loader_over_trainer']:.0f}x")

    if not args.no_encode:
        result["encode"] = encode_rates(tok, files, sorted({1, cores}))
        print("\nencoding (SentencePiece + held-out split + shards, chunks of 1 MiB)")
        for r in result["encode"]:
            print(f"  {r['workers']:>3} workers  {r['mb']:7.1f} MB in {r['seconds']:6.2f} s = "
                  f"{r['mb_per_s']:6.2f} MB/s")
    if args.json:
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
