"""`ofa tasks`: registered tasks (or every component kind) and the plugin providing each."""

from __future__ import annotations

import argparse

from ofa_core.cli.common import print_json
from ofa_core.plugin import PromptTemplate
from ofa_core.registry.components import KINDS

HELP = "list registered tasks with the plugin that provides each (--all: every component kind)"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("--all", action="store_true", help="also list prompts, readers, losses and metrics")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    registry = args.loader.registry()
    kinds = list(KINDS) if args.all else ["tasks"]
    listing = {
        kind: [
            {
                "name": e.name,
                "plugin": e.plugin,
                "version": e.version,
                "origin": e.origin,
                "description": _describe(e.spec),
            }
            for e in registry.namespace(kind).entries()
        ]
        for kind in kinds
    }
    if args.json:
        print_json(listing)
        return 0
    for kind, entries in listing.items():
        if args.all:
            print(f"{kind}:")
        if not entries:
            print(f"  (no {kind} registered; install a plugin or see 'ofa plugins')")
        for entry in entries:
            version = f" {entry['version']}" if entry["version"] else ""
            description = f"  {entry['description']}" if entry["description"] else ""
            print(f"  {entry['name']}  [{entry['plugin']}{version}, {entry['origin']}]{description}")
    return 0


def _describe(spec) -> str:
    """A spec's description; for a prompt, its templates (leading spaces visible)."""
    if isinstance(spec, PromptTemplate):
        return f"{spec.lang}: {spec.source!r} -> {spec.target!r}"
    return spec.description
