"""`ofa export onnx`: a model as two ONNX graphs plus everything needed to run them, in one folder.

encoder.onnx: input_ids [B, T], attention_mask [B, T], patch_images [B, 3, S, S], patch_masks [B] ->
    last_hidden_state [B, N, D], padding_mask [B, N] (bool), position_keys [H, N, D/H] (the keys of the decoder's
    cross-attention position bias), and cross_key.<i> / cross_value.<i> [B, H, N, D/H] per decoder layer.
decoder_step.onnx: input_ids [R, 1] (each row's newest token, R = B * beams), encoder_padding_mask [B, N],
    position_keys, past_key.<i> / past_value.<i> [R, H, P, D/H] (P = the tokens before), cross_key.<i> /
    cross_value.<i> -> logits [R, V] and present_key.<i> / present_value.<i> [R, H, P + 1, D/H].
The decoder step computes OFA's self- and cross-attention position biases (absolute and relative buckets) for
position P inside the graph; rows of one image share its cross keys/values as the beams of exact mode do.

The graphs are traced from the model's own modules (torch.onnx's TorchScript exporter), checked with
`onnx.checker`, and compared with the PyTorch model on a padded example before the folder is written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import orjson
import torch
from torch import nn
from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache

from ofa_core._errors import OFAError
from ofa_core.exported.manifest import FORMAT, FORMAT_VERSION, GRAPHS, MANIFEST_FILE, is_exported, sha256
from ofa_core.exported.runtime import DECODER_INPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS, cache_names, session
from ofa_core.inference.loading import load_model, model_directory
from ofa_core.model.task_config import TASK_CONFIG_FILE

OPSET = 17
VERIFY_TOLERANCE = 1e-3
"""Largest difference from PyTorch fp32 (relative to magnitudes above 1) an export may show on its example."""


class ExportError(OFAError):
    """A model that cannot be exported as asked."""


def _filled(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A cache holding `pairs` per layer, as the decoder's attention reads and extends it."""
    cache = DynamicCache()
    for keys, values in pairs:
        layer = DynamicLayer()
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
        cache.layers.append(layer)
    return cache


class EncoderGraph(nn.Module):
    """The encoder, then what every decoder step would otherwise recompute from its outputs."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.encoder, self.decoder = model.model.encoder, model.model.decoder
        self.eval()  # a new module trains; the exporter would restore that mode on the model's modules

    def forward(self, input_ids, attention_mask, patch_images, patch_masks):
        outputs = self.encoder(
            input_ids, attention_mask=attention_mask, patch_images=patch_images, patch_masks=patch_masks
        )
        hidden = outputs.last_hidden_state
        cross = [tensor for layer in self.decoder.layers for tensor in layer.cross_attn.project_keys_values(hidden)]
        return (hidden, outputs.padding_mask, self.decoder.cross_position_keys(outputs.position_embeddings), *cross)


class DecoderStepGraph(nn.Module):
    """One decoder position for every row, its position biases computed from the cache length."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.decoder, self.lm_head = model.model.decoder, model.lm_head
        self.layers = len(self.decoder.layers)
        self.eval()

    def forward(self, input_ids, encoder_padding_mask, position_keys, *caches):
        count = self.layers
        past = [(caches[2 * i], caches[2 * i + 1]) for i in range(count)]
        cross = [(caches[2 * count + 2 * i], caches[2 * count + 2 * i + 1]) for i in range(count)]
        cache = EncoderDecoderCache(_filled(past), _filled(cross))
        for index in range(count):
            cache.is_updated[index] = True
        bias = self.decoder.position_bias(caches[0].shape[2], 1, None, position_keys)
        hidden, _ = self.decoder(input_ids, None, encoder_padding_mask, None, cache=cache, position_bias=bias)
        present = [t for layer in cache.self_attention_cache.layers for t in (layer.keys, layer.values)]
        return (self.lm_head(hidden[:, -1]), *present)


@attrs.frozen
class ExportSummary:
    out: Path
    opset: int
    files: dict[str, int]
    """Graph file -> bytes."""
    max_difference: dict[str, float]
    """Largest difference from PyTorch fp32 on the export example (`_relative`): encoder outputs, step outputs."""
    seconds: float

    def lines(self) -> list[str]:
        sizes = ", ".join(f"{name} ({size / 2**20:.1f} MiB)" for name, size in self.files.items())
        diffs = ", ".join(f"{name} {value:.1e}" for name, value in self.max_difference.items())
        return [
            f"exported to {self.out} (ONNX opset {self.opset}) in {self.seconds:.1f} s: {sizes}",
            f"onnx.checker passed; largest difference from PyTorch fp32 on the export example: {diffs}",
        ]


