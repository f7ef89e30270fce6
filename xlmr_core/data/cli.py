"""``xlmr prepare``: encode a corpus into token shards, locally in one command or chunked for job arrays."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from xlmr_core.data.shards import CHUNK_FILE, HeldoutSplit, _default_workers, encode_chunk, encode_corpus, merge_chunks
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir


def _prepare(args: argparse.Namespace) -> int:
    from xlmr_core.data.corpus import select_languages, validate_languages

    langs = [x for x in args.langs.split(",") if x] if args.langs else None
    heldout = HeldoutSplit(fraction=args.heldout_fraction, min_lines=args.heldout_min_lines,
                           max_lines=args.heldout_max_lines)
    out = Path(args.out)
    tokenizer = Path(args.tokenizer)
    if not tokenizer.exists():
        raise XlmrError(f"{tokenizer}: no such tokenizer model; train one with `xlmr tokenizer train`")
    validate_languages(args.corpus, langs)
    files = select_languages(args.corpus, langs)
    if args.merge:
        if not args.num_chunks:
            raise XlmrError("--merge needs --num-chunks N (the N used by the chunk jobs)")
        # a compressed file was written as chunk 0 of N (the others empty): it merges like the rest
        counts = {lang: args.num_chunks for lang in files}
        info = merge_chunks(out / "chunks", out, list(files), counts, heldout=heldout,
                            workers=args.workers or _default_workers())
        if not args.keep_chunks:
            shutil.rmtree(out / "chunks")
        total = sum(m["train_tokens"] + m["heldout_tokens"] for m in info["langs"].values())
        print(f"merged {len(files)} languages, {total:,} tokens into {out}")
    elif args.chunk is not None:
        if not args.num_chunks or not 0 <= args.chunk < args.num_chunks:
            raise XlmrError(f"--chunk {args.chunk} needs --num-chunks N with 0 <= chunk < N")
        for lang, path in files.items():
            d = encode_chunk(tokenizer, path, args.chunk, args.num_chunks, out / "chunks")
            c = json.loads((d / CHUNK_FILE).read_text())
            print(f"{lang}: chunk {args.chunk}/{args.num_chunks}: {c['lines']:,} lines, {c['tokens']:,} tokens")
    else:
        t0 = time.time()
        with atomic_dir(out) as tmp:
            info = encode_corpus(tokenizer, files, tmp, heldout=heldout, workers=args.workers,
                                 log=lambda m: print(m, file=sys.stderr))
        total = sum(m["train_tokens"] + m["heldout_tokens"] for m in info["langs"].values())
        print(f"encoded {len(files)} languages, {total:,} tokens into {out} in {time.time() - t0:.1f} s")
    return 0


def add_cli(sub) -> None:
    """Add ``xlmr prepare`` (encode a corpus into token shards; chunked for job arrays)."""
    p = sub.add_parser("prepare", help="encode a corpus into token shards",
                       description="Encode language files into token shards. Locally: one command. On a "
                                   "cluster: one job per chunk with --chunk I --num-chunks N (outputs under "
                                   "OUT/chunks), then one --merge job.")
    p.add_argument("--tokenizer", required=True, help="SentencePiece model file (spm.model)")
    p.add_argument("--corpus", required=True, help="corpus directory of <lang>.txt[.gz|.xz|.zst]")
    p.add_argument("--langs", default="", help="comma-separated languages (default: all)")
    p.add_argument("--out", required=True, help="output shard directory")
    p.add_argument("--chunk", type=int, default=None, help="encode only chunk I of every language file")
    p.add_argument("--num-chunks", type=int, default=0, help="number of chunks per plain-text file")
    p.add_argument("--merge", action="store_true", help="merge the chunks under OUT/chunks into shards")
    p.add_argument("--keep-chunks", action="store_true", help="keep OUT/chunks after --merge")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    d = HeldoutSplit()
    p.add_argument("--heldout-fraction", type=float, default=d.fraction)
    p.add_argument("--heldout-min-lines", type=int, default=d.min_lines)
    p.add_argument("--heldout-max-lines", type=int, default=d.max_lines)
    p.set_defaults(func=_prepare)
