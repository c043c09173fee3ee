"""docs/plugin-hooks.md documents every hook with its exact signature and docstring."""

import inspect
import re
from pathlib import Path

from ofa_core.plugin import _hooks as hookspecs

DOC = Path(__file__).parents[2] / "docs" / "plugin-hooks.md"


def hooks() -> dict:
    return {name: fn for name, fn in vars(hookspecs).items() if name.startswith("ofa_") and callable(fn)}


def test_every_hook_is_documented_with_its_signature_and_docstring():
    text = DOC.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^### `(ofa_\w+)(\(.*\) -> .*)`$", text, flags=re.M))
    assert set(documented) == set(hooks()), "docs/plugin-hooks.md and ofa_core/plugin/_hooks.py list different hooks"
    for name, fn in hooks().items():
        assert documented[name] == str(inspect.signature(fn)).replace("'", ""), (
            f"{name}: signature differs from the docs"
        )
        assert inspect.getdoc(fn) in text, f"{name}: its one-line docstring is not in the docs"


def test_every_hook_is_a_hookspec_with_a_one_line_docstring():
    for name, fn in hooks().items():
        assert getattr(fn, "ofa_core_spec", None) is not None, name
        assert "\n" not in inspect.getdoc(fn), name
