"""Conversion carries the task: ofa_task.json, the image processor and the official search of each fine-tune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ofa_core.convert.fairseq import derive_config
from ofa_core.convert.mapping import ConversionError
from ofa_core.convert.task import checkpoint_task
from ofa_core.model.search import official_task_search
from ofa_core.model.task_config import TASK_CONFIG_FILE, CheckpointTask, TaskConfigError, read_checkpoint_task

from .conftest import run_cli
from .fixtures import TINY, model_namespace, save_fairseq_checkpoint, task_settings

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
HALF = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
BPE_EN = Path(__file__).resolve().parents[3] / "shared" / "spec" / "BPE_EN"
EN_VOCAB = 59457
# (fairseq task overrides, --ema?) -> (task fields, image size and stats, generation settings)
CASES = {
    "caption": (
        {
            "_name": "caption",
            "bpe": "gpt2",
            "patch_image_size": 480,
            "max_tgt_length": 20,
            "eval_args": '{"beam":5,"max_len_b":16,"no_repeat_ngram_size":3}',
        },
        False,
        {
            "task": "caption",
            "language": "en",
            "search": "caption",
            "inference": "beam_search",
            "prompt_type": "none",
            "max_tgt_length": 20,
            "eval_args": {"beam": 5, "max_len_b": 16, "no_repeat_ngram_size": 3},
        },
        (480, *HALF),
        {
            "num_beams": 5,
            "max_new_tokens": 17,
            "min_new_tokens": 1,
            "no_repeat_ngram_size": 3,
            "length_penalty": 1.0,
            "normalize_scores": True,
        },
    ),
    "vqa_gen": (
        {
            "_name": "vqa_gen",
            "bpe": "gpt2",
            "patch_image_size": 480,
            "prompt_type": "prev_output",
            "add_object": True,
            "max_object_length": 30,
            "max_tgt_length": 30,
            "ans2label_dict": '{"no": 0, "yes":1}',
            "ans2label_file": "../../dataset/vqa_data/trainval_ans2label.pkl",
            "uses_ema": True,
            "val_inference_type": "allcand",
            "unconstrained_training": False,
        },
        True,
        {
            "task": "vqa",
            "search": "vqa",
            "inference": "all_candidates",
            "prompt_type": "prev_output",
            "add_object": True,
            "max_object_length": 30,
            "answers": None,
            "answer_space": True,
            "ans2label_file": "../../dataset/vqa_data/trainval_ans2label.pkl",
            "uses_ema": True,
            "weights": "ema",
        },
        (480, *HALF),
        {
            "num_beams": 5,
            "max_new_tokens": 201,
            "min_new_tokens": 1,
            "no_repeat_ngram_size": 0,
            "normalize_scores": False,
        },
    ),
    "refcoco": (
        {"_name": "refcoco", "bpe": "gpt2", "patch_image_size": 512, "max_image_size": 512, "selected_cols": "0,4,2,3"},
        False,
        {
            "task": "grounding",
            "search": "grounding",
            "inference": "beam_search",
            "max_image_size": 512,
            "selected_cols": "0,4,2,3",
            "weights": "model",
        },
        (512, *HALF),
        {"num_beams": 5, "max_new_tokens": 5, "min_new_tokens": 4, "no_repeat_ngram_size": 3},
    ),
    "snli_ve": (
        {
            "_name": "snli_ve",
            "bpe": "gpt2",
            "patch_image_size": 480,
            "prompt_type": "prev_output",
            "add_caption": True,
            "ans2label_dict": '{"no": 0, "yes":1, "maybe": 2}',
        },
        False,
        {
            "task": "snli_ve",
            "search": "default",
            "inference": "all_candidates",
            "prompt_type": "prev_output",
            "add_caption": True,
            "add_object": False,
            "answers": ["no", "yes", "maybe"],
            "answer_space": False,
        },
        (480, *HALF),
        {"num_beams": 5, "max_new_tokens": 201, "min_new_tokens": 1, "no_repeat_ngram_size": 0},
    ),
    "image_classify": (
        {
            "_name": "image_classify",
            "bpe": "gpt2",
            "patch_image_size": 480,
            "imagenet_default_mean_and_std": True,
            "ans2label_file": "../../dataset/imagenet_1k_data/class2label_new.pkl",
        },
        False,
        {
            "task": "classification",
            "search": "default",
            "inference": "all_candidates",
            "answers": None,
            "answer_space": True,
            "image_mean": IMAGENET[0],
            "image_std": IMAGENET[1],
        },
        (480, *IMAGENET),
        {"num_beams": 5, "max_new_tokens": 201},
    ),
    "gigaword": (
        {"_name": "gigaword", "bpe": "gpt2", "max_src_length": 512, "max_tgt_length": 32},
        False,
        {"task": "summarization", "search": "summarization", "inference": "beam_search", "max_src_length": 512},
        (64, *HALF),
        {"num_beams": 6, "max_new_tokens": 33, "length_penalty": 0.7, "no_repeat_ngram_size": 3},
    ),
    "sst2": (
        {"_name": "sst2", "bpe": "gpt2", "prompt_type": "src", "ans2label_dict": '{"negative": 0, "positive":1}'},
        False,
        {
            "task": "text_classification",
            "search": "default",
            "inference": "last_position",
            "prompt_type": "src",
            "answers": ["negative", "positive"],
        },
        (64, *HALF),
        {"num_beams": 5},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_conversion_writes_the_task_the_processor_and_the_search(name: str, tmp_path: Path, capsys) -> None:
    overrides, ema, expected_task, (size, mean, std), expected_search = CASES[name]
    ckpt = tmp_path / f"{name}.pt"
    save_fairseq_checkpoint(ckpt, TINY, ema=ema, task_overrides=overrides)
    out = tmp_path / "out"
    argv = ["convert", "fairseq", ckpt, "--out", out, "--no-verify", "--no-tokenizer", *(["--ema"] if ema else [])]
    assert run_cli(*argv) == 0
    assert f"task: fairseq '{name}' -> {TASK_CONFIG_FILE}" in capsys.readouterr().out
    task = read_checkpoint_task(out)
    assert task is not None and task.fairseq_task == name and task.source == ckpt.name
    for field, value in expected_task.items():
        assert getattr(task, field) == value, field
    assert (task.patch_image_size, task.image_mean, task.image_std) == (size, mean, std)
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert (processor["patch_image_size"], processor["image_mean"], processor["image_std"]) == (size, mean, std)
    generation = json.loads((out / "generation_config.json").read_text())
    for field, value in expected_search.items():
        assert generation.get(field) == value, field


def test_old_args_layout_names_its_task_in_args(tmp_path: Path) -> None:
    """Files before fairseq's dataclass configs keep the task name in args.task and its settings among the args."""
    ckpt = tmp_path / "old.pt"
    save_fairseq_checkpoint(
        ckpt, TINY, layout="args", task_overrides={"_name": None, "task": "refcoco", "patch_image_size": 512}
    )
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out", "--no-verify", "--no-tokenizer") == 0
    task = read_checkpoint_task(tmp_path / "out")
    assert (task.fairseq_task, task.language, task.search, task.patch_image_size) == ("refcoco", "zh", "grounding", 512)


