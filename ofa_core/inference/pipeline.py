"""The Python API: `ofa_core.pipeline(task, model=DIR)` gives a callable from images (and task fields) to answers.

    caption = ofa_core.pipeline("caption", model="models/ofa-tiny")
    caption("cat.jpg")                                  # {"prediction": ..., "text": ...}
    vqa = ofa_core.pipeline("vqa", model="models/ofa-tiny")
    vqa(["a.jpg", "b.jpg"], question=["what colour?", "how many?"])   # a list of dicts, in input order

It is a thin layer over `ofa_core.inference.predictor.Predictor`: inputs become records, records are decoded
`batch_size` at a time, rows come back without the bookkeeping. The same machinery is offered to transformers'
`pipeline()` under the task names `ofa-caption`, `ofa-vqa` and `ofa-classification` (`OFATransformersPipeline`,
registered by `ofa_core.auto_registration`); docs/pipeline.md says why those names and not transformers' own.

This module imports torch and transformers' pipeline base, but not the predictor, recipes or the plugin registry
until a pipeline is built, so registering the transformers tasks stays cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers.pipelines.base import Pipeline

from ofa_core._errors import OFAError

RESULT_KEYS = ("prediction", "text", "ranking")
"""The keys of one answer; `ranking` only where the task ranks a closed set (classification, VQA with answers)."""


class OFAPipeline:
    """A callable answering one task: `pipe(images, **fields)` -> a dict for one image, a list for a list.

    Images are paths, PIL images, encoded bytes or numpy arrays. A field given as a scalar applies to every image;
    a list gives one value per image. Records are decoded `batch_size` at a time; answers keep the input order.
    """

    def __init__(
        self, predictor: Any, batch_size: int = 8, task: str | None = None, precision: str | None = None
    ) -> None:
        """`task`: the registered name, for messages; `precision`: the mode the model runs in, when one was chosen."""
        self.predictor, self.batch_size = predictor, _checked_batch_size(batch_size)
        self.task, self.precision = task, precision

    @property
    def model(self) -> Any:
        return self.predictor.model

    @property
    def processor(self) -> Any:
        return self.predictor.processor

    def __call__(self, images: Any, **fields: Any) -> dict | list[dict]:
        single = not isinstance(images, (list, tuple))
        answers = self.run(make_records([images] if single else list(images), fields, single))
        return answers[0] if single else answers

    def run(self, records: list[dict], batch_size: int | None = None) -> list[dict]:
        """Answers for records (`id`, `image` and task fields), decoded `batch_size` at a time, in order."""
        size = _checked_batch_size(batch_size) if batch_size is not None else self.batch_size
        answers: list[dict] = []
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            by_id = {row["id"]: row for row in self.predictor(batch)}
            for record in batch:
                row = by_id.get(record["id"])
                if row is None:
                    raise OFAError(
                        f"input {record['id']}: the task '{self.task}' skipped it (its preprocess "
                        f"returned nothing); check the fields it needs"
                    )
                answers.append({key: row[key] for key in RESULT_KEYS if key in row})
        return answers

    def __repr__(self) -> str:
        mode = f"precision={self.precision!r}" if self.precision else f"dtype={str(self.model.dtype)!r}"
        device = str(self.predictor.device)
        return f"OFAPipeline(task={self.task!r}, device={device!r}, {mode}, batch_size={self.batch_size})"


def _checked_batch_size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OFAError(f"batch_size {value!r}: expected a whole number of at least 1")
    return value


def make_records(images: list, fields: Mapping[str, Any], single: bool = False) -> list[dict]:
    """One record per image: `id` (its position), `image`, and each field's value for it."""
    if not images:
        raise OFAError("no images given; pass one image (a path, PIL image or bytes) or a list of them")
    columns = {}
    for name, value in fields.items():
        if name in ("id", "image"):
            raise OFAError(f"{name}=...: '{name}' is set by the pipeline; pass the images as the first argument")
        if isinstance(value, (list, tuple)):
            if len(value) != len(images):
                given = "1 image" if single else f"{len(images)} images"
                raise OFAError(
                    f"{name}=[...]: {len(value)} values for {given}; give one value per image, "
                    f"or a single value for all"
                )
            columns[name] = list(value)
        else:
            columns[name] = [value] * len(images)
    return [
        {"id": str(index), "image": image, **{name: values[index] for name, values in columns.items()}}
        for index, image in enumerate(images)
    ]


