"""``python -m xlmr_core.democorpus``: the same as ``xlmr corpus demo``."""

import argparse
import sys

from xlmr_core.democorpus.cli import add_demo_arguments, run_demo
from xlmr_core.errors import XlmrError

parser = argparse.ArgumentParser(prog="python -m xlmr_core.democorpus", description=__doc__)
add_demo_arguments(parser)
try:
    sys.exit(run_demo(parser.parse_args()))
except XlmrError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
