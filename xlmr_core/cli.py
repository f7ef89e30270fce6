"""The ``xlmr`` command: one entry point, one subcommand per stage of the study.

Each module that has a command-line face defines ``add_cli(subparsers)``, which adds its
subcommands and sets ``func`` on them; this file only gathers them, decides what the library's
``logging`` shows (``-v``: debug, ``-q``: warnings only) and turns an
:class:`~xlmr_core.errors.XlmrError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from xlmr_core import __version__
from xlmr_core.errors import XlmrError

# modules with commands, in the order the study uses them
_MODULES = ["corpus", "tokenizer", "data", "train", "evaluate", "hf", "lawcli"]


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--version", action="version", version=f"xlmr {__version__}")
    parser.add_argument("-v", "--verbose", dest="log_verbose", action="store_true",
                        help="show the library's debug messages")
    parser.add_argument("-q", "--quiet", dest="log_quiet", action="store_true", help="show warnings and errors only")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (imports each module that contributes commands)."""
    parser = _common(argparse.ArgumentParser(prog="xlmr", description=__doc__.splitlines()[0]))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _MODULES:
        importlib.import_module(f"xlmr_core.{name}").add_cli(sub)
    return parser


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (pytest and notebooks replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Show the library's log messages (the ``xlmr_core`` loggers) on stderr as plain lines, INFO and up by
    default; the library itself only logs, so this is where the command decides what a user sees."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    lib = logging.getLogger("xlmr_core")
    lib.handlers[:] = [handler]
    lib.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Run ``xlmr`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # --version before the subcommands' modules are imported: it must work without torch importable
    _common(argparse.ArgumentParser(prog="xlmr", add_help=False)).parse_known_args(argv)
    args = build_parser().parse_args(argv)
    setup_logging(args.log_verbose, args.log_quiet)
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
