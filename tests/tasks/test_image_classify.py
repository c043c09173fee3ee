"""The `classification` task in OFA's `image_classify` form (recipes/official/imagenet.json) against OFA's code, read
for facts: the ImageNet TSV columns and row ids, ImageNet mean/std, the prompt and ' ' + label targets, candidate
scores computed as eval_utils.eval_image_classify does; and a tiny model that learns it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from PIL import Image
from task_training import official_recipe, untrained_and_trained

from ofa_core.cli import main
from ofa_core.data.encode import RecordEncoder
from ofa_core.generation.closed_set import ClosedSetDecoder
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.testing import fake_image, registry_with, run_recipe, tiny_checkpoint, tiny_model, tiny_processor
from ofa_tasks.classification import plugin
from ofa_tasks.classification.labels import ClassificationOptions
from ofa_tasks.classification.plugin import closed_set, postprocess, preprocess
from ofa_tasks.classification.readers import ImageClassifyTsvOptions, read_image_classify_tsv

BPE_EN = Path(__file__).resolve().parents[2].parent / "shared/spec/BPE_EN"
OFFICIAL = orjson.loads((Path(__file__).resolve().parents[2] / "recipes/official/imagenet.json").read_bytes())
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def png(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return base64.urlsafe_b64encode(buffer.getvalue()).decode()


def options(**changes) -> ClassificationOptions:
    return ClassificationOptions(**{**OFFICIAL["task"]["options"], "labels_file": None, **changes})


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


def test_the_reader_takes_image_and_label_words_and_numbers_rows_from_0(tmp_path):
    path = tmp_path / "imagenet_1k_val.tsv"
    path.write_text(f"{png((1, 2, 3))}\t1\tgoldfish\n{png((4, 5, 6))}\t0\ttench \n", encoding="utf-8")
    records = list(read_image_classify_tsv(ImageClassifyTsvOptions(valid=str(path)), "valid"))
    assert [(r["id"], r["label"], r["references"]) for r in records] == [
        ("0", "goldfish", ["goldfish"]),
        ("1", "tench", ["tench"]),
    ]
    assert OFFICIAL["data"]["reader"]["columns"] == [0, 2] == list(ImageClassifyTsvOptions().columns)


def test_prompt_and_space_prefixed_target_are_ofas_token_ids(en):
    registry = registry_with(plugin)
    prompt = registry.prompts.get(registry.tasks.get("classification").prompts[OFFICIAL["task"]["lang"]])
    record = preprocess({"id": "0", "label": "goldfish"}, "train", options(labels=["goldfish", "tench"]))
    example = RecordEncoder(en, prompt).encode(record)
    assert example.source_ids == (0, 99, 473, 5, 2274, 6190, 116, 2)  # ' what does the image describe?'
    assert example.decoder_input_ids == (0, 1637, 9106) and example.labels == (1637, 9106, 2)  # ' goldfish'
    assert (
        record["references"] == ["goldfish"]
        and postprocess(" goldfish", record, options(labels=["goldfish"])) == "goldfish"
    )
    assert closed_set(options(labels=["goldfish", "tench"])).answers == (" goldfish", " tench")


def test_imagenet_mean_and_std_normalise_as_torchvision_would():
    config = OFAConfig.from_preset(
        "tiny-test", patch_image_size=32, image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD)
    )
    processor = OFAImageProcessor.from_config(config)
    image = fake_image(3, (50, 41)).convert("RGBA")
    # Resize((32, 32), BICUBIC) -> ToTensor -> Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    pixels = np.asarray(image.convert("RGB").resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255
    expected = (torch.from_numpy(pixels).permute(2, 0, 1) - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(
        IMAGENET_STD
    )[:, None, None]
    torch.testing.assert_close(processor(image)["patch_images"][0], expected)
    assert not torch.allclose(OFAImageProcessor(patch_image_size=32)(image)["patch_images"][0], expected)


def official_scores(model, encoder_outputs, answers: list[list[int]], bos: int, eos: int, pad: int) -> torch.Tensor:
    """eval_image_classify: decoder input <s> + label, target label + </s>, trie masks (padded True), pads zeroed."""
    trie: dict = {}
    for ids in answers:
        node = trie
        for token in (bos, *ids, eos):
            node = node.setdefault(token, {})

    def next_layer(prefix: list[int]) -> list[int]:
        node = trie
        for token in prefix:
            node = node[token]
        return list(node)

    width = max(len(ids) for ids in answers) + 1
    vocab = model.config.vocab_size
    targets = torch.full((len(answers), width), pad)
    inputs = torch.full((len(answers), width), pad)
    masks = torch.ones(len(answers), width, vocab, dtype=torch.bool)
    for row, ids in enumerate(answers):
        previous = [bos, *ids]
        targets[row, : len(ids) + 1] = torch.tensor([*ids, eos])
        inputs[row, : len(ids) + 1] = torch.tensor(previous)
        for position in range(len(previous)):
            masks[row, position] = False
            masks[row, position, next_layer(previous[: position + 1])] = True
    batch = encoder_outputs.last_hidden_state.shape[0]
    repeat = torch.arange(batch).repeat_interleave(len(answers))
    encoder = OFAEncoderOutput(
        last_hidden_state=encoder_outputs.last_hidden_state.index_select(0, repeat),
        padding_mask=encoder_outputs.padding_mask.index_select(0, repeat),
        position_embeddings=encoder_outputs.position_embeddings.index_select(0, repeat),
    )
    hidden = model.model(
        decoder_input_ids=inputs.repeat(batch, 1), encoder_outputs=encoder, use_cache=False
    ).last_hidden_state
    logits = model.lm_head(hidden).float().masked_fill(~masks.repeat(batch, 1, 1), float("-inf"))
    lprobs = torch.log_softmax(logits, dim=-1)
    picked = lprobs.gather(-1, targets.repeat(batch, 1)[:, :, None]).squeeze(-1)
    return picked.masked_fill(targets.repeat(batch, 1).eq(pad), 0.0).sum(1).view(batch, len(answers))


@torch.no_grad()
def test_every_label_is_scored_as_eval_image_classify_does():
    processor = tiny_processor()
    tok = processor.tokenizer
    model = tiny_model(1, vocab_size=len(tok), code_dict_size=16).eval()
    labels = ["cat", "car", "cart", "dog", "红色"]  # shared prefixes exercise the trie masks
    decoder = ClosedSetDecoder(closed_set(options(labels=labels)), tok)
    inputs = processor(text=[" what does the image describe?"] * 2, images=[fake_image(0), fake_image(1)])
    encoder_outputs = model.get_encoder()(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        patch_images=inputs["patch_images"],
        patch_masks=inputs["patch_masks"],
    )
    answers = [tok(" " + label, add_special_tokens=False)["input_ids"] for label in labels]
    expected = official_scores(model, encoder_outputs, answers, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    torch.testing.assert_close(decoder.score(model, encoder_outputs), expected, atol=1e-4, rtol=1e-4)
    decoded = decoder.decode(model, dict(inputs), None, tok)
    assert [labels[int(i)] for i in expected.argmax(1)] == [postprocess(d.text, {}, None) for d in decoded]


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 40, 220)}


def test_training_in_the_official_form_beats_the_untrained_model(tmp_path, capsys):
    rows = [f"{png(colour)}\t{index}\t{label}\n" for index, (label, colour) in enumerate(COLOURS.items())]
    (tmp_path / "train.tsv").write_text("".join(rows * 4), encoding="utf-8")
    (tmp_path / "valid.tsv").write_text("".join(rows), encoding="utf-8")
    (tmp_path / "class2label.json").write_bytes(orjson.dumps({label: index for index, label in enumerate(COLOURS)}))
    tiny_checkpoint(tmp_path / "model")
    recipe = official_recipe(OFFICIAL, {"labels_file": "class2label.json"}, learning_rate=5e-3)
    run_recipe(recipe, tmp_path, max_steps=60)
    scores = [result["accuracy"] for result in untrained_and_trained(tmp_path, capsys)]
    assert scores[1] == 100.0 and scores[0] < 70, scores


def test_the_official_recipe_validates_once_its_files_exist(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "model")
    (tmp_path / "imagenet.tsv").write_text(f"{png((1, 2, 3))}\t0\tgoldfish\n", encoding="utf-8")
    (tmp_path / "class2label.json").write_bytes(orjson.dumps({"goldfish": 0, "tench": 1}))
    recipe = Path(__file__).resolve().parents[2] / "recipes/official/imagenet.json"
    overrides = [
        f"model.checkpoint={tmp_path / 'model'}",
        f"task.options.labels_file={tmp_path / 'class2label.json'}",
        *[f"data.reader.{split}={tmp_path / 'imagenet.tsv'}" for split in ("train", "valid", "test")],
    ]
    assert main(["recipe", "validate", str(recipe), *[part for value in overrides for part in ("--set", value)]]) == 0
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert "class2label_new.json" in capsys.readouterr().err  # the setup text says how to make it
