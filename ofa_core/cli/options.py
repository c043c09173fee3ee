"""The options several verbs share, defined once so that each reads the same in every verb's `--help`."""

from __future__ import annotations

import argparse

from ofa_core.inference.loading import BACKEND_HELP, BACKENDS
from ofa_core.model.precision import HELP as PRECISION_HELP
from ofa_core.model.precision import PRECISIONS

OVERRIDES_HELP = "override a recipe value, e.g. --set training.learning_rate=1e-4 (value parsed as JSON)"


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """`--model DIR`, which `inference.loading.model_directory` resolves (a run folder means its best checkpoint)."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="model directory (with its processor files), or a run directory (its best checkpoint)",
    )


def add_overrides_option(parser: argparse.ArgumentParser, help: str = OVERRIDES_HELP) -> None:
    """`--set KEY=VALUE`, repeatable, into `args.overrides`."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_engine_options(
    parser: argparse.ArgumentParser, device_help: str | None = None, device: str | None = None
) -> None:
    """`--precision` and `--backend`, and `--device` when the verb places the model itself (`device_help`)."""
    if device_help is not None:
        parser.add_argument("--device", default=device, help=device_help)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
