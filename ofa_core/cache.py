"""Where ofa keeps files it creates for the user (the generated demo): `$OFA_CACHE_DIR`, else `~/.cache/ofa`."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_VARIABLE = "OFA_CACHE_DIR"
DEFAULT_CACHE_DIR = "~/.cache/ofa"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE_DIR).expanduser()