def _dtype(value: Any) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    name = names.get(str(value), str(value).removeprefix("torch."))
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype) or not found.is_floating_point:
        raise OFAError(f"dtype {value!r}: expected a floating-point torch dtype, e.g. torch.bfloat16 or 'float32'")
    return found


def _device(value: Any) -> torch.device:
    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(
            f"cuda:{value}" if isinstance(value, int) and value >= 0 else "cpu" if isinstance(value, int) else value
        )
    except (RuntimeError, TypeError) as error:
        raise OFAError(f"device {value!r}: not a torch device ({error}); e.g. 'cpu', 'cuda' or 'cuda:1'") from None


def resolve_task(
    task: str, lang: str | None = None, options: Mapping[str, Any] | None = None, registry: Any = None
) -> tuple[Any, Any, Any]:
    """(task spec, prompt, built options) of the registered task `task`; every settings error before any loading."""
    from ofa_core.inference.task_choice import choose_task
    from ofa_core.registry import load_plugins

    registry = registry if registry is not None else load_plugins().registry()
    return choose_task(registry, task, lang, options, caller="the pipeline")


def pipeline(
    task: str,
    model: str | Path,
    device: Any = None,
    dtype: Any = None,
    lang: str | None = None,
    options: Mapping[str, Any] | None = None,
    generation: Mapping[str, Any] | None = None,
    batch_size: int = 8,
    precision: str | None = None,
    backend: str = "torch",
) -> OFAPipeline:
    """A callable answering the registered task `task` with the model in `model` (a model or run directory).

    `device`: where the model runs (default: CUDA if available, else the CPU). `precision`: 'fp32' (exact), 'bf16'
    (GPUs, CPUs with native bf16), 'fp16' (GPUs) or 'int8' (CPU), checked against the device before loading
    (`ofa_core.model.precision`); int8 on a model too narrow for it to pay stays fp32 with a warning. `dtype`: cast
    the model unchecked, e.g. `torch.bfloat16` (float16 needs a GPU); give one of `dtype` and `precision`.
    `lang`: the prompt language (default: the task's first). `options`: the
    task's options as a recipe's `task.options` has them, e.g. `{"labels": ["cat", "dog"]}` for classification.
    `generation`: `GenerationConfig` settings over the task's search. `batch_size`: images decoded together.
    `backend`: 'torch', or 'onnxruntime' for a folder written by `ofa export onnx` (CPU; precision 'fp32' or 'int8').
    """
    from ofa_core.inference.loading import load_for_inference, load_model
    from ofa_core.inference.predictor import Predictor
    from ofa_core.model.precision import check

    _checked_batch_size(batch_size)
    if backend == "onnxruntime":
        return _exported_pipeline(task, model, device, dtype, lang, options, generation, batch_size, precision)
    target, dtype = _device(device), _dtype(dtype)
    if precision is not None:
        if dtype is not None:
            raise OFAError(
                f"dtype={dtype} and precision={precision!r}: give one of them (precision='bf16' is a "
                f"checked dtype=torch.bfloat16)"
            )
        check(precision, target, "precision")
    if dtype == torch.float16 and target.type == "cpu":
        raise OFAError(
            "dtype float16 on the CPU: half precision needs a GPU (device='cuda'); "
            "on the CPU use dtype=torch.bfloat16 or float32"
        )
    directory = Path(model)
    if not directory.is_dir():
        raise OFAError(f"{directory}: model: no such directory (give a model directory or a run directory)")
    spec, prompt, built = resolve_task(task, lang, options)
    if precision is None:
        loaded, processor = load_model(directory, {"dtype": dtype} if dtype is not None else None)
        predictor = Predictor(loaded.to(target), processor, spec, prompt, built, dict(generation or {}))
        return OFAPipeline(predictor, batch_size, task)
    ready = load_for_inference(directory, precision, target, "precision")
    if ready.precision.notice:
        warnings.warn(ready.precision.notice, stacklevel=2)
    predictor = Predictor(ready.model, ready.processor, spec, prompt, built, dict(generation or {}))
    return OFAPipeline(predictor, batch_size, task, ready.precision.precision)


