"""Every official recipe, evaluated exactly as its docs page says, gives what OFA's own evaluate.py gave.

Per recipe in recipes/official/: build the case's tiny official-layout checkpoint (tests/official/checkpoints.py),
check that it is the very file the golden was made on, convert it back as a user would
(`convert fairseq X.pt --out DIR --bpe-dir/--vocab ...`), run
`ofa eval RECIPE --checkpoint DIR --set data.reader.valid=ROWS.tsv --predictions OUT.jsonl` and hold the
predictions, scores and metric against tests/official/goldens/<recipe>.json (made by
tools/reference/make_goldens.py with the official code). A recipe without a case or a golden fails. A recipe
that another official script evaluates too (VQA's beam search) has a further case, `recipe#variant`, run with the
`--set` flags its docs page gives for that script.
"""

from __future__ import annotations

import hashlib
import shutil

import orjson
import pytest

from ofa_core.cli import main

from .cases import CASES, DATA, RECIPES, REPO, SPEC, Case, record
from .compare import COMPARISONS

OFFICIAL_RECIPES = sorted(path.stem for path in RECIPES.glob("*.json"))
TRAINING_ONLY = {"$schema", "name", "description", "setup", "extends", "model", "training", "peft", "output_dir"}


def training_variant(recipe: str) -> str | None:
    """The recipe a parameter-efficient training recipe extends, when it changes nothing evaluation reads but the
    modules its `peft` section adds (which the base's `#prefix` / `#adapter` cases check), else None."""
    data = orjson.loads((RECIPES / f"{recipe}.json").read_bytes())
    if "extends" in data and "peft" in data and set(data) <= TRAINING_ONLY:
        return str(data["extends"]).removesuffix(".json")
    return None


VARIANTS = {recipe: base for recipe in OFFICIAL_RECIPES if (base := training_variant(recipe)) is not None}
# every recipe, and every further case of one; a training variant is checked through its base's cases
PARITY_RUNS = sorted((set(OFFICIAL_RECIPES) - set(VARIANTS)) | set(CASES))


@pytest.mark.parametrize("recipe", sorted(VARIANTS))
def test_a_parameter_efficient_recipe_is_covered_by_its_base_s_cases(recipe) -> None:
    base, method = VARIANTS[recipe], orjson.loads((RECIPES / f"{recipe}.json").read_bytes())["peft"]["method"]
    assert base in CASES, f"{recipe}: its base recipe {base} has no parity case"
    if method != "bitfit":  # BitFit trains biases only: its checkpoint is an ordinary one, the base case
        assert f"{base}#{method}" in CASES, f"{recipe}: add a {base}#{method} case to tests/official/cases.py"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_golden(recipe: str) -> tuple[Case, dict]:
    case = CASES.get(recipe)
    assert case is not None, (
        f"recipes/official/{recipe}.json has no parity case: add one to tests/official/cases.py "
        "(tests/official/README.md says how)"
    )
    assert case.recipe_path.is_file(), f"case {recipe}: {case.recipe_path.relative_to(REPO)} does not exist"
    assert case.golden_path.is_file(), (
        f"{case.golden_path.relative_to(REPO)} is missing: make it with "
        f"tools/reference/make_goldens.py {recipe} (tools/reference/README.md)"
    )
    golden = orjson.loads(case.golden_path.read_bytes())
    assert golden["case"] == record(case), (
        f"tests/official/cases.py's {recipe} case changed since its golden was made: make the golden again"
    )
    assert golden["rows_sha256"] == sha256(case.rows_path), f"{case.rows_path.name} changed since the golden was made"
    return case, golden


@pytest.mark.parametrize("recipe", PARITY_RUNS)
def test_the_recipe_evaluates_as_the_official_code(recipe, tmp_path, capsys, built):
    case, golden = load_golden(recipe)
    if not SPEC.is_dir():
        pytest.skip(f"{SPEC} (the official BPE files and Chinese vocabulary) not present")
    model = built(case)
    assert model.digest == golden["checkpoint_sha256"], (
        "the checkpoint built by tests/official/checkpoints.py is not the one the golden was made on (the builder, "
        "the model code or convert to-fairseq changed what it writes): make the golden again"
    )
    # A copy of the recipes, so that the run's output_dir (relative to the recipe) lands in tmp_path.
    recipes = shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    for task_file in case.files:  # where the recipe's setup puts them, relative to the project folder (tmp_path)
        (tmp_path / task_file.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / task_file.data, tmp_path / task_file.path)
    predictions = tmp_path / "predictions.jsonl"
    capsys.readouterr()
    sets = [argument for setting in case.sets for argument in ("--set", setting)]
    assert (
        main(
            [
                "eval",
                str(recipes / "official" / f"{case.recipe}.json"),
                "--checkpoint",
                str(model.converted),
                "--set",
                f"data.reader.valid={case.rows_path}",
                *sets,
                "--predictions",
                str(predictions),
            ]
        )
        == 0
    )
    result = orjson.loads(capsys.readouterr().out)
    assert result["examples"] == len(golden["predictions"]) and result["precision"] == "fp32"  # as the official run
    lines = [orjson.loads(line) for line in predictions.read_bytes().splitlines()]
    COMPARISONS[case.compare](golden, lines, result)
