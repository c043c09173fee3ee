"""The comparisons can fail: each golden, held against itself, passes, and every perturbation of it is caught.

Runs without the model or the official files: the "eval output" here is made from the golden itself, the way
`ofa eval` would write it when it agrees with the official code.
"""

from __future__ import annotations

import copy
import math

import orjson
import pytest

from .cases import CASES
from .compare import BOX_TOLERANCE, COMPARISONS, METRIC_TOLERANCE, SCORE_TOLERANCE

GOLDEN_CASES = [case for case in CASES.values() if case.golden_path.is_file()]


def agreeing_output(golden: dict) -> tuple[list[dict], dict]:
    """Prediction lines and a result JSON that say what the golden says."""
    lines = [{"id": row["id"], "prediction": row["prediction"]} for row in golden["predictions"]]
    for line, row in zip(lines, golden["predictions"]):
        if "candidates" in row:  # closed sets: ofa eval ranks every candidate, best first
            total = 0.0
            if golden["case"]["compare"] == "glue":  # GLUE goldens hold logits, ofa eval log-probabilities
                top = max(row["candidates"].values())
                total = top + math.log(sum(math.exp(value - top) for value in row["candidates"].values()))
            ranked = sorted(
                ((answer, value - total) for answer, value in row["candidates"].items()), key=lambda item: -item[1]
            )
            line["ranking"] = [{"answer": answer, "score": score} for answer, score in ranked]
    return lines, {**golden["metric"], "examples": len(lines)}


@pytest.fixture(params=GOLDEN_CASES, ids=lambda case: case.key)
def golden_case(request):
    case = request.param
    return COMPARISONS[case.compare], orjson.loads(case.golden_path.read_bytes())


def test_the_golden_agrees_with_itself(golden_case):
    compare, golden = golden_case
    compare(golden, *agreeing_output(golden))


def test_a_changed_prediction_fails(golden_case):
    compare, golden = golden_case
    lines, result = agreeing_output(golden)
    lines[-1]["prediction"] += "x"
    with pytest.raises(AssertionError, match=f"row {lines[-1]['id']}"):
        compare(golden, lines, result)


def test_a_missing_or_extra_row_fails(golden_case):
    compare, golden = golden_case
    lines, result = agreeing_output(golden)
    with pytest.raises(AssertionError, match="row ids"):
        compare(golden, lines[:-1], result)
    with pytest.raises(AssertionError, match="row ids"):
        compare(golden, [*lines, {**lines[0], "id": "extra"}], result)


@pytest.mark.parametrize("direction", [1, -1])
def test_a_metric_off_by_more_than_the_tolerance_fails(golden_case, direction):
    compare, golden = golden_case
    lines, result = agreeing_output(golden)
    for key in golden["metric"]:
        perturbed = copy.deepcopy(golden)
        perturbed["metric"][key] += direction * 2 * METRIC_TOLERANCE
        with pytest.raises(AssertionError, match=key):
            compare(perturbed, lines, result)


@pytest.mark.parametrize("direction", [1, -1])
def test_a_candidate_score_off_by_more_than_the_tolerance_fails(golden_case, direction):
    compare, golden = golden_case
    lines, result = agreeing_output(golden)
    if "ranking" not in lines[0]:
        pytest.skip("not a closed set")
    lines[0]["ranking"][-1]["score"] += direction * 2 * SCORE_TOLERANCE
    with pytest.raises(AssertionError, match=f"row {lines[0]['id']}, answer"):
        compare(golden, lines, result)


@pytest.mark.parametrize("direction", [1, -1])
def test_a_box_off_by_more_than_the_tolerance_or_missing_fails(golden_case, direction):
    compare, golden = golden_case
    if golden["case"]["compare"] != "box":
        pytest.skip("not a grounding golden")
    lines, result = agreeing_output(golden)
    for coordinate in range(4):
        perturbed = copy.deepcopy(lines)
        perturbed[0]["prediction"][coordinate] += direction * 2 * BOX_TOLERANCE
        with pytest.raises(AssertionError, match=f"row {lines[0]['id']}: .* px apart"):
            compare(golden, perturbed, result)
    perturbed = copy.deepcopy(lines)
    perturbed[0]["prediction"] = None  # ofa eval's answer without four location tokens
    with pytest.raises(AssertionError, match=f"row {lines[0]['id']}"):
        compare(golden, perturbed, result)
