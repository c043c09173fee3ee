"""`ofa new-plugin NAME`: scaffold an installable plugin package from `ofa_core.scaffold`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ofa_core.model.errors import OFAError
from ofa_core.scaffold import FILES

HELP = "create a plugin package (pyproject with the ofa_core entry point, module, tests) to start from"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("name", metavar="NAME", help="task name: lowercase letters, digits and underscores, e.g. my_vqa")
    parser.add_argument("--dir", default="plugins", metavar="DIR", help="where to create ofa-plugin-NAME/ (default: plugins)")


def run(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", args.name):
        raise OFAError(f"new-plugin {args.name!r}: use lowercase letters, digits and underscores, starting with a letter (e.g. my_vqa)")
    dist = f"ofa-plugin-{args.name.replace('_', '-')}"
    module = f"ofa_plugin_{args.name}"
    target = Path(args.dir) / dist
    if target.exists():
        raise OFAError(f"{target}: already exists; choose another NAME or --dir (nothing was written)")
    for relative, text in FILES.items():
        path = target / relative.replace("__MODULE__", module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("__NAME__", args.name).replace("__MODULE__", module).replace("__DIST__", dist), encoding="utf-8")
    print(f"created {target}; next: pip install -e {target} && ofa tasks")
    return 0
