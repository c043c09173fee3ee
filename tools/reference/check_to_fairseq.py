"""Check `convert to-fairseq` against the official code: its files load and evaluate there as released ones do.

Run by hand (not in CI) with the project's venv, once the official environment works (tools/reference/setup.sh):
    .venv/bin/python tools/reference/check_to_fairseq.py [--work DIR] [--ready /work/ref/READY] [--ofa /work/ref/OFA]
Steps marked (official) run in the official environment, through the activation line of the READY file:
1. (official) `origin`: the official code builds two tiny caption checkpoints from the cfg of
   run_scripts/caption/train_caption_stage1_base.sh read by fairseq's training parser (64 channels, 2+2 layers,
   ResNet-50; Chinese vocabulary in float16 as --fp16 training saves, English in float32), seeded weights, saved
   as fairseq's trainer saves them.
2. `ours`: each is converted here (`convert fairseq`), written back (`convert to-fairseq`) and converted again;
   the two model directories must be equal bit for bit. Two models made here (official vocabulary sizes, seeded
   weights, no fairseq origin) are written with `convert to-fairseq --task caption_cn` / `--task caption`. For
   every directory the inputs, our logits and our beam search's best beams are recorded.
3. (official) `official`: every written file is loaded with `checkpoint_utils.load_model_ensemble_and_task` (the
   evaluate scripts' overrides: bpe_dir, eval_cider off); its logits are compared with ours (largest difference
   printed, over 1e-4 fails) and its task's beam search with our best beams. A written-back file is compared
   with its origin: every tensor (dtype and bits) and the whole cfg. OFA's evaluate.py then runs on each file
   with the flags of run_scripts/caption/evaluate_caption.sh (generate_caption_cn.sh for Chinese), --cpu
   instead of --fp16, on the parity suite's caption rows. The model made here is also written with every
   `--task` entry; each of those files loads, as its task, and computes our logits.
The script exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import shlex
import subprocess
import sys
import zlib
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SIZES = [
    "--encoder-embed-dim=64",
    "--decoder-embed-dim=64",
    "--encoder-ffn-embed-dim=128",
    "--decoder-ffn-embed-dim=128",
    "--encoder-layers=2",
    "--decoder-layers=2",
    "--encoder-attention-heads=4",
    "--decoder-attention-heads=4",
    "--resnet-type=resnet50",
]
CHINESE = {"--bpe": "bert", "--bpe-dir": "../../utils/BERT_CN_dict", "--selected-cols": "0,4,2"}
# language -> (official vocabulary folder in the OFA work tree, the caption evaluate script, its search flags)
LANGUAGES = {
    "zh": ("utils/BERT_CN_dict", "generate_caption_cn.sh", ["--beam=8", "--max-len-b=128"]),
    "en": ("utils/BPE", "evaluate_caption.sh", ["--beam=5", "--max-len-b=16"]),
}
SEARCH = {"num_beams": 5, "max_len_b": 16, "no_repeat_ngram_size": 3}


def _noise(name: str, shape: torch.Size, seed: int, uniform: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.rand(shape, generator=generator) if uniform else torch.randn(shape, generator=generator)


@torch.no_grad()
def _randomize_official(model: torch.nn.Module, seed: int) -> None:
    """Seeded weights with peaked outputs (as tests/official/README.md explains), on fairseq's parameter names."""
    for name, parameter in model.named_parameters():
        noise = _noise(name, parameter.shape, seed)
        if parameter.dim() < 2:
            is_scale = name.endswith("weight") and ("norm" in name or "bn" in name or "downsample.1" in name)
            parameter.copy_((1.0 if is_scale else 0.0) + 0.1 * noise)
        elif "embed_tokens" in name or "output_projection" in name:
            parameter.copy_(0.5 * noise)
        elif ("embed" in name and "embed_images" not in name) or "rel_pos_table" in name:
            parameter.copy_(noise)
        else:
            gain = 4.0 if name.endswith(("q_proj.weight", "k_proj.weight")) else 3.0
            parameter.copy_(noise * gain / math.sqrt(parameter[0].numel()))
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.copy_(0.1 * _noise(name, buffer.shape, seed))
        elif name.endswith("running_var"):
            buffer.copy_(0.5 + _noise(name, buffer.shape, seed, uniform=True))


