"""A checkpoint with every official parameter-efficient module gives the official model's logits and beams.

One official-layout checkpoint holds an encoder prefix with projection, a decoder prefix without, and adapters
(the parity suite's `refcoco#*` cases run each alone through `ofa eval`); the golden is the official code's output on
it (tools/reference/make_peft_golden.py). Logits are held within 1e-4, the best two beams to the same tokens.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shlex
from pathlib import Path

import orjson
import pytest
import torch
from PIL import Image

from ofa_core.cli import main
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.modeling import OFAForConditionalGeneration

from .cases import DATA, GOLDENS, REPO, SPEC, Weights
from .checkpoints import digest, tiny_official_model

GOLDEN = GOLDENS / "peft_logits.json"
CONFIG = {
    "patch_image_size": 128,
    "encoder_prompt": True,
    "encoder_prompt_projection": True,
    "encoder_prompt_length": 7,
    "encoder_prompt_dim": 48,
    "decoder_prompt": True,
    "decoder_prompt_length": 5,
    "adapter": True,
    "adapter_dim": 16,
}
SEARCH = {"beam": 5, "max_len_b": 6, "no_repeat_ngram_size": 3}
# Text, image-code and location-bin rows of the English vocabulary (59457 entries).
TOKEN_IDS = [2, 3, 10, 100, 1000, 20000, 50264, 50265, 52000, 58456, 58457, 59000, 59456]
TOLERANCE = 1e-4


def build_checkpoint(directory: Path) -> Path:
    """The official-layout file: our tiny model with the modules, written by `convert to-fairseq --task caption`."""
    model_dir, checkpoint = directory / "peft-model", directory / "peft.pt"
    tiny_official_model("en", Weights(), CONFIG).save_pretrained(model_dir)
    assert main(["convert", "to-fairseq", str(model_dir), "--out", str(checkpoint), "--task", "caption"]) == 0
    return checkpoint


def peft_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two RefCOCO photos of the parity rows as the processor makes them; fixed ids, the second row's text padded."""
    rows = [line.split("\t") for line in (DATA / "refcoco_en.tsv").read_text(encoding="utf-8").splitlines()[:2]]
    photos = [Image.open(io.BytesIO(base64.b64decode(row[4]))).convert("RGB") for row in rows]
    processor = OFAImageProcessor(patch_image_size=CONFIG["patch_image_size"])
    images = processor(photos, return_tensors="pt")["patch_images"]
    ids = torch.tensor([[0, 5, 100, 2000, 30000, 400, 2], [0, 7, 900, 12, 2, 1, 1]])
    decoder = torch.tensor([[0, 10, 20, 50300, 58600], [0, 33, 44, 55, 66]])
    return ids, images, decoder


def inputs_digest(*tensors: torch.Tensor) -> str:
    hasher = hashlib.sha256()
    for tensor in tensors:
        hasher.update(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        hasher.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("peft"))


@pytest.fixture(scope="module")
def converted(checkpoint) -> tuple[str, OFAForConditionalGeneration]:
    out = checkpoint.parent / "converted"
    assert main(["convert", "fairseq", str(checkpoint), "--out", str(out), "--no-tokenizer", "--no-verify"]) == 0
    return digest(checkpoint), OFAForConditionalGeneration.from_pretrained(out).eval()


def test_the_docs_command_converts_a_prompt_tuned_checkpoint(checkpoint, tmp_path, monkeypatch):
    """docs/checkpoints.md's PEFT line, verbatim, in a folder laid out as the page assumes."""
    if not SPEC.is_dir():
        pytest.skip(f"{SPEC} (the official BPE files) not present")
    page = (REPO / "docs/checkpoints.md").read_text(encoding="utf-8")
    line = next(line for line in page.splitlines() if line.startswith("python -m ofa_core convert fairseq refcoco_"))
    (tmp_path / "refcoco_prefix.pt").symlink_to(checkpoint)
    (tmp_path / "OFA/utils").mkdir(parents=True)
    (tmp_path / "OFA/utils/BPE").symlink_to(SPEC / "BPE_EN")
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(line)[3:]) == 0
    model = OFAForConditionalGeneration.from_pretrained(tmp_path / "models/refcoco-prefix")
    assert model.config.encoder_prompt and model.config.decoder_prompt and model.config.adapter
    assert (tmp_path / "models/refcoco-prefix/tokenizer.json").is_file()


def test_logits_and_beams_match_the_official_model(converted):
    assert GOLDEN.is_file(), f"{GOLDEN} is missing: make it with tools/reference/make_peft_golden.py"
    golden = orjson.loads(GOLDEN.read_bytes())
    checkpoint_digest, model = converted
    assert checkpoint_digest == golden["checkpoint_sha256"], "the checkpoint changed: make the golden again"
    ids, images, decoder = peft_inputs()
    assert inputs_digest(ids, images, decoder) == golden["inputs_sha256"], "the inputs changed: make the golden again"
    config = model.config
    assert config.encoder_prompt_projection and not config.decoder_prompt_projection and config.adapter_dim == 16
    with torch.no_grad():
        logits = model(
            input_ids=ids, attention_mask=ids.ne(1).long(), patch_images=images, decoder_input_ids=decoder
        ).logits.double()
    assert (logits.logsumexp(-1) - torch.tensor(golden["logsumexp"])).abs().max() <= TOLERANCE
    assert (logits[:, :, golden["token_ids"]] - torch.tensor(golden["logits"])).abs().max() <= TOLERANCE
    search = golden["search"]
    out = model.generate(
        input_ids=ids,
        attention_mask=ids.ne(1).long(),
        patch_images=images,
        num_beams=search["beam"],
        max_new_tokens=search["max_len_b"] + 1,
        min_new_tokens=1,
        no_repeat_ngram_size=search["no_repeat_ngram_size"],
        num_return_sequences=2,
        return_dict_in_generate=True,
    )
    for row, beams in enumerate(golden["beams"]):
        for rank, beam in enumerate(beams):
            ours = out.sequences[row * 2 + rank].tolist()[1:]
            assert ours[: len(beam["tokens"])] == beam["tokens"], (row, rank)
            assert abs(float(out.sequences_scores[row * 2 + rank]) - beam["score"]) <= TOLERANCE, (row, rank)
