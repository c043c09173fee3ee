"""The framework's CLI verbs, one module each (see `ofa_core.cli.COMMANDS`)."""
