"""Training-step time of our XLM-R against transformers' XLMRobertaForMaskedLM, same weights, same batches.

Both models start from the same random weights (transformers' init, copied into ours through xlmr_core.hf),
get the same pre-generated masked batches (fairseq 80/10/10 masking, no padding, as in pretraining) and train
with AdamW (fused where the device supports it). The first losses are checked to agree (dropout off for that
check), then timed steps alternate between the two models after a warm-up; the script prints the median
step time of each, tokens/s, the median of the paired ratios and the FLOP-count prediction of the ratio.

    python benchmarks/train_step.py --layers 4 --hidden 256 --heads 4 --ffn 1024 --vocab 32000 \
        --seq 128 --batch 16 --steps 10
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch


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
        inp = torch.where(pick & (r >= 0.8) & (r < 0.9), torch.randint_like(ids, 4, vocab - 1, generator=g), inp)
        out.append((inp, labels))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--mask-rate", type=float, default=0.15)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for both models")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from xlmr_core import hf
    from xlmr_core.model import XLMRForMaskedLM, model_config, train_flops_for

    dev = torch.device(args.device)
    cfg = model_config("tiny", args.vocab, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                       ffn_size=args.ffn, max_positions=max(512, args.seq))
    hcfg = XLMRobertaConfig(**{k: v for k, v in hf.hf_config(cfg).items() if k not in ("architectures", "dtype")},
                            attn_implementation="sdpa")
    torch.manual_seed(0)
    theirs = XLMRobertaForMaskedLM(hcfg).to(dev)
    ours = XLMRForMaskedLM(cfg)
    ours.load_state_dict(hf.from_hf_state_dict(theirs.state_dict(), cfg))
    ours.to(dev)
    batches = [(x.to(dev), y.to(dev)) for x, y in
               masked_batches(args.warmup + args.steps, args.batch, args.seq, args.vocab, args.mask_rate)]
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if args.bf16 else nullcontext()

    # same function: first losses agree with dropout off
    theirs.eval()
    ours.eval()
    with torch.no_grad(), amp:
        x, y = batches[0]
        l_theirs = theirs(input_ids=x, labels=y).loss.item()
        l_ours = ours(x, y).loss.item()
    tol = 2e-2 if args.bf16 else 1e-4
    assert abs(l_theirs - l_ours) < tol, (l_theirs, l_ours)
    theirs.train()
    ours.train()

    fused = dict(fused=True) if dev.type in ("cuda", "cpu") else {}
    opt_theirs = torch.optim.AdamW(theirs.parameters(), lr=1e-4, **fused)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4, **fused)

    def step_theirs(x, y):
        with amp:
            loss = theirs(input_ids=x, labels=y).loss
        loss.backward()
        opt_theirs.step()
        opt_theirs.zero_grad(set_to_none=True)

    def step_ours(x, y):
        with amp:
            loss = ours(x, y).loss
        loss.backward()
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)

    def timed(fn, x, y):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(x, y)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    t_theirs, t_ours = [], []
    for i, (x, y) in enumerate(batches):
        a, b = timed(step_theirs, x, y), timed(step_ours, x, y)
        if i >= args.warmup:
            t_theirs.append(a)
            t_ours.append(b)
    tokens = args.batch * args.seq
    med_theirs, med_ours = statistics.median(t_theirs), statistics.median(t_ours)
    ratio = statistics.median(a / b for a, b in zip(t_theirs, t_ours))
    f_ours = train_flops_for(cfg, tokens, args.seq, args.mask_rate, masked_only=True)
    f_theirs = train_flops_for(cfg, tokens, args.seq, args.mask_rate, masked_only=False)
    res = dict(config=dict(layers=args.layers, hidden=args.hidden, heads=args.heads, ffn=args.ffn, vocab=args.vocab,
                           seq=args.seq, batch=args.batch, mask_rate=args.mask_rate, bf16=args.bf16,
                           device=str(dev), threads=torch.get_num_threads(), steps=args.steps),
               first_loss=dict(transformers=l_theirs, ours=l_ours),
               step_s=dict(transformers=med_theirs, ours=med_ours),
               tokens_per_s=dict(transformers=tokens / med_theirs, ours=tokens / med_ours),
               speedup=ratio, flop_prediction=f_theirs / f_ours,
               gflops_per_step=dict(transformers=f_theirs / 1e9, ours=f_ours / 1e9))
    print(f"config: {args.layers} layers x {args.hidden}, {args.heads} heads, FFN {args.ffn}, vocab {args.vocab}, "
          f"seq {args.seq}, batch {args.batch}, {'bf16 autocast' if args.bf16 else 'fp32'}, {dev}, "
          f"{torch.get_num_threads()} threads, median of {args.steps} steps after {args.warmup} warm-up")
    print(f"first loss      transformers {l_theirs:.6f}   ours {l_ours:.6f}")
    print(f"step time       transformers {med_theirs * 1e3:8.1f} ms   ours {med_ours * 1e3:8.1f} ms")
    print(f"tokens/s        transformers {tokens / med_theirs:8.0f}      ours {tokens / med_ours:8.0f}")
    print(f"speedup (median of paired ratios) {ratio:.2f}x;  FLOP-count prediction {f_theirs / f_ours:.2f}x "
          f"({f_theirs / 1e9:.1f} vs {f_ours / 1e9:.1f} GFLOP/step)")
    print(f"achieved        transformers {f_theirs / med_theirs / 1e9:.1f} GFLOP/s   "
          f"ours {f_ours / med_ours / 1e9:.1f} GFLOP/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    assert math.isfinite(ratio)


if __name__ == "__main__":
    main()
