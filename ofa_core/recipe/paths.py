"""Paths in recipes: `~` and `$VARIABLES` expanded, relative to the recipe, required files checked.

`$OFA_CACHE_DIR` (default `~/.cache/ofa`) is where ofa keeps files it creates for the user, such as
the generated demo; recipes may name it even when it is not set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ofa_core.recipe.schema import RecipeError

CACHE_VARIABLE = "OFA_CACHE_DIR"
DEFAULT_CACHE_DIR = "~/.cache/ofa"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE_DIR).expanduser()


class MissingPathError(RecipeError):
    """A path the recipe needs does not exist (yet); `path` is the absolute path that is missing."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand_variables(value: str, field: str) -> str:
    """`$NAME` / `${NAME}` from the environment; `$OFA_CACHE_DIR` defaults to ~/.cache/ofa (`ofa_core.recipe.paths`)."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name == CACHE_VARIABLE:
            return str(cache_dir())
        if name not in os.environ:
            raise RecipeError(
                f"{field}: environment variable ${name} in {value!r} is not set; set it or write the path out"
            )
        return os.environ[name]

    return _VARIABLE.sub(replace, value)


def resolve_path(value: str, base: Path, field: str, *, must_exist: bool) -> str:
    """`value` (with `~` and `$VARIABLES` expanded) relative to the recipe folder; a missing required file is
    an error naming the field (`MissingPathError`, which carries the path)."""
    resolved = (base / Path(expand_variables(value, field)).expanduser()).resolve()
    if must_exist and not resolved.exists():
        raise MissingPathError(f"{field}: {resolved} not found (relative paths are resolved against {base})", resolved)
    return str(resolved)


def unchecked_path(value: str, base: Path, field: str) -> str:
    """`value` resolved as `resolve_path` does where it can, else as written: a path the command does not read is
    neither required nor an error (an unset `$VARIABLE` in it included)."""
    try:
        return resolve_path(value, base, field, must_exist=False)
    except RecipeError:
        return value
