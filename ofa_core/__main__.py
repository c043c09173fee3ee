"""`python -m ofa_core` runs the `ofa` command line."""

import sys

from ofa_core.cli import run_command

sys.exit(run_command())
