"""The pre-reorganisation import paths (`ofa_core.specs`, `ofa_core.hookspecs`, ...) keep working for one
release: each re-exports its new module and warns once, naming the new path; old-style plugins still load."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ofa_core.registry.discovery import PluginLoader

REPO = Path(__file__).parents[2]

# old module -> the private module it re-exports (the warning names the one public import, ofa_core.plugin)
MOVED = {
    "ofa_core.hookspecs": "ofa_core.plugin._hooks",
    "ofa_core.specs": "ofa_core.plugin._specs",
    "ofa_core.records": "ofa_core.plugin._records",
    "ofa_core.tsv": "ofa_core.plugin._tsv",
    "ofa_core.errors": "ofa_core._errors",
    "ofa_core.answer_lists": "ofa_core.plugin._answer_lists",
    "ofa_core.boxes": "ofa_core.model.boxes",
    "ofa_core.model.errors": "ofa_core._errors",
    # the public submodules of ofa_core.plugin before they became private, and its test kit before it moved up
    "ofa_core.plugin.hooks": "ofa_core.plugin._hooks",
    "ofa_core.plugin.specs": "ofa_core.plugin._specs",
    "ofa_core.plugin.records": "ofa_core.plugin._records",
    "ofa_core.plugin.tsv": "ofa_core.plugin._tsv",
    "ofa_core.plugin.answer_lists": "ofa_core.plugin._answer_lists",
    "ofa_core.plugin.scores": "ofa_core.plugin._scores",
    "ofa_core.plugin.testing": "ofa_core.testing",
}

# where the warning sends a new import, when not to the plugin API
PUBLIC = {
    "ofa_core.testing": "ofa_core.testing",
    "ofa_core.plugin._scores": "ofa_core.plugin._scores (internal to ofa_core)",
}

# Imports each old module three ways (only the first runs it) in a fresh interpreter and reports every warning it
# raised.
IMPORT_TWICE = """
import importlib, json, sys, warnings
found = {}
for old in sys.argv[1:]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(f"import {old}")  # first: the warning points at this line (file "<string>")
        exec(f"from {old} import *")
        importlib.import_module(old)
    found[old] = [[w.category.__name__, str(w.message), w.filename] for w in caught]
print(json.dumps(found))
"""

OLD_STYLE_PLUGIN = """
import attrs

from ofa_core.errors import OFAError
from ofa_core.hookspecs import hookimpl
from ofa_core.records import BadRows
from ofa_core.specs import PromptTemplate, ReaderSpec, TaskSpec, path_option


@attrs.frozen
class Options:
    train: str | None = path_option(must_exist=False)


def open_split(options, split):
    if options.train is None:
        raise OFAError("data.reader.train: missing")
    BadRows("skip")
    return iter([])


@hookimpl
def ofa_register_tasks(register):
    register("old_style", TaskSpec(prompts={"en": "old_style.en"}, reader="old_style_reader",
                                   loss="label_smoothed_cross_entropy", metrics=(), generation="caption",
                                   description="a plugin written against the old import paths"))


@hookimpl
def ofa_register_prompts(register):
    register("old_style.en", PromptTemplate("old_style.en", "en", " what is {name}?", "{answer}"))


@hookimpl
def ofa_register_readers(register):
    register("old_style_reader", ReaderSpec(Options, open_split, "nothing"))
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def warned() -> dict[str, list[list[str]]]:
    done = run("-c", IMPORT_TWICE, *MOVED)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("old", MOVED)
def test_each_old_module_warns_once_naming_the_plugin_api_and_the_release_that_removes_it(old, warned):
    [(category, message, filename)] = [w for w in warned[old] if w[0] == "DeprecationWarning" and old in w[1]]
    assert category == "DeprecationWarning"
    public = PUBLIC.get(MOVED[old], "ofa_core.plugin")
    assert message == f"{old} is deprecated; import from {public}. The old path will be removed in release 0.2.0."
    assert filename == "<string>", "the warning should point at the importing line"


@pytest.mark.parametrize("old", MOVED)
def test_each_old_module_re_exports_its_new_module(old):
    new_module = importlib.import_module(MOVED[old])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old_module = importlib.import_module(old)
    public = [name for name in vars(new_module) if not name.startswith("_")]
    assert public
    for name in public:
        assert getattr(old_module, name) is getattr(new_module, name), f"{old}.{name}"
    assert getattr(old_module, "__all__", None) == getattr(new_module, "__all__", None)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        old_module.no_such_name  # noqa: B018


@pytest.mark.parametrize("old", [old for old, new in MOVED.items() if PUBLIC.get(new) is None])
def test_each_old_plugin_path_gives_the_same_objects_as_the_plugin_api(old):
    import ofa_core.plugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old_module = importlib.import_module(old)
    shared = [name for name in ofa_core.plugin.__all__ if hasattr(old_module, name)]
    assert shared
    for name in shared:
        assert getattr(old_module, name) is getattr(ofa_core.plugin, name), f"{old}.{name}"


def test_old_paths_do_not_import_torch():
    light = [old for old, new in MOVED.items() if new != "ofa_core.testing"]
    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        f"import {', '.join(light)}\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = run("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


@pytest.fixture
def old_style_folder(tmp_path) -> Path:
    folder = tmp_path / "oldplugins"
    folder.mkdir()
    (folder / "old_style.py").write_text(OLD_STYLE_PLUGIN, encoding="utf-8")
    return folder


def test_a_plugin_written_the_old_way_still_loads_and_registers(old_style_folder):
    plugins = PluginLoader(environ={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plugins.load_directories([old_style_folder])
    assert not plugins.failures
    registry = plugins.registry(strict=True)
    assert not registry.failures
    assert registry.tasks.entry("old_style").origin == "plugins-dir"
    assert registry.prompts.entry("old_style.en").origin == "plugins-dir"
    assert registry.readers.entry("old_style_reader").origin == "plugins-dir"
    task = registry.tasks.get("old_style")
    assert task.reader == "old_style_reader" and task.prompts == {"en": "old_style.en"}


def test_the_cli_lists_a_plugin_written_the_old_way(old_style_folder):
    done = run("-m", "ofa_core", "--plugins-dir", str(old_style_folder), "tasks")
    assert done.returncode == 0, done.stderr
    assert "old_style" in done.stdout
    assert "failed to load" not in done.stderr
