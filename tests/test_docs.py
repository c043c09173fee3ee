"""The user docs cannot silently rot: links resolve, the index lists every page, example recipes
validate, and the task pages name only registered components, with the settings the code uses."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from ofa_core.model.search import OFFICIAL_SEARCH
from ofa_core.model.generation_config import official_generation_config
from ofa_core.recipe.docs import json_schema
from ofa_core.recipe.sections import Component, RecipeFile
from ofa_core.recipe.schema import build
from ofa_core.plugin.testing import registry_with
from ofa_core.recipe.training import TrainingConfig

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
    for field, kind, ref in [("data.reader", "reader", spec.data.reader or Component(task.reader)),
                             ("loss", "loss", spec.loss or Component(task.loss)),
                             *[(f"metrics[{i}]", "metric", m) for i, m in enumerate(spec.metrics or [])]]:
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
        assert numbers == [str(config.num_beams), str(config.max_new_tokens), str(config.min_new_tokens),
                           str(config.no_repeat_ngram_size), "yes" if config.normalize_scores else "no"], search
    for recipe in recipes(page):
        check_components(recipe, registry)
