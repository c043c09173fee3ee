"""The embedded demo: generated "product photos" with Chinese captions, questions and labels, and a small
model to train from scratch, so the whole pipeline runs on a laptop CPU without any download.

The demo lives in `<cache>/demo` (`ofa_core.cache`). `python -m ofa_core demo-data` writes it; a recipe
path inside it that does not exist yet makes the recipe loader write it first (`create_on_first_use`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from ofa_core.cache import cache_dir

MANIFEST = "demo.json"


def demo_dir() -> Path:
    return cache_dir() / "demo"


def builtin_prompt_texts() -> list[str]:
    """The prompts of the built-in tasks: the demo tokenizer must cover their characters too."""
    from ofa_core.plugins import Plugins

    plugins = Plugins(environ={"OFA_LOAD_PLUGINS": ""})  # this project's own plugins only: same vocabulary everywhere
    plugins.load_entry_points()
    return [entry.spec.source + entry.spec.target for entry in plugins.registry().prompts.entries()]


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


def create_on_first_use(path: Path) -> None:
    """Write the demo folder when `path` lies inside it and the demo was never generated (announced on stderr).

    Processes started together (torchrun) take turns: the first writes the demo, the others find it written.
    """
    root = demo_dir().resolve()
    if not Path(path).resolve().is_relative_to(root) or (root / MANIFEST).is_file():
        return
    from ofa_core.demo.writer import generate

    with _exclusive(root.parent / f".{root.name}.lock"):
        if (root / MANIFEST).is_file():
            return
        print(f"ofa: the demo data is not in {root} yet; generating it (a few seconds) ...", file=sys.stderr)
        manifest = generate(root)
    print(f"ofa: wrote the demo data to {root} ({summary(manifest)})", file=sys.stderr)


def summary(manifest: dict) -> str:
    counts = manifest["counts"]
    return (f"{counts['train_images']} + {counts['valid_images']} photos, {counts['train_captions']} + {counts['valid_captions']} "
            f"captions, {counts['train_questions']} + {counts['valid_questions']} questions (train + valid)")
