"""Make tests/official/goldens/<recipe>.json: OFA's own evaluate.py on the parity suite's checkpoints and rows.

Run by hand (not in CI), with the project's venv, once the official environment works (tools/reference/setup.sh):
    .venv/bin/python tools/reference/make_goldens.py [RECIPE ...] [--ready /work/ref/READY] [--ofa /work/ref/OFA]
For each recipe (default: every case of tests/official/cases.py): build the case's checkpoint with this project's
code (tests/official/checkpoints.py), run the official evaluate.py on it and the case's rows with the flags of the
case's run_scripts file (minus --fp16, plus --cpu) through tools/reference/official_eval.py in the official
environment, score the official predictions with the task's metric, and write the golden. The shell line that
activates the official environment is read from the READY file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import re
import shlex
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from official.cases import CASES, SPEC, Case, record  # noqa: E402  (tests/ is not an installed package)
from official.checkpoints import build, digest  # noqa: E402

OFFICIAL_TOKENIZER = {"en": ("utils/BPE", SPEC / "BPE_EN"), "zh": ("utils/BERT_CN_dict", SPEC)}


def ofa_commit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The OFA commit a golden records: `--commit`, else the git HEAD of the `--ofa` tree."""
    commit = (
        args.commit
        or subprocess.run(
            ["git", "-C", str(args.ofa), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    )
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        parser.error(f"{args.ofa} is not a git work tree: name its OFA commit with --commit")
    return commit


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_tokenizer_files(case: Case, ofa: Path) -> str:
    """The tests read the official tokenizer files from shared/spec; they must be byte for byte OFA's own."""
    official, ours = OFFICIAL_TOKENIZER[case.language]
    pairs = (
        [(ofa / official / name, ours / name) for name in ("encoder.json", "vocab.bpe", "dict.txt")]
        if case.language == "en"
        else [(ofa / official / "vocab.txt", ours / "BERT_CN_vocab.txt")]
    )
    for theirs, mine in pairs:
        if theirs.read_bytes() != mine.read_bytes():
            raise SystemExit(f"{mine} differs from OFA's {theirs}: the tests would read another vocabulary")
    return str(ofa / official)


def references(case: Case) -> dict[str, list[str]]:
    """The rows' references as the official caption evaluation data has them: image id -> captions ('&&')."""
    rows = [line.split("\t") for line in case.rows_path.read_text(encoding="utf-8").splitlines()]
    return {row[1]: row[2].split("&&") for row in rows}


def _coco_scores(predictions: dict[str, str], refs: dict[str, list[str]], tokenize: Callable) -> dict[str, float]:
    """BLEU-4, ROUGE-L and CIDEr-D of pycocoevalcap (coco_eval.py's scorers), x100 as ofa eval reports them."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = tokenize(refs), tokenize({key: [predictions[key]] for key in refs})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {"cider": 100 * float(cider), "bleu4": 100 * float(bleu[3]), "rouge_l": 100 * float(rouge)}


def coco_caption(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """run_scripts/caption/coco_eval.py: Stanford PTB tokenization (Java), then the scorers; METEOR and SPICE, which
    ofa eval does not report, are left out."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    def tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
        return PTBTokenizer().tokenize({key: [{"caption": text} for text in texts] for key, texts in captions.items()})

    return _coco_scores(predictions, references(case), tokenize)


_CJK_OR_FULL_WIDTH = r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"


def muge_caption(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """OFA publishes no MUGE scorer; the scorers of coco_caption on MUGE's tokens as docs/tasks/caption.md defines
    them: no spaces, one token per CJK character or full-width sign, one per run of ASCII letters and digits, ASCII
    punctuation dropped (written here from that text, not from the project's code)."""
    drop = str.maketrans(dict.fromkeys(string.punctuation))

    def tokens(text: str) -> str:
        text = re.sub(r"\s+", "", text).translate(drop)
        return " ".join(re.findall(rf"{_CJK_OR_FULL_WIDTH}|[A-Za-z0-9]+|[^\sA-Za-z0-9]", text))

    def tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
        return {key: [tokens(text) for text in texts] for key, texts in captions.items()}

    return _coco_scores(predictions, references(case), tokenize)


# The official GLUE datasets' label words (data/nlu_data/<task>_dataset.py), by the label the TSV holds.
GLUE_LABELS = {
    "sst2": {"0": "negative", "1": "positive"},
    "cola": {"0": "no", "1": "yes"},
    "mnli": {"0": "maybe", "1": "yes", "2": "no"},
    "mrpc": {"0": "no", "1": "yes"},
    "qqp": {"0": "no", "1": "yes"},
    "qnli": {"0": "no", "1": "yes", "not_entailment": "no", "entailment": "yes"},
    "rte": {"not_entailment": "no", "entailment": "yes"},
}


def glue_accuracy(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """The share of rows whose official answer is the row's label word (its valid_step's acc), x100."""
    labels = GLUE_LABELS[case.cfg.removeprefix("glue_")]
    stem = case.rows_path.stem
    words = {
        f"{stem}:{number}": labels[line.split("\t")[-1]]
        for number, line in enumerate(case.rows_path.read_text(encoding="utf-8").splitlines(), 1)
    }
    return {"accuracy": 100 * sum(predictions[key] == word for key, word in words.items()) / len(words)}


def gigaword_rouge(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """ROUGE-1/2/L F-measures (Porter stemmer) of Google's rouge-score, the scorer run_scripts/gigaword/eval_rouge.py
    loads through `datasets`, against the lower-cased headlines eval_gigaword pairs them with, x100. The script
    reports its bootstrap aggregator's middle value; this is the plain mean over rows, as ofa eval reports."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    stem = case.rows_path.stem
    references = {
        f"{stem}:{number}": line.split("\t")[1].lower()
        for number, line in enumerate(case.rows_path.read_text(encoding="utf-8").splitlines(), 1)
    }
    scores = [scorer.score(references[key], predictions[key]) for key in references]
    return {
        name: 100 * sum(score[name].fmeasure for score in scores) / len(scores)
        for name in ("rouge1", "rouge2", "rougeL")
    }


def _tsv_column(case: Case, field: int) -> dict[str, str]:
    """uniq-id -> the row's value of the `field`-th selected column (selected_cols: uniq-id, image, text, box)."""
    columns = [int(column) for column in case.overrides["selected_cols"].split(",")]
    rows = [line.split("\t") for line in case.rows_path.read_text(encoding="utf-8").splitlines()]
    return {row[columns[0]]: row[columns[field]] for row in rows}


def official_hit(box: list[float], reference: list[float]) -> float:
    """eval_refcoco's Acc@0.5 score of one box, in float32 as it computes: IoU = intersection / (area + area' -
    intersection + 1e-6) at least 0.5, and an intersection of positive width and height."""
    import torch

    hyp, ref = torch.tensor(box, dtype=torch.float32), torch.tensor(reference, dtype=torch.float32)
    low, high = torch.maximum(hyp[:2], ref[:2]), torch.minimum(hyp[2:], ref[2:])
    width, height = high - low
    area = (hyp[2] - hyp[0]) * (hyp[3] - hyp[1]) + (ref[2] - ref[0]) * (ref[3] - ref[1])
    iou = width * height / (area - width * height + 1e-6)
    return float((iou >= 0.5) & (width > 0) & (height > 0))


def refcoco_accuracy(predictions: dict[str, list[float]], case: Case) -> dict[str, float]:
    """Acc@0.5 as evaluate.py sums eval_refcoco's scores (x100): the share of boxes that hit the row's box."""
    references = {key: [float(value) for value in box.split(",")] for key, box in _tsv_column(case, 3).items()}
    return {
        "acc@0.5": 100 * sum(official_hit(predictions[key], references[key]) for key in references) / len(references)
    }


def ocr_label(text: str) -> str:
    """OcrDataset's label (feature/add_text_recognition), Chinese vocabulary: traditional to simplified (zhconv),
    NFKC, lower case. Its max_tgt_length cut is left out: box_rows' check against the official references
    stops a longer label."""
    import unicodedata

    from zhconv import convert

    return unicodedata.normalize("NFKC", convert(text, "zh-hans")).lower().replace(" ", "")


def ocr_accuracy(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """eval_ocr's accuracy (x100): the share of rows whose text equals the label, spaces removed."""
    labels = {key: ocr_label(text) for key, text in _tsv_column(case, 2).items()}
    return {"accuracy": 100 * sum(predictions[key] == label for key, label in labels.items()) / len(labels)}


def _rows(case: Case) -> list[list[str]]:
    return [line.split("\t") for line in case.rows_path.read_text(encoding="utf-8").splitlines()]


def vqa_score(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """eval_vqa_gen's score (x100): the confidence the row's answers give the prediction, 0 if none, averaged over
    rows (ref_dict of VqaGenDataset: 'confidence|!+answer' items joined by '&&', column 3 of the TSV)."""
    references = {
        row[0]: {item.split("|!+")[1]: float(item.split("|!+")[0]) for item in row[3].split("&&")}
        for row in _rows(case)
    }
    return {"vqa_acc": 100 * sum(references[key].get(predictions[key], 0) for key in references) / len(references)}


SNLI_VE_LABELS = {"contradiction": "no", "entailment": "yes", "neutral": "maybe"}  # SnliVeDataset's answer words


def snli_ve_accuracy(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """eval_snli_ve's score (x100): the share of rows whose answer is the label's word (label in column 5)."""
    labels = {row[0]: SNLI_VE_LABELS[row[5]] for row in _rows(case)}
    return {"accuracy": 100 * sum(predictions[key] == label for key, label in labels.items()) / len(labels)}


def imagenet_accuracy(predictions: dict[str, str], case: Case) -> dict[str, float]:
    """eval_image_classify's score (x100): the share of rows (numbered from 0) whose answer is the label words of
    column 2."""
    labels = {str(number): row[2] for number, row in enumerate(_rows(case))}
    return {"accuracy": 100 * sum(predictions[key] == label for key, label in labels.items()) / len(labels)}


METRICS: dict[str, Callable[[dict[str, str], Case], dict[str, float]]] = {
    "coco_caption": coco_caption,
    "muge_caption": muge_caption,
    "glue_accuracy": glue_accuracy,
    "gigaword_rouge": gigaword_rouge,
    "refcoco_accuracy": refcoco_accuracy,
    "ocr_accuracy": ocr_accuracy,
    "vqa_score": vqa_score,
    "snli_ve_accuracy": snli_ve_accuracy,
    "imagenet_accuracy": imagenet_accuracy,
}


def evaluate_arguments(
    case: Case, checkpoint: Path, bpe_dir: str, ofa: Path, results: Path, files: dict[str, str] | None = None
) -> list[str]:
    """The run_scripts call of the case with this machine's paths: its flags, --cpu instead of --fp16; `files`: the
    task files' overrides (ans2label_file: the pickle official_run wrote)."""
    overrides = {"data": str(case.rows_path), "bpe_dir": bpe_dir, **case.overrides, **(files or {})}
    return [
        str(case.rows_path),
        f"--path={checkpoint}",
        f"--user-dir={ofa / 'ofa_module'}",
        *case.flags,
        "--cpu",
        f"--results-path={results}",
        f"--model-overrides={overrides!r}",
    ]


def official_run(case: Case, checkpoint: Path, ofa: Path, activate: str, work: Path) -> tuple[list, list[str]]:
    """Run evaluate.py through official_eval.py; return (the saved predictions, the recorded rows, the arguments)."""
    bpe_dir = check_tokenizer_files(case, ofa)
    files = {}
    for task_file in case.files:  # OFA reads a pickle of the answer -> index map the case's JSON export holds
        pickled = work / f"{Path(task_file.data).stem}.pkl"
        pickled.write_bytes(
            pickle.dumps(json.loads((case.rows_path.parent / task_file.data).read_text(encoding="utf-8")))
        )
        files[task_file.override] = str(pickled)
    arguments = evaluate_arguments(case, checkpoint, bpe_dir, ofa, work / "results", files)
    record = work / "record.json"
    command = shlex.join(
        [
            "python",
            str(REPO / "tools/reference/official_eval.py"),
            "--ofa",
            str(ofa),
            "--record",
            str(record),
            "--",
            *arguments,
        ]
    )
    completed = subprocess.run(["bash", "-c", f"{activate}\n{command}"], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(
            f"official evaluate.py failed for {case.recipe}:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        )
    subset = next(flag.split("=", 1)[1] for flag in case.flags if flag.startswith("--gen-subset="))
    saved_file = work / "results" / f"{subset}_predict.json"  # GLUE's evaluation stops before writing it
    saved = json.loads(saved_file.read_text(encoding="utf-8")) if saved_file.is_file() else []
    return saved, json.loads(record.read_text(encoding="utf-8")), arguments


def caption_rows(saved: list[dict], recorded: list[dict]) -> list[dict]:
    """Per row: the caption evaluate.py saved, and its search's best and second-best beams (tokens and scores)."""
    beams = {row["id"]: row["beams"] for row in recorded}
    rows = []
    for entry in saved:
        best, *rest = beams[entry["image_id"]]
        rows.append(
            {
                "id": entry["image_id"],
                "prediction": entry["caption"],
                "tokens": best["tokens"],
                "score": best["score"],
                "runner_up_score": rest[0]["score"] if rest else None,
            }
        )
    return rows


def glue_rows(saved: list[dict], recorded: list[dict], case: Case) -> list[dict]:
    """GLUE: per TSV row (ids as the glue_tsv reader numbers lines), the answer with the highest last-position
    logit, as eval_glue's argmax picks it, and every allowed answer's logit."""
    lines = case.rows_path.read_text(encoding="utf-8").splitlines()
    if len(recorded) != len(lines):
        raise SystemExit(f"{case.recipe}: recorded {len(recorded)} rows of {len(lines)}; keep them in one batch")
    stem = case.rows_path.stem
    return [
        {
            "id": f"{stem}:{row['id'] + 1}",
            "prediction": max(row["candidates"], key=row["candidates"].get),
            "candidates": row["candidates"],
        }
        for row in recorded
    ]


def summary_rows(saved: list[dict], recorded: list[dict], case: Case) -> list[dict]:
    """Gigaword: the headline eval_gigaword saved per row (its batches carry no ids: saved in the TSV's order)."""
    lines = case.rows_path.read_text(encoding="utf-8").splitlines()
    if len(saved) != len(lines):
        raise SystemExit(f"{case.recipe}: evaluate.py saved {len(saved)} rows of {len(lines)}")
    stem = case.rows_path.stem
    return [
        {"id": f"{stem}:{number}", "prediction": entry["hyp"], "reference": entry["ref"]}
        for number, entry in enumerate(saved, 1)
    ]


def _searched(recorded: list[dict], case: Case) -> list[dict]:
    """The recorded rows of a task whose evaluate.py stops after its first batch: they must be all the TSV's rows."""
    lines = case.rows_path.read_text(encoding="utf-8").splitlines()
    if len(recorded) != len(lines):
        raise SystemExit(f"{case.recipe}: recorded {len(recorded)} rows of {len(lines)}; keep them in one batch")
    return recorded


def _beams(row: dict) -> dict:
    best, *rest = row["beams"]
    return {"tokens": best["tokens"], "score": best["score"], "runner_up_score": rest[0]["score"] if rest else None}


def box_rows(saved: list[dict], recorded: list[dict], case: Case) -> list[dict]:
    """RefCOCO: per row, the box eval_refcoco computed from the best beam, the beam's tokens and score, the
    runner-up's score and eval_refcoco's Acc@0.5 score, which official_hit must reproduce."""
    references = {key: [float(value) for value in box.split(",")] for key, box in _tsv_column(case, 3).items()}
    rows = []
    for row in _searched(recorded, case):
        if official_hit(row["box"], references[row["id"]]) != row["hit"]:
            raise SystemExit(f"{case.recipe}: row {row['id']}: official_hit disagrees with eval_refcoco's {row['hit']}")
        rows.append({"id": row["id"], "prediction": row["box"], **_beams(row), "hit": row["hit"]})
    return rows


def ocr_rows(saved: list[dict], recorded: list[dict], case: Case) -> list[dict]:
    """OCR: per row, eval_ocr's text (spaces removed), the best beam's tokens and score, the runner-up's score, and
    the reference it compares with, which ocr_label must reproduce."""
    labels = {key: ocr_label(text) for key, text in _tsv_column(case, 2).items()}
    rows = []
    for row in _searched(recorded, case):
        if labels[row["id"]] != row["reference"]:
            raise SystemExit(
                f"{case.recipe}: row {row['id']}: label {labels[row['id']]!r}, eval_ocr's {row['reference']!r}"
            )
        rows.append({"id": row["id"], "prediction": row["text"], **_beams(row), "reference": row["reference"]})
    return rows


# A closed-set golden is refused when a row's two best candidates lie closer than this: the prediction must not
# hang on rounding (ten times compare.py's SCORE_TOLERANCE).
MIN_MARGIN = 1e-3


def _saved_answers(saved: list[dict], case: Case) -> dict[str, str]:
    """The answers evaluate.py saved, by row id (question_id for VQA, uniq_id otherwise), every row once."""
    answers = {str(entry.get("question_id", entry.get("uniq_id"))): entry["answer"] for entry in saved}
    if len(answers) != len(saved) or len(saved) != len(_rows(case)):
        raise SystemExit(f"{case.key}: evaluate.py saved {len(saved)} answers for {len(_rows(case))} rows")
    return answers


def closed_set_rows(saved: list[dict], recorded: list[dict], case: Case) -> list[dict]:
    """All-candidate inference: per row, the answer evaluate.py saved, every candidate's score (valid_result, by
    answer) and the margin between the two best, which must be at least MIN_MARGIN."""
    answers = _saved_answers(saved, case)
    rows = []
    for row in recorded:
        best, second = sorted(row["candidates"].values(), reverse=True)[:2]
        if max(row["candidates"], key=row["candidates"].get) != answers[row["id"]]:
            raise SystemExit(f"{case.key}: row {row['id']}: saved {answers[row['id']]!r} is not the best candidate")
        if best - second < MIN_MARGIN:
            raise SystemExit(
                f"{case.key}: row {row['id']}: the two best candidates lie {best - second:.2e} apart; "
                "change the case's weights"
            )
        rows.append(
            {
                "id": row["id"],
                "prediction": answers[row["id"]],
                "candidates": row["candidates"],
                "margin": best - second,
            }
        )
    return rows


def answer_rows(saved: list[dict], recorded: list[dict], case: Case) -> list[dict]:
    """VQA by beam search: per row, the answer evaluate.py saved, and the best and second-best beams (tokens, the
    prompt included, and scores)."""
    answers = _saved_answers(saved, case)
    return [{"id": row["id"], "prediction": answers[row["id"]], **_beams(row)} for row in recorded]


ROWS: dict[str, Callable[[list[dict], list[dict], Case], list[dict]]] = {
    "caption": lambda saved, recorded, case: caption_rows(saved, recorded),
    "caption_zh": lambda saved, recorded, case: caption_rows(saved, recorded),
    "glue": glue_rows,
    "summary": summary_rows,
    "box": box_rows,
    "ocr": ocr_rows,
    "closed_set": closed_set_rows,
    "answer": answer_rows,
}


def portable(argument: str, places: dict[str, str]) -> str:
    """An argument with this machine's folders named by role (<repo>, <OFA>, <tmp>)."""
    for folder, name in places.items():
        argument = argument.replace(folder, name)
    return argument


def make_golden(case: Case, ofa: Path, activate: str, commit: str) -> Path:
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        checkpoint = build(case, work)
        saved, recorded, arguments = official_run(case, checkpoint, ofa, activate, work)
        rows = ROWS[case.compare](saved, recorded, case)
        golden = {
            "recipe": case.recipe,
            "case": record(case),
            "checkpoint_sha256": digest(checkpoint),
            "rows_sha256": sha256(case.rows_path),
            "official": {
                "repository": "OFA-Sys/OFA",
                "commit": commit,
                "script": case.script,
                "evaluate_py": [
                    portable(argument, {directory: "<tmp>", str(ofa): "<OFA>", str(REPO): "<repo>"})
                    for argument in arguments
                ],
            },
            "predictions": rows,
            "metric": METRICS[case.metric]({row["id"]: row["prediction"] for row in rows}, case),
        }
    case.golden_path.parent.mkdir(parents=True, exist_ok=True)
    case.golden_path.write_bytes(orjson.dumps(golden, option=orjson.OPT_INDENT_2) + b"\n")
    return case.golden_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "recipes", nargs="*", metavar="RECIPE", help="recipes to make goldens for (default: every case)"
    )
    parser.add_argument(
        "--ready",
        type=Path,
        default=Path("/work/ref/READY"),
        help="file whose text activates the official environment in bash",
    )
    parser.add_argument("--ofa", type=Path, default=Path("/work/ref/OFA"), help="the OFA work tree")
    parser.add_argument("--commit", help="the OFA commit of that tree, recorded in the goldens (default: its git HEAD)")
    args = parser.parse_args()
    unknown = sorted(set(args.recipes) - set(CASES))
    if unknown:
        parser.error(f"no case for {', '.join(unknown)} in tests/official/cases.py")
    activate = args.ready.read_text(encoding="utf-8")
    commit = ofa_commit(args, parser)
    for recipe in args.recipes or list(CASES):
        print(f"{recipe}: wrote {make_golden(CASES[recipe], args.ofa.resolve(), activate, commit)}")


if __name__ == "__main__":
    main()