def origin(work: str, ofa: str) -> None:
    """(official) Tiny caption checkpoints as the official training writes them."""
    from fairseq import checkpoint_utils, options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    sys.path.insert(0, str(HERE))
    from official_cfg import override, recorded_argv

    ofa_dir = Path(ofa).resolve()
    script_argv = recorded_argv(ofa_dir, "caption/train_caption_stage1_base.sh")
    os.chdir(ofa_dir / "run_scripts" / "caption")  # the script's relative paths (user dir, bpe dir)
    for language, dtype in (("zh", torch.float16), ("en", torch.float32)):
        argv = override(script_argv, CHINESE if language == "zh" else {}) + SIZES
        cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
        eval_cider, cfg.task.eval_cider = cfg.task.eval_cider, False  # its scorer reads COCO's document frequencies
        model = tasks.setup_task(cfg.task).build_model(cfg.model)
        cfg.task.eval_cider = eval_cider
        _randomize_official(model, seed=len(language))
        state = {
            "args": None,
            "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
            "model": {
                key: value.to(dtype) if value.is_floating_point() else value
                for key, value in model.state_dict().items()
            },
            "criterion": None,
            "optimizer_history": [
                {
                    "criterion_name": "AdjustLabelSmoothedCrossEntropyCriterion",
                    "optimizer_name": "FairseqAdam",
                    "lr_scheduler_state": {"best": None},
                    "num_updates": 0,
                }
            ],
            "task_state": {},
            "extra_state": {"train_iterator": {"epoch": 1}, "previous_training_time": 0.0},
        }
        path = Path(work) / f"origin_{language}.pt"
        checkpoint_utils.torch_persistent_save(state, str(path))
        print(f"origin: {path.name}: {cfg.task._name} {cfg.model.arch}, {len(state['model'])} tensors, {dtype}")


