"""The task an official checkpoint was fine-tuned for, as its fairseq config recorded it (`ofa_task.json`).

`ofa convert fairseq` writes this file beside config.json so that prediction and evaluation can take the
settings that decide the outputs (resolution, prompt type, objects, answer list, search, scoring) from the
checkpoint instead of from the user. Reading it imports neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import orjson

from ofa_core._errors import OFAError

TASK_CONFIG_FILE = "ofa_task.json"
"""The file name inside a converted model directory."""
FORMAT = 1
"""Bumped when a field changes meaning; a reader refuses files newer than it knows."""
PROMPT_TYPES = ("none", "src", "prev_output")
"""OFA's prompt types: what the decoder sees before the target (`PromptTemplate.prompt_type`)."""
INFERENCE_KINDS = ("beam_search", "all_candidates", "last_position")
"""How the official evaluation turns the model into predictions: beam search over the vocabulary, the best-scoring
answer of a closed list (OFA's 'allcand'), or the arg-max over the candidates' tokens at the last source position
(GLUE's `--prompt-type src` tasks)."""


class TaskConfigError(OFAError):
    """A model directory's ofa_task.json cannot be used."""


@attrs.frozen
class CheckpointTask:
    """What an official checkpoint's `cfg.task` says about its task; field names follow fairseq's where they exist."""

    fairseq_task: str
    """fairseq's task name (`caption`, `vqa_gen`, `refcoco`, `snli_ve`, `image_classify`, `gigaword`, `sst2`, ...)."""
    task: str | None
    """The built-in ofa_core task serving it (`caption`, `vqa`, `grounding`, `classification`), None when none does."""
    language: str
    """'en' (GPT-2 BPE) or 'zh' (BERT-Chinese)."""
    search: str
    """Key of `ofa_core.model.search.OFFICIAL_SEARCH` the official evaluate script uses; generation_config.json
    holds the same settings."""
    inference: str | None
    """One of `INFERENCE_KINDS`, None for a task the table does not know (pre-training, image generation)."""
    patch_image_size: int
    image_mean: list[float]
    image_std: list[float]
    max_src_length: int
    max_tgt_length: int
    prompt_type: str = attrs.field(default="none", validator=attrs.validators.in_(PROMPT_TYPES))
    """OFA's --prompt-type; 'none' also for tasks without the setting (the decoder starts from <s>)."""
    add_object: bool = False
    """VQA: the source ends with " object: " and the row's object labels."""
    add_caption: bool = False
    """SNLI-VE: the premise caption is part of the prompt."""
    answer_space: bool = False
    """Candidates are encoded as ' ' + answer, as OFA's English (GPT-2 BPE) VQA and ImageNet fine-tunes do."""
    max_object_length: int | None = None
    max_image_size: int | None = None
    """Grounding: the size boxes are divided by before binning (512 in the official fine-tunes)."""
    answers: list[str] | None = None
    """The closed answer list in label-index order, when the checkpoint's config holds it inline (ans2label_dict)."""
    ans2label_file: str | None = None
    """The answer-list pickle the training named (a path on the training machine); the list itself is not stored."""
    unconstrained_training: bool = False
    val_inference_type: str | None = None
    uses_ema: bool = False
    """The task evaluates with EMA weights (official VQA); compare with `weights`."""
    weights: str = attrs.field(default="model", validator=attrs.validators.in_(("model", "ema")))
    """Which weights the directory holds: the checkpoint's 'model' or its 'ema' copy (--ema)."""
    selected_cols: str | None = None
    """Columns of the training TSV (evaluation scripts may read others, e.g. caption '1,4,2')."""
    constraint_range: str | None = None
    eval_args: dict = attrs.Factory(dict)
    """The task's --eval-args (generation settings of its validation during training)."""
    is_document: bool = False
    """OCR: the document resize (pad to a square) instead of the plain one."""
    bpe_dir: str | None = None
    """The vocabulary folder the training named."""
    source: str = ""
    """The checkpoint file name."""

    def to_json(self) -> bytes:
        return orjson.dumps({"format": FORMAT, **attrs.asdict(self)}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def write(self, directory: Path) -> Path:
        path = Path(directory) / TASK_CONFIG_FILE
        path.write_bytes(self.to_json() + b"\n")
        return path


def read_checkpoint_task(directory: str | Path) -> CheckpointTask | None:
    """The task config of a converted model directory, or None when it has none (ports, ofa_core-trained models)."""
    path = Path(directory) / TASK_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise TaskConfigError(f"{path}: not valid JSON ({error}); delete it or convert the checkpoint again") from None
    if not isinstance(data, dict):
        raise TaskConfigError(f"{path}: holds a {type(data).__name__}, not an object; convert the checkpoint again")
    version = data.pop("format", None)
    if version != FORMAT:
        raise TaskConfigError(
            f"{path}: format {version!r}, this ofa_core reads format {FORMAT}; convert the "
            "checkpoint again with this version"
        )
    known = {field.name for field in attrs.fields(CheckpointTask)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TaskConfigError(f"{path}: unknown field {unknown[0]!r}; convert the checkpoint again with this version")
    try:
        return CheckpointTask(**data)
    except (TypeError, ValueError) as error:
        raise TaskConfigError(f"{path}: {error}; convert the checkpoint again") from None
