"""Prediction picks the task, language, prompt type and options a converted official checkpoint records."""

from __future__ import annotations

import attrs
import pytest

from ofa_core import OFAError
from ofa_core.inference.task_choice import choose_task
from ofa_core.model.task_config import CheckpointTask
from ofa_core.registry import load_plugins


@pytest.fixture(scope="module")
def registry():
    return load_plugins().registry()


def checkpoint(**fields) -> CheckpointTask:
    base = dict(
        fairseq_task="image_classify",
        task="classification",
        language="en",
        search="default",
        inference="all_candidates",
        patch_image_size=480,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        max_src_length=80,
        max_tgt_length=30,
    )
    return CheckpointTask(**{**base, **fields})


def test_the_checkpoint_names_the_task_language_and_options(registry):
    found = checkpoint(answers=["tabby cat", "golden retriever"], inference="beam_search")
    spec, prompt, options = choose_task(registry, None, checkpoint=found, caller="predict")
    assert spec is registry.tasks.get("classification") and prompt.lang == "en"
    assert list(options.labels) == ["tabby cat", "golden retriever"]
    assert options.inference == "beam"


def test_what_the_user_gives_wins(registry):
    found = checkpoint(answers=["tabby cat", "golden retriever"], language="en")
    _, prompt, options = choose_task(
        registry, "classification", "zh", {"labels": ["猫"], "inference": "rank"}, checkpoint=found, caller="predict"
    )
    assert prompt.lang == "zh" and list(options.labels) == ["猫"] and options.inference == "rank"


def test_the_prompt_type_comes_from_the_checkpoint_or_the_caller(registry):
    found = checkpoint(fairseq_task="vqa_gen", task="vqa", prompt_type="prev_output", answers=["yes", "no"])
    _, prompt, options = choose_task(registry, None, checkpoint=found, caller="predict")
    assert prompt.prompt_type == "prev_output" and list(options.answers) == ["yes", "no"] and not options.answer_space
    _, _, english = choose_task(registry, None, checkpoint=attrs.evolve(found, answer_space=True), caller="predict")
    assert english.answer_space
    _, plain, _ = choose_task(
        registry, "vqa", options={"answers": ["yes"]}, prompt_type="none", checkpoint=found, caller="predict"
    )
    assert plain.prompt_type == "none"


def test_another_task_ignores_the_checkpoint_record(registry):
    caption = registry.tasks.get("caption")
    first = next(iter(caption.prompts))
    found = checkpoint(
        fairseq_task="vqa_gen", task="vqa", prompt_type="prev_output", language="en" if first != "en" else "zh"
    )
    _, prompt, _ = choose_task(registry, "caption", checkpoint=found, caller="predict")
    assert prompt.prompt_type == "none" and prompt.name == caption.prompts[first]


def test_no_task_and_no_record_is_a_clear_error(registry):
    with pytest.raises(OFAError, match="--task: not given.*ofa_task.json"):
        choose_task(registry, None, caller="predict", task_name="--task")
