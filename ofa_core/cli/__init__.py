"""The `ofa` command (`python -m ofa_core`): one argparse program, one module per verb.

The CLI is the top layer: it may import everything, and nothing imports it.
"""

from ofa_core.cli.main import main, run_command

__all__ = ["main", "run_command"]
