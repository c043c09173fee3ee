"""The built-in `text_classification` task against OFA's GLUE code, read for facts: prompts and their ids, label
words, the `src` decoder prompt, answer-masked prediction at the last source position, readers, scores, recipes."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
import torch

from ofa_core.cli import main
from ofa_core.data.encode import RecordEncoder
from ofa_core.generation.closed_set import ClosedSetDecoder
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import BadRecordError, OFAError
from ofa_core.testing import check_metric, registry_with, tiny_checkpoint, tiny_model
from ofa_tasks.text_classification.glue import GLUE, clean
from ofa_tasks.text_classification.metrics import GlueMetricOptions, GlueScores
from ofa_tasks.text_classification.plugin import PROMPTS, TextClassificationOptions, closed_set, postprocess, preprocess
from ofa_tasks.text_classification.readers import GlueJsonlOptions, GlueTsvOptions, read_glue_jsonl, read_glue_tsv

SPEC = Path(__file__).resolve().parents[2].parent / "shared/spec"
BPE_EN = SPEC / "BPE_EN"
RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "official"


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


def options(dataset: str, **extra) -> TextClassificationOptions:
    return TextClassificationOptions(dataset=dataset, **extra)


def test_components_are_registered_with_a_src_prompt_and_a_restricted_closed_set():
    registry = registry_with(installed=True)
    task = registry.tasks.get("text_classification")
    prompt = registry.prompts.get(task.prompts["en"])
    assert (prompt.source, prompt.target, prompt.prompt_type) == ("{prompt_text}", "{answer}", "src")
    assert (task.reader, task.metrics) == ("glue_tsv", ("glue",))
    assert {"glue_tsv", "glue_jsonl"} <= set(registry.readers.names())
    labels = task.closed_set(TextClassificationOptions(dataset="mnli"))
    # The official ans2label order, each word with the leading space of the official target " {label}".
    assert (labels.answers, labels.inference, labels.restrict_loss, labels.noun) == (
        (" maybe", " yes", " no"),
        "rank",
        True,
        "labels",
    )


# Expected texts written from the official nlu datasets: lower-cased, whitespace collapsed, in the official prompt.
@pytest.mark.parametrize(
    "dataset, record, prompt, answer",
    [
        (
            "sst2",
            {"sentence": " A  Great\tFilm ", "label": "1"},
            ' is the sentiment of text " a great film " positive or negative?',
            "positive",
        ),
        (
            "sst2",
            {"sentence": "dull", "label": "0"},
            ' is the sentiment of text " dull " positive or negative?',
            "negative",
        ),
        ("cola", {"sentence": "Him went.", "label": "0"}, ' is the text " him went. " grammatically correct?', "no"),
        (
            "mnli",
            {"sentence1": "A man sleeps.", "sentence2": "Someone rests.", "label": "1"},
            ' can text1 " a man sleeps. " imply text2 " someone rests. "?',
            "yes",
        ),
        ("mnli", {"sentence1": "a", "sentence2": "b", "label": "0"}, ' can text1 " a " imply text2 " b "?', "maybe"),
        (
            "mnli",
            {"sentence1": "a", "sentence2": "b", "label": "contradiction"},
            ' can text1 " a " imply text2 " b "?',
            "no",
        ),
        (
            "mrpc",
            {"sentence1": "He left.", "sentence2": "He went away.", "label": "1"},
            ' does text1 " he left. " and text2 " he went away. " have the same semantics?',
            "yes",
        ),
        # QNLI's prompt names the sentence first, the question second, although its columns are question, sentence.
        (
            "qnli",
            {"question": "Who left?", "sentence": "Ann left.", "label": "not_entailment"},
            ' does " ann left. " contain the answer to question " who left? "?',
            "no",
        ),
        (
            "qnli",
            {"texts": ["Who left?", "Ann left."], "label": "1"},
            ' does " ann left. " contain the answer to question " who left? "?',
            "yes",
        ),
        (
            "qqp",
            {"question1": "How?", "question2": "Why?", "label": "0"},
            ' is question " how? " and question " why? " equivalent?',
            "no",
        ),
        (
            "rte",
            {"sentence1": "X won.", "sentence2": "X lost.", "label": "entailment"},
            ' can text1 " x won. " imply text2 " x lost. "?',
            "yes",
        ),
    ],
)
def test_official_prompts_and_label_words(dataset, record, prompt, answer):
    prepared = preprocess({"id": "r", "image": None, **record}, "train", options(dataset))
    assert (prepared["prompt_text"], prepared["answer"], prepared["references"]) == (prompt, f" {answer}", [answer])
    assert prepared["image"] is None


def test_texts_are_cut_to_max_words_each():
    assert clean("One two  THREE four", 3) == "one two three"
    prepared = preprocess(
        {"id": "r", "sentence1": "a b c", "sentence2": "d e f", "label": "1"}, "valid", options("mrpc", max_words=2)
    )
    assert prepared["prompt_text"] == ' does text1 " a b " and text2 " d e " have the same semantics?'


def test_unknown_labels_and_missing_texts_are_one_line_errors():
    with pytest.raises(OFAError, match=r"label 'entailment' is not one of sst2's labels \(0, 1\)"):
        preprocess({"id": "r", "sentence": "x", "label": "entailment"}, "train", options("sst2"))
    with pytest.raises(OFAError, match="entailment"):  # RTE has only the words, no codes (as the official dataset)
        preprocess({"id": "r", "sentence1": "x", "sentence2": "y", "label": "1"}, "train", options("rte"))
    with pytest.raises(
        OFAError, match=r"needs the text fields sentence1, sentence2 \(missing sentence2\).*--field sentence2="
    ):
        preprocess({"id": "r", "sentence1": "x", "label": "1"}, "train", options("rte"))
    with pytest.raises(OFAError, match=r"2 texts, but sst2 has 1 .*official: \[0, 1\]"):
        preprocess({"id": "r", "texts": ["a", "b"], "label": "1"}, "train", options("sst2"))
    with pytest.raises(OFAError, match="no label; every valid record needs one"):
        preprocess({"id": "r", "sentence": "x"}, "valid", options("sst2"))
    unlabelled = preprocess({"id": "r", "sentence": "x"}, "test", options("sst2"))
    assert (unlabelled["answer"], unlabelled["references"]) == ("", [])


def test_source_decoder_input_and_labels_with_the_official_vocabulary(en):
    record = preprocess({"id": "r", "sentence": "Hello world", "label": "1"}, "train", options("sst2"))
    example = RecordEncoder(en, PROMPTS["en"], max_source_length=1000).encode(record)
    # Ġis Ġthe Ġsentiment Ġof Ġtext Ġ" Ġhello Ġworld Ġ" Ġpositive Ġor Ġnegative ? (dict.txt line + 4)
    source = (16, 5, 5702, 9, 2788, 22, 20760, 232, 22, 1313, 50, 2430, 116)
    assert example.source_ids == (0, *source, 2)
    # Official `src`: the decoder reads the whole source with its EOS, and the label word is predicted at that EOS.
    # The core adds the label's EOS as one more target, which the restricted loss makes certain (no gradient).
    assert example.decoder_input_ids == (0, *source, 2, 1313)
    assert example.labels == (*[IGNORE_INDEX] * (len(source) + 1), 1313, 2)


def test_every_official_answer_word_is_one_token(en):
    for name, dataset in GLUE.items():
        for word in dataset.answers:
            assert len(en(f" {word}", add_special_tokens=False)["input_ids"]) == 1, (name, word)


def test_the_restricted_loss_allows_only_answer_words_then_only_eos(en):
    record = preprocess({"id": "r", "sentence1": "a", "sentence2": "b", "label": "0"}, "train", options("mnli"))
    example = RecordEncoder(en, PROMPTS["en"], max_source_length=1000).encode(record)
    decoder = ClosedSetDecoder(closed_set(options("mnli")), en)
    mask = decoder.constraint_mask(torch.tensor([example.decoder_input_ids]), torch.tensor([example.labels]))[0]
    answer_at = len(example.decoder_input_ids) - 2  # the source EOS position
    assert mask[:answer_at].all()  # prompt positions: no target, unconstrained
    assert mask[answer_at].nonzero().flatten().tolist() == sorted([2085, 4420, 117])  # maybe, yes, no
    assert mask[answer_at + 1].nonzero().flatten().tolist() == [2]


def test_ranking_is_the_argmax_of_answer_masked_logits_at_the_last_source_position(en):
    """As official eval_glue: logits of the decoder fed the whole source, at its last position, masked to the
    answers."""
    torch.manual_seed(0)
    model = tiny_model(1, vocab_size=len(en))
    task_options = options("mnli")
    decoder = ClosedSetDecoder(closed_set(task_options), en)
    answer_ids = torch.tensor(
        [en(f" {word}", add_special_tokens=False)["input_ids"][0] for word in GLUE["mnli"].answers]
    )
    rows = [("a man sleeps", "someone rests"), ("the cat is black", "a dog barks"), ("it rains", "it is dry")]
    for first, second in rows:
        record = preprocess({"id": "r", "sentence1": first, "sentence2": second}, "test", task_options)
        example = RecordEncoder(en, PROMPTS["en"], max_source_length=1000).encode(record)
        source = torch.tensor([example.source_ids])
        with torch.no_grad():
            encoded = model.get_encoder()(
                input_ids=source,
                attention_mask=torch.ones_like(source),
                patch_images=torch.zeros(1, 3, 480, 480),
                patch_masks=torch.tensor([False]),
            )
            scores = decoder.score(model, encoded, torch.tensor([example.decoder_prompt]))
            logits = model(
                input_ids=source,
                attention_mask=torch.ones_like(source),
                patch_images=torch.zeros(1, 3, 480, 480),
                patch_masks=torch.tensor([False]),
                decoder_input_ids=source,
            ).logits[0, -1]
        masked = torch.full_like(logits, -math.inf)
        masked[answer_ids] = logits[answer_ids]
        official = int(masked.argmax())
        assert answer_ids[scores[0].argmax()] == official
        # With one token per answer the ranked score is the answer-masked log-softmax itself (EOS after it is certain).
        assert torch.allclose(scores[0], torch.log_softmax(masked, -1)[answer_ids], atol=1e-5)


def test_postprocess_strips_the_ranked_answer():
    assert postprocess(" yes", {}, options("rte")) == "yes"


def test_scores_hand_computed_and_merged_across_processes():
    predictions = ["yes", "yes", "no", "no", "yes", "no"]
    references = [["yes"], ["no"], ["no"], ["yes"], ["yes"], ["no"]]
    spec = registry_with(installed=True).metrics.get("glue")
    scores = check_metric(spec, predictions, references, GlueMetricOptions(f1=True, mcc=True))
    # tp 2, fp 1, tn 2, fn 1: accuracy 4/6, F1 4/6, MCC (4 - 1) / sqrt(3 * 3 * 3 * 3) = 1/3
    assert scores == pytest.approx({"accuracy": 400 / 6, "f1": 400 / 6, "mcc": 100 / 3})
    assert check_metric(spec, predictions, references) == pytest.approx({"accuracy": 400 / 6})
    constant = GlueScores(GlueMetricOptions(mcc=True))
    constant.update(["yes", "yes"], [["yes"], ["no"]])
    assert constant.compute() == {"accuracy": 50.0, "mcc": 0.0}  # an empty margin: 0, not a division by zero


def test_tsv_reader_takes_the_official_selected_cols_and_an_optional_header(tmp_path):
    path = tmp_path / "qnli.tsv"
    path.write_text(
        "index\tquestion\tsentence\tlabel\n0\tWho?\tAnn.\tentailment\nshort\n1\tWhy?\tBob.\tnot_entailment\n"
    )
    records = list(read_glue_tsv(GlueTsvOptions(train=str(path), columns=[1, 2, 3], header=True), "train"))
    assert [(r["texts"], r["label"], r["image"]) for r in records] == [
        (["Who?", "Ann."], "entailment", None),
        (["Why?", "Bob."], "not_entailment", None),
    ]
    with pytest.raises(BadRecordError, match="qnli.tsv:3: expected 4 tab-separated columns"):
        list(
            read_glue_tsv(GlueTsvOptions(train=str(path), columns=[1, 2, 3], header=True, bad_records="error"), "train")
        )
    with pytest.raises(
        OFAError, match=r"data.reader.columns: give the text columns then the label column.*SST-2 \[0, 1\]"
    ):
        list(read_glue_tsv(GlueTsvOptions(train=str(path)), "train"))
    with pytest.raises(ValueError, match="distinct column numbers"):
        GlueTsvOptions(columns=[1, 1])


def test_jsonl_reader_keeps_named_fields_and_allows_unlabelled_test_rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"sentence": "fine", "label": 1}\n{"sentence": "no label"}\n')
    train = list(read_glue_jsonl(GlueJsonlOptions(train=str(path)), "train"))
    assert [(r["sentence"], r["label"], r["id"]) for r in train] == [("fine", "1", "rows:1")]
    test = list(read_glue_jsonl(GlueJsonlOptions(test=str(path)), "test"))
    assert [r.get("label") for r in test] == ["1", None]


@pytest.mark.parametrize("name", sorted(GLUE))
def test_official_recipes_use_the_official_columns_and_scores(name, tmp_path):
    path = RECIPES / f"glue_{name}.json"
    recipe = orjson.loads(path.read_bytes())
    assert recipe["task"] == {"name": "text_classification", "lang": "en", "options": {"dataset": name}}
    assert recipe["data"]["reader"]["columns"] == list(GLUE[name].columns)
    metric = {"cola": {"mcc": True}, "mrpc": {"f1": True}, "qqp": {"f1": True}}.get(name, {})
    assert recipe["metrics"] == [{"name": "glue", **metric}]
    assert recipe["training"]["metric_for_best_model"] == ("mcc" if name == "cola" else "accuracy")
    tiny_checkpoint(tmp_path / "model")
    row = [""] * (max(GLUE[name].columns) + 1)
    for column, value in zip(
        GLUE[name].columns, [*["some text"] * len(GLUE[name].fields), next(iter(GLUE[name].labels))]
    ):
        row[column] = value
    (tmp_path / "split.tsv").write_text("\t".join(row) + "\n", encoding="utf-8")
    overrides = [
        "--set",
        f'model.checkpoint="{tmp_path / "model"}"',
        "--set",
        'training.mixed_precision="no"',
        "--set",
        f'data.reader.train="{tmp_path / "split.tsv"}"',
        "--set",
        f'data.reader.valid="{tmp_path / "split.tsv"}"',
    ]
    assert main(["recipe", "validate", str(path), *overrides]) == 0