def _exported_pipeline(task, model, device, dtype, lang, options, generation, batch_size, precision) -> OFAPipeline:
    """`pipeline(..., backend="onnxruntime")`: the exported graphs behind the same predictor and search."""
    from ofa_core.inference.loading import load_for_inference
    from ofa_core.inference.predictor import Predictor

    if dtype is not None:
        raise OFAError(
            f"dtype={dtype}: the onnxruntime backend runs its exported graphs as they are; give "
            f"precision='fp32' or 'int8'"
        )
    directory = Path(model)
    if not directory.is_dir():
        raise OFAError(f"{directory}: model: no such directory (give a folder written by `ofa export onnx`)")
    spec, prompt, built = resolve_task(task, lang, options)
    ready = load_for_inference(directory, precision or "fp32", device, "precision", backend="onnxruntime")
    predictor = Predictor(ready.model, ready.processor, spec, prompt, built, dict(generation or {}))
    return OFAPipeline(predictor, batch_size, task, ready.precision.precision)


_KEPT_RUNNERS = 8
"""Predictors a transformers pipeline keeps, one per set of options (classification's per-call labels)."""


class OFATransformersPipeline(Pipeline):
    """An OFA task as a transformers pipeline: `transformers.pipeline("ofa-caption", model=DIR)` after
    `import ofa_core`.

    Answers are those of `ofa_core.pipeline` for the same task (the same dicts). Inputs: an image or a list of
    images with fields as keyword arguments (`question=...`), a dict `{"image": ..., "question": ...}` or a list of
    them, or `image=...` as a keyword. `lang`, `options` and `generation` may be given when building the pipeline;
    `batch_size` when building or calling (default 8). Subclasses name the OFA task.
    """

    ofa_task = ""
    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(
        self,
        model: Any,
        *args: Any,
        lang: str | None = None,
        options: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from ofa_core.model.modeling import OFAForConditionalGeneration

        if not isinstance(model, OFAForConditionalGeneration):
            raise OFAError(
                f"{type(self).__name__} runs OFA models only (OFAForConditionalGeneration), got {type(model).__name__}"
            )
        super().__init__(model, *args, **kwargs)
        if self.processor is None:
            raise OFAError(
                f"{type(self).__name__}: no OFA processor; save one with the model (processor.save_pretrained)"
            )
        from ofa_core.registry import load_plugins

        self._settings = {"lang": lang, "options": dict(options or {}), "generation": dict(generation or {})}
        self._registry = load_plugins().registry()
        self._runners: dict[tuple, OFAPipeline] = {}  # by options; a few label sets per call are kept
        if self._complete():
            self.runner()  # errors in the task settings show now, not at the first call

    def _complete(self) -> bool:
        """Whether the settings given at construction suffice to answer (classification's labels may come later)."""
        return True

    def runner(self, options: Mapping[str, Any] | None = None) -> OFAPipeline:
        """The `OFAPipeline` on this model with the built-in settings, `options` updating the task's options."""
        from ofa_core.inference.predictor import Predictor

        merged = {**self._settings["options"], **(options or {})}
        key = tuple(sorted((name, repr(value)) for name, value in merged.items()))
        if key not in self._runners:
            spec, prompt, built = resolve_task(self.ofa_task, self._settings["lang"], merged, self._registry)
            predictor = Predictor(self.model, self.processor, spec, prompt, built, self._settings["generation"])
            if len(self._runners) >= _KEPT_RUNNERS:
                self._runners.pop(next(iter(self._runners)))
            self._runners[key] = OFAPipeline(predictor, task=self.ofa_task)
        return self._runners[key]

    def _sanitize_parameters(self, **kwargs: Any) -> tuple[dict, dict, dict]:
        return kwargs, {}, {}

    def __call__(
        self,
        inputs: Any = None,
        *args: Any,
        batch_size: int | None = None,
        num_workers: int | None = None,
        **fields: Any,
    ) -> dict | list[dict]:
        if args:
            raise OFAError(f"{type(self).__name__}: give task fields as keyword arguments, e.g. question='...'")
        if inputs is None:
            inputs = fields.pop("image", fields.pop("images", None))
        runner = self.runner(self._call_options(fields))
        size = batch_size or self._batch_size or 8
        if isinstance(inputs, Mapping) or (
            isinstance(inputs, (list, tuple)) and inputs and all(isinstance(item, Mapping) for item in inputs)
        ):
            single = isinstance(inputs, Mapping)
            items = [inputs] if single else list(inputs)
            records = []
            for index, item in enumerate(items):
                if "image" not in item:
                    raise OFAError(f"input {index}: a dict input needs an 'image' key, e.g. {{'image': 'cat.jpg'}}")
                records += make_records([item["image"]], {**fields, **{k: v for k, v in item.items() if k != "image"}})
            for index, record in enumerate(records):
                record["id"] = str(index)
            answers = runner.run(records, size)
            return answers[0] if single else answers
        single = not isinstance(inputs, (list, tuple))
        answers = runner.run(make_records([inputs] if single else list(inputs), fields, single), size)
        return answers[0] if single else answers

    def _call_options(self, fields: dict) -> dict | None:
        """Options a call may set; transformers' zero-shot convention `candidate_labels` for classification."""
        return None

    def preprocess(self, inputs: Any, **fields: Any) -> dict:
        return make_records([inputs], fields, single=True)[0]

    def _forward(self, record: dict, **unused: Any) -> dict:
        return self.runner().run([record])[0]

    def postprocess(self, answer: dict, **unused: Any) -> dict:
        return answer


class OFACaptionPipeline(OFATransformersPipeline):
    """`transformers.pipeline("ofa-caption", model=DIR)`: the `caption` task."""

    ofa_task = "caption"


class OFAVQAPipeline(OFATransformersPipeline):
    """`transformers.pipeline("ofa-vqa", model=DIR)`: the `vqa` task; `pipe(image, question="...")`."""

    ofa_task = "vqa"


class OFAClassificationPipeline(OFATransformersPipeline):
    """`transformers.pipeline("ofa-classification", model=DIR, options={"labels": [...]})`: the `classification`
    task; labels may also be given per call as `candidate_labels=[...]`, transformers' zero-shot convention."""

    ofa_task = "classification"

    def __init__(self, model: Any, *args: Any, candidate_labels: Sequence[str] | None = None, **kwargs: Any) -> None:
        if candidate_labels is not None:
            kwargs["options"] = {**(kwargs.get("options") or {}), "labels": list(candidate_labels)}
        super().__init__(model, *args, **kwargs)

    def _complete(self) -> bool:
        options = self._settings["options"]
        return bool(options.get("labels") or options.get("labels_file"))

    def _call_options(self, fields: dict) -> dict | None:
        labels = fields.pop("candidate_labels", None)
        if labels is None:
            return None
        return {"labels": [labels] if isinstance(labels, str) else list(labels), "labels_file": None}


TRANSFORMERS_TASKS = {
    "ofa-caption": OFACaptionPipeline,
    "ofa-vqa": OFAVQAPipeline,
    "ofa-classification": OFAClassificationPipeline,
}
"""transformers task name -> pipeline class; each runs the OFA task its class names."""


def register_transformers_pipelines() -> None:
    """Offer the OFA tasks to `transformers.pipeline(...)`; safe to call any number of times."""
    from transformers import AutoModelForSeq2SeqLM
    from transformers.pipelines import PIPELINE_REGISTRY

    for name, pipeline_class in TRANSFORMERS_TASKS.items():
        if PIPELINE_REGISTRY.supported_tasks.get(name, {}).get("impl") is not pipeline_class:
            PIPELINE_REGISTRY.register_pipeline(
                name, pipeline_class=pipeline_class, pt_model=AutoModelForSeq2SeqLM, type="multimodal"
            )
