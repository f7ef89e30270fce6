"""Plan, run, evaluate, collect and draw a study: ``plan`` (alias ``dry-run``) | ``run`` | ``status`` | ``eval`` |
``collect`` | ``figures`` | ``list``. The same command as ``xlmr-sweep`` (``xlmr_core.study.cli``); the studies are
defined in ``xlmr_core.study.studies``.

    python sweeps/launch.py plan capacity_dilution --scale paper
    python sweeps/launch.py run capacity_dilution --scale demo --executor local
    python sweeps/launch.py status scaling_laws --scale cpu
"""

from __future__ import annotations

import sys

from xlmr_core.study.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="sweeps/launch.py"))
