"""`python -m ofa_core` runs the `ofa` command line."""

import sys

from ofa_core.cli import main

sys.exit(main())