def test_the_huge_caption_model_has_its_own_search() -> None:
    """evaluate_caption_huge.sh: beam 10, lenpen 0.98 (base/large: beam 5, lenpen 1)."""
    assert official_task_search("caption", "en", "ofa_huge") == "caption-huge"
    assert official_task_search("caption", "en", "ofa_large") == "caption"
    assert official_task_search("caption", "zh", "ofa_huge") == "caption-zh"
    assert official_task_search("image_classify", "en", "ofa_large") == "default"


def test_a_checkpoint_without_a_task_writes_none(tmp_path: Path) -> None:
    ckpt = tmp_path / "untasked.pt"
    save_fairseq_checkpoint(ckpt, TINY, task_overrides={"_name": None})
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out", "--no-verify", "--no-tokenizer") == 0
    assert read_checkpoint_task(tmp_path / "out") is None
    assert json.loads((tmp_path / "out" / "generation_config.json").read_text())["max_new_tokens"] == 201


def test_bad_answer_numbering_is_refused(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "snli.pt"
    save_fairseq_checkpoint(ckpt, TINY, task_overrides={"_name": "snli_ve", "ans2label_dict": '{"no": 0, "yes": 2}'})
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out", "--no-tokenizer") == 2
    assert "cfg.task.ans2label_dict=" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


MUGE = CheckpointTask(
    fairseq_task="caption",
    task="caption",
    language="zh",
    search="caption-zh",
    inference="beam_search",
    patch_image_size=480,
    image_mean=HALF[0],
    image_std=HALF[1],
    max_src_length=80,
    max_tgt_length=20,
    source="caption_cn_base.pt",
)


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    MUGE.write(directory)
    return directory


def _edit(directory: Path, **changes) -> None:
    path = directory / TASK_CONFIG_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_reader_round_trip_and_absence(task_dir: Path, tmp_path: Path) -> None:
    assert read_checkpoint_task(task_dir) == MUGE
    assert json.loads((task_dir / TASK_CONFIG_FILE).read_text())["format"] == 1
    assert read_checkpoint_task(tmp_path) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"format": 2}, "format 2, this ofa_core reads format 1"),
        ({"promt_type": "src"}, "unknown field 'promt_type'"),
        ({"prompt_type": "prefix"}, "'prompt_type' must be in"),
        ({"weights": "best"}, "'weights' must be in"),
    ],
)
def test_reader_errors_name_the_file(task_dir: Path, change: dict, expected: str) -> None:
    _edit(task_dir, **change)
    with pytest.raises(TaskConfigError) as error:
        read_checkpoint_task(task_dir)
    assert str(error.value).startswith(str(task_dir / TASK_CONFIG_FILE)) and expected in str(error.value)


