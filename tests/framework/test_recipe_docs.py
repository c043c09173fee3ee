"""docs/recipe-reference.md is what `ofa recipe docs` renders from the schema, which carries the code's docs."""

from pathlib import Path

import attrs

from ofa_core.cli import main
from ofa_core.recipe.docs import COMMAND, json_schema, render
from ofa_core.recipe.schema import field_docstrings
from ofa_core.recipe.sections import DataSection
from ofa_core.recipe.training import TrainingConfig

DOC = Path(__file__).parents[2] / "docs" / "recipe-reference.md"


def rows() -> dict[str, list[str]]:
    """Reference table rows by key: [type, default, description]."""
    table = {}
    for line in render(json_schema()).splitlines():
        if line.startswith("| `"):
            key, *cells = (cell.strip() for cell in line.strip("|").split(" | "))
            table[key.strip("`")] = cells
    return table


def test_committed_reference_is_what_the_code_generates(capsys):
    assert main(["recipe", "docs"]) == 0
    assert capsys.readouterr().out == DOC.read_text(encoding="utf-8"), (
        f"docs/recipe-reference.md is stale: run `{COMMAND}`"
    )


def test_every_key_has_its_type_default_and_the_description_the_code_carries():
    table = rows()
    docs = field_docstrings(TrainingConfig)
    for field in attrs.fields(TrainingConfig):
        assert f"training.{field.name}" in table, field.name
        if field.name in docs:  # attribute docstrings reach the schema, then the page
            assert table[f"training.{field.name}"][2] == " ".join(docs[field.name].split()), field.name
    for field in attrs.fields(DataSection):
        assert table[f"data.{field.name}"][2] == field.metadata["help"]
    assert table["training.lr_scheduler_type"][:2] == [
        'one of `"linear"`, `"cosine"`, `"constant"`, `"polynomial"`',
        '`"linear"`',
    ]
    assert table["training.fsdp"][0] == 'one of `false`, `true`, `"full_shard"`, `"shard_grad_op"`'
    assert table["training.report_to"][:2] == ["string or list of string or null", '`["tensorboard"]`']
    assert table["model.checkpoint"][1] == "*required*"
    assert table["data.reader"][0] == "[component](#component) or null"
