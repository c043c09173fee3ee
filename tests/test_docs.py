"""The user docs cannot silently rot: links resolve, the index lists every page, example recipes
validate, and the task pages name only registered components, with the settings the code uses."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.search import OFFICIAL_SEARCH
from ofa_core.recipe.docs import json_schema
from ofa_core.recipe.schema import build
from ofa_core.recipe.sections import Component, RecipeFile
from ofa_core.recipe.training import TrainingConfig
from ofa_core.testing import registry_with

DOCS = Path(__file__).parents[1] / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
TASK_PAGES = sorted((DOCS / "tasks").glob("*.md"))
KINDS = "task|prompt|reader|loss|metric"
# "reader `muge`", "the `caption` metric", "search `caption-zh`": a component named in prose.
MENTION_AFTER = re.compile(rf"\b({KINDS}|search)s? +`([\w.-]+)`", re.IGNORECASE)
MENTION_BEFORE = re.compile(rf"`([\w.-]+)` +({KINDS}|search)\b", re.IGNORECASE)
# | task | `caption` |   | readers | `muge` (the task's default), `ofa_caption_tsv` |
COMPONENT_ROW = re.compile(r"^\|\s*(task|prompts|readers|loss|metrics|generation)\s*\|(.*)\|\s*$", re.MULTILINE)
# | `caption` | 5 | 17 | 1 | 3 | yes |  (search, beams, max new tokens, min new tokens, no-repeat n-gram, normalised)
SEARCH_ROW = re.compile(r"^\| `([\w-]+)` \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (yes|no) \|$", re.MULTILINE)


def name(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def recipes(page: Path) -> list[dict]:
    """The JSON blocks of a page that are whole recipes (they name a task and a model); JSON-lines examples are not."""
    found = []
    for block in re.findall(r"```json\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
        try:
            value = orjson.loads(block)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and {"task", "model"} <= set(value):
            found.append(value)
    return found


@pytest.fixture(scope="module")
def registry():
    return registry_with(installed=True)


def test_the_index_lists_every_page_and_every_relative_link_resolves():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "README.md":
            assert f"]({name(page)})" in index, f"docs/README.md does not link {name(page)}"
        for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", page.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{name(page)}: broken link {target}"


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_example_recipes_validate_against_the_schema(page):
    for recipe in recipes(page):
        jsonschema.validate(recipe, json_schema())


def build_options(options_class, values: dict, field: str) -> None:
    """The component's options class accepts these options (paths are not checked: docs name example files)."""
    if options_class is None:
        assert not values, f"{field}: takes no options"
    else:
        build(options_class, dict(values), field)


def check_components(recipe: dict, registry) -> None:
    """Every component the recipe names is registered and takes the options it is given."""
    spec = build(RecipeFile, recipe, "")
    task = registry.tasks.get(spec.task.name)
    assert spec.task.lang is None or spec.task.lang in task.prompts
    build_options(task.options, spec.task.options, "task.options")
    for field, kind, ref in [
        ("data.reader", "reader", spec.data.reader or Component(task.reader)),
        ("loss", "loss", spec.loss or Component(task.loss)),
        *[(f"metrics[{i}]", "metric", m) for i, m in enumerate(spec.metrics or [])],
    ]:
        build_options(registry.namespace(kind).get(ref.name).options, ref.options, field)
    assert not isinstance(spec.generation, str) or spec.generation in OFFICIAL_SEARCH
    build(TrainingConfig, {**spec.training, "output_dir": "run"}, "training")


@pytest.mark.parametrize("page", TASK_PAGES, ids=name)
def test_task_pages_name_registered_components_and_the_code_s_settings(page, registry):
    text = page.read_text(encoding="utf-8")
    task = registry.tasks.get(page.stem)  # a task page is named after its task
    mentions = [(kind, found) for kind, found in MENTION_AFTER.findall(text)]
    mentions += [(kind, found) for found, kind in MENTION_BEFORE.findall(text)]
    for kind, found in mentions:
        known = OFFICIAL_SEARCH if kind.lower() == "search" else registry.namespace(kind.lower())
        assert found in known, f"{name(page)}: {kind} `{found}` is not registered"
    table = {row: re.findall(r"`([^`]+)`", cells) for row, cells in COMPONENT_ROW.findall(text)}
    if table:  # the page's component table states the task's defaults
        assert table["task"] == [page.stem]
        assert set(table["prompts"]) == set(task.prompts.values())
        assert task.reader in table["readers"] and [task.loss] == table["loss"]
        assert set(task.metrics) <= set(table["metrics"])
        assert table["generation"] == ([task.generation] if isinstance(task.generation, str) else [])
        for row, kind in [("readers", "reader"), ("metrics", "metric")]:
            assert all(found in registry.namespace(kind) for found in table[row]), (row, table[row])
    for search, *numbers in SEARCH_ROW.findall(text):
        config = official_generation_config(search)
        assert numbers == [
            str(config.num_beams),
            str(config.max_new_tokens),
            str(config.min_new_tokens),
            str(config.no_repeat_ngram_size),
            "yes" if config.normalize_scores else "no",
        ], search
    for recipe in recipes(page):
        check_components(recipe, registry)


