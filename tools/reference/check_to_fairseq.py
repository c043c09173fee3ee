"""Check a `convert to-fairseq` file in the official code: it loads as evaluate.py loads (its evaluate scripts' overrides: bpe_dir, eval_cider off), and computes our logits.

Two steps, one per environment (the project's venv, then the official one from tools/reference/setup.sh):
    python tools/reference/check_to_fairseq.py ours MODEL_DIR X.pt INPUTS.pt     # exports, records inputs+logits
    python tools/reference/check_to_fairseq.py official X.pt INPUTS.pt BPE_DIR   # loads X.pt officially, compares
The official step loads with `checkpoint_utils.load_model_ensemble_and_task` (bpe_dir overridden, as the
evaluate scripts do), runs the model's forward on the recorded inputs and prints the largest logit difference;
it then runs the task's official beam search (`task.inference_step` with the checkpoint's eval_args) and compares
the best beams with ours.
"""

from __future__ import annotations

import sys

import torch


def ours(model_dir: str, checkpoint: str, inputs_path: str) -> None:
    from ofa_core.cli import main
    from ofa_core.model.modeling import OFAForConditionalGeneration

    if main(["convert", "to-fairseq", model_dir, "--out", checkpoint]) != 0:
        raise SystemExit("convert to-fairseq failed")
    model = OFAForConditionalGeneration.from_pretrained(model_dir).eval()
    generator = torch.Generator().manual_seed(5)
    size = model.config.patch_image_size
    ids = torch.randint(4, 1000, (2, 9), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2
    images = torch.randn(2, 3, size, size, generator=generator)
    decoder = torch.randint(4, 1000, (2, 6), generator=generator)
    decoder[:, 0] = 0
    with torch.no_grad():
        logits = model(input_ids=ids, patch_images=images, decoder_input_ids=decoder).logits
        beams = model.generate(input_ids=ids, patch_images=images, num_beams=5, max_new_tokens=17,
                               no_repeat_ngram_size=3, min_new_tokens=1)
    torch.save({"ids": ids, "images": images, "decoder": decoder, "logits": logits, "beams": beams}, inputs_path)
    print(f"recorded {inputs_path}")


def official(checkpoint: str, inputs_path: str, bpe_dir: str) -> None:
    from argparse import Namespace

    from fairseq import checkpoint_utils

    import ofa_module  # noqa: F401  registers OFA's tasks and models

    recorded = torch.load(inputs_path)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"bpe_dir": bpe_dir, "eval_cider": False})
    model = models[0].eval()
    ids, images, decoder = recorded["ids"], recorded["images"], recorded["decoder"]
    lengths = ids.ne(1).sum(1)
    with torch.no_grad():
        logits, _ = model(ids, lengths, decoder, patch_images=images, patch_masks=torch.ones(len(ids), dtype=torch.bool))
    difference = (logits - recorded["logits"]).abs().max().item()
    print(f"loaded {checkpoint} as fairseq task {cfg.task._name!r}, arch {cfg.model.arch!r}; "
          f"max |logit difference| {difference:.3g}")
    generator = task.build_generator([model], Namespace(beam=5, max_len_b=16, min_len=1, no_repeat_ngram_size=3))
    sample = {"net_input": {"src_tokens": ids, "src_lengths": lengths, "patch_images": images,
                            "patch_masks": torch.ones(len(ids), dtype=torch.bool)}}
    with torch.no_grad():
        hypos = task.inference_step(generator, [model], sample)
    same = 0
    for row, hypo in enumerate(hypos):
        theirs = hypo[0]["tokens"].tolist()
        mine = [t for t in recorded["beams"][row].tolist()[1:] if t != 1]
        same += theirs == mine
        print(f"row {row}: official {theirs}\n       ours     {mine}")
    print(f"best beams equal: {same}/{len(hypos)}")
    if difference > 1e-4 or same != len(hypos):
        raise SystemExit(1)


if __name__ == "__main__":
    {"ours": ours, "official": official}[sys.argv[1]](*sys.argv[2:])
