"""The `vqa` task in OFA's fine-tuned form (recipes/official/vqa.json) against OFA's vqa_gen code, read for facts:
question clean-up, object tags, the prev_output decoder prompt, ' ' + answer targets weighted by their confidence,
the ans2label candidate order, trie masks after the prompt, and the VQA score from the reference confidences."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import attrs
import orjson
import pytest
from PIL import Image
from task_training import official_recipe, untrained_and_trained

from ofa_core.cli import main
from ofa_core.data.encode import RecordEncoder
from ofa_core.generation.answer_tokens import answer_ids
from ofa_core.generation.closed_set import ClosedSetDecoder
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import OFAError
from ofa_core.testing import registry_with, run_recipe, tiny_checkpoint
from ofa_tasks.vqa import plugin
from ofa_tasks.vqa.metrics import VqaAccuracy, VqaMetricOptions
from ofa_tasks.vqa.plugin import VqaOptions, closed_set, postprocess, preprocess
from ofa_tasks.vqa.readers import VqaJsonlOptions, VqaTsvOptions, read_vqa_jsonl, read_vqa_tsv

BPE_EN = Path(__file__).resolve().parents[2].parent / "shared/spec/BPE_EN"
OFFICIAL = orjson.loads((Path(__file__).resolve().parents[2] / "recipes/official/vqa.json").read_bytes())


def png(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return base64.urlsafe_b64encode(buffer.getvalue()).decode()


# The official layout: question-id, image-id, question, answers, objects, image (read as selected_cols 0,5,2,3,4).
ROWS = [
    ("101", "9", "What color is the T-shirt", "0.6|!+red&&0.9|!+blue&&0.3|!+navy", "shirt&&man&&tree"),
    ("102", "9", "?Is it man-made/natural?", "1.0|!+yes&&0.3|!+no", ""),
]


@pytest.fixture
def records(tmp_path) -> list[dict]:
    path = tmp_path / "vqa_val.tsv"
    path.write_text("".join("\t".join((*row, png((9, 9, 9)))) + "\n" for row in ROWS), encoding="utf-8")
    return list(read_vqa_tsv(VqaTsvOptions(valid=str(path)), "valid"))


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


def official_options(answers_file: str | None = None, **changes) -> VqaOptions:
    options = {**OFFICIAL["task"]["options"], "answers_file": answers_file}
    return attrs.evolve(VqaOptions(**options), **changes)


def official_prompt():
    template = registry_with(plugin).prompts.get("vqa.en")
    assert OFFICIAL["task"]["lang"] == "en" and OFFICIAL["task"]["prompt_type"] == "prev_output"
    return attrs.evolve(template, prompt_type="prev_output")


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_the_reader_takes_the_official_columns_and_the_best_answer(records):
    assert [r["id"] for r in records] == ["101", "102"]
    first = records[0]
    assert first["question"] == "What color is the T-shirt" and first["objects"] == "shirt&&man&&tree"
    assert first["answer"] == "blue" and first["confidence"] == 0.9  # max(ref_dict, key=ref_dict.get)
    assert first["references"] == ["0.9|!+blue", "0.6|!+red", "0.3|!+navy"]
    assert OFFICIAL["data"]["reader"]["columns"] == [0, 5, 2, 3, 4] == list(VqaTsvOptions().columns)


def test_question_object_tags_target_and_weight(records):
    first, second = (preprocess(record, "train", official_options()) for record in records)
    assert first["question_en"] == "what color is the t shirt? object: shirt man tree"
    assert second["question_en"] == "is it man made natural? object: "  # an empty column still adds ' object: '
    assert first["answer"] == " blue" and first["loss_weight"] == 0.9
    assert second["answer"] == " yes" and second["loss_weight"] == 1.0
    two = preprocess(records[0], "train", official_options(max_object_length=2))
    assert two["question_en"].endswith(" object: shirt man")
    plain = preprocess(records[0], "train", VqaOptions())  # the task's defaults are unchanged
    assert (
        plain["question_en"] == "what color is the t shirt?"
        and plain["answer"] == "blue"
        and "loss_weight" not in plain
    )


def test_json_lines_give_objects_as_a_list(tmp_path):
    lines = [
        {"id": "a", "image": png((1, 1, 1)), "question": "what?", "answers": ["cat"], "objects": ["cat", "sofa"]},
        {"id": "b", "image": png((1, 1, 1)), "question": "what?", "answers": ["cat"], "objects": 3},
    ]
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    records = list(read_vqa_jsonl(VqaJsonlOptions(train=str(tmp_path / "train.jsonl")), "train"))
    assert [r["id"] for r in records] == ["a"]  # objects that are not a list or text make a bad row
    assert preprocess(records[0], "train", official_options())["question_en"] == "what? object: cat sofa"


def test_source_prompt_and_labels_are_ofas_token_ids(records, en):
    encoder = RecordEncoder(
        en, official_prompt(), OFFICIAL["data"]["max_source_length"], OFFICIAL["data"]["max_target_length"]
    )
    first, second = (encoder.encode(preprocess(record, "train", official_options())) for record in records)
    # OFA encodes ' {question}' and ' object: {objects}' apart and joins them between <s> and </s>.
    question = ids(en, " what color is the t shirt?")
    assert question == [99, 3195, 16, 5, 326, 6399, 116]
    assert first.source_ids == (0, *question, *ids(en, " object: shirt man tree"), 2)
    assert (
        second.source_ids[-4:] == (*ids(en, " object: "), 2) and second.source_ids[-2] == 1437
    )  # the trailing space token
    prompt = first.source_ids[1:-1]
    assert first.decoder_prompt == prompt
    assert first.decoder_input_ids == (0, *prompt, *ids(en, " blue"))
    assert first.labels == (*[IGNORE_INDEX] * len(prompt), *ids(en, " blue"), 2)
    assert first.loss_weight == 0.9 and second.labels[-2:] == (4420, 2)  # ' yes' is 4420, not 'yes' (10932)


def test_candidates_keep_the_ans2label_order_from_a_json_or_tsv_export(tmp_path, en):
    (tmp_path / "ans2label.json").write_bytes(orjson.dumps({"yes": 0, "no": 1, "2": 2, "blue": 3}))
    (tmp_path / "ans2label.tsv").write_text("yes\t0\nno\t1\n2\t2\nblue\t3\n", encoding="utf-8")
    for name in ("ans2label.json", "ans2label.tsv"):
        answers = closed_set(official_options(str(tmp_path / name))).answers
        assert answers == (" yes", " no", " 2", " blue"), name
    assert answer_ids(closed_set(official_options(str(tmp_path / "ans2label.json"))), en)[:2] == [(4420,), (117,)]
    (tmp_path / "twice.tsv").write_text("yes\t0\nyes\t1\n", encoding="utf-8")
    with pytest.raises(OFAError, match="twice.tsv: task.options.answers_file: line 2 repeats 'yes'"):
        closed_set(official_options(str(tmp_path / "twice.tsv")))


def test_constraint_masks_follow_the_trie_after_the_prompt(records, tmp_path, en):
    import torch

    (tmp_path / "ans2label.json").write_bytes(orjson.dumps({"yes": 0, "no": 1, "blue": 2, "blue sky": 3}))
    decoder = ClosedSetDecoder(closed_set(official_options(str(tmp_path / "ans2label.json"))), en)
    example = RecordEncoder(en, official_prompt()).encode(preprocess(records[0], "train", official_options()))
    mask = decoder.constraint_mask(torch.tensor([example.decoder_input_ids]), torch.tensor([example.labels]))[0]
    start = len(example.decoder_prompt)
    assert bool(mask[:start].all())  # prompt positions carry no target, so nothing is constrained there
    assert set(mask[start].nonzero().flatten().tolist()) == {4420, 117, ids(en, " blue")[0]}
    assert set(mask[start + 1].nonzero().flatten().tolist()) == {2, ids(en, " sky")[0]}  # ' blue' ends or goes on


def test_vqa_score_is_the_predictions_reference_confidence(records):
    metric = VqaAccuracy(VqaMetricOptions())
    predictions = [postprocess(text, record, official_options()) for text, record in zip([" red", " no"], records)]
    metric.update(predictions, [record["references"] for record in records])
    assert predictions == ["red", "no"]
    assert metric.compute()["vqa_acc"] == pytest.approx(100 * (0.6 + 0.3) / 2)  # ref_dict.get(pred, 0)


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 40, 220)}


def test_training_in_the_official_form_beats_the_untrained_model(tmp_path, capsys):
    rows = []
    for index in range(12):
        answer, colour = list(COLOURS.items())[index % 3]
        others = "&&".join(f"0.3|!+{other}" for other in COLOURS if other != answer)
        rows.append(f"{index}\t0\tcolour?\t1.0|!+{answer}&&{others}\tball&&box\t{png(colour)}\n")
    (tmp_path / "train.tsv").write_text("".join(rows), encoding="utf-8")
    (tmp_path / "valid.tsv").write_text("".join(rows[:3]), encoding="utf-8")
    (tmp_path / "ans2label.json").write_bytes(orjson.dumps({answer: i for i, answer in enumerate(COLOURS)}))
    tiny_checkpoint(tmp_path / "model")
    recipe = official_recipe(OFFICIAL, {"answers_file": "ans2label.json"}, learning_rate=3e-3)
    run_recipe(recipe, tmp_path, max_steps=40)
    scores = [result["vqa_acc"] for result in untrained_and_trained(tmp_path, capsys)]
    assert scores[1] > scores[0] + 30 and scores[1] > 90, scores
    # evaluate_vqa_beam*.sh: the prompt forced, then beam 5 inside the answers' trie
    assert (
        main(
            [
                "eval",
                str(tmp_path / "recipe.json"),
                "--checkpoint",
                str(max((tmp_path / "run").glob("checkpoint-*"))),
                "--set",
                "task.options.inference=beam",
                "--overwrite",
            ]
        )
        == 0
    )
    assert orjson.loads(capsys.readouterr().out)["vqa_acc"] > 90


def test_the_official_recipe_validates_once_its_files_exist(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "model")
    row = "\t".join((*ROWS[0], png((9, 9, 9)))) + "\n"
    (tmp_path / "vqa.tsv").write_text(row, encoding="utf-8")
    (tmp_path / "ans2label.json").write_bytes(orjson.dumps({"blue": 0, "red": 1}))
    recipe = Path(__file__).resolve().parents[2] / "recipes/official/vqa.json"
    paths = [f"data.reader.{split}={tmp_path / 'vqa.tsv'}" for split in ("train", "valid", "test")]
    overrides = [
        f"model.checkpoint={tmp_path / 'model'}",
        f"task.options.answers_file={tmp_path / 'ans2label.json'}",
        *paths,
    ]
    assert main(["recipe", "validate", str(recipe), *[part for value in overrides for part in ("--set", value)]]) == 0
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert "trainval_ans2label.json" in capsys.readouterr().err  # the setup text says how to make it
