"""`ExportedModel`: an exported folder in onnxruntime, shaped as the inference layer expects a model.

The encoder graph runs once per batch and hands over, besides its states, everything the decoder reads of them:
each layer's cross-attention keys/values and the keys of the cross-attention position bias. The decoder-step
graph takes one new token per row with the self-attention cache and returns the logits and the grown cache.
`OrtBackend` feeds both to the official search (`SearchBackend`), so beams, ranking, stopping, prompts and
closed sets are those of exact mode, computed by the same code.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import orjson
import torch

from ofa_core._errors import OFAError
from ofa_core.exported.manifest import GRAPHS, ExportedFolderError, read_manifest
from ofa_core.model.modeling.beam_search import AllowedTokensFn, official_search
from ofa_core.model.search import SearchSettings

ENCODER_INPUTS = ("input_ids", "attention_mask", "patch_images", "patch_masks")
"""The encoder graph's inputs; its outputs are `ENCODER_OUTPUTS` then `cross_key.<i>`, `cross_value.<i>` per layer."""
ENCODER_OUTPUTS = ("last_hidden_state", "padding_mask", "position_keys")
DECODER_INPUTS = ("input_ids", "encoder_padding_mask", "position_keys")
"""The decoder-step graph's first inputs; then `past_key.<i>`, `past_value.<i>` and `cross_key.<i>`,
`cross_value.<i>` per layer. Outputs: `logits`, then `present_key.<i>`, `present_value.<i>` per layer."""


def cache_names(layers: int, kind: str) -> list[str]:
    """`<kind>_key.<i>`, `<kind>_value.<i>` for every layer, in graph order."""
    return [f"{kind}_{part}.{index}" for index in range(layers) for part in ("key", "value")]


@attrs.frozen
class ExportedConfig:
    """What the search and the predictor read of the model's config.json."""

    bos_token_id: int
    eos_token_id: int
    pad_token_id: int
    unk_token_id: int
    decoder_start_token_id: int
    max_position_embeddings: int
    vocab_size: int
    decoder_layers: int
    decoder_attention_heads: int
    d_model: int

    @classmethod
    def read(cls, path: Path) -> ExportedConfig:
        try:
            data = orjson.loads(path.read_bytes())
            return cls(**{field.name: int(data[field.name]) for field in attrs.fields(cls)})
        except FileNotFoundError:
            raise ExportedFolderError(f"{path}: missing; export again with `ofa export onnx --overwrite`") from None
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as error:
            raise ExportedFolderError(
                f"{path}: not the model's config ({error}); export again with `ofa export onnx --overwrite`"
            ) from None


@attrs.define
class ExportedEncoderOutput:
    """The encoder graph's outputs; `last_hidden_state` as torch (rows and device for the search), the rest as the
    numpy arrays the decoder-step graph takes."""

    last_hidden_state: torch.Tensor
    padding_mask: np.ndarray
    position_keys: np.ndarray
    cross: list[np.ndarray]


def _numpy(tensor: torch.Tensor, dtype: Any = None) -> np.ndarray:
    array = tensor.detach().cpu().numpy()
    return np.ascontiguousarray(array if dtype is None else array.astype(dtype, copy=False))


class OrtBackend:
    """`SearchBackend` over the two graphs of an exported folder."""

    def __init__(self, encoder: Any, decoder: Any, config: ExportedConfig) -> None:
        self.encoder, self.decoder, self.config = encoder, decoder, config
        self.cross_names = cache_names(config.decoder_layers, "cross")
        self.past_names = cache_names(config.decoder_layers, "past")
        self.head_dim = config.d_model // config.decoder_attention_heads

    def encode(self, input_ids, attention_mask, patch_images, patch_masks) -> ExportedEncoderOutput:
        if patch_images is None:
            raise OFAError(
                "the exported encoder takes patch_images (the processor gives a blank image and a False "
                "patch mask to text-only records)"
            )
        if attention_mask is None:
            attention_mask = input_ids.ne(self.config.pad_token_id)
        if patch_masks is None:
            patch_masks = torch.ones(input_ids.shape[0], dtype=torch.bool)
        feeds = {
            "input_ids": _numpy(input_ids, np.int64),
            "attention_mask": _numpy(attention_mask, np.int64),
            "patch_images": _numpy(patch_images, np.float32),
            "patch_masks": _numpy(patch_masks, np.bool_),
        }
        hidden, padding, position_keys, *cross = self.encoder.run(None, feeds)
        return ExportedEncoderOutput(torch.from_numpy(hidden), padding, position_keys, cross)

    def start(self, encoder_outputs: ExportedEncoderOutput, max_len: int) -> _OrtDecoderState:
        return _OrtDecoderState(self, encoder_outputs)

    def answer_logits(self, decoder_input_ids, encoder_outputs, per_image, positions) -> torch.Tensor:
        """Teacher forcing as decoder steps: rows share their image's cross keys/values, as beams do."""
        state = _OrtDecoderState(self, encoder_outputs, rows=decoder_input_ids.shape[0])
        steps = [
            state.step(decoder_input_ids[:, index : index + 1], index) for index in range(int(positions.max()) + 1)
        ]
        logits = torch.stack(steps, dim=1)
        return logits.gather(1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))


