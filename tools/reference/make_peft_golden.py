"""Make tests/official/goldens/peft_logits.json: the official model's logits and beams on a prompt-tuned checkpoint.

Run by hand (not in CI) with the project's venv, once the official environment works (tools/reference/setup.sh):
    .venv/bin/python tools/reference/make_peft_golden.py [--ready /work/ref/READY] [--ofa /work/ref/OFA] [--commit C]
1. Here: `tests/official/test_peft_logits.py`'s checkpoint (every official parameter-efficient module at once: an
   encoder prefix with projection, a decoder prefix without, adapters; 64 channels, ResNet-50, the English
   vocabulary) is built with this project's code and written with `convert to-fairseq --task caption`; the inputs
   are two of the parity suite's RefCOCO photos (the second row's text padded) as the project's processor makes
   them, with fixed token ids.
2. (official) The file is loaded with `checkpoint_utils.load_model_ensemble_and_task`, as evaluate.py loads it;
   its teacher-forced logits and its task's beam search (beam 5, up to 6 tokens, no-repeat 3) are recorded.
3. Here: the golden keeps, per row and decoder position, the log-sum-exp over the whole vocabulary and the logits
   of a fixed set of token ids (text, image codes, location bins), the best beams' tokens and scores, and the
   checkpoint's digest and inputs' hash, so the test knows it compares the same computation.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
GOLDEN = REPO / "tests/official/goldens/peft_logits.json"

from make_goldens import ofa_commit  # noqa: E402  (this folder, on sys.path when run as a script)


def official(checkpoint: str, inputs: str, ofa: str, out: str) -> None:
    """(official) Logits and beams of the official model loaded as evaluate.py loads it."""
    import ofa_module  # noqa: F401  registers OFA's tasks and models
    from fairseq import checkpoint_utils

    recorded = torch.load(inputs)
    overrides = {"bpe_dir": str(Path(ofa) / "utils/BPE"), "eval_cider": False}
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides=overrides)
    model = models[0].eval()
    ids, images, decoder, search = recorded["ids"], recorded["images"], recorded["decoder"], recorded["search"]
    lengths, masks = ids.ne(1).sum(1), torch.ones(len(ids), dtype=torch.bool)
    with torch.no_grad():
        logits, _ = model(ids, lengths, decoder, patch_images=images, patch_masks=masks)
        generator = task.build_generator(
            [model],
            argparse.Namespace(
                beam=search["beam"],
                max_len_b=search["max_len_b"],
                min_len=1,
                no_repeat_ngram_size=search["no_repeat_ngram_size"],
            ),
        )
        sample = {
            "net_input": {"src_tokens": ids, "src_lengths": lengths, "patch_images": images, "patch_masks": masks}
        }
        hypos = task.inference_step(generator, [model], sample)
    beams = [[{"tokens": hypo["tokens"].tolist(), "score": float(hypo["score"])} for hypo in row[:2]] for row in hypos]
    torch.save({"logits": logits, "beams": beams}, out)


def main() -> None:
    from official.checkpoints import digest
    from official.test_peft_logits import SEARCH, TOKEN_IDS, build_checkpoint, inputs_digest, peft_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", type=Path, default=Path("/work/ref/READY"))
    parser.add_argument("--ofa", type=Path, default=Path("/work/ref/OFA"))
    parser.add_argument("--commit", help="the OFA commit of that tree, recorded in the golden (default: its git HEAD)")
    args = parser.parse_args()
    commit = ofa_commit(args, parser)
    activate = args.ready.read_text(encoding="utf-8").strip()
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        checkpoint = build_checkpoint(work)
        ids, images, decoder = peft_inputs()
        torch.save({"ids": ids, "images": images, "decoder": decoder, "search": SEARCH}, work / "inputs.pt")
        command = shlex.join(
            [
                "python",
                str(Path(__file__).resolve()),
                "official",
                str(checkpoint),
                str(work / "inputs.pt"),
                str(args.ofa.resolve()),
                str(work / "official.pt"),
            ]
        )
        if subprocess.run(["bash", "-c", f"{activate}\n{command}"]).returncode != 0:
            raise SystemExit("the official step failed")
        result = torch.load(work / "official.pt")
        logits = result["logits"].double()
        golden = {
            "official": {"repository": "OFA-Sys/OFA", "commit": commit},
            "checkpoint_sha256": digest(checkpoint),
            "inputs_sha256": inputs_digest(ids, images, decoder),
            "search": SEARCH,
            "token_ids": TOKEN_IDS,
            "logsumexp": logits.logsumexp(-1).tolist(),
            "logits": logits[:, :, TOKEN_IDS].tolist(),
            "beams": result["beams"],
        }
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "official":
        official(*sys.argv[2:])
    else:
        main()
