"""A task plugin declares each part once: `Task` with its hooks marked on their functions, `Metrics` on their classes,
and `Components` completes the `TaskSpec` (prompts, reader, metrics, loss) from what else the plugin registers."""

from __future__ import annotations

import attrs
import pytest

from ofa_core.plugin import (
    DEFAULT_LOSS,
    Components,
    Metrics,
    MetricSpec,
    NoOptions,
    PerSplitFiles,
    PromptTemplate,
    Readers,
    Task,
    TaskSpec,
)


@attrs.frozen
class CountOptions:
    top: int = 3


class Hits:
    def __init__(self, options: NoOptions) -> None:
        self.options = options


def _declared() -> tuple[Components, Task, Metrics]:
    readers, metrics = Readers(), Metrics()

    @readers.add("words_jsonl", "JSON lines")
    def read_words(options: PerSplitFiles, split: str):
        yield from ()

    @readers.add("words_tsv", "a TSV")
    def read_words_tsv(options: PerSplitFiles, split: str):
        yield from ()

    metrics.add("hits", "exact hits", example_score="hits")(Hits)
    metrics.add("misses", "lower is better", higher_is_better=False)(Hits)
    task = Task("words", "say a word", generation="caption", options=CountOptions)

    @task.hook
    def preprocess(record, split, options):
        return record

    prompts = [
        PromptTemplate("words.zh", "zh", "什么?", "{word}"),
        PromptTemplate("words.en", "en", " what?", "{word}"),
    ]
    return Components(prompts=prompts, readers=readers, metrics=metrics, task=task), task, metrics


def test_components_complete_the_declared_task_from_the_plugins_other_parts():
    components, task, metrics = _declared()
    assert metrics["hits"] == MetricSpec(NoOptions, Hits, True, "exact hits", example_score="hits")
    assert metrics["misses"].higher_is_better is False
    assert components.all_tasks() == {
        "words": TaskSpec(
            prompts={"zh": "words.zh", "en": "words.en"},
            reader="words_jsonl",
            loss=DEFAULT_LOSS,
            metrics=("hits", "misses"),
            generation="caption",
            options=CountOptions,
            preprocess=task.hooks["preprocess"],
            description="say a word",
        )
    }
    chosen = attrs.evolve(task, reader="words_tsv", metrics=("misses",), loss="my_loss").spec(components)
    assert (chosen.reader, chosen.metrics, chosen.loss) == ("words_tsv", ("misses",), "my_loss")


def test_the_declared_task_is_registered_by_the_installed_hook():
    components, _, _ = _declared()
    namespace = {"__name__": "words_plugin"}
    components.install(namespace)
    registered = {}
    namespace["ofa_register_tasks"](register=registered.__setitem__)
    assert list(registered) == ["words"] and registered["words"].reader == "words_jsonl"


def test_a_hook_must_be_named_as_taskspec_calls_it_and_a_metric_needs_its_options_annotated():
    task = Task("words", "say a word", generation="caption")
    with pytest.raises(TypeError, match="a task's hooks are named preprocess, postprocess, closed_set, allowed_tokens"):
        task.hook(lambda record, split, options: record)
    with pytest.raises(TypeError, match="annotate its first parameter with the metric's options class"):
        Metrics().add("bare", "no annotation")(type("Bare", (), {"__init__": lambda self, options: None}))
    with pytest.raises(ValueError, match="'hits' is declared twice"):
        metrics = Metrics()
        metrics.add("hits", "one")(Hits)
        metrics.add("hits", "two")(Hits)


@attrs.frozen
class OtherOptions:
    pass


def test_the_task_options_are_the_class_its_hooks_annotate_unless_given():
    task = Task("words", "say a word", generation="caption")
    assert task.hooks_options() is None

    @task.hook
    def preprocess(record: dict, split: str, options: CountOptions) -> dict:
        return record

    @task.hook
    def postprocess(text: str, record: dict, options: CountOptions) -> str:
        return text

    components = attrs.evolve(_declared()[0], task=task)
    assert components.all_tasks()["words"].options is CountOptions
    given = attrs.evolve(task, options=OtherOptions)
    assert given.spec(components).options is OtherOptions

    @task.hook
    def closed_set(options: OtherOptions) -> None:
        return None

    with pytest.raises(TypeError, match=r"task 'words': its hooks annotate options with different classes"):
        task.spec(components)


def test_unreadable_hook_annotations_ask_for_the_options_class():
    task = Task("words", "say a word", generation="caption")

    @task.hook
    def preprocess(record: dict, split: str, options: NotImportedOptions) -> dict:  # noqa: F821
        return record

    with pytest.raises(TypeError, match=r"cannot read preprocess's annotations .*Task\(\.\.\., options=XOptions\)"):
        task.hooks_options()
    assert attrs.evolve(task, options=OtherOptions).spec(_declared()[0]).options is OtherOptions
