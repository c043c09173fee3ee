"""The built-in `summarization` task against OFA's Gigaword code, read for facts: the prompt and its ids, the
clean-up and BPE truncation, the official post-processing of hypotheses, ROUGE, readers, search and recipe."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.data.encode import RecordEncoder
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.search import OFFICIAL_SEARCH
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import BadRecordError, OFAError
from ofa_core.testing import check_metric, registry_with, tiny_checkpoint
from ofa_tasks.summarization.metrics import Rouge, RougeOptions
from ofa_tasks.summarization.plugin import PROMPTS, SummarizationOptions, postprocess, preprocess
from ofa_tasks.summarization.readers import SummaryJsonlOptions, SummaryTsvOptions, read_summary_jsonl, read_summary_tsv
from ofa_tasks.summarization.text import clean, official_hypothesis, ptb_tokens

SPEC = Path(__file__).resolve().parents[2].parent / "shared/spec"
BPE_EN = SPEC / "BPE_EN"
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "official" / "gigaword.json"
OPTIONS = SummarizationOptions()


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


def test_components_are_registered_with_the_official_prompt_and_search():
    registry = registry_with(installed=True)
    task = registry.tasks.get("summarization")
    assert registry.prompts.get(task.prompts["en"]).source == ' what is the summary of article " {article} "?'
    assert (task.reader, task.metrics, task.generation) == ("summary_tsv", ("rouge",), "summarization")
    assert {"summary_tsv", "summary_jsonl"} <= set(registry.readers.names())
    # evaluate_gigaword.sh: --beam 6 --lenpen 0.7 --max-len-b 32 --no-repeat-ngram-size 3
    search = OFFICIAL_SEARCH["summarization"]
    assert (search.beam, search.lenpen, search.max_len_b, search.max_len_a, search.no_repeat_ngram_size) == (
        6,
        0.7,
        32,
        0,
        3,
    )
    config = official_generation_config("summarization")
    assert (config.num_beams, config.length_penalty, config.max_new_tokens, config.no_repeat_ngram_size) == (
        6,
        0.7,
        33,
        3,
    )


@pytest.mark.parametrize(
    "text, words, expected",
    [
        ("<unk> Said the U.S.-based firm/group", 512, "unk said the u.s. based firm group"),
        ("#### people died in  <unk>\n", 512, "people died in unk"),  # leading '#' and ',.!?*:;~' are stripped
        ("a b c d e", 3, "a b c"),
    ],
)
def test_clean_up_is_the_official_caption_clean_up_then_unk(text, words, expected):
    assert clean(text, words) == expected


def test_source_target_and_reference_with_the_official_vocabulary(en):
    record = preprocess(
        {"id": "1", "image": None, "source": "Hello  World", "summary": "Police arrest <unk> suspects"},
        "train",
        OPTIONS,
    )
    assert record["references"] == ["police arrest <unk> suspects"]  # the raw summary, lower-cased only
    example = RecordEncoder(en, PROMPTS["en"], max_source_length=514, max_target_length=128).encode(record)
    # Ġwhat Ġis Ġthe Ġsummary Ġof Ġarticle Ġ" Ġhello Ġworld Ġ" ? (dict.txt line + 4)
    assert example.source_ids == (0, 99, 16, 5, 4819, 9, 1566, 22, 20760, 232, 22, 116, 2)
    # police arrest unk suspects: no leading space, as the official target '{}'.format(target)
    assert example.labels == (24848, 2237, 542, 330, 4089, 2)
    assert example.decoder_input_ids == (0, *example.labels[:-1]) and example.image is None


def test_articles_are_cut_to_512_words_then_512_bpe_tokens(en):
    article = " ".join(["hello world"] * 300)  # 600 words, one token each
    record = preprocess({"id": "1", "source": article, "summary": "x"}, "train", OPTIONS)
    assert len(record["article"].split()) == 512
    full = en(PROMPTS["en"].source.format(article=record["article"]), add_special_tokens=False)["input_ids"]
    example = RecordEncoder(en, PROMPTS["en"], max_source_length=514).encode(record)
    assert len(full) == 7 + 512 + 2 and example.source_ids == (
        0,
        *full[:512],
        2,
    )  # the official encode_text(length=512)


def test_summaries_are_cut_to_max_target_words_and_missing_ones_are_errors():
    record = preprocess(
        {"id": "1", "source": "a", "summary": "one two three"}, "train", SummarizationOptions(max_target_words=2)
    )
    assert (record["target"], record["references"]) == ("one two", ["one two three"])
    with pytest.raises(OFAError, match="record '2': no summary; every valid record needs one as 'summary'"):
        preprocess({"id": "2", "source": "a"}, "valid", OPTIONS)
    with pytest.raises(OFAError, match="record '3': summarization needs the field 'source'.*--field source="):
        preprocess({"id": "3", "summary": "a"}, "train", OPTIONS)
    assert preprocess({"id": "4", "source": "a"}, "test", OPTIONS)["references"] == []


# Expected outputs traced by hand through the official fix_tokenization.
@pytest.mark.parametrize(
    "text, expected",
    [
        ("the ( big ) dog [ x ] { y }", "the -lrb- big -rrb- dog -lsb- x -rsb- -lcb- y -rcb-"),
        ('he said " hi " and " bye "', "he said `` hi '' and `` bye ''"),
        ("he didn ' t go", "he did n't go"),
        ("john ' s car and we ' ll see", "john 's car and we 'll see"),
        ("' quoted ' word", "` quoted ' word"),
        ("wait . . . now", "wait ... now"),
        ("$ 3 , 000 fine", "$ 3,000 fine"),
        ("3 . 5 percent", "3.5 percent"),
        ("U . N . chief", "U.N. . chief"),  # the official loop steps by two after joining, so the last '.' stays
        ("a well - known man", "a well-known man"),
        ("a - - b", "a -- b"),
        ("- start end -", "- start end -"),
        ("x - , y", "x - , y"),
        ("& < > [UNK]", "&amp; &lt; &gt; UNK"),
    ],
)
def test_ptb_tokens(text, expected):
    assert ptb_tokens(text) == expected


def test_postprocess_is_the_official_hypothesis_unless_turned_off():
    assert official_hypothesis(" The 1 ( UK ) deal  ") == "the # -lrb- uk -rrb- deal"
    assert postprocess("US wins 12 - 10", {}, OPTIONS) == "us wins #2-#0"  # only the digit 1 becomes #
    assert postprocess("US wins 12 - 10", {}, SummarizationOptions(official_postprocess=False)) == "US wins 12 - 10"


def test_rouge_on_hand_made_cases():
    spec = registry_with(installed=True).metrics.get("rouge")
    scores = check_metric(
        spec,
        ["the cat sat", "cats running", "# people", "nothing here"],
        [["the cat sat on the mat"], ["cat runs"], ["# people"], ["completely different"]],
    )
    # 1: P 1, R 3/6 -> F1 2/3; bigrams 2 of 5 -> 4/7; LCS 3 -> 2/3.  2: stemmed cat run = cat run -> 1.
    # 3: '#' is not a token for the scorer -> 'people' = 'people' -> 1.  4: 0.
    assert scores == pytest.approx(
        {"rouge1": 100 * (2 / 3 + 1 + 1) / 4, "rouge2": 100 * (4 / 7 + 1 + 0) / 4, "rougeL": 100 * (2 / 3 + 1 + 1) / 4}
    )
    unstemmed = Rouge(RougeOptions(stemmer=False))
    unstemmed.update(["cats running"], [["cat runs"]])
    assert unstemmed.compute()["rouge1"] == 0.0


def test_readers_give_text_only_records(tmp_path):
    path = tmp_path / "giga.tsv"
    path.write_text("an article .\ta summary\nno summary column\n", encoding="utf-8")
    records = list(read_summary_tsv(SummaryTsvOptions(valid=str(path)), "valid"))
    assert records == [{"id": "giga:1", "image": None, "source": "an article .", "summary": "a summary"}]
    with pytest.raises(BadRecordError, match="giga.tsv:2: expected 2 tab-separated columns"):
        list(read_summary_tsv(SummaryTsvOptions(valid=str(path), bad_records="error"), "valid"))
    lines = tmp_path / "giga.jsonl"
    lines.write_bytes(b'{"id": "a", "source": "art", "summary": "sum"}\n{"id": "b", "source": "art"}\n')
    assert [r["id"] for r in read_summary_jsonl(SummaryJsonlOptions(train=str(lines)), "train")] == ["a"]
    assert [r.get("summary") for r in read_summary_jsonl(SummaryJsonlOptions(test=str(lines)), "test")] == ["sum", None]


def test_the_official_recipe_validates_with_data_and_a_model(tmp_path):
    recipe = orjson.loads(RECIPE.read_bytes())
    assert (recipe["task"], recipe["data"]["reader"]["columns"], recipe["generation"]) == (
        {"name": "summarization", "lang": "en"},
        [0, 1],
        "summarization",
    )
    assert recipe["data"]["max_source_length"] == 514  # 512 BPE tokens, BOS and EOS
    assert recipe["training"]["per_device_train_batch_size"] * recipe["training"]["gradient_accumulation_steps"] == 512
    tiny_checkpoint(tmp_path / "model")
    (tmp_path / "split.tsv").write_text("an article\ta summary\n", encoding="utf-8")
    overrides = ["--set", f'model.checkpoint="{tmp_path / "model"}"', "--set", 'training.mixed_precision="no"']
    for split in ("train", "valid", "test"):
        overrides += ["--set", f'data.reader.{split}="{tmp_path / "split.tsv"}"']
    assert main(["recipe", "validate", str(RECIPE), *overrides]) == 0