def test_reader_refuses_broken_json(task_dir: Path) -> None:
    (task_dir / TASK_CONFIG_FILE).write_text("{not json")
    with pytest.raises(TaskConfigError, match="not valid JSON"):
        read_checkpoint_task(task_dir)


def test_reader_imports_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ofa_core.model.task_config; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.fixture(scope="module")
def english_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fairseq") / "caption_en.pt"
    save_fairseq_checkpoint(
        path,
        {**TINY, "vocab": EN_VOCAB},
        task_overrides={"_name": "caption", "bpe": "gpt2", "bpe_dir": "../../utils/BPE"},
    )
    return path


@pytest.mark.skipif(not BPE_EN.is_dir(), reason=f"OFA's English BPE files are not at {BPE_EN}")
def test_english_checkpoint_with_the_bpe_files(english_ckpt: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / "en"
    assert run_cli("convert", "fairseq", english_ckpt, "--out", out, "--bpe-dir", BPE_EN, "--no-verify") == 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer(" what does the image describe?").input_ids == [0, 99, 473, 5, 2274, 6190, 116, 2]
    assert len(tokenizer) == EN_VOCAB
    task = read_checkpoint_task(out)
    assert (task.language, task.search, task.bpe_dir) == ("en", "caption", "../../utils/BPE")


def test_english_checkpoint_without_bpe_files(english_ckpt: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "fairseq", english_ckpt, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "English (GPT-2 BPE, 59457 tokens): pass --bpe-dir DIR holding encoder.json, vocab.bpe, dict.txt" in err
    assert "--no-tokenizer" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_chinese_checkpoint_without_vocabulary(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "fairseq", tiny_ckpt, "--out", tmp_path / "out") == 2
    assert "Chinese (BERT, 300 tokens): pass --vocab PATH" in capsys.readouterr().err


def _bpe_copy(tmp_path: Path, **replace: str) -> Path:
    folder = tmp_path / "BPE"
    folder.mkdir()
    for name, text in {
        "encoder.json": '{"a": 0}',
        "vocab.bpe": "#version: 0.2\n",
        "dict.txt": "0 5\n",
        **replace,
    }.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"encoder.json": "{broken"}, "encoder.json is not valid JSON"),
        ({"dict.txt": "7 5\n"}, "GPT-2 id 7 is not in"),
        ({"vocab.bpe": "#version: 0.2\na b c\n"}, "a merge line needs two tokens"),
        ({}, "gives 9198 tokens but the model has 59457 embedding rows"),
    ],
)
def test_wrong_bpe_files(english_ckpt: Path, tmp_path: Path, capsys, files: dict, expected: str) -> None:
    folder = _bpe_copy(tmp_path, **files)
    assert run_cli("convert", "fairseq", english_ckpt, "--out", tmp_path / "out", "--bpe-dir", folder) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --bpe-dir {folder}: ")
    assert expected in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bpe_dir_missing_files_or_not_a_folder(english_ckpt: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "encoder.json").write_text("{}")
    assert run_cli("convert", "fairseq", english_ckpt, "--out", tmp_path / "out", "--bpe-dir", tmp_path / "half") == 2
    assert "missing vocab.bpe, dict.txt" in capsys.readouterr().err
    assert (
        run_cli(
            "convert",
            "fairseq",
            english_ckpt,
            "--out",
            tmp_path / "out",
            "--bpe-dir",
            tmp_path / "half" / "encoder.json",
        )
        == 2
    )
    assert "not a directory" in capsys.readouterr().err


