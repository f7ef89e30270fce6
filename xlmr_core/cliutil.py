"""Command-line helpers shared by the scripts outside the package (``benchmarks/gpu.py``, ``scripts/gpu_check.py``).
Standard library only, so that a script can import it before anything is installed."""

from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr, ``prog: error: message``, and exit
    status 2 (argparse's own status), without the usage block above them."""

    def error(self, message):  # one line, exit status 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)
