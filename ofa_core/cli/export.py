"""`ofa export onnx --model DIR --out DIR`: write a model as ONNX graphs that onnxruntime runs without PyTorch model
code (docs/export.md)."""

from __future__ import annotations

import argparse
import sys

from ofa_core.cli.options import add_model_option

HELP = "export a model (or a run's best checkpoint) as ONNX graphs for onnxruntime"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx",
        parents=parents,
        help="an encoder graph and a decoder-step graph with its "
        "key/value cache, with the tokenizer, processor and generation settings",
    )
    add_model_option(onnx)
    onnx.add_argument("--out", required=True, metavar="DIR", help="folder to write (must not exist, or be empty)")
    onnx.add_argument(
        "--int8",
        action="store_true",
        help="also write dynamically quantized int8 graphs (*.int8.onnx) beside the fp32 ones",
    )
    onnx.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from ofa_core.cli.common import quiet_transformers
    from ofa_core.export.onnx import export_onnx

    quiet_transformers()
    summary = export_onnx(args.model, args.out, int8=args.int8, overwrite=args.overwrite)
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0
