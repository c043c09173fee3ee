"""Exported graphs in onnxruntime against the PyTorch model in fp32: encoder outputs and decoder-step logits within
1e-4, the same beams, answers and rankings from the one official search, on tiny models of our layout and on
converted official-layout checkpoints (the English tiny architecture and the CN-base shape at a reduced width)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ofa_core.export.onnx import export_onnx
from ofa_core.exported.runtime import ExportedModel
from ofa_core.inference.loading import load_model
from ofa_core.inference.predictor import Predictor
from ofa_core.inference.task_choice import choose_task
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.modeling.beam_search import TorchBackend
from ofa_core.model.search import special_token_ids
from ofa_core.registry import load_plugins
from ofa_core.testing import fake_image, tiny_processor
from tests.convert.conftest import run_cli
from tests.convert.fixtures import CN_BASE_NARROW, TINY, save_fairseq_checkpoint

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=["ours-zh", "official-en-tiny", "official-cn-base-narrow"])
def pair(request, tmp_path_factory, cn_model, cn_exported) -> tuple:
    """(PyTorch model, exported model, processor) for each layout."""
    if request.param == "ours-zh":
        model_dir, exported = cn_model, cn_exported
    else:
        root = tmp_path_factory.mktemp(request.param)
        checkpoint = root / "checkpoint.pt"
        save_fairseq_checkpoint(checkpoint, TINY if request.param == "official-en-tiny" else CN_BASE_NARROW, seed=3)
        model_dir = root / "model"
        assert run_cli("convert", "fairseq", checkpoint, "--out", model_dir, "--no-tokenizer") == 0
        tiny_processor().save_pretrained(model_dir)  # the export needs a processor; these tests feed ids directly
        exported = root / "onnx"
        export_onnx(model_dir, exported)
    model, processor = load_model(model_dir)
    return model.eval(), ExportedModel.load(exported), processor


def _inputs(model, processor, seed: int = 0) -> dict:
    """Three sources of different lengths (padded), two with an image and one text-only."""
    generator = torch.Generator().manual_seed(seed)
    vocab = min(model.config.vocab_size, 200)
    lengths = (7, 4, 9)
    ids = torch.full((3, max(lengths)), model.config.pad_token_id)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(5, vocab, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = model.config.bos_token_id, model.config.eos_token_id
    images = processor.image_processor([fake_image(1), None, fake_image(2)])
    return {"input_ids": ids, "attention_mask": ids.ne(model.config.pad_token_id).long(), **images}


def _encode(backend, inputs):
    return backend.encode(inputs["input_ids"], inputs["attention_mask"], inputs["patch_images"], inputs["patch_masks"])


def test_encoder_outputs_match(pair):
    model, exported, processor = pair
    inputs = _inputs(model, processor)
    with torch.no_grad():
        expected = _encode(TorchBackend(model), inputs)
    found = _encode(exported.search_backend(), inputs)
    assert torch.equal(torch.from_numpy(found.padding_mask), expected.padding_mask)
    torch.testing.assert_close(found.last_hidden_state, expected.last_hidden_state, atol=TOLERANCE, rtol=0)


def test_step_logits_match_with_cache_reordering(pair):
    """Beams grow from one row per source to three, rows are reordered and a source leaves, as in a search."""
    model, exported, processor = pair
    inputs = _inputs(model, processor, seed=1)
    torch_backend, ort_backend = TorchBackend(model), exported.search_backend()
    with torch.no_grad():
        torch_state = torch_backend.start(_encode(torch_backend, inputs), 12)
        ort_state = ort_backend.start(_encode(ort_backend, inputs), 12)
        tokens = torch.full((3, 1), model.config.decoder_start_token_id)
        generator = torch.Generator().manual_seed(2)
        for step in range(6):
            expected, found = torch_state.step(tokens, step), ort_state.step(tokens, step)
            torch.testing.assert_close(found, expected, atol=TOLERANCE, rtol=0)
            rows = tokens.shape[0]
            if step == 0:
                order, kept = torch.arange(3).repeat_interleave(3), None
            elif step == 3:  # the second source finishes: its three rows leave
                order, kept = torch.tensor([2, 0, 1, 8, 6, 7]), torch.tensor([0, 2])
            else:
                order, kept = torch.randperm(rows, generator=generator), None
            torch_state.reorder(order, kept)
            ort_state.reorder(order, kept)
            tokens = torch.randint(5, min(model.config.vocab_size, 200), (order.shape[0], 1), generator=generator)


def test_beams_identical(pair):
    """All five hypotheses of every source, in order, with their scores; no-repeat and min length on."""
    model, exported, processor = pair
    inputs = _inputs(model, processor, seed=3)
    config = official_generation_config("caption", **special_token_ids(model.config))
    config.update(num_return_sequences=5, max_new_tokens=10, min_new_tokens=2, return_dict_in_generate=True)
    expected = model.generate(**inputs, generation_config=config)
    found = exported.generate(
        inputs["input_ids"],
        generation_config=config,
        attention_mask=inputs["attention_mask"],
        patch_images=inputs["patch_images"],
        patch_masks=inputs["patch_masks"],
    )
    assert torch.equal(found, expected.sequences)


@pytest.fixture(scope="module")
def predictors(cn_model, cn_exported):
    model, processor = load_model(cn_model)
    exported = ExportedModel.load(cn_exported)
    registry = load_plugins().registry()

    def build(task: str, options: dict, prompt_type: str | None = None, generation: dict | None = None):
        spec, prompt, built = choose_task(registry, task, "en", options, caller="the test", prompt_type=prompt_type)
        return (
            Predictor(model, processor, spec, prompt, built, generation),
            Predictor(exported, processor, spec, prompt, built, generation),
        )

    return build


IMAGES = [fake_image(seed, (48 + 8 * seed, 40)) for seed in range(6)]
LABELS = ["cat", "dog", "red car", "the image", "what", "region"]


@pytest.mark.parametrize(
    "task, options, prompt_type, fields",
    [
        ("caption", {}, None, {}),
        ("classification", {"labels": LABELS, "top_k": 3}, None, {}),
        ("classification", {"labels": LABELS, "inference": "beam"}, None, {}),
        ("vqa", {}, "prev_output", {"question": "what is in the image?"}),
        ("vqa", {"answers": LABELS, "top_k": 6}, "prev_output", {"question": "which region?"}),
    ],
)
def test_answers_and_rankings_identical(predictors, task, options, prompt_type, fields):
    torch_predictor, ort_predictor = predictors(task, options, prompt_type, {"max_new_tokens": 8})
    records = [{"id": str(index), "image": image, **fields} for index, image in enumerate(IMAGES)]
    expected, found = torch_predictor(records), ort_predictor(records)
    assert [row["text"] for row in found] == [row["text"] for row in expected]
    for mine, theirs in zip(found, expected):
        if "ranking" in theirs:
            assert [entry["answer"] for entry in mine["ranking"]] == [entry["answer"] for entry in theirs["ranking"]]
            for a, b in zip(mine["ranking"], theirs["ranking"]):
                assert a["score"] == pytest.approx(b["score"], abs=TOLERANCE)


def test_int8_graphs_run_the_same_search(predictors, cn_exported):
    """int8 graphs answer through the same predictor; agreement with fp32 is measured, not assumed (docs/export.md)."""
    int8 = ExportedModel.load(cn_exported, "int8")
    assert int8.precision == "int8"
    torch_predictor, _ = predictors("caption", {}, None, {"max_new_tokens": 6})
    quantized = Predictor(
        int8,
        torch_predictor.processor,
        torch_predictor.task,
        torch_predictor.prompt,
        torch_predictor.options,
        {"max_new_tokens": 6},
    )
    rows = quantized([{"id": "0", "image": IMAGES[0]}])
    assert rows[0]["text"] and rows[0]["id"] == "0"


def test_source_model_not_needed(tmp_path, cn_model):
    """The folder holds all the runtime reads: the model it came from can be gone."""
    source = tmp_path / "model"
    source.mkdir()
    for path in Path(cn_model).iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    export_onnx(source, tmp_path / "onnx")
    for path in source.iterdir():
        path.unlink()
    source.rmdir()
    assert ExportedModel.load(tmp_path / "onnx").config.vocab_size > 0


def test_search_runs_on_one_torch_thread_and_restores_the_setting(cn_model, cn_exported, monkeypatch):
    """Between graph runs the search's small tensors run on `SEARCH_THREADS` torch threads (waking sleeping OpenMP
    workers cost more than the work); the caller's setting is back afterwards, after an error too."""
    from ofa_core.exported import runtime

    model, processor = load_model(cn_model)
    exported = ExportedModel.load(cn_exported)
    inputs = _inputs(model, processor, seed=4)
    config = official_generation_config("caption", **special_token_ids(model.config))
    config.update(max_new_tokens=4)
    seen: list[int] = []
    decoder = exported.backend.decoder

    class Recording:
        def run(self, *args):
            seen.append(torch.get_num_threads())
            return decoder.run(*args)

    monkeypatch.setattr(exported.backend, "decoder", Recording())
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        exported.generate(
            inputs["input_ids"],
            generation_config=config,
            attention_mask=inputs["attention_mask"],
            patch_images=inputs["patch_images"],
            patch_masks=inputs["patch_masks"],
        )
        assert seen and set(seen) == {runtime.SEARCH_THREADS} and torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), runtime.torch_threads(1):
            raise RuntimeError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
