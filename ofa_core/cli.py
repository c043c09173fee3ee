"""`ofa` / `python -m ofa_core`: one argparse program whose verbs live in their own modules.

A verb module exposes `HELP` (one line), `add_arguments(parser, parents)` and `run(args) -> int`;
adding a verb is one entry in `COMMANDS`. User errors (`OFAError`, or an OS error on a path
the user gave) print one `error: ...` line and exit 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ofa_core.errors import OFAError

# verb -> module implementing it.
COMMANDS: dict[str, str] = {
    "convert": "ofa_core.convert.command",
}


def build_parser() -> argparse.ArgumentParser:
    # `--debug` is accepted before or after the verb; SUPPRESS keeps a later default from overwriting it.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors")
    parser = argparse.ArgumentParser(prog="ofa", parents=[debug],
                                     description="OFA (One-For-All) vision-language models on PyTorch + transformers")
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = verbs.add_parser(name, parents=[debug], help=module.HELP, description=module.HELP)
        module.add_arguments(sub, [debug])
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) and usage errors (2)
        return int(exit_.code or 0)
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args) or 0)
    except OFAError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
