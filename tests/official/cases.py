"""One case per official recipe: the checkpoint to build, the rows to read, and how OFA's own script evaluates them.

`tests/official/test_parity.py` and `tools/reference/make_goldens.py` both read this table, so the golden and the
test always describe the same run. Only what differs between tasks is here; the recipe and its docs page say the
rest (the `ofa eval` command is the same for every recipe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECIPES = REPO / "recipes/official"
DATA = HERE / "data"
GOLDENS = HERE / "goldens"
# The official tokenizer files (OFA's utils/BPE and utils/BERT_CN_dict/vocab.txt), beside the checkout.
SPEC = REPO.parent / "shared/spec"


@attrs.frozen
class Weights:
    """How the tiny model's random weights are drawn (see README.md: why these scales give peaked outputs).

    `embedding` scales the shared token embedding (also the output projection, so the logits' spread), `attention`
    the query and key projections (attention that picks a few positions, so outputs depend on the image and the
    text), `gain` every other matrix over 1/sqrt(fan-in), and `eos` the end-of-sentence row, so that some
    hypotheses end before the length limit.
    """

    seed: int = 0
    embedding: float = 0.5
    attention: float = 4.0
    gain: float = 3.0
    eos: float = 1.8


@attrs.frozen
class TokenWeights(Weights):
    """Weights that also scale two groups of rows of the shared embedding, hence those tokens' logits: the location
    tokens by `bins`, the image codes by `codes`. Grounding raises the bins, so that the search writes four of them
    whether or not it is restricted to them, as a model fine-tuned on RefCOCO does; OCR lowers both, so that it
    writes text, as OFA-OCR does (README.md: an untrained model writes codes and bins there)."""

    bins: float = 1.0
    codes: float = 1.0


@attrs.frozen
class TaskFile:
    """A file the recipe reads besides the rows: VQA's answers, ImageNet's labels.

    `data`: the file under tests/official/data, in the JSON form the docs page exports OFA's pickle to. `path`: where
    the recipe's setup puts that export, relative to the project folder (the test puts the file there, so that the
    recipe finds it as a user's would). `override`: the evaluate.py --model-overrides key that reads OFA's pickle,
    which make_goldens.py writes from `data`, keeping its order.
    """

    data: str
    path: str
    override: str


@attrs.frozen
class Case:
    """One official recipe's parity run.

    `cfg`: which official train script's cfg the checkpoint carries (`convert to-fairseq --task`; the fairseq task
    evaluate.py runs is in `flags`). `language`: which official
    vocabulary the checkpoint has. `config`: OFAConfig settings of the task's official train script that differ from
    the defaults (e.g. its patch size). `rows`: the TSV under tests/official/data, in the official column layout.
    `script`: the run_scripts file whose evaluate.py call the golden reproduces; `flags` are that call's flags
    except the paths, --fp16 and the launcher, `overrides` its --model-overrides except data and bpe_dir.
    `compare`: how predictions are compared (a key of tests/official/compare.py's COMPARISONS). `metric`: how the
    golden's metric is computed from the official predictions (a key of tools/reference/make_goldens.py's METRICS).
    `variant`: names a further run of a recipe with another official script (case key and golden `recipe#variant`),
    whose docs page adds the `ofa eval --set` flags in `sets`. `files`: the task files the recipe reads. `convert`:
    the flags the docs page adds to `convert fairseq` (VQA's --ema).
    """

    recipe: str
    cfg: str
    language: str
    rows: str
    script: str
    flags: tuple[str, ...]
    overrides: dict[str, Any]
    compare: str
    metric: str
    config: dict[str, Any] = attrs.field(factory=dict)
    weights: Weights = Weights()
    variant: str = ""
    sets: tuple[str, ...] = ()
    files: tuple[TaskFile, ...] = ()
    convert: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The case's name: the recipe's, with `#variant` for a further run of it."""
        return f"{self.recipe}#{self.variant}" if self.variant else self.recipe

    @property
    def recipe_path(self) -> Path:
        return RECIPES / f"{self.recipe}.json"

    @property
    def rows_path(self) -> Path:
        return DATA / self.rows

    @property
    def golden_path(self) -> Path:
        return GOLDENS / f"{self.key}.json"

    def tokenizer_arguments(self) -> list[str]:
        """What `convert fairseq` is given, as the recipe's setup text says: --bpe-dir for English, --vocab for
        Chinese."""
        return (
            ["--bpe-dir", str(SPEC / "BPE_EN")]
            if self.language == "en"
            else ["--vocab", str(SPEC / "BERT_CN_vocab.txt")]
        )


# evaluate_caption_base.sh (COCO) and generate_caption_cn.sh (MUGE): --batch-size 16, --seed 7, the test split.
_CAPTION_FLAGS = (
    "--task=caption",
    "--batch-size=16",
    "--log-format=simple",
    "--log-interval=10",
    "--seed=7",
    "--gen-subset=test",
    "--no-repeat-ngram-size=3",
    "--num-workers=0",
)
_CAPTION_OVERRIDES = {"eval_cider": False, "selected_cols": "1,4,2"}

_REFCOCO_FLAGS = (
    "--task=refcoco",
    "--batch-size=16",
    "--log-format=simple",
    "--log-interval=10",
    "--seed=7",
    "--gen-subset=refcoco_val",
    "--beam=5",
    "--min-len=4",
    "--max-len-a=0",
    "--max-len-b=4",
    "--no-repeat-ngram-size=3",
    "--num-workers=0",
)
_REFCOCO_BINS = 3.0  # the official search writes bins only; best beams score -4.3 to -8.4 over the five tokens
_PREFIX = {"encoder_prompt": True, "decoder_prompt": True, "encoder_prompt_length": 100, "decoder_prompt_length": 100}
_PROJECTION = {"encoder_prompt_projection": True, "decoder_prompt_projection": True}
# Text, not codes or bins: 3 to 64 tokens before the EOS (36 to 64 on four rows of six); see README.md.
_OCR_WEIGHTS = TokenWeights(eos=2.0, codes=0.3, bins=0.3)

# Closed sets are held to 1e-4 per candidate score, so their model must not amplify float32 rounding: with the
# default scales the scores of the 480-pixel rows move by up to 2.4e-4 between float32 and float64 (sharp attention
# over 900 image positions magnifies the ResNet's rounding), with these by under 1e-5 (README.md has the figures).
_CLOSED_SET_WEIGHTS = Weights(attention=1.0, gain=2.0)
_VQA_FILES = (TaskFile("vqa_ans2label.json", "data/vqa_data/trainval_ans2label.json", "ans2label_file"),)

_CAPTION_COCO = Case(
    "caption_coco",
    "caption",
    "en",
    "caption_en.tsv",
    "run_scripts/caption/evaluate_caption_base.sh",
    (*_CAPTION_FLAGS, "--beam=5", "--max-len-b=16"),
    _CAPTION_OVERRIDES,
    "caption",
    "coco_caption",
)

CASES: dict[str, Case] = {
    case.key: case
    for case in (
        _CAPTION_COCO,
        # Stage 2 (SCST) is evaluated by the same script as stage 1: the same checkpoint, rows and golden values.
        attrs.evolve(_CAPTION_COCO, recipe="caption_coco_scst"),
        Case(
            "caption_muge",
            "caption_cn",
            "zh",
            "caption_zh.tsv",
            "run_scripts/caption/generate_caption_cn.sh",
            (*_CAPTION_FLAGS, "--beam=8", "--max-len-b=128"),
            _CAPTION_OVERRIDES,
            "caption_zh",
            "muge_caption",
            weights=Weights(eos=1.65),
        ),  # captions of 13 to 70 tokens
        # GLUE has no evaluate script: evaluate.py with the task of run_scripts/glue/train_<task>.sh, every row in one
        # batch; its eval_glue reads the answer from the last position's logits (official_eval.py records them).
        *(
            Case(
                f"glue_{task}",
                f"glue_{task}",
                "en",
                f"glue_{task}.tsv",
                f"run_scripts/glue/train_{task}.sh",
                (
                    f"--task={task}",
                    "--batch-size=16",
                    "--log-format=simple",
                    "--seed=7",
                    "--gen-subset=valid",
                    "--num-workers=0",
                ),
                {},
                "glue",
                "glue_accuracy",
            )
            for task in ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2")
        ),
        Case(
            "gigaword",
            "gigaword",
            "en",
            "gigaword.tsv",
            "run_scripts/gigaword/evaluate_gigaword.sh",
            (
                "--task=gigaword",
                "--batch-size=32",
                "--log-format=simple",
                "--log-interval=10",
                "--seed=7",
                "--gen-subset=test",
                "--beam=6",
                "--lenpen=0.7",
                "--max-len-b=32",
                "--no-repeat-ngram-size=3",
                "--num-workers=0",
            ),
            {"selected_cols": "0,1"},
            "summary",
            "gigaword_rouge",
        ),
        # evaluate_refcoco_base.sh and evaluate_refcoco_cn.sh: exactly four tokens, no-repeat 3, batches of 16
        # (evaluate.py
        # stops after the first batch, testing a tensor's truth value; official_eval.py records eval_refcoco's boxes).
        *(
            Case(
                recipe,
                recipe,
                language,
                rows,
                script,
                _REFCOCO_FLAGS,
                {"selected_cols": columns},
                "box",
                "refcoco_accuracy",
                {"patch_image_size": 512},
                TokenWeights(bins=_REFCOCO_BINS),
            )
            for recipe, language, rows, script, columns in (
                ("refcoco", "en", "refcoco_en.tsv", "run_scripts/refcoco/evaluate_refcoco_base.sh", "0,4,2,3"),
                ("refcoco_cn", "zh", "refcoco_zh.tsv", "run_scripts/refcoco/evaluate_refcoco_cn.sh", "0,3,1,2"),
            )
        ),
        # Parameter-efficient fine-tuning (train_refcoco_{prefix,adapter}.sh: encoder and decoder prefixes of 100,
        # adapters of 100), evaluated by the same evaluate_refcoco_base.sh; the official cfg holds the flags (convert
        # to-fairseq writes them), and `ofa eval refcoco` reads them from the converted config.json. BitFit trains
        # biases only: its checkpoint is an ordinary one, which the refcoco case already is.
        *(
            Case(
                "refcoco",
                "refcoco",
                "en",
                "refcoco_en.tsv",
                "run_scripts/refcoco/evaluate_refcoco_base.sh",
                _REFCOCO_FLAGS,
                {"selected_cols": "0,4,2,3"},
                "box",
                "refcoco_accuracy",
                {"patch_image_size": 512, **peft},
                TokenWeights(bins=_REFCOCO_BINS),
                variant=variant,
            )
            for variant, peft in (
                ("prefix", _PREFIX),
                ("prefix_projection", {**_PREFIX, **_PROJECTION}),
                ("adapter", {"adapter": True, "adapter_dim": 100}),
            )
        ),
        # evaluate_ocr_base.sh: beam 5, up to 64 tokens, no n-gram blocking (the ocr task of
        # feature/add_text_recognition).
        Case(
            "ocr_cn",
            "ocr",
            "zh",
            "ocr_zh.tsv",
            "run_scripts/ocr/evaluate_ocr_base.sh",
            (
                "--task=ocr",
                "--batch-size=16",
                "--log-format=simple",
                "--log-interval=10",
                "--seed=7",
                "--gen-subset=test",
                "--beam=5",
                "--max-len-b=64",
                "--no-repeat-ngram-size=0",
                "--num-workers=0",
            ),
            {"selected_cols": "0,1,2", "resnet_model_path": None},
            "ocr",
            "ocr_accuracy",
            weights=_OCR_WEIGHTS,
        ),
        # evaluate_vqa_base_allcand.sh (every answer scored, the answers in batches of valid_batch_size 20) and
        # evaluate_vqa_beam_base.sh (beam 5 in the answers' trie, unnormalised; docs/tasks/vqa.md: --set
        # task.options.inference=beam), both on the EMA weights, with objects and the prev_output prompt.
        *(
            Case(
                "vqa",
                "vqa_gen",
                "en",
                "vqa.tsv",
                script,
                (
                    "--task=vqa_gen",
                    f"--batch-size={batch}",
                    "--log-format=simple",
                    "--log-interval=10",
                    "--seed=7",
                    "--gen-subset=val",
                    "--ema-eval",
                    *search,
                    "--num-workers=0",
                ),
                {"selected_cols": "0,5,2,3,4", **extra},
                compare,
                "vqa_score",
                weights=_CLOSED_SET_WEIGHTS,
                variant=variant,
                sets=sets,
                files=_VQA_FILES,
                convert=("--ema",),
            )
            for variant, script, batch, search, extra, compare, sets in (
                ("", "run_scripts/vqa/evaluate_vqa_base_allcand.sh", 8, (), {}, "closed_set", ()),
                (
                    "beam",
                    "run_scripts/vqa/evaluate_vqa_beam_base.sh",
                    16,
                    ("--beam-search-vqa-eval", "--beam=5", "--unnormalized", "--temperature=1.0"),
                    {"valid_batch_size": "20"},
                    "answer",
                    ("task.options.inference=beam",),
                ),
            )
        ),
        # evaluate_snli_ve_base.sh: the premise caption in the prompt (the checkpoint's --add-caption), answers
        # no/yes/maybe.
        Case(
            "snli_ve",
            "snli_ve",
            "en",
            "snli_ve.tsv",
            "run_scripts/snli_ve/evaluate_snli_ve_base.sh",
            (
                "--task=snli_ve",
                "--batch-size=8",
                "--log-format=simple",
                "--log-interval=10",
                "--seed=7",
                "--gen-subset=dev",
                "--num-workers=0",
            ),
            {"selected_cols": "0,2,3,4,5"},
            "closed_set",
            "snli_ve_accuracy",
            weights=_CLOSED_SET_WEIGHTS,
        ),
        # evaluate_imagenet.sh; the checkpoint normalises with ImageNet's mean and std
        # (--imagenet-default-mean-and-std).
        Case(
            "imagenet",
            "image_classify",
            "en",
            "imagenet.tsv",
            "run_scripts/image_classify/evaluate_imagenet.sh",
            (
                "--task=image_classify",
                "--batch-size=8",
                "--log-format=simple",
                "--log-interval=10",
                "--seed=7",
                "--gen-subset=val",
                "--num-workers=0",
            ),
            {"selected_cols": "0,2"},
            "closed_set",
            "imagenet_accuracy",
            {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]},
            _CLOSED_SET_WEIGHTS,
            files=(TaskFile("imagenet_labels.json", "data/imagenet_1k_data/class2label_new.json", "ans2label_file"),),
        ),
    )
}


# Fields added to Case after goldens were made: a golden records them only when a case sets them.
_RECORDED_WHEN_SET = ("variant", "sets", "files", "convert")


def record(case: Case) -> dict:
    """What a golden records of its case (JSON types), so that an edited case cannot meet an old golden."""

    def kept(attribute: attrs.Attribute, value: Any) -> bool:
        return attribute.name not in _RECORDED_WHEN_SET or value != attribute.default

    return orjson.loads(orjson.dumps(attrs.asdict(case, filter=kept)))
