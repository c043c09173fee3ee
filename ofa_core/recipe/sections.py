"""The shape of a recipe file: one attrs class per section, with the help text the schema and docs show."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.plugin._specs import PATH_METADATA, PROMPT_TYPES
from ofa_core.recipe.peft import PeftSection
from ofa_core.recipe.schema import RecipeError
from ofa_core.recipe.training import TrainingConfig


@attrs.frozen
class Component:
    """A reference to a registered component: `"name"` or `{"name": ..., **options}`.

    The options are those of the component's options class. `ofa tasks --all` lists the registered
    names; `ofa recipe show RECIPE` lists every option of the components a recipe uses, defaults included.
    """

    name: str
    options: dict = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, value: Any, path: str) -> Component:
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise RecipeError(
                f'{path}: expected a name or an object with a "name" key, got {orjson.dumps(value).decode()[:40]}'
            )
        options = {k: v for k, v in value.items() if k != "name"}
        return cls(value["name"], options)

    @staticmethod
    def json_schema() -> dict:
        return {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                    "additionalProperties": True,
                },
            ]
        }


@attrs.frozen
class ModelSection:
    """Which weights to start from."""

    checkpoint: str = attrs.field(
        metadata={
            PATH_METADATA: {"must_exist": True},
            "help": "the model a run starts from: a model directory (from `ofa convert` or save_pretrained), "
            "or a run directory: its best checkpoint, else its newest. Relative to the "
            "recipe; `~` and `$VARIABLES` are expanded ($OFA_CACHE_DIR defaults to "
            "~/.cache/ofa). `ofa eval` reads its `--checkpoint` instead, and neither "
            "reads nor checks this one",
        }
    )
    overrides: dict = attrs.field(
        factory=dict, metadata={"help": "config overrides passed to from_pretrained, e.g. dropout"}
    )


@attrs.frozen
class TaskSection:
    """The task and its prompt language; `task: "name"` is short for `{"name": "name"}`."""

    SHORTHAND = "name"
    name: str = attrs.field(metadata={"help": "a registered task (see `ofa tasks`)"})
    lang: str | None = attrs.field(default=None, metadata={"help": "language of the prompt; default: the task's first"})
    prompt: str | None = attrs.field(default=None, metadata={"help": "registered prompt template replacing the task's"})
    prompt_type: Literal["none", "src", "prev_output"] | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.in_(PROMPT_TYPES)),
        metadata={
            "help": "what the decoder sees before the target, as OFA's --prompt-type: 'none' (BOS only), "
            "'prev_output' (the "
            "source, as the official VQA and SNLI-VE fine-tunes), 'src' (the source and its EOS, GLUE); default: the "
            "prompt's"
        },
    )
    options: dict = attrs.field(factory=dict, metadata={"help": "options of the task's options class"})


@attrs.frozen
class DataSection:
    """Where records come from and how long their token sequences may be."""

    reader: Component | None = attrs.field(
        default=None, metadata={"help": "reader name or {name, ...options}; default: the task's"}
    )
    max_source_length: int = attrs.field(
        default=80, metadata={"help": "encoder tokens per sample, BOS and EOS included; longer prompts are cut"}
    )
    max_target_length: int = attrs.field(
        default=32, metadata={"help": "target tokens per sample, EOS excluded; longer targets are cut"}
    )
    num_workers: int = attrs.field(
        default=0, metadata={"help": "DataLoader worker processes; when > 0, replaces training.dataloader_num_workers"}
    )


@attrs.frozen
class PluginsSection:
    """Extra plugin modules this recipe needs."""

    load: list[str] = attrs.field(factory=list, metadata={"help": "module names or paths relative to the recipe"})


TASK_PARTS_HELP = {
    "loss": "loss name or {name, ...options}; default: the task's",
    "metrics": "metric names or {name, ...options}; default: the task's",
    "generation": "an official search name or GenerationConfig kwargs",
}
"""The parts of a task a recipe may set (None: the task's own), at the top level of a single-task recipe and in each
entry of `tasks`."""


@attrs.frozen
class TaskEntry:
    """One task of a multi-task recipe: the same keys as a single-task recipe's task sections, plus its share of
    steps."""

    task: TaskSection = attrs.field(metadata={"help": "the task: a name or {name, lang, prompt, options}"})
    label: str | None = attrs.field(
        default=None,
        metadata={"help": "name in logs, metrics (`<label>/cider`) and prediction files; default: the task's name"},
    )
    weight: float = attrs.field(
        default=1.0,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={
            "help": "relative share of training steps (times the dataset size to the power 1/temperature with "
            "mixture.temperature)"
        },
    )
    data: DataSection = attrs.field(factory=DataSection)
    loss: Component | None = attrs.field(default=None, metadata={"help": TASK_PARTS_HELP["loss"]})
    metrics: list[Component] | None = attrs.field(default=None, metadata={"help": TASK_PARTS_HELP["metrics"]})
    generation: str | dict | None = attrs.field(default=None, metadata={"help": TASK_PARTS_HELP["generation"]})

    @property
    def name(self) -> str:
        return self.label or self.task.name


@attrs.frozen
class MixtureSection:
    """How a multi-task recipe shares its training steps among its tasks."""

    temperature: float | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.gt(0)),
        metadata={
            "help": "null: each step's task is drawn with probability proportional to its weight; T: proportional to "
            "weight × (training examples)^(1/T), so 1 follows dataset sizes and larger T evens them out"
        },
    )


@attrs.frozen
class RecipeFile:
    """A recipe: the model, task (or tasks), data, loss, metrics, generation and training of one run."""

    JSON_NAMES = {"$schema": "schema"}
    model: ModelSection
    task: TaskSection | None = attrs.field(
        default=None, metadata={"help": "the task of a single-task recipe (give this or `tasks`)"}
    )
    tasks: list[TaskEntry] | None = attrs.field(
        default=None,
        metadata={
            "help": "the tasks of a multi-task recipe, each with its own data, loss, metrics, generation and weight "
            "(give this or `task`; the top-level data, loss, metrics and generation then stay unset)"
        },
    )
    mixture: MixtureSection = attrs.field(factory=MixtureSection)
    schema: str | None = attrs.field(
        default=None, metadata={"help": "path or URL of recipe.schema.json, for editors; ignored when loading"}
    )
    name: str | None = attrs.field(default=None, metadata={"help": "run name; the default output_dir is runs/<name>"})
    description: str | None = attrs.field(
        default=None, metadata={"help": "free text for the people reading the recipe"}
    )
    setup: str | None = attrs.field(
        default=None,
        metadata={
            "help": "how to get the weights and data the recipe needs (downloads, conversion, where to put them); "
            "printed with the error when a path it names is missing"
        },
    )
    extends: str | list[str] | None = attrs.field(
        default=None, metadata={"help": "parent recipe(s), relative to this file"}
    )
    plugins: PluginsSection = attrs.field(factory=PluginsSection)
    data: DataSection = attrs.field(factory=DataSection)
    loss: Component | None = attrs.field(default=None, metadata={"help": TASK_PARTS_HELP["loss"]})
    metrics: list[Component] | None = attrs.field(default=None, metadata={"help": TASK_PARTS_HELP["metrics"]})
    generation: str | dict | None = attrs.field(default=None, metadata={"help": TASK_PARTS_HELP["generation"]})
    peft: PeftSection | None = attrs.field(
        default=None,
        metadata={
            "help": "parameter-efficient tuning (prefix, prompt, adapter, bitfit, lora): only its parameters train and "
            "checkpoints hold only them (docs/peft.md); default: every unfrozen parameter trains"
        },
    )
    training: dict = attrs.field(
        factory=dict,
        metadata={
            "help": "transformers TrainingArguments names (ofa_core/recipe/training.py); a key described nowhere "
            "here means what it means there"
        },
    )
    output_dir: str | None = attrs.field(
        default=None, metadata={"help": "run directory, relative to the recipe; default runs/<name>"}
    )

    @property
    def entries(self) -> list[TaskEntry]:
        """The recipe's tasks with their fields; a single-task recipe is one entry without a label."""
        if self.tasks is not None:
            return list(self.tasks)
        return [
            TaskEntry(task=self.task, data=self.data, loss=self.loss, metrics=self.metrics, generation=self.generation)
        ]

    @property
    def multitask(self) -> bool:
        return self.tasks is not None

    def field(self, index: int, name: str) -> str:
        """The JSON path of a task field: `data.reader` in a single-task recipe, `tasks[1].data.reader` in a mixture."""
        return f"tasks[{index}].{name}" if self.multitask else name


@attrs.frozen
class Recipe:
    """A loaded, type-checked recipe: paths are absolute, `training` is a TrainingConfig."""

    path: Path
    spec: RecipeFile
    training: TrainingConfig
    """The `training` block, type-checked."""
    origins: dict[str, str]
    """JSON path -> where its value came from: 'parent <file>', 'this file', '--set' (absent: default)."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def error(self, message: str) -> OFAError:
        """An error for this recipe: `<file>: <message>`."""
        return OFAError(f"{self.path}: {message}")

    def missing(self, message: str, path: Path) -> MissingRecipePath:
        """An error for a weights or data path that is not there yet, with the recipe's `setup` instructions."""
        return MissingRecipePath(f"{self.path}: {with_setup(message, self.spec.setup)}", path)


class MissingRecipePath(OFAError):
    """A weights or data path a recipe names does not exist (yet); `path` is that path, so the CLI can
    generate the demo when the path lies inside it."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = Path(path)


SETUP = ". To set up this recipe: "
"""Between a missing path's message and the recipe's `setup` text (the CLI prints the text once for several paths)."""


def with_setup(message: str, setup: str | None) -> str:
    return f"{message}{SETUP}{setup}" if setup else message