def _example(model: Any, processor: Any) -> dict[str, torch.Tensor]:
    """Two padded rows, the second without an image: every masking path is traced."""
    size = processor.image_processor.patch_image_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (2, 6), generator=generator)
    ids[:, 0] = model.config.bos_token_id
    ids[0, -1] = model.config.eos_token_id
    ids[1, 4] = model.config.eos_token_id
    ids[1, 5] = model.config.pad_token_id
    return {
        "input_ids": ids,
        "attention_mask": ids.ne(model.config.pad_token_id).long(),
        "patch_images": torch.randn(2, 3, size, size, generator=generator),
        "patch_masks": torch.tensor([True, False]),
    }


def _decoder_example(model: Any, encoded: tuple, past: int, beams: int) -> tuple:
    """Decoder-step inputs after `past` tokens for `beams` rows per image."""
    hidden, padding, position_keys, *cross = encoded
    config = model.config
    heads = config.decoder_attention_heads
    rows = hidden.shape[0] * beams
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(5, config.vocab_size, (rows, 1), generator=generator)
    caches = [
        torch.randn(rows, heads, past, config.d_model // heads, generator=generator)
        for _ in range(2 * config.decoder_layers)
    ]
    return (tokens, padding, position_keys, *caches, *cross)


def _export(
    module: nn.Module,
    args: tuple,
    path: Path,
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it fixes (shape checks, flags)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def _axes(model: Any) -> tuple[dict, dict]:
    layers = model.config.decoder_layers
    cross = {name: {0: "batch", 2: "source"} for name in cache_names(layers, "cross")}
    encoder = {
        "input_ids": {0: "batch", 1: "text"},
        "attention_mask": {0: "batch", 1: "text"},
        "patch_images": {0: "batch"},
        "patch_masks": {0: "batch"},
        "last_hidden_state": {0: "batch", 1: "source"},
        "padding_mask": {0: "batch", 1: "source"},
        "position_keys": {1: "source"},
        **cross,
    }
    decoder = {
        "input_ids": {0: "rows"},
        "encoder_padding_mask": {0: "batch", 1: "source"},
        "position_keys": {1: "source"},
        "logits": {0: "rows"},
        **cross,
        **{name: {0: "rows", 2: "past"} for name in cache_names(layers, "past")},
        **{name: {0: "rows", 2: "past_and_new"} for name in cache_names(layers, "present")},
    }
    return encoder, decoder


def _relative(found: np.ndarray, expected: torch.Tensor) -> float:
    """Largest absolute difference, relative to the largest magnitude where that exceeds 1 (fp32 rounding grows
    with magnitude; a well-trained model's values are of order 1)."""
    reference = expected.numpy()
    return float(np.abs(found - reference).max() / max(1.0, float(np.abs(reference).max())))


def _verify(model: Any, folder: Path, encoder_args: tuple, decoder_args: tuple) -> dict[str, float]:
    """Largest differences between onnxruntime and PyTorch on the export example (at another cache length and
    beam count than traced, so a size fixed by tracing shows)."""
    with torch.no_grad():
        encoded = EncoderGraph(model)(*encoder_args)
        step = DecoderStepGraph(model)(*decoder_args)
    ort_encoder = session(folder / "encoder.onnx")
    ort_decoder = session(folder / "decoder_step.onnx")
    feeds = dict(zip(ENCODER_INPUTS, (arg.numpy() for arg in encoder_args)))
    ort_encoded = ort_encoder.run(None, feeds)
    names = [node.name for node in ort_decoder.get_inputs()]
    ort_step = ort_decoder.run(None, dict(zip(names, (arg.numpy() for arg in decoder_args))))
    padding_equal = np.array_equal(ort_encoded[1], encoded[1].numpy())
    encoder_diff = max(_relative(a, b) for a, b in zip(ort_encoded, encoded) if a.dtype != np.bool_)
    step_diff = max(_relative(a, b) for a, b in zip(ort_step, step))
    if not padding_equal or max(encoder_diff, step_diff) > VERIFY_TOLERANCE:
        raise ExportError(
            f"the exported graphs do not reproduce this model (encoder {encoder_diff:.2e}, decoder step "
            f"{step_diff:.2e}, padding {'equal' if padding_equal else 'different'}); this model's "
            f"configuration is not supported by the exporter"
        )
    return {"encoder": encoder_diff, "decoder_step": step_diff}


def _quantize(folder: Path) -> None:
    """int8 weights for the matrix products (the linear layers, as PyTorch's int8 mode), activations quantized
    per call; convolutions stay fp32."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice to pre-process, logged on every call
    try:
        for name in GRAPHS["fp32"]:
            target = folder / f"{name}.int8.onnx"
            quantize_dynamic(
                folder / f"{name}.onnx", target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]
            )
            onnx.checker.check_model(str(target), full_check=True)
    finally:
        root.setLevel(level)


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _manifest(folder: Path, source: Path | None, model: Any, opset: int, difference: dict[str, float]) -> dict:
    graphs = {}
    for path in sorted(folder.glob("*.onnx")):
        graphs[path.name.removesuffix(".onnx")] = {
            "file": path.name,
            "sha256": sha256(path),
            "bytes": path.stat().st_size,
        }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_by": {
            name: _package_version(pkg)
            for name, pkg in (
                ("ofa-framework", "ofa-framework"),
                ("torch", "torch"),
                ("onnx", "onnx"),
                ("onnxruntime", "onnxruntime"),
            )
        },
        "source": str(source.resolve()) if source is not None else None,
        "opset": opset,
        "decoder_layers": model.config.decoder_layers,
        "vocab_size": model.config.vocab_size,
        "verified_max_difference": difference,
        "graphs": graphs,
    }


def export_onnx(
    model_dir: str | Path, out: str | Path, int8: bool = False, overwrite: bool = False, opset: int = OPSET
) -> ExportSummary:
    """Write the exported folder `out` for the model in `model_dir` (a model or run directory)."""
    started = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out)
    if not model_dir.is_dir():
        raise ExportError(f"{model_dir}: --model: no such directory; give a model directory or a run directory")
    if is_exported(model_dir):
        raise ExportError(f"{model_dir}: --model: already an exported folder; give the PyTorch model it came from")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise ExportError(f"{out}: --out: already exists; pass --overwrite to replace it, or choose another --out")
    if out.exists() and out.resolve() in (model_dir.resolve(), *model_dir.resolve().parents):
        raise ExportError(f"{out}: --out: would replace the model being exported; choose another --out")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ExportError(
            "onnx and onnxruntime are not installed; install the extra: pip install 'ofa-framework[onnx]'"
        ) from None
    source = model_directory(model_dir)
    model, processor = load_model(source)
    return export_model(model, processor, out, int8, source, opset, started)


def export_model(
    model: Any,
    processor: Any,
    out: Path,
    int8: bool = False,
    source: Path | None = None,
    opset: int = OPSET,
    started: float | None = None,
) -> ExportSummary:
    """Write the exported folder `out` (replacing it) for a loaded model and its processor; `source`, the model's
    directory, is recorded in the manifest and its ofa_task.json copied."""
    started = time.perf_counter() if started is None else started
    model = model.float().eval()
    example = _example(model, processor)
    encoder_args = tuple(example[name] for name in ENCODER_INPUTS)
    layers = model.config.decoder_layers
    encoder_axes, decoder_axes = _axes(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as staging:
        folder = Path(staging)
        with torch.no_grad():
            encoded = EncoderGraph(model)(*encoder_args)
        _export(
            EncoderGraph(model),
            encoder_args,
            folder / "encoder.onnx",
            list(ENCODER_INPUTS),
            [*ENCODER_OUTPUTS, *cache_names(layers, "cross")],
            encoder_axes,
            opset,
        )
        _export(
            DecoderStepGraph(model),
            _decoder_example(model, encoded, past=3, beams=2),
            folder / "decoder_step.onnx",
            [*DECODER_INPUTS, *cache_names(layers, "past"), *cache_names(layers, "cross")],
            ["logits", *cache_names(layers, "present")],
            decoder_axes,
            opset,
        )
        difference = _verify(model, folder, encoder_args, _decoder_example(model, encoded, past=5, beams=3))
        if int8:
            _quantize(folder)
        processor.save_pretrained(folder)
        model.config.save_pretrained(folder)
        model.generation_config.save_pretrained(folder)
        if source is not None and (source / TASK_CONFIG_FILE).is_file():
            shutil.copyfile(source / TASK_CONFIG_FILE, folder / TASK_CONFIG_FILE)
        manifest = _manifest(folder, source, model, opset, difference)
        (folder / MANIFEST_FILE).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
        if out.exists():
            shutil.rmtree(out)
        Path(staging).rename(out)
        Path(staging).mkdir()  # the context manager removes what it made
    files = {entry["file"]: entry["bytes"] for entry in manifest["graphs"].values()}
    return ExportSummary(out, opset, files, difference, time.perf_counter() - started)
