"""`ofa doctor`: what a bug report needs: versions, device, cache folder, demo data, plugins.

torch is imported inside `run` only, so `ofa --help` stays light. Exits 1 when a plugin failed to
load, like `ofa plugins`; 0 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from typing import Any

from ofa_core.cli.common import print_json

HELP = "print versions, device, cache folder, demo data and plugins, for bug reports (exit 1 if a plugin failed)"

# distributions whose versions a bug report shows (after python's)
PACKAGES = ("ofa-framework", "torch", "transformers", "tokenizers", "pluggy")


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _device() -> dict[str, Any]:
    try:
        import torch
    except Exception as error:  # a broken torch install is exactly what a bug report should show
        return {"error": f"cannot import torch: {type(error).__name__}: {error}"}
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    return {
        "cuda": cuda,
        "cuda_version": torch.version.cuda,
        "devices": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())] if cuda else [],
        "mps": bool(mps_backend is not None and mps_backend.is_available()),
        "torch_threads": torch.get_num_threads(),
    }


def report(registry: Any) -> dict[str, Any]:
    """Everything `ofa doctor` prints, as a JSON-ready dict."""
    from ofa_core.demo.folder import demo_dir
    from ofa_core.demo.writer import MANIFEST
    from ofa_core.recipe.paths import cache_dir

    demo = demo_dir()
    return {
        "versions": {"python": platform.python_version(), **{name: _version(name) for name in PACKAGES}},
        "platform": platform.platform(),
        "executable": sys.executable,
        "device": _device(),
        "cache_dir": str(cache_dir()),
        "demo": {"folder": str(demo), "exists": (demo / MANIFEST).is_file()},
        "plugins": [{"name": p.name, "version": p.version, "origin": p.origin} for p in registry.plugins],
        "failures": [{"name": f.name, "origin": f.origin, "error": f.error} for f in registry.failures],
    }


def run(args: argparse.Namespace) -> int:
    result = report(args.loader.registry())
    code = 1 if result["failures"] else 0
    if args.json:
        print_json(result)
        return code
    for name, version in result["versions"].items():
        print(f"{name + ':':<16}{version or 'not installed'}")
    print(f"{'platform:':<16}{result['platform']}")
    device = result["device"]
    if "error" in device:
        print(f"{'device:':<16}{device['error']}")
    else:
        cuda = f"yes (CUDA {device['cuda_version']}): {', '.join(device['devices'])}" if device["cuda"] else "no"
        print(f"{'cuda:':<16}{cuda}")
        print(f"{'mps:':<16}{'yes' if device['mps'] else 'no'}")
        print(f"{'torch threads:':<16}{device['torch_threads']}")
    print(f"{'cache folder:':<16}{result['cache_dir']}")
    demo = result["demo"]
    print(
        f"{'demo data:':<16}{'present' if demo['exists'] else 'not generated yet (ofa demo-data)'} ({demo['folder']})"
    )
    print("plugins:")
    for plugin in result["plugins"]:
        version = f" {plugin['version']}" if plugin["version"] else ""
        print(f"  {plugin['name']}{version} ({plugin['origin']})")
    if not result["plugins"]:
        print("  none loaded")
    for failure in result["failures"]:
        print(f"  FAILED {failure['name']} ({failure['origin']}): {failure['error']}")
    if result["failures"]:
        print("(`ofa plugins --errors` shows the tracebacks)")
    return code
