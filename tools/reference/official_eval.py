"""Run OFA's own evaluate.py on the CPU and record what its evaluation functions computed, row by row.

Run in the official environment (tools/reference/setup.sh; /work/ref/READY names its activation line), from
anywhere:
    python tools/reference/official_eval.py --ofa OFA_DIR --record OUT.json -- EVALUATE.PY ARGUMENTS...
The arguments are evaluate.py's own (those of a run_scripts/<task>/evaluate_*.sh call, --cpu instead of --fp16).
Nothing of OFA's code is changed or copied: `torch.Tensor.cuda` becomes a no-op (evaluate.py allocates its score
sums with .cuda()), torch.load may read pickled argparse settings again, and a profile hook reads the local
variables of utils/eval_utils.py's eval_* functions as they
return: the hypotheses of a search (every beam's tokens and score), or the per-candidate scores of a closed set,
with the batch's sample ids. The record is a JSON list, one entry per row, in the order evaluate.py saw them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import types
from pathlib import Path
from typing import Any


def _hypotheses(hypos: list, ids: list) -> list[dict[str, Any]]:
    """Beam search output: per row, every finished hypothesis in the order the generator ranked them."""
    return [
        {
            "id": str(row_id),
            "beams": [
                {"tokens": [int(t) for t in hypo["tokens"].tolist()], "score": float(hypo["score"])} for hypo in row
            ],
        }
        for row_id, row in zip(ids, hypos)
    ]


def _candidates(scores, names: list[str] | None, ids: list) -> list[dict[str, Any]]:
    """Closed sets: per row, every candidate's score (named when the task has an index-to-answer list)."""
    rows = []
    for row_id, values in zip(ids, scores.tolist()):
        rows.append({"id": str(row_id), "candidates": values if names is None else dict(zip(names, values))})
    return rows


def _glue_rows(logits, task, start: int) -> list[dict[str, Any]]:
    """GLUE: per row, the last position's logit of every answer the constraint leaves (the others are -inf), by
    answer text. GLUE batches carry no ids: rows are numbered in the order evaluate.py read them."""
    rows = []
    for offset, values in enumerate(logits.tolist()):
        allowed = {
            task.bpe.decode(task.src_dict[index]).strip(): value
            for index, value in enumerate(values)
            if value != float("-inf")
        }
        rows.append({"id": start + offset, "candidates": allowed})
    return rows


def _refcoco_rows(local: dict, ids: list) -> list[dict[str, Any]]:
    """eval_refcoco: per row, the beams, the box it computed from the best one (pixels of the original image) and
    its Acc@0.5 score (1.0 or 0.0)."""
    rows = _hypotheses(local["gen_out"], ids)
    for row, result, score in zip(rows, local["results"], local["scores"].tolist()):
        row.update(box=[float(value) for value in result["box"]], hit=float(score))
    return rows


def _ocr_rows(local: dict, ids: list, decode_fn) -> list[dict[str, Any]]:
    """eval_ocr: per row, the beams, the text it saves (eval_utils.decode_fn of the best beam, stripped, spaces
    removed) and the reference it compares with (the target decoded alike). eval_ocr stops at its `if
    sample["target"]` before making them for a target of more than one token, so they are made here with its own
    decode_fn, as its next lines would."""
    task, generator, target = local["task"], local["generator"], local["sample"]["target"]
    pad = task.tgt_dict.pad()

    def text(tokens) -> str:
        return decode_fn(tokens, task.tgt_dict, task.bpe, generator).strip().replace(" ", "")

    rows = _hypotheses(local["gen_out"], ids)
    for index, (row, hypos) in enumerate(zip(rows, local["gen_out"])):
        row.update(text=text(hypos[0]["tokens"]), reference=text(target[index][target[index].ne(pad)]))
    return rows


