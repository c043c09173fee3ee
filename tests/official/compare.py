"""How `ofa eval`'s output is held against a golden, per kind of task (the `compare` key of a case).

Each comparison gets the golden, the eval's prediction lines (`--predictions`) and its result JSON (stdout), and
raises AssertionError naming the row and both values. Text is compared after the normalisation the official
evaluation function applies to its own output (written down per comparison), never by similarity.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable

# Metric scores are compared on ofa eval's scale (x100); the golden holds the official scorer's value times 100.
METRIC_TOLERANCE = 1e-4
_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation))


def _by_id(golden: dict, lines: list[dict]) -> list[tuple[dict, dict]]:
    """Pair every golden row with ofa eval's line of the same id; the two must hold the same ids, once each."""
    ours = {str(line["id"]): line for line in lines}
    assert len(ours) == len(lines), f"ofa eval wrote a row id twice: {[line['id'] for line in lines]}"
    expected = [row["id"] for row in golden["predictions"]]
    assert sorted(ours) == sorted(expected), f"row ids: ofa eval {sorted(ours)}, official {sorted(expected)}"
    return [(row, ours[row["id"]]) for row in golden["predictions"]]


def check_metric(golden: dict, result: dict) -> None:
    for key, official in golden["metric"].items():
        assert abs(result[key] - official) <= METRIC_TOLERANCE, (
            f"{key}: ofa eval {result[key]!r}, official {official!r}"
        )


def caption(golden: dict, lines: list[dict], result: dict) -> None:
    """English captions: eval_caption removes ASCII punctuation and strips the decoded text; ours is compared so."""
    for row, line in _by_id(golden, lines):
        ours = line["prediction"].translate(_PUNCTUATION).strip()
        assert ours == row["prediction"], f"row {row['id']}: ofa eval {ours!r}, official {row['prediction']!r}"
    check_metric(golden, result)


def caption_zh(golden: dict, lines: list[dict], result: dict) -> None:
    """Chinese captions: as English ones, and without white space (OFA's BERT decoding puts a space between
    characters, ours joins them; the MUGE metric ignores spaces). The golden keeps OFA's text, spaces included."""

    def joined(text: str) -> str:
        return re.sub(r"\s+", "", text.translate(_PUNCTUATION))

    for row, line in _by_id(golden, lines):
        ours, official = joined(line["prediction"]), joined(row["prediction"])
        assert ours == official, f"row {row['id']}: ofa eval {ours!r}, official {official!r}"
    check_metric(golden, result)


# Closed-set scores: the official logit (GLUE) or log-probability of each candidate, held to ours within this.
SCORE_TOLERANCE = 1e-4


def glue(golden: dict, lines: list[dict], result: dict) -> None:
    """GLUE: the same answer, and every answer's score within SCORE_TOLERANCE of eval_glue's. The official run keeps
    the last position's logits of the allowed answers (the rest masked to -inf) and takes the arg-max; ofa eval
    ranks by the log-probability over those answers, so the official logits are normalised over them likewise
    (log_softmax: logit - logsumexp), which keeps their order and differences."""
    for row, line in _by_id(golden, lines):
        assert line["prediction"] == row["prediction"], (
            f"row {row['id']}: ofa eval {line['prediction']!r}, official {row['prediction']!r}"
        )
        ours = {entry["answer"]: entry["score"] for entry in line["ranking"]}
        assert ours.keys() == row["candidates"].keys(), (
            f"row {row['id']}: answers {sorted(ours)} vs {sorted(row['candidates'])}"
        )
        top = max(row["candidates"].values())
        total = top + math.log(sum(math.exp(value - top) for value in row["candidates"].values()))
        for answer, logit in row["candidates"].items():
            official = logit - total
            assert abs(ours[answer] - official) <= SCORE_TOLERANCE, (
                f"row {row['id']}, answer {answer!r}: ofa eval {ours[answer]!r}, official {official!r}"
            )
    check_metric(golden, result)


def exact_text(golden: dict, lines: list[dict], result: dict) -> None:
    """Text the official evaluation already writes in ofa eval's form, compared exactly, then the metric: Gigaword's
    headline (eval_gigaword: lower-cased, tokenization fixed, digits as '#') and Chinese OCR's text (eval_ocr:
    decoded, stripped, spaces removed)."""
    for row, line in _by_id(golden, lines):
        assert line["prediction"] == row["prediction"], (
            f"row {row['id']}: ofa eval {line['prediction']!r}, official {row['prediction']!r}"
        )
    check_metric(golden, result)


# Boxes: each coordinate within this many pixels of the official one (both are computed from the same bins).
BOX_TOLERANCE = 0.5


def box(golden: dict, lines: list[dict], result: dict) -> None:
    """RefCOCO: every coordinate of our box within BOX_TOLERANCE pixel of eval_refcoco's (computed from the best
    beam's bins in float32, ours in float64), then Acc@0.5. A row ofa eval answered without a box fails."""
    for row, line in _by_id(golden, lines):
        ours, official = line["prediction"], row["prediction"]
        assert ours is not None and len(ours) == 4, f"row {row['id']}: ofa eval {ours!r}, official box {official!r}"
        worst = max(abs(mine - theirs) for mine, theirs in zip(ours, official))
        assert worst <= BOX_TOLERANCE, (
            f"row {row['id']}: ofa eval {ours!r}, official {official!r} ({worst:.3g} px apart)"
        )
    check_metric(golden, result)


def closed_set(golden: dict, lines: list[dict], result: dict) -> None:
    """All-candidate inference (eval_vqa_gen without beam search, eval_snli_ve, eval_image_classify): the same
    answer, and every candidate's score (the sum of its tokens' and EOS's log-probabilities under the trie masks,
    unnormalised, as valid_result holds it) within SCORE_TOLERANCE; both sides name answers without OFA's leading
    space."""
    for row, line in _by_id(golden, lines):
        assert line["prediction"] == row["prediction"], (
            f"row {row['id']}: ofa eval {line['prediction']!r}, official {row['prediction']!r}"
        )
        ours = {entry["answer"]: entry["score"] for entry in line["ranking"]}
        assert ours.keys() == row["candidates"].keys(), (
            f"row {row['id']}: answers {sorted(ours)} vs {sorted(row['candidates'])}"
        )
        for answer, official in row["candidates"].items():
            assert abs(ours[answer] - official) <= SCORE_TOLERANCE, (
                f"row {row['id']}, answer {answer!r}: ofa eval {ours[answer]!r}, official {official!r}"
            )
    check_metric(golden, result)


def answer(golden: dict, lines: list[dict], result: dict) -> None:
    """VQA by beam search in the answers' trie: eval_vqa_gen's answer (the best beam after the prompt, decoded and
    stripped) against ours, exactly."""
    for row, line in _by_id(golden, lines):
        assert line["prediction"] == row["prediction"], (
            f"row {row['id']}: ofa eval {line['prediction']!r}, official {row['prediction']!r}"
        )
    check_metric(golden, result)


COMPARISONS: dict[str, Callable[[dict, list[dict], dict], None]] = {
    "caption": caption,
    "caption_zh": caption_zh,
    "glue": glue,
    "summary": exact_text,
    "box": box,
    "ocr": exact_text,
    "closed_set": closed_set,
    "answer": answer,
}