class _OrtDecoderState:
    """One search's decoder over the step graph: the self-attention cache grows by one position a step."""

    def __init__(self, backend: OrtBackend, encoder_outputs: ExportedEncoderOutput, rows: int | None = None) -> None:
        self.backend = backend
        self.padding = encoder_outputs.padding_mask
        self.position_keys = encoder_outputs.position_keys
        self.cross = list(encoder_outputs.cross)
        config = backend.config
        rows = self.padding.shape[0] if rows is None else rows
        empty = np.zeros((rows, config.decoder_attention_heads, 0, backend.head_dim), dtype=np.float32)
        self.past = [empty] * (2 * config.decoder_layers)

    def step(self, new_tokens: torch.Tensor, step: int) -> torch.Tensor:
        backend = self.backend
        feeds = {
            "input_ids": _numpy(new_tokens, np.int64),
            "encoder_padding_mask": self.padding,
            "position_keys": self.position_keys,
            **dict(zip(backend.past_names, self.past)),
            **dict(zip(backend.cross_names, self.cross)),
        }
        logits, *self.past = backend.decoder.run(None, feeds)
        return torch.from_numpy(logits)

    def reorder(self, rows: torch.Tensor, kept_sentences: torch.Tensor | None) -> None:
        index = rows.cpu().numpy()
        self.past = [np.take(array, index, axis=0) for array in self.past]
        if kept_sentences is None:
            return
        kept = kept_sentences.cpu().numpy()
        self.cross = [np.take(array, kept, axis=0) for array in self.cross]
        self.padding = np.take(self.padding, kept, axis=0)


def session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session on `path`; `threads` bounds its intra-op threads (default: onnxruntime's)."""
    try:
        import onnxruntime
    except ImportError:
        raise OFAError("onnxruntime is not installed; install the extra: pip install 'ofa-framework[onnx]'") from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Between runs the search computes in torch on the same cores: onnxruntime's threads must sleep, not spin
    # (spinning made each step's log-softmax 30x slower on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


SEARCH_THREADS = 1
"""torch's threads while the search runs between graph runs: its tensors are a few rows by the vocabulary, where
waking torch's OpenMP workers (asleep while onnxruntime computed) costs more than the work (on 2 cores, CN-base
shape, batch 1: the search's share of a step fell from about 6 ms to 2 ms)."""


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to `count` inside the block, restored after (a process-wide setting)."""
    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ExportedModel:
    """An exported folder's graphs in onnxruntime with `generate()` and `search_backend()`, as `Predictor`, the
    closed-set decoder, the pipeline and the server use a model."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, directory: Path, config: ExportedConfig, backend: OrtBackend, precision: str) -> None:
        self.directory, self.config, self.backend, self.precision = directory, config, backend, precision

    @classmethod
    def load(cls, directory: str | Path, precision: str = "fp32", threads: int | None = None) -> ExportedModel:
        """The graphs of `precision` ('fp32', or 'int8' when exported with --int8), each checked against the
        manifest's sha256 before onnxruntime reads it."""
        manifest = read_manifest(directory)
        if precision not in GRAPHS:
            raise ExportedFolderError(
                f"precision {precision}: an exported folder runs {' or '.join(GRAPHS)} "
                f"(bf16 and fp16 are PyTorch modes)"
            )
        if precision not in manifest.precisions:
            raise ExportedFolderError(
                f"{manifest.directory}: has no {precision} graphs (it has "
                f"{', '.join(manifest.precisions)}); export with `ofa export onnx --int8`"
            )
        encoder_name, decoder_name = GRAPHS[precision]
        config = ExportedConfig.read(manifest.directory / "config.json")
        backend = OrtBackend(
            session(manifest.graph_path(encoder_name), threads),
            session(manifest.graph_path(decoder_name), threads),
            config,
        )
        return cls(manifest.directory, config, backend, precision)

    def eval(self) -> ExportedModel:
        return self

    def to(self, device: Any) -> ExportedModel:
        if torch.device(device).type != "cpu":
            raise OFAError(f"device {device}: the onnxruntime backend runs on the CPU; use device 'cpu'")
        return self

    def search_backend(self) -> OrtBackend:
        return self.backend

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        generation_config: Any = None,
        prefix_allowed_tokens_fn: AllowedTokensFn | None = None,
        decoder_prompt_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """The official search's best sequences, as `OFAForConditionalGeneration.generate(search='official')`."""
        config = copy.deepcopy(generation_config)
        model_inputs = config.update(**kwargs)
        if config.do_sample:
            raise OFAError("sampling is not offered by the onnxruntime backend; it runs the official beam search")
        settings = SearchSettings.from_generation_config(config)
        with torch_threads(SEARCH_THREADS):
            sequences, _ = official_search(
                self.backend,
                settings,
                input_ids,
                prefix_allowed_tokens_fn,
                model_inputs=model_inputs,
                decoder_prompt_ids=decoder_prompt_ids,
            )
        return sequences
