"""`ofa_core.pipeline(task, model=DIR)`: images (and task fields) in, answers out, in input order, batched; and the
same answers through `transformers.pipeline("ofa-caption"|"ofa-vqa"|"ofa-classification", model=DIR)`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import ofa_core
from ofa_core import OFAError
from ofa_core.testing import fake_image, tiny_checkpoint

SHORT = {"max_new_tokens": 3, "num_beams": 2}  # fast: the tiny model's answers are noise anyway
LABELS = ["cat", "dog", "red car"]
QUESTIONS = ["what is it?", "how many dogs?", "what colour is the car?", "is it a cat?", "where?"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("pipeline") / "model")


@pytest.fixture(scope="module")
def images() -> list:
    return [fake_image(seed) for seed in range(5)]


@pytest.fixture(scope="module")
def vqa(model_dir):
    return ofa_core.pipeline("vqa", model=model_dir, generation=SHORT, batch_size=2)


def _same(batched: list[dict], alone: list[dict]) -> None:
    """Same answers; ranking scores within 1e-5 (relative: float32 sums differ slightly with the batch shape)."""
    assert [a["prediction"] for a in batched] == [a["prediction"] for a in alone]
    assert [a["text"] for a in batched] == [a["text"] for a in alone]
    for one, other in zip(batched, alone):
        assert ("ranking" in one) == ("ranking" in other)
        if "ranking" in one:
            assert [r["answer"] for r in one["ranking"]] == [r["answer"] for r in other["ranking"]]
            assert [r["score"] for r in one["ranking"]] == pytest.approx(
                [r["score"] for r in other["ranking"]], rel=1e-5, abs=1e-5
            )


def test_one_image_gives_a_dict_and_a_list_gives_a_list_in_order(model_dir, images, tmp_path) -> None:
    caption = ofa_core.pipeline("caption", model=model_dir, generation=SHORT)
    path = tmp_path / "image.png"
    images[0].save(path)
    single = caption(images[0])
    assert set(single) == {"prediction", "text"} and isinstance(single["prediction"], str)
    assert caption(str(path)) == single == caption(path.read_bytes())  # a path, a PIL image and bytes agree
    many = caption(images)
    assert isinstance(many, list) and len(many) == len(images)
    assert many[0] == single
    assert caption([images[0]]) == [single]


def test_fields_apply_per_image_as_lists_or_to_all_as_scalars(vqa, images) -> None:
    answers = vqa(images, question=QUESTIONS)
    assert answers == [vqa(image, question=question) for image, question in zip(images, QUESTIONS)]
    assert vqa(images[:2], question=QUESTIONS[0]) == [vqa(image, question=QUESTIONS[0]) for image in images[:2]]
    with pytest.raises(OFAError, match="3 values for 5 images"):
        vqa(images, question=QUESTIONS[:3])
    with pytest.raises(OFAError, match="question"):
        vqa(images[0])  # vqa needs a question


def test_batched_answers_equal_one_at_a_time(model_dir, images, vqa) -> None:
    one_by_one = ofa_core.pipeline("vqa", model=model_dir, generation=SHORT, batch_size=1)
    _same(vqa(images, question=QUESTIONS), one_by_one(images, question=QUESTIONS))
    ranked = ofa_core.pipeline("classification", model=model_dir, options={"labels": LABELS}, batch_size=3)
    _same(ranked(images), [ranked(image) for image in images])


def test_classification_with_labels_ranks_them(model_dir, images) -> None:
    classify = ofa_core.pipeline("classification", model=model_dir, options={"labels": LABELS})
    answer = classify(images[0])
    assert answer["prediction"] in LABELS
    assert sorted(r["answer"] for r in answer["ranking"]) == sorted(LABELS)
    assert answer["ranking"][0]["answer"] == answer["prediction"]


def test_unknown_task_bad_settings_and_fp16_on_cpu_are_clear_errors(model_dir) -> None:
    with pytest.raises(OFAError, match="did you mean 'caption'"):
        ofa_core.pipeline("captoin", model=model_dir)
    with pytest.raises(OFAError, match="no such directory"):
        ofa_core.pipeline("caption", model=model_dir / "missing")
    with pytest.raises(OFAError, match="lang 'fr'"):
        ofa_core.pipeline("caption", model=model_dir, lang="fr")
    with pytest.raises(OFAError, match="batch_size"):
        ofa_core.pipeline("caption", model=model_dir, batch_size=0)
    with pytest.raises(OFAError, match="not a generation setting"):
        ofa_core.pipeline("caption", model=model_dir, generation={"beams": 3})
    with pytest.raises(OFAError, match="float16 on the CPU"):
        ofa_core.pipeline("caption", model=model_dir, device="cpu", dtype=torch.float16)


def test_bfloat16_runs_on_the_cpu(model_dir, images) -> None:
    classify = ofa_core.pipeline(
        "classification", model=model_dir, device="cpu", dtype=torch.bfloat16, options={"labels": LABELS}
    )
    assert classify.model.dtype == torch.bfloat16
    answer = classify(images[0])
    assert answer["prediction"] in LABELS
    assert ofa_core.pipeline("caption", model=model_dir, dtype="bf16", generation=SHORT).model.dtype == torch.bfloat16


def test_import_ofa_core_stays_light_until_pipeline_is_touched(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::RuntimeWarning",
            "-c",
            textwrap.dedent("""
        import sys, ofa_core
        assert "torch" not in sys.modules and "transformers" not in sys.modules, "import ofa_core imported torch"
        assert "pipeline" in dir(ofa_core)
        from ofa_core import pipeline
        assert callable(pipeline) and "torch" in sys.modules
        from transformers.pipelines import PIPELINE_REGISTRY
        assert {"ofa-caption", "ofa-vqa", "ofa-classification"} <= set(PIPELINE_REGISTRY.get_supported_tasks())
    """),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr


def test_transformers_pipeline_gives_the_same_answers(model_dir, images, vqa) -> None:
    import transformers
    from transformers.pipelines import PIPELINE_REGISTRY

    ours = vqa(images, question=QUESTIONS)
    theirs = transformers.pipeline("ofa-vqa", model=str(model_dir), device="cpu", generation=SHORT)
    assert type(theirs).__name__ == "OFAVQAPipeline"
    assert theirs(images, question=QUESTIONS) == ours
    assert theirs(images, question=QUESTIONS, batch_size=1) == ours
    assert theirs(image=images[0], question=QUESTIONS[0]) == ours[0]
    assert theirs([{"image": image, "question": q} for image, q in zip(images, QUESTIONS)]) == ours

    caption = transformers.pipeline("ofa-caption", model=str(model_dir), device="cpu", generation=SHORT)
    assert caption(images) == ofa_core.pipeline("caption", model=model_dir, generation=SHORT)(images)

    expected = ofa_core.pipeline("classification", model=model_dir, options={"labels": LABELS})(images)
    classify = transformers.pipeline(
        "ofa-classification", model=str(model_dir), device="cpu", options={"labels": LABELS}
    )
    _same(classify(images), expected)
    zero_shot = transformers.pipeline("ofa-classification", model=str(model_dir), device="cpu")
    _same(zero_shot(images, candidate_labels=LABELS), expected)

    # transformers' own tasks are left alone: only new names are registered
    assert PIPELINE_REGISTRY.supported_tasks["zero-shot-image-classification"]["impl"] is not type(classify)
    assert "image-text-to-text" in PIPELINE_REGISTRY.supported_tasks


def test_transformers_pipeline_after_import_ofa_core_in_a_fresh_process(model_dir, images, tmp_path) -> None:
    images[0].save(tmp_path / "image.png")
    expected = ofa_core.pipeline("caption", model=model_dir, generation=SHORT)(images[0])
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::RuntimeWarning",
            "-c",
            textwrap.dedent(f"""
        import ofa_core, transformers
        pipe = transformers.pipeline("ofa-caption", model={str(model_dir)!r}, device="cpu", generation={SHORT!r})
        print(pipe("image.png")["prediction"])
    """),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected["prediction"].strip()
