"""The ``xlmr`` command: one entry point, one subcommand per stage of the study.

Each module that has a command-line face defines ``add_cli(subparsers)``, which adds its
subcommands and sets ``func`` on them; this file only gathers them and turns an
:class:`~xlmr_core.errors.XlmrError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import XlmrError

# modules with commands, in the order the study uses them
_MODULES = ["corpus", "tokenizer", "data", "train", "evaluate", "hf"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (imports each module that contributes commands)."""
    parser = argparse.ArgumentParser(prog="xlmr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _MODULES:
        importlib.import_module(f"xlmr_core.{name}").add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``xlmr`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XlmrError as e:
        print(f"xlmr: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xlmr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
