"""Tokenizer training time against vocabulary size, and encoding throughput per process and with all cores.

Training: ``xlmr_core.data.tokenizer.train_tokenizer`` (SentencePiece unigram, α = 0.3 sampling) on all languages of
a corpus (default: the demo corpus) with a fixed sample of lines, once per vocabulary size; the time to write the
sample and the SentencePiece training time are reported apart. Encoding: SentencePiece alone in one process
(``Tokenizer.encode_batch``, MB of UTF-8 per second), then the whole shard pipeline
(``xlmr_core.data.encode_corpus``: encode, held-out split, merge) with 1 process and with every core.

    python benchmarks/tokenizer.py                                  # 4K/8K/16K/32K, -> results/tokenizer.json
    python benchmarks/tokenizer.py --vocab-sizes 8000 --sample-lines 50000 --no-pipeline
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def train_times(corpus: Path, vocab_sizes: list[int], sample_lines: int, threads: int) -> list[dict]:
    """Wall, sampling and SentencePiece training seconds for each vocabulary size (errors recorded, not raised)."""
    from xlmr_core.data.tokenizer import train_tokenizer
    from xlmr_core.errors import XlmrError

    rows = []
    for v in vocab_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            try:
                tok = train_tokenizer(corpus, None, v, tmp, sample_lines=sample_lines, threads=threads,
                                      progress=False)
            except XlmrError as e:  # e.g. a vocabulary too large for the sample
                rows.append(dict(vocab_size=v, error=str(e)))
                print(f"  vocab {v:>6}: {e}", flush=True)
                continue
            wall = time.perf_counter() - t0
            info = json.loads((Path(tmp) / "tokenizer.json").read_text())
        rows.append(dict(vocab_size=v, model_vocab_size=tok.vocab_size, wall_s=wall, sample_s=info["sample_s"],
                         train_s=info["train_s"], sample_bytes=info["sample_bytes"],
                         sampled_lines=sum(info["sampled_lines"].values()), threads=threads))
        print(f"  vocab {v:>6}: {wall:7.1f} s wall ({info['sample_s']:.1f} s sampling, {info['train_s']:.1f} s "
              f"SentencePiece) on {rows[-1]['sampled_lines']:,} lines, {info['sample_bytes'] / 1e6:.1f} MB", flush=True)
    return rows


def encode_rate(tok, files: dict[str, Path], max_bytes: int) -> dict:
    """MB/s of ``Tokenizer.encode_batch`` in this process over the first ``max_bytes`` of each language file."""
    texts, total = [], 0
    per_file = max(1, max_bytes // len(files))
    for path in files.values():
        with open(path, encoding="utf-8") as f:
            chunk = f.read(per_file)
        lines = [x for x in chunk.splitlines() if x]
        texts += lines
        total += sum(len(x.encode("utf-8")) for x in lines)
    tok.encode_batch(texts[:1000])  # warm-up
    t0 = time.perf_counter()
    ids = tok.encode_batch(texts)
    s = time.perf_counter() - t0
    return dict(mb=total / 1e6, seconds=s, mb_per_s=total / 1e6 / s, tokens=sum(map(len, ids)), lines=len(texts))


def pipeline_rates(tok, files: dict[str, Path], workers: list[int]) -> list[dict]:
    """MB/s of ``data.encode_corpus`` (encode, held-out split, merge) with each number of processes."""
    from loader import encode_rates  # benchmarks/loader.py, next to this script

    rows = encode_rates(tok, files, workers)
    for r in rows:
        print(f"  encode_corpus, {r['workers']} process(es): {r['mb']:.1f} MB in {r['seconds']:.1f} s = "
              f"{r['mb_per_s']:.2f} MB/s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None, help="corpus directory (default: the demo corpus, all languages)")
    ap.add_argument("--vocab-sizes", default="4000,8000,16000,32000", help="SentencePiece pieces, comma-separated")
    ap.add_argument("--sample-lines", type=int, default=200_000, help="lines sampled for each training")
    ap.add_argument("--threads", type=int, default=None, help="SentencePiece training threads (default: all cores)")
    ap.add_argument("--encode-mb", type=float, default=20.0, help="MB of text for the one-process encode rate")
    ap.add_argument("--encode-vocab", type=int, default=8000, help="tokenizer (pieces) used for the encode rates")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the encode_corpus (shard pipeline) rates")
    ap.add_argument("--json", type=Path, default=RESULTS / "tokenizer.json")
    args = ap.parse_args()

    from xlmr_core.data.corpus import select_languages
    from xlmr_core.data.tokenizer import tokenizer_for
    from xlmr_core.fsutil import atomic_write_json

    if args.corpus is None:
        from xlmr_core.democorpus import ensure_demo_corpus

        args.corpus = ensure_demo_corpus()
    corpus = Path(args.corpus)
    files = select_languages(corpus, None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = args.threads or cores
    corpus_mb = sum(p.stat().st_size for p in files.values()) / 1e6
    print(f"{corpus}: {len(files)} languages, {corpus_mb:.1f} MB; {cores} cores, load {os.getloadavg()}")

    print(f"training on {args.sample_lines:,} sampled lines (alpha 0.3) with {threads} threads")
    train = train_times(corpus, [int(v) for v in args.vocab_sizes.split(",") if v], args.sample_lines, threads)

    tok = tokenizer_for(corpus, None, args.encode_vocab, sample_lines=args.sample_lines)
    enc = encode_rate(tok, files, int(args.encode_mb * 1e6))
    print(f"encoding, one process (SentencePiece encode_batch, {args.encode_vocab} pieces): {enc['mb']:.1f} MB in "
          f"{enc['seconds']:.1f} s = {enc['mb_per_s']:.2f} MB/s", flush=True)
    pipe = [] if args.no_pipeline else pipeline_rates(tok, files, sorted({1, cores}))

    import sentencepiece

    meta = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), cores=cores,
                load_avg_1_5_15=os.getloadavg(), corpus=str(corpus), corpus_mb=corpus_mb, langs=len(files),
                sample_lines=args.sample_lines, sentencepiece=sentencepiece.__version__,
                command=" ".join([Path(sys.executable).name] + sys.argv))
    atomic_write_json(args.json, dict(meta=meta, training=train, encode_one_process=enc, encode_corpus=pipe))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