def _record(model_dir: Path, out: Path, seed: int) -> None:
    """Inputs, our logits and our best beams (the official generator's settings: SEARCH)."""
    from ofa_core.model.modeling import OFAForConditionalGeneration

    model = OFAForConditionalGeneration.from_pretrained(model_dir).eval()
    generator = torch.Generator().manual_seed(seed)
    size = model.config.patch_image_size
    ids = torch.randint(4, 1000, (2, 9), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2
    images = torch.randn(2, 3, size, size, generator=generator)
    decoder = torch.randint(4, 1000, (2, 6), generator=generator)
    decoder[:, 0] = 0
    with torch.no_grad():
        logits = model(input_ids=ids, patch_images=images, decoder_input_ids=decoder).logits
        beams = model.generate(
            input_ids=ids,
            patch_images=images,
            num_beams=SEARCH["num_beams"],
            max_new_tokens=SEARCH["max_len_b"] + 1,
            no_repeat_ngram_size=SEARCH["no_repeat_ngram_size"],
            min_new_tokens=1,
        )
    torch.save({"ids": ids, "images": images, "decoder": decoder, "logits": logits, "beams": beams}, out)


def _cli(*argv: str) -> None:
    from ofa_core.cli import main

    code = main(list(argv))
    if code != 0:
        raise SystemExit(f"ofa_core {' '.join(argv)} exited {code}")


def _same_directories(a: Path, b: Path) -> int:
    from safetensors.torch import load_file

    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    differing = [
        key
        for key in left
        if key not in right or left[key].dtype != right[key].dtype or not torch.equal(left[key], right[key])
    ]
    if differing or left.keys() != right.keys() or (a / "config.json").read_text() != (b / "config.json").read_text():
        raise SystemExit(f"ours -> fairseq -> ours: {a} and {b} differ ({', '.join(differing[:5]) or 'config.json'})")
    return len(left)


def ours(work: str, ofa: str) -> None:
    """Convert the official files here and back; write models made here; record our outputs for every file."""
    sys.path.insert(0, str(REPO / "tests"))
    from official.cases import Weights
    from official.checkpoints import tiny_official_model

    work_dir, ofa_dir = Path(work), Path(ofa)
    for language, (vocabulary, _, _) in LANGUAGES.items():
        tokenizer = (
            ["--vocab", str(ofa_dir / vocabulary / "vocab.txt")]
            if language == "zh"
            else ["--bpe-dir", str(ofa_dir / vocabulary)]
        )
        converted, again = work_dir / f"from_{language}", work_dir / f"again_{language}"
        _cli("convert", "fairseq", str(work_dir / f"origin_{language}.pt"), "--out", str(converted), *tokenizer)
        _cli("convert", "to-fairseq", str(converted), "--out", str(work_dir / f"back_{language}.pt"))
        _cli("convert", "fairseq", str(work_dir / f"back_{language}.pt"), "--out", str(again), "--no-tokenizer")
        print(f"ours -> fairseq -> ours ({language}): {_same_directories(converted, again)} tensors equal bit for bit")
        _record(converted, work_dir / f"back_{language}.inputs.pt", seed=5)

        here = work_dir / f"here_{language}"
        tiny_official_model(language, Weights(seed=3)).save_pretrained(here)
        _cli(
            "convert",
            "to-fairseq",
            str(here),
            "--out",
            str(work_dir / f"here_{language}.pt"),
            "--task",
            "caption_cn" if language == "zh" else "caption",
        )
        _record(here, work_dir / f"here_{language}.inputs.pt", seed=6)

    from ofa_core.convert.official_cfg import official_cfg, official_tasks

    for name in official_tasks():  # every --task entry, on the model made here in the entry's language
        language = "zh" if official_cfg(name)["task"].get("bpe") == "bert" else "en"
        _cli(
            "convert",
            "to-fairseq",
            str(work_dir / f"here_{language}"),
            "--out",
            str(work_dir / f"task_{name}.pt"),
            "--task",
            name,
        )


def _plain(value):
    if isinstance(value, argparse.Namespace):
        return {key: _plain(item) for key, item in vars(value).items()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _cfg_differences(before: dict, after: dict) -> list[str]:
    """Keys (group.key) whose values differ between two checkpoint cfgs."""
    before, after = _plain(before), _plain(after)
    out = sorted(set(before) ^ set(after))
    for group in set(before) & set(after):
        left, right = before[group], after[group]
        if isinstance(left, dict) and isinstance(right, dict):
            out += [
                f"{group}.{key}" for key in sorted(set(left) | set(right)) if left.get(key, ...) != right.get(key, ...)
            ]
        elif left != right:
            out.append(group)
    return out


def _compare_with_origin(back: Path, source: Path) -> bool:
    original, written = torch.load(source, weights_only=False), torch.load(back, weights_only=False)
    tensors = original["model"]
    equal = [
        key
        for key, value in tensors.items()
        if key in written["model"]
        and written["model"][key].dtype == value.dtype
        and torch.equal(written["model"][key], value)
    ]
    extra = sorted(set(written["model"]) - set(tensors))
    differences = _cfg_differences(original["cfg"], written["cfg"])
    dtypes = sorted({str(value.dtype) for value in tensors.values() if value.is_floating_point()})
    print(
        f"{back.name} vs {source.name}: {len(equal)}/{len(tensors)} tensors equal in dtype and bits "
        f"({', '.join(dtypes)}), {len(extra)} extra; cfg groups {len(written['cfg'])}/{len(original['cfg'])}, "
        f"differing keys: {', '.join(differences) or 'none'}"
    )
    return len(equal) == len(tensors) and not extra and not differences


def _load_and_compare(checkpoint: Path, inputs: Path, overrides: dict, beams: bool = True) -> bool:
    """Load as evaluate.py does; our logits, and (`beams`) the task's beam search against our best beams."""
    from fairseq import checkpoint_utils

    recorded = torch.load(inputs)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)], arg_overrides=overrides)
    model = models[0].eval()
    ids, images, decoder = recorded["ids"], recorded["images"], recorded["decoder"]
    lengths, masks = ids.ne(1).sum(1), torch.ones(len(ids), dtype=torch.bool)
    with torch.no_grad():
        logits, _ = model(ids, lengths, decoder, patch_images=images, patch_masks=masks)
    difference = (logits - recorded["logits"]).abs().max().item()
    scale = recorded["logits"].abs().max().item()
    groups = sorted(key for key in cfg.keys() if key != "_name")
    print(
        f"{checkpoint.name}: loaded as task {cfg.task._name!r}, arch {cfg.model.arch!r}, {len(groups)} cfg groups; "
        f"max |logit difference| {difference:.3g} over {logits.numel()} logits up to {scale:.3g} in magnitude"
    )
    if not beams:
        return difference <= 1e-4
    generator = task.build_generator(
        [model],
        argparse.Namespace(
            beam=SEARCH["num_beams"],
            max_len_b=SEARCH["max_len_b"],
            min_len=1,
            no_repeat_ngram_size=SEARCH["no_repeat_ngram_size"],
        ),
    )
    sample = {"net_input": {"src_tokens": ids, "src_lengths": lengths, "patch_images": images, "patch_masks": masks}}
    with torch.no_grad():
        hypos = task.inference_step(generator, [model], sample)
    same = sum(
        hypo[0]["tokens"].tolist() == [t for t in recorded["beams"][row].tolist()[1:] if t != 1]
        for row, hypo in enumerate(hypos)
    )
    print(f"{checkpoint.name}: the official beam search's best beams equal ours on {same}/{len(hypos)} rows")
    return difference <= 1e-4 and same == len(hypos)


