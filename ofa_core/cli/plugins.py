"""`ofa plugins`: which plugins loaded (version, origin, what they registered) and which failed.

Exits 1 when a plugin failed to load (after printing the whole listing), so CI catches a broken plugin.
"""

from __future__ import annotations

import argparse

from ofa_core.cli.common import print_json
from ofa_core.registry.components import KINDS

HELP = (
    "list loaded plugins with versions, origins and registered names, and plugins that failed to load (exit 1 if any)"
)


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("--errors", action="store_true", help="show the full traceback of each failed plugin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    registry = args.loader.registry()
    provided: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for entry in registry.namespace(kind).entries():
            provided.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
    plugins = [
        {"name": p.name, "version": p.version, "origin": p.origin, "registers": provided.get(p.name, {})}
        for p in registry.plugins
    ]
    failures = [
        {"name": f.name, "origin": f.origin, "error": f.error, **({"traceback": f.traceback} if args.errors else {})}
        for f in registry.failures
    ]
    if args.json:
        print_json({"plugins": plugins, "failures": failures})
        return 1 if failures else 0
    if not plugins:
        print("no plugins loaded")
    for plugin in plugins:
        version = f" {plugin['version']}" if plugin["version"] else ""
        names = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in plugin["registers"].items())
        print(f"{plugin['name']}{version} ({plugin['origin']})  {names or 'registers nothing'}")
    for failure in failures:
        print(f"FAILED {failure['name']} ({failure['origin']}): {failure['error']}")
        if args.errors:
            print(failure["traceback"].rstrip())
    return 1 if failures else 0
