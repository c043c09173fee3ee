"""The `snli_ve` task against OFA's snli_ve code, read for facts: columns, label words, the two prompts and their
clean-up, the prev_output decoder prompt, candidates no/yes/maybe, accuracy; and a tiny model that learns it."""

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
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import OFAError
from ofa_core.testing import check_metric, registry_with, run_recipe, tiny_checkpoint
from ofa_tasks.snli_ve import plugin
from ofa_tasks.snli_ve.plugin import SnliVeOptions, closed_set, postprocess, preprocess
from ofa_tasks.snli_ve.readers import SnliVeTsvOptions, read_snli_ve_tsv
from ofa_tasks.snli_ve.text import clean_caption

BPE_EN = Path(__file__).resolve().parents[2].parent / "shared/spec/BPE_EN"
OFFICIAL = orjson.loads((Path(__file__).resolve().parents[2] / "recipes/official/snli_ve.json").read_bytes())
OPTIONS = SnliVeOptions(**OFFICIAL["task"]["options"])


def png(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return base64.urlsafe_b64encode(buffer.getvalue()).decode()


def write_tsv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    """Rows in the official layout: uniq-id, image-id, image, hypothesis, caption, label."""
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


ROWS = [
    ("7", "img1", png((1, 2, 3)), "A <person> is Running-fast.", "Two dogs/cats play  outside", "entailment"),
    ("8", "img1", png((1, 2, 3)), "nobody is here", "a man", "contradiction"),
    ("9", "img1", png((1, 2, 3)), "it is sunny", "a man", "neutral"),
]


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


def test_reader_maps_the_labels_and_refuses_others_naming_the_row(tmp_path):
    path = write_tsv(tmp_path / "snli_ve_dev.tsv", ROWS)
    records = list(read_snli_ve_tsv(SnliVeTsvOptions(valid=str(path)), "valid"))
    assert [(r["id"], r["label"], r["references"]) for r in records] == [
        ("7", "yes", ["yes"]),
        ("8", "no", ["no"]),
        ("9", "maybe", ["maybe"]),
    ]
    assert (
        records[0]["hypothesis"] == "A <person> is Running-fast."
        and records[0]["premise"] == "Two dogs/cats play  outside"
    )
    assert OFFICIAL["data"]["reader"]["columns"] == [0, 2, 3, 4, 5] == list(SnliVeTsvOptions().columns)
    bad = write_tsv(tmp_path / "bad.tsv", [*ROWS[:1], ("10", "i", png((0, 0, 0)), "h", "c", "Entailment")])
    with pytest.raises(OFAError, match=r"bad.tsv:2: column 5 \(label\) is 'Entailment', not entailment"):
        list(read_snli_ve_tsv(SnliVeTsvOptions(train=str(bad)), "train"))


def test_text_is_cleaned_as_pre_caption_and_cut_to_max_words():
    assert clean_caption("A <person> is Running-fast.") == "a person is running fast."
    assert clean_caption(",.Two dogs/cats play  outside\n") == "two dogs cats play outside"
    assert clean_caption(" ".join(f"w{i}" for i in range(100))) == " ".join(f"w{i}" for i in range(80))
    record = preprocess(
        {"id": 1, "hypothesis": "one two three", "premise": "Four", "label": "neutral"},
        "train",
        attrs.evolve(OPTIONS, max_words=2),
    )
    assert (
        record["statement_en"] == ' can image and text1 " four " imply text2 " one two "?'
        and record["label"] == "maybe"
    )


def test_prompts_decoder_prompt_and_labels_are_ofas_token_ids(tmp_path, en):
    registry = registry_with(plugin)
    row = next(read_snli_ve_tsv(SnliVeTsvOptions(train=str(write_tsv(tmp_path / "t.tsv", ROWS))), "train"))
    prompt_template = registry.prompts.get(registry.tasks.get("snli_ve").prompts["en"])
    assert prompt_template.prompt_type == "prev_output" and OFFICIAL["task"]["options"]["add_caption"]
    encoder = RecordEncoder(en, prompt_template, OFFICIAL["data"]["max_source_length"])
    example = encoder.encode(preprocess(row, "train", OPTIONS))
    text = ' can image and text1 " two dogs cats play outside " imply text2 " a person is running fast. "?'
    assert example.source_ids == (0, *en(text, add_special_tokens=False)["input_ids"], 2)
    prompt = example.source_ids[1:-1]
    assert example.decoder_prompt == prompt and example.decoder_input_ids == (0, *prompt, 4420)  # ' yes'
    assert example.labels == (*[IGNORE_INDEX] * len(prompt), 4420, 2)
    alone = encoder.encode(preprocess(row, "train", attrs.evolve(OPTIONS, add_caption=False)))  # the zero-shot form
    assert alone.source_ids == (
        0,
        *en(' does the image describe " a person is running fast. "?', add_special_tokens=False)["input_ids"],
        2,
    )


def test_candidates_are_no_yes_maybe_with_their_space(en):
    answers = closed_set(OPTIONS)
    assert answers.answers == (" no", " yes", " maybe") and answers.inference == "rank" and answers.restrict_loss
    assert answer_ids(answers, en) == [(117,), (4420,), (2085,)]
    assert postprocess(" maybe", {}, OPTIONS) == "maybe"


def test_accuracy_hand_computed_and_mergeable():
    spec = registry_with(plugin).metrics.get("snli_ve")
    scores = check_metric(spec, ["yes", "no", "maybe", "no"], [["yes"], ["yes"], ["maybe"], ["no"]])
    assert scores == {"accuracy": 75.0}


def test_records_without_a_hypothesis_or_with_a_stray_label_fail_in_one_line():
    with pytest.raises(OFAError, match="--field hypothesis="):
        preprocess({"id": 3, "premise": "p"}, "test", OPTIONS)
    with pytest.raises(OFAError, match="--field premise=.*add_caption to false"):
        preprocess({"id": 3, "hypothesis": "h"}, "test", OPTIONS)
    with pytest.raises(OFAError, match="record 4: label 'perhaps'"):
        preprocess({"id": 4, "hypothesis": "h", "premise": "p", "label": "perhaps"}, "valid", OPTIONS)
    assert preprocess({"id": 5, "hypothesis": "h", "premise": "p"}, "test", OPTIONS)["references"] == []


LABELS = {"entailment": (220, 30, 30), "contradiction": (30, 200, 40), "neutral": (40, 40, 220)}


def test_training_beats_the_untrained_model(tmp_path, capsys):
    rows = [(str(i), "0", png(list(LABELS.values())[i % 3]), "a ball", "a box", list(LABELS)[i % 3]) for i in range(12)]
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "valid.tsv", rows[:3])
    tiny_checkpoint(tmp_path / "model")
    recipe = official_recipe(OFFICIAL, {}, learning_rate=5e-3)
    run_recipe(recipe, tmp_path, max_steps=30)
    scores = [result["accuracy"] for result in untrained_and_trained(tmp_path, capsys)]
    assert scores[1] == 100.0 and scores[0] < 70, scores


def test_the_official_recipe_validates_once_its_files_exist(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "model")
    write_tsv(tmp_path / "snli.tsv", ROWS)
    recipe = Path(__file__).resolve().parents[2] / "recipes/official/snli_ve.json"
    overrides = [
        f"model.checkpoint={tmp_path / 'model'}",
        *[f"data.reader.{split}={tmp_path / 'snli.tsv'}" for split in ("train", "valid", "test")],
    ]
    assert main(["recipe", "validate", str(recipe), *[part for value in overrides for part in ("--set", value)]]) == 0
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert "snli_ve_data.zip" in capsys.readouterr().err  # the setup text says where the data comes from