def recorder(records: list[dict[str, Any]]):
    """A sys.setprofile hook that reads eval_utils' eval_* locals when such a function returns."""

    def hook(frame, event, arg):
        code = frame.f_code
        if event != "return" or not code.co_name.startswith("eval_") or not code.co_filename.endswith("eval_utils.py"):
            return
        local = frame.f_locals
        sample, task = local.get("sample"), local.get("task")
        if code.co_name in ("eval_refcoco", "eval_ocr") and isinstance(local.get("gen_out"), list):
            ids = [str(row_id) for row_id in sample["id"].tolist()]
            if code.co_name == "eval_refcoco":
                records.extend(_refcoco_rows(local, ids))
            else:
                records.extend(_ocr_rows(local, ids, frame.f_globals["decode_fn"]))
            return
        if code.co_name == "eval_glue" and local.get("logits") is not None:
            records.extend(_glue_rows(local["logits"], task, len(records)))
            return
        if sample is None or "id" not in sample:
            return
        ids = sample["id"].tolist() if hasattr(sample["id"], "tolist") else list(sample["id"])
        for name in ("hypos", "gen_out"):
            if isinstance(local.get(name), list):
                records.extend(_hypotheses(local[name], ids))
                return
        if local.get("valid_result") is not None:  # VQA (all candidates), SNLI-VE, image classification
            names = getattr(task, "index2ans", None)
            names = [names[i] for i in range(len(names))] if names is not None else None
            records.extend(_candidates(local["valid_result"], names, ids))

    return hook


def _centre_ocr_offsets() -> None:
    """OFA's ocr_resize pads an evaluation image at `random.randint(0, side - short)`, and evaluate.py seeds numpy
    and torch but not Python's random, so its outputs change from run to run. The draw is fixed at the midpoint
    (`(0 + side - short) // 2`, the centre ofa eval pads at; docs/tasks/ocr.md): one of the offsets the official
    code draws, every time. Only the OCR dataset's module sees the change."""
    from data.mm_data import ocr_dataset

    ocr_dataset.random = types.SimpleNamespace(randint=lambda low, high: (low + high) // 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ofa", type=Path, required=True, help="the OFA work tree (evaluate.py, utils/, fairseq/)")
    parser.add_argument("--record", type=Path, required=True, help="JSON file for the recorded rows")
    parser.add_argument(
        "--ocr-offsets",
        choices=("centre", "random"),
        default="centre",
        help="OFA's OCR dataset pads each image at an offset drawn from Python's unseeded random: "
        "'centre' fixes the draw at the middle of its range (the offset ofa eval uses), "
        "'random' leaves it as it is",
    )
    parser.add_argument("evaluate_args", nargs=argparse.REMAINDER, help="-- then evaluate.py's arguments")
    args = parser.parse_args()
    evaluate_args = args.evaluate_args[1:] if args.evaluate_args[:1] == ["--"] else args.evaluate_args

    # evaluate.py's torch.load predates torch 2.6's weights-only default; fairseq checkpoints hold argparse.Namespace
    # objects (cfg.model), and the files loaded here are the parity suite's own.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch

    torch.Tensor.cuda = lambda self, *unused, **also_unused: self
    root = args.ofa.resolve()
    for path in (root / "fairseq", root):
        sys.path.insert(0, str(path))
    os.chdir(root)
    import evaluate

    if args.ocr_offsets == "centre" and (root / "data/mm_data/ocr_dataset.py").is_file():
        _centre_ocr_offsets()
    records: list[dict[str, Any]] = []
    sys.argv = [str(root / "evaluate.py"), *evaluate_args]
    sys.setprofile(recorder(records))
    try:
        evaluate.cli_main()
    except TypeError as error:
        # OFA's eval_glue ends with `ref_dict.keys()[0]`, which Python 3 refuses, after its predictions are made;
        # the recorder has read them (every row in one batch), so the run is complete but for that line.
        if "dict_keys" not in str(error) or not records:
            raise
        print(f"evaluate.py stopped in eval_glue after its predictions ({error}); recorded rows kept")
    except RuntimeError as error:
        # A batch of more than one row stops evaluate.py at `if scores` after eval_refcoco (its scores are a tensor),
        # and eval_ocr at `if sample["target"]`, both after the search: the recorder has read the first batch.
        where = traceback.extract_tb(error.__traceback__)[-1]
        stops = {("evaluate.py", "main"), ("eval_utils.py", "eval_ocr")}
        if (
            "more than one value is ambiguous" not in str(error)
            or (Path(where.filename).name, where.name) not in stops
            or not records
        ):
            raise
        print(f"evaluate.py stopped in {where.name} after the first batch's search ({error}); recorded rows kept")
    finally:
        sys.setprofile(None)
    args.record.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"recorded {len(records)} rows in {args.record}")


if __name__ == "__main__":
    main()
