import sys

from xlmr_core.cli import main

sys.exit(main())
