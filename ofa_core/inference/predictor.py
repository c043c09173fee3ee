"""`Predictor`: a model with a task's prompt, generation settings, closed set and postprocess, on batches of records.

Used by `ofa predict`; everything task-specific comes from the task's spec, so any registered task predicts.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from ofa_core._errors import OFAError
from ofa_core.data.collate import pad_rows
from ofa_core.data.encode import RecordEncoder
from ofa_core.generation.closed_set import AllowedTokens, ClosedSetDecoder, decode_batch
from ofa_core.generation.settings import generation_config
from ofa_core.inference.loading import load_model
from ofa_core.model.search import special_token_ids
from ofa_core.plugin import PromptTemplate, TaskSpec
from ofa_core.recipe import closed_set_of, task_search


class Predictor:
    """A model and its processor with one task's prompt, generation settings, closed set and postprocess.

    Several predictors may share one loaded model (a server answering several tasks); `from_directory` loads one.
    `generation` refines the task's search with `GenerationConfig` keyword arguments.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        task: TaskSpec,
        prompt: PromptTemplate,
        options: Any = None,
        generation: dict | None = None,
    ) -> None:
        self.model, self.processor = model.eval(), processor
        self.device = model.device
        self.generation = generation_config(task_search(task, prompt), **special_token_ids(model.config))
        unknown = self.generation.update(**(generation or {}))
        if unknown:
            raise OFAError(
                f"generation {', '.join(unknown)}: not a generation setting; see transformers' GenerationConfig"
            )
        self.task, self.prompt, self.options = task, prompt, options
        closed_set = closed_set_of(task, options, prompt)
        tokenizer = processor.tokenizer
        allowed_ids = task.allowed_tokens(options, tokenizer) if task.allowed_tokens else None
        allowed = AllowedTokens(allowed_ids, tokenizer.eos_token_id) if allowed_ids is not None else None
        self.answers = functools.partial(  # (model, inputs) -> list[Decoded]
            decode_batch,
            generation_config=self.generation,
            tokenizer=tokenizer,
            closed_set=ClosedSetDecoder(closed_set, tokenizer) if closed_set else None,
            allowed_tokens=allowed,
        )
        self.encoder = RecordEncoder(tokenizer, prompt)

    @classmethod
    def from_directory(
        cls,
        model_dir: str | Path,
        task: TaskSpec,
        prompt: PromptTemplate,
        options: Any = None,
        generation: dict | None = None,
        device: str | torch.device | None = None,
    ) -> Predictor:
        """A predictor on the model in `model_dir` (a model or run directory), moved to `device` if given."""
        model, processor = load_model(model_dir)
        return cls(model.to(device) if device is not None else model, processor, task, prompt, options, generation)

    def __call__(self, batch: list[dict]) -> list[dict]:
        records = []
        for record in batch:
            if self.task.preprocess is not None:
                record = self.task.preprocess(dict(record), "test", self.options)
            if record is not None:
                records.append(record)
        if not records:
            return []
        try:
            sources = [self.prompt.source.format(**record) for record in records]
        except KeyError as error:
            raise OFAError(
                f"prompt '{self.prompt.name}' needs the field {error}; pass --field {error.args[0]}=... or a TSV column"
            ) from None
        encoded = [self.encoder.encode_source(record) for record in records]  # (source ids, decoder prompt)
        pad = self.processor.tokenizer.pad_token_id
        inputs = dict(self.processor.image_processor([record.get("image") for record in records]))
        inputs["input_ids"] = pad_rows([source for source, _ in encoded], pad)
        inputs["attention_mask"] = inputs["input_ids"].ne(pad).long()
        if any(prompt for _, prompt in encoded):
            inputs["decoder_prompts"] = pad_rows([prompt for _, prompt in encoded], pad)
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        with torch.no_grad():
            decoded = self.answers(self.model, inputs)
        rows = []
        for record, source, answer in zip(records, sources, decoded):
            text = answer.text
            prediction = self.task.postprocess(text, record, self.options) if self.task.postprocess else text
            row = {
                "id": record.get("id"),
                "image": record.get("image") if isinstance(record.get("image"), str) else None,
                "source": source,
                "text": text,
                "prediction": prediction,
            }
            if answer.ranking:
                row["ranking"] = [{"answer": name, "score": score} for name, score in answer.ranking]
            rows.append(row)
        return rows