def test_no_tokenizer_excludes_the_vocabulary_options(
    tiny_ckpt: Path, bert_vocab: Path, tmp_path: Path, capsys
) -> None:
    assert (
        run_cli("convert", "fairseq", tiny_ckpt, "--out", tmp_path / "out", "--vocab", bert_vocab, "--no-tokenizer")
        == 2
    )
    assert "--no-tokenizer excludes --vocab and --bpe-dir" in capsys.readouterr().err


def _task(**settings) -> CheckpointTask | None:
    """The task record of a TINY checkpoint with these cfg.task settings, without writing a file."""
    args = vars(model_namespace(TINY))
    task = task_settings(300, **settings)
    return checkpoint_task(args, task, derive_config(args, task, 300, "zh", Path("x.pt")), Path("x.pt"), ema=False)


def test_vqa_trained_for_beam_search_or_open_ended_is_decoded_by_beam_search() -> None:
    assert _task(_name="vqa_gen", val_inference_type="beamsearch").inference == "beam_search"
    open_ended = _task(_name="vqa_gen", unconstrained_training=True, ans2label_dict='{"no": 0, "yes": 1}')
    assert (open_ended.inference, open_ended.answers) == ("beam_search", None)
    assert _task(_name="vqa_gen", val_inference_type="allcand").inference == "all_candidates"


def test_unknown_tasks_and_settings() -> None:
    pretrained = _task(_name="unify_task")
    assert (pretrained.task, pretrained.inference, pretrained.search) == (None, None, "default")
    ocr = _task(_name="ocr", is_document=True)
    assert (ocr.task, ocr.search, ocr.is_document, ocr.inference) == ("ocr", "ocr-zh", True, "beam_search")
    with pytest.raises(ConversionError, match="cfg.task.prompt_type='prefix'"):
        _task(_name="vqa_gen", prompt_type="prefix")
    with pytest.raises(ConversionError, match="cfg.task.eval_args='{beam' is not JSON"):
        _task(_name="caption", eval_args="{beam")