REPO = DOCS.parent
# `ofa_core.plugin.hooks`, `ofa_core.model.search.OFFICIAL_SEARCH`: dotted names of this project's code.
DOTTED = re.compile(r"\b((?:ofa_core|ofa_tasks)(?:\.[A-Za-z_]\w*)+)")
# `ofa_core/recipe/training.py`, `benchmarks/bench_startup.py`: files of this repository.
REPO_PATH = re.compile(r"(?<![\w/.~-])((?:ofa_core|ofa_tasks|benchmarks|recipes|plugins|tests)/[\w./-]*\w)")


def resolves(dotted: str) -> bool:
    """`dotted` is an importable module, or an attribute reachable from the longest importable prefix."""
    import importlib
    import warnings

    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                value = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attribute in parts[end:]:
            if not hasattr(value, attribute):
                return False
            value = getattr(value, attribute)
        return True
    return False


def fenced_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced code block, fences paired in order."""
    blocks, language, lines = [], None, []
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            if language is None:
                language, lines = line.strip().strip("`").strip(), []
            else:
                blocks.append((language, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def python_imports(page: Path) -> set[str]:
    """`module.name` for every `from ofa_core... import name` in the page's Python blocks."""
    import ast

    found = set()
    for language, block in fenced_blocks(page):
        if language != "python":
            continue
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue  # a fragment; its dotted names are still checked
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("ofa_core", "ofa_tasks")):
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def commands(page: Path) -> list[list[str]]:
    """Every `python -m ofa_core ...` / `ofa ...` command in the page's shell blocks, as argv after the program."""
    import shlex

    found = []
    for language, block in fenced_blocks(page):
        if language not in ("", "bash", "sh", "console"):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            words, command = list(lexer), []
            for word in [*words, ";"]:
                if word and set(word) <= set(";&|<>"):
                    while command and "=" in command[0] and not command[0].startswith("-"):
                        command = command[1:]  # VARIABLE=value prefixes
                    if command[:3] == ["python", "-m", "ofa_core"]:
                        found.append(command[3:])
                    elif command[:1] == ["ofa"]:
                        found.append(command[1:])
                    command = []
                    if word.startswith(">") or word.startswith("<"):
                        break
                else:
                    command.append(word)
    return found


@pytest.mark.parametrize("page", [*PAGES, REPO / "README.md"], ids=lambda page: page.relative_to(REPO).as_posix())
def test_code_the_page_names_exists(page):
    """Every module, class or function and every repository file a page names exists, so a moved or renamed
    piece of code cannot leave the docs pointing at nothing."""
    text = page.read_text(encoding="utf-8")
    dotted = set(DOTTED.findall(text)) | python_imports(page)
    paths = {path.rstrip(".") for path in REPO_PATH.findall(text)}
    missing = sorted(name for name in dotted if not resolves(name.rstrip(".")))
    # Paths with an example plugin name (`ofa new-plugin my_vqa` writes them) are the user's files, not ours.
    missing += sorted(path for path in paths if not (REPO / path).exists() and not re.search(r"my[_-]", path))
    assert not missing, f"{page.name} names code that does not exist: {missing}"


@pytest.mark.parametrize("page", [*PAGES, REPO / "README.md"], ids=lambda page: page.relative_to(REPO).as_posix())
def test_commands_the_page_shows_parse(page, capsys):
    """Every `ofa` command line in a page's shell blocks names a real verb with real options."""
    from ofa_core.cli.main import build_parser
    from ofa_core.registry import load_plugins

    parser = build_parser(load_plugins())
    for argv in commands(page):
        try:
            parser.parse_args(argv)
        except SystemExit as exit_:
            assert exit_.code == 0, (
                f"{page.name}: `ofa {' '.join(argv)}` does not parse: {capsys.readouterr().err.strip()}"
            )
