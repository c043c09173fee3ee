"""`ofa demo-data`: write the demo's photos, captions, questions, labels and from-scratch model (see ofa_core.demo)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ofa_core._errors import OFAError

HELP = "generate the demo data set and the small model the demo recipes train (no download)"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    from ofa_core.demo.sizes import DemoSizes

    defaults = DemoSizes()
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="where to write it (default: $OFA_CACHE_DIR/demo, else ~/.cache/ofa/demo, where the demo recipes look)",
    )
    parser.add_argument("--force", action="store_true", help="replace the folder if it exists")
    parser.add_argument(
        "--train-images",
        type=int,
        default=defaults.train_images,
        metavar="N",
        help=f"training photos (default {defaults.train_images})",
    )
    parser.add_argument(
        "--valid-images",
        type=int,
        default=defaults.valid_images,
        metavar="N",
        help=f"validation photos (default {defaults.valid_images})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="the same seed and sizes give identical files")


def run(args: argparse.Namespace) -> int:
    from ofa_core.demo.folder import MANIFEST, demo_dir, summary
    from ofa_core.demo.sizes import DemoSizes
    from ofa_core.demo.writer import generate

    root = Path(args.dir).expanduser() if args.dir else demo_dir()
    if root.exists() and not args.force:
        state = "holds the demo" if (root / MANIFEST).is_file() else "exists"
        raise OFAError(
            f"{root}: already {state}; pass --force to replace it, or --dir for another folder (nothing was written)"
        )
    try:
        sizes = DemoSizes(train_images=args.train_images, valid_images=args.valid_images, seed=args.seed)
    except ValueError as error:
        raise OFAError(f"demo-data: {error}; give at least one photo per split") from None
    started = time.monotonic()
    manifest = generate(root, sizes)
    print(f"wrote {root} in {time.monotonic() - started:.1f} s: {summary(manifest)}")
    for what in ("model", "caption", "vqa", "classification", "images"):
        print(f"  {what:<15} {root / manifest[what]}")
    if root.resolve() == demo_dir().resolve():
        print("next: python -m ofa_core run recipes/demo_caption.json")
    else:
        print(f"note: the demo recipes read {demo_dir()}; with OFA_CACHE_DIR=DIR they read DIR/demo")
    return 0
