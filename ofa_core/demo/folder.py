"""The demo folder: where it lives (`$OFA_CACHE_DIR/demo`), and writing it once when a recipe first needs it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from ofa_core.demo import writer
from ofa_core.demo.writer import MANIFEST
from ofa_core.recipe.paths import cache_dir


def demo_dir() -> Path:
    return cache_dir() / "demo"


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Holds an exclusive lock on `lock_file` (released by the OS if the process dies); a no-op where
    `fcntl` is missing."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def awaits_first_use(path: Path) -> bool:
    """Whether `path` lies inside the demo folder and the demo was never generated, so that `create_on_first_use`
    would write it; looks only, writes nothing."""
    root = demo_dir().resolve()
    return Path(path).resolve().is_relative_to(root) and not (root / MANIFEST).is_file()


def create_on_first_use(path: Path) -> bool:
    """Write the demo folder when `path` lies inside it and the demo was never generated (announced on stderr);
    True when the demo is now there, so a recipe that missed `path` is worth loading again.

    Processes started together (torchrun) take turns: the first writes the demo, the others find it written.
    """
    if not awaits_first_use(path):
        return False
    root = demo_dir().resolve()
    with _exclusive(root.parent / f".{root.name}.lock"):
        if (root / MANIFEST).is_file():
            return True
        print(f"ofa: the demo data is not in {root} yet; generating it (a few seconds) ...", file=sys.stderr)
        manifest = writer.generate(root)
    print(f"ofa: wrote the demo data to {root} ({summary(manifest)})", file=sys.stderr)
    return True


def summary(manifest: dict) -> str:
    counts = manifest["counts"]
    return (
        f"{counts['train_images']} + {counts['valid_images']} photos, {counts['train_captions']} + "
        f"{counts['valid_captions']} "
        f"captions, {counts['train_questions']} + {counts['valid_questions']} questions (train + valid)"
    )
