"""The files `ofa new-plugin NAME` writes: a working plugin package with an exact-match task.

The files are templates shipped as package data under `templates/`, each named like the file it
becomes plus `.tmpl` (so neither pytest nor an import ever treats a template as a real module).
Placeholders, in paths and text: __NAME__ (task and entry-point name), __MODULE__ (import name),
__DIST__ (distribution).
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ofa_core._errors import OFAError

SUFFIX = ".tmpl"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def names(name: str) -> dict[str, str]:
    """Placeholder -> value for task `name` (e.g. my_vqa -> ofa-plugin-my-vqa, ofa_plugin_my_vqa)."""
    if not NAME_PATTERN.fullmatch(name):
        raise OFAError(
            f"new-plugin {name!r}: use lowercase letters, digits and underscores, starting with a letter (e.g. my_vqa)"
        )
    return {"__NAME__": name, "__MODULE__": f"ofa_plugin_{name}", "__DIST__": f"ofa-plugin-{name.replace('_', '-')}"}


def templates() -> dict[str, str]:
    """Relative template path (with placeholders, without `.tmpl`) -> template text."""
    found: dict[str, str] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda item: item.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(SUFFIX):
                found[prefix + entry.name[: -len(SUFFIX)]] = entry.read_text(encoding="utf-8")

    walk(resources.files(__name__) / "templates", "")
    if not found:
        raise OFAError(
            "ofa_core.scaffold: no templates found; the installation is incomplete (reinstall ofa-framework)"
        )
    return found


def _fill(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def render(name: str) -> dict[str, str]:
    """Relative path -> text of every file of the plugin for task `name`, placeholders replaced."""
    values = names(name)
    return {_fill(path, values): _fill(text, values) for path, text in templates().items()}


def create(directory: str | Path, name: str) -> Path:
    """Write the plugin for task `name` into `directory`/ofa-plugin-NAME and return that folder.

    Raises OFAError, having written nothing, for an invalid name or an existing target.
    """
    files = render(name)
    target = Path(directory) / names(name)["__DIST__"]
    if target.exists():
        raise OFAError(f"{target}: already exists; choose another NAME or --dir (nothing was written)")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
