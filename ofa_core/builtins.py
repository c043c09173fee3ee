"""The core's own plugin: components any task may name, registered through the same hooks as everyone's.

It is found through this project's `ofa_core` entry point (origin 'builtin'), not imported by the
registry, so it can be disabled and overridden like any plugin. Tasks live in plugins, not here.
"""

from __future__ import annotations

from ofa_core.hookspecs import hookimpl


@hookimpl
def ofa_register_losses(register):
    from ofa_core.trainer.losses import LABEL_SMOOTHED_CE  # torch stays unimported until a registry is built

    register("label_smoothed_cross_entropy", LABEL_SMOOTHED_CE)