def _evaluate(checkpoint: Path, language: str, ofa_dir: Path, work_dir: Path) -> bool:
    """OFA's evaluate.py on the file, with its caption evaluate script's flags (--cpu instead of --fp16)."""
    vocabulary, script, search = LANGUAGES[language]
    rows = REPO / "tests/official/data" / f"caption_{language}.tsv"
    results = work_dir / f"results_{checkpoint.stem}"
    overrides = f'{{"data":"{rows}","bpe_dir":"{ofa_dir / vocabulary}","eval_cider":False,"selected_cols":"1,4,2"}}'
    argv = [
        sys.executable,
        str(ofa_dir / "evaluate.py"),
        str(rows),
        f"--path={checkpoint}",
        f"--user-dir={ofa_dir / 'ofa_module'}",
        "--task=caption",
        "--batch-size=16",
        "--log-format=simple",
        "--log-interval=10",
        "--seed=7",
        "--gen-subset=test",
        f"--results-path={results}",
        *search,
        "--no-repeat-ngram-size=3",
        "--num-workers=0",
        "--cpu",
        f"--model-overrides={overrides}",
    ]
    completed = subprocess.run(argv, capture_output=True, text=True, cwd=ofa_dir / "run_scripts/caption")
    predictions = results / "test_predict.json"
    written = len(json.loads(predictions.read_text())) if predictions.is_file() else 0
    expected = len(rows.read_text(encoding="utf-8").splitlines())
    print(
        f"{checkpoint.name}: evaluate.py ({script} flags, --cpu) exited {completed.returncode}, "
        f"{written}/{expected} captions written"
    )
    if completed.returncode != 0:
        print(completed.stderr[-3000:])
    return completed.returncode == 0 and written == expected


def official(work: str, ofa: str) -> None:
    """(official) Load, compare and evaluate every written file."""
    import ofa_module  # noqa: F401  registers OFA's tasks and models

    work_dir, ofa_dir = Path(work), Path(ofa).resolve()
    passed = True
    for language, (vocabulary, _, _) in LANGUAGES.items():
        passed &= _compare_with_origin(work_dir / f"back_{language}.pt", work_dir / f"origin_{language}.pt")
        overrides = {"bpe_dir": str(ofa_dir / vocabulary), "eval_cider": False}
        for name in (f"back_{language}", f"here_{language}"):
            passed &= _load_and_compare(work_dir / f"{name}.pt", work_dir / f"{name}.inputs.pt", overrides)
            passed &= _evaluate(work_dir / f"{name}.pt", language, ofa_dir, work_dir)
    answers = work_dir / "ans2label.pkl"  # VQA and ImageNet read their answer list when the task is set up
    answers.write_bytes(pickle.dumps({"yes": 0, "no": 1, "two": 2}))
    for checkpoint in sorted(work_dir.glob("task_*.pt")):
        language = "zh" if torch.load(checkpoint, weights_only=False)["cfg"]["task"].get("bpe") == "bert" else "en"
        overrides = {
            "bpe_dir": str(ofa_dir / LANGUAGES[language][0]),
            "eval_cider": False,
            "ans2label_file": str(answers),
        }
        passed &= _load_and_compare(checkpoint, work_dir / f"here_{language}.inputs.pt", overrides, beams=False)
    print("all checks passed" if passed else "some checks FAILED")
    if not passed:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/check_to_fairseq"))
    parser.add_argument("--ready", type=Path, default=Path("/work/ref/READY"))
    parser.add_argument("--ofa", type=Path, default=Path("/work/ref/OFA"))
    args = parser.parse_args()
    work, ofa = args.work.resolve(), args.ofa.resolve()
    work.mkdir(parents=True, exist_ok=False)
    activate = args.ready.read_text(encoding="utf-8").strip()

    def in_official(step: str) -> None:
        command = f"{activate}\npython {shlex.quote(str(Path(__file__).resolve()))} {step} {work} {ofa}"
        if subprocess.run(["bash", "-c", command]).returncode != 0:
            raise SystemExit(f"official step {step!r} failed")

    in_official("origin")
    ours(str(work), str(ofa))
    in_official("official")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("origin", "official"):
        {"origin": origin, "official": official}[sys.argv[1]](*sys.argv[2:])
    else:
        main()
