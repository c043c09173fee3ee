"""`ofa` / `python -m ofa_core`: one argparse program whose verbs live in their own modules.

A verb module exposes `HELP` (one line), `add_arguments(parser, parents)` and `run(args) -> int`;
adding a verb is one entry in `COMMANDS`. Plugins add verbs through the `ofa_register_commands`
hook; `--plugins-dir` is read before parsing so folder plugins can add verbs too. User errors (`OFAError`, or an OS
error on a path
the user gave) print one `error: ...` line and exit 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys
from collections.abc import Sequence

from ofa_core._errors import OFAError
from ofa_core.registry.discovery import PluginLoader, load_plugins

# verb -> module implementing it.
COMMANDS: dict[str, str] = {
    "convert": "ofa_core.cli.convert",
    "export": "ofa_core.cli.export",
    "run": "ofa_core.cli.run",
    "eval": "ofa_core.cli.evaluate",
    "report": "ofa_core.cli.report",
    "predict": "ofa_core.cli.predict",
    "tasks": "ofa_core.cli.tasks",
    "plugins": "ofa_core.cli.plugins",
    "doctor": "ofa_core.cli.doctor",
    "recipe": "ofa_core.cli.recipe",
    "new-plugin": "ofa_core.cli.new_plugin",
    "demo-data": "ofa_core.cli.demo_data",
    "serve": "ofa_core.cli.serve",
    "merge": "ofa_core.cli.merge",
}


def _global_options() -> argparse.ArgumentParser:
    # Accepted before or after the verb; SUPPRESS keeps a later default from overwriting a value.
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    options.add_argument(
        "--plugins-dir",
        action="append",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="load every plugin file/package in DIR (repeatable; also OFA_PLUGINS_DIR)",
    )
    return options


def build_parser(loader: PluginLoader | None = None) -> argparse.ArgumentParser:
    debug = _global_options()
    parser = argparse.ArgumentParser(
        prog="ofa", parents=[debug], description="OFA (One-For-All) vision-language models on PyTorch + transformers"
    )
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = verbs.add_parser(name, parents=[debug], help=module.HELP, description=module.HELP)
        module.add_arguments(sub, [debug])
        sub.set_defaults(run=module.run)
    if loader is not None:
        loader.add_commands(verbs)
        for name, sub in verbs.choices.items():  # plugin verbs accept the global options too
            if name not in COMMANDS:
                for action in debug._actions:
                    with contextlib.suppress(argparse.ArgumentError):
                        sub._add_action(action)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    early, _ = _global_options().parse_known_args(argv)
    debug = getattr(early, "debug", False)
    try:
        loader = load_plugins(getattr(early, "plugins_dir", []))
        parser = build_parser(loader)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help (0) and usage errors (2)
            return int(exit_.code or 0)
        args.loader = loader
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


def run_command() -> int:
    """The process entry point (`ofa`, `python -m ofa_core`): `main`, then a quick exit. Freezing the objects that
    remain spares the interpreter's final garbage collections, which would walk every module torch and
    transformers loaded (about a second per command); exit handlers still run."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run_command())
