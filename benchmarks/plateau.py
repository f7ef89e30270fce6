"""Tokens to leave the unigram plateau: how fast tiny models start to use context, recipe by recipe.

    python benchmarks/plateau.py                                  # the default recipes on the demo corpus
    python benchmarks/plateau.py --recipes base,mask30 --tokens 2e6 --json benchmarks/results/plateau.json
    python benchmarks/plateau.py --recipe mine="model.pre_ln=true optim.lr=3e-3"   # any overrides

A masked LM first learns token frequencies (the unigram plateau: held-out loss at the unigram baseline) and
only later uses context. At laptop scale the length of that plateau decides whether a run measures anything.
Each recipe is a set of ``key=value`` overrides on a common base run (5 languages of the demo corpus), trained
in this process with held-out evaluation every ``--eval-every`` tokens. Printed per recipe: tokens/s, the
tokens at which the mean unigram gain (1 − bpb / unigram bpb) of the high-resource languages first exceeds 0
and 5 %, and the gain at the end, for high- and low-resource languages.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

BASE = ("model.size=debug model.num_layers=2 model.hidden_size=128 model.num_heads=4 model.ffn_size=512 "
        "model.pre_ln=true model.dropout=0 model.attention_dropout=0 data.vocab_size=2000 data.seq_len=64 "
        "data.batch_tokens=2048 optim.lr=1e-3 schedule.warmup_steps=50 data.tokenizer_sample_lines=20000 "
        "eval.max_blocks=8 eval.draws=1 checkpoint.interval=100000 log_interval=50")
RECIPES = {
    "base": "",
    "postln-drop": "model.pre_ln=false model.dropout=0.1 model.attention_dropout=0.1",
    "lr3e-4": "optim.lr=3e-4",
    "lr5e-4": "optim.lr=5e-4",
    "lr2e-3": "optim.lr=2e-3",
    "lr3e-3": "optim.lr=3e-3",
    "mask30": "data.mask_prob=0.3",
    "mask40": "data.mask_prob=0.4",
    "batch1k": "data.batch_tokens=1024",
    "batch4k": "data.batch_tokens=4096",
    "vocab1k": "data.vocab_size=1000",
    "vocab4k": "data.vocab_size=4000",
    "w64": "model.hidden_size=64 model.num_heads=2 model.ffn_size=256",
    "deep4x64": "model.num_layers=4 model.hidden_size=64 model.num_heads=2 model.ffn_size=256",
    "seq128": "data.seq_len=128",
    "beta999": "optim.betas=[0.9,0.999]",
}
HIGH, LOW = ("en", "fr", "de"), ("bg", "sl")


def _curve(records: list[dict], langs) -> list[tuple[int, float]]:
    """(tokens, mean unigram gain over ``langs``) of every evaluation record."""
    out = []
    for rec in records:
        if "eval" in rec:
            out.append((rec["tokens"], sum(rec["eval"][lang]["unigram_gain"] for lang in langs) / len(langs)))
    return out


def _first(curve, level: float):
    return next((t for t, g in curve if g > level), None)


def run_recipe(name: str, overrides: str, args, corpus: str, root: Path) -> dict:
    from xlmr_core.config import load_config
    from xlmr_core.train import rundir
    from xlmr_core.train.trainer import train

    langs = ",".join(HIGH + LOW)
    items = [*BASE.split(), *overrides.split(), f"data.corpus={corpus}", f"data.langs={langs}",
             f"run_dir={root / name}", f"seed={args.seed}", f"schedule.tokens={int(args.tokens)}"]
    cfg = load_config(None, items)
    items.append(f"eval.interval={max(1, int(args.eval_every) // cfg.data.batch_tokens)}")
    cfg = load_config(None, items)
    t0 = time.time()
    final = train(cfg)
    wall = time.time() - t0
    records = rundir.read_metrics(root / name)
    curve = _curve(records, HIGH)
    steps_s = [rec.get("tokens_per_s") for rec in records]
    rates = [r for r in steps_s if r]
    per = final["per_lang"]
    return {"recipe": name, "overrides": overrides, "tokens": final["tokens"], "wall_s": wall,
            "tokens_per_s": sorted(rates)[len(rates) // 2] if rates else None,
            "tokens_to_gain_0": _first(curve, 0.0), "tokens_to_gain_5pct": _first(curve, 0.05),
            "final_gain_high": sum(per[lang]["unigram_gain"] for lang in HIGH) / len(HIGH),
            "final_gain_low": sum(per[lang]["unigram_gain"] for lang in LOW) / len(LOW),
            "bpb_high": sum(per[lang]["bpb"] for lang in HIGH) / len(HIGH),
            "unigram_bpb_high": sum(per[lang]["unigram_bpb"] for lang in HIGH) / len(HIGH),
            "curve_high": curve}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names of RECIPES")
    ap.add_argument("--recipe", action="append", default=[], metavar="NAME=OVERRIDES",
                    help="an extra recipe: a name and space-separated key=value overrides of the base run")
    ap.add_argument("--tokens", type=float, default=2e6, help="training tokens per recipe")
    ap.add_argument("--eval-every", type=float, default=2e5, help="tokens between held-out evaluations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", help="corpus directory (default: the demo corpus)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    recipes = {}
    for name in (n for n in args.recipes.split(",") if n):
        if name not in RECIPES:
            ap.error(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
        recipes[name] = RECIPES[name]
    for item in args.recipe:
        name, sep, ov = item.partition("=")
        if not sep or not name:
            ap.error(f"--recipe {item!r}: give NAME=OVERRIDES")
        recipes[name] = ov
    if args.corpus:
        corpus = args.corpus
    else:
        from xlmr_core.democorpus import ensure_demo_corpus

        corpus = str(ensure_demo_corpus())
    os.environ.setdefault("TQDM_DISABLE", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="xlmr-plateau-") as tmp:
        for name, ov in recipes.items():
            r = run_recipe(name, ov, args, corpus, Path(tmp))
            rows.append(r)
            print(f"{name:14s} {r['tokens_per_s'] or 0:8.0f} tok/s  gain>0 at {r['tokens_to_gain_0']}  "
                  f">5% at {r['tokens_to_gain_5pct']}  final gain high {r['final_gain_high']:+.3f} "
                  f"low {r['final_gain_low']:+.3f}  (bpb {r['bpb_high']:.3f} vs unigram "
                  f"{r['unigram_bpb_high']:.3f})", flush=True)
    if args.json:
        from xlmr_core.fsutil import atomic_write_json

        atomic_write_json(args.json, {"tokens": args.tokens, "base": BASE, "runs": rows, "threads": args.threads,
                                      "load_avg": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
