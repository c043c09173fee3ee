"""`ofa merge DELTA --out DIR`: fold a LoRA or BitFit delta into its base model and write a plain model directory
(docs/peft.md), which every tool reads, `ofa convert to-fairseq` included."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a plain model directory from a LoRA or BitFit delta (a peft run's checkpoint) and its base model"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument(
        "delta",
        type=Path,
        metavar="DELTA",
        help="a delta directory (adapter_config.json), or a peft run directory (its best checkpoint)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="model directory to write (must not exist, or be empty)"
    )


def run(args: argparse.Namespace) -> int:
    from ofa_core._errors import OFAError
    from ofa_core.cli.common import quiet_transformers
    from ofa_core.convert.writer import atomic_directory, check_output_dir
    from ofa_core.inference import delta
    from ofa_core.inference.loading import load_processor, model_directory

    source = model_directory(args.delta)
    if not delta.is_delta(source):
        raise OFAError(f"{source}: not a delta (no {delta.CONFIG_FILE}); it is a plain model directory already")
    method = delta.read_config(source)["method"]
    if method not in delta.MERGEABLE:
        raise OFAError(
            f"{source}: a {method} delta adds modules a plain model lacks, so it has no merged form; run it "
            f"as it is (predict, eval, serve and pipeline load base + delta)"
        )
    check_output_dir(args.out)
    quiet_transformers()
    model, base, _config = delta.load(source)
    processor = load_processor(base)
    with atomic_directory(args.out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {method} delta {source} merged into {base} ({parameters:,} parameters)", file=sys.stderr)
    return 0
