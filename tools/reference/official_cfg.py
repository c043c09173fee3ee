"""Write `ofa_core/convert/official_cfg.json`: the complete checkpoint cfg of each official fine-tuning script.

Run by hand in the official environment (tools/reference/setup.sh):
    python tools/reference/official_cfg.py --ofa /work/ref/OFA --out ofa_core/convert/official_cfg.json

Each entry comes from one of OFA's `run_scripts/<task>/train_*.sh`: the script runs under bash with `python3`
replaced by a recorder, so its own variables and loops give the exact command line of its first run; fairseq's
training parser then reads that command line as train.py would, and the cfg is what fairseq's checkpoint saving
stores (`convert_namespace_to_omegaconf`, the model arguments completed by the model's `build_model` as
train.py's call does, turned into plain containers; the model group is an argparse namespace there, a dict
marked "__namespace__" here). The first entry is stored whole as `base`; each entry holds
its changes to it. Tasks without a train script in OFA (Chinese captions, Chinese RefCOCO,
Chinese OCR) take the closest script with the flags of their evaluation script, stated in `derived_from`.
`convert to-fairseq` reads the file; the project never imports fairseq.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

# name -> (train script, flags replacing or adding to the script's, what it derives from when not the script)
ENTRIES: dict[str, tuple[str, dict[str, str | None], str]] = {
    "caption": ("caption/train_caption_stage1_base.sh", {}, ""),
    "caption_cn": (
        "caption/train_caption_stage1_base.sh",
        {
            "--bpe": "bert",
            "--bpe-dir": "../../utils/BERT_CN_dict",
            "--selected-cols": "0,4,2",
            "--eval-args": '{"beam":8,"max_len_b":128,"no_repeat_ngram_size":3}',
        },
        "caption/train_caption_stage1_base.sh with the Chinese vocabulary and generate_caption_cn.sh's search",
    ),
    "vqa_gen": ("vqa/train_vqa_base_distributed.sh", {}, ""),
    "refcoco": ("refcoco/train_refcoco_base.sh", {}, ""),
    "refcoco_cn": (
        "refcoco/train_refcoco_base.sh",
        {"--bpe": "bert", "--bpe-dir": "../../utils/BERT_CN_dict", "--selected-cols": "0,3,1,2"},
        "refcoco/train_refcoco_base.sh with the Chinese vocabulary and evaluate_refcoco_cn.sh's columns",
    ),
    "snli_ve": ("snli_ve/train_snli_ve_base.sh", {}, ""),
    "image_classify": ("image_classify/train_imagenet_distributed.sh", {}, ""),
    "ocr": (
        "caption/train_caption_stage1_base.sh",
        {
            "--task": "ocr",
            "--bpe": "bert",
            "--bpe-dir": "../../utils/BERT_CN_dict",
            "--selected-cols": "0,1,2",
            "--max-tgt-length": "64",
            "--eval-args": '{"beam":5,"max_len_b":64,"no_repeat_ngram_size":0}',
            "--eval-cider": None,
            "--eval-cider-cached-tokens": None,
        },
        "caption/train_caption_stage1_base.sh as task ocr (branch feature/add_text_recognition) with the Chinese "
        "vocabulary and run_scripts/ocr/evaluate_ocr_base.sh's columns and search",
    ),
    "gigaword": ("gigaword/train_gigaword.sh", {}, ""),
    **{
        f"glue_{name}": (f"glue/train_{name}.sh", {}, "")
        for name in ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2")
    },
}

# Sizes of the throwaway model that completes the arguments (they only decide the shapes of its weights).
SHRUNK = {
    "encoder_embed_dim": 16,
    "decoder_embed_dim": 16,
    "encoder_ffn_embed_dim": 16,
    "decoder_ffn_embed_dim": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 1,
    "decoder_attention_heads": 1,
    "resnet_type": "resnet50",
}

RECORDER = """#!/usr/bin/env bash
printf '%s\\0' "$@" > "$OFA_RECORDED_ARGV"
exit 0
"""


def recorded_argv(ofa: Path, script: str) -> list[str]:
    """The arguments the script's first run gives train.py (after torch.distributed.launch's own)."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bin_dir = scratch / "bin"
        bin_dir.mkdir()
        (bin_dir / "python3").write_text(RECORDER)
        (bin_dir / "python3").chmod(0o755)
        record = scratch / "argv"
        run_dir = scratch / "run_scripts" / Path(script).parent
        run_dir.mkdir(parents=True)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OFA_RECORDED_ARGV": str(record)}
        subprocess.run(
            ["bash", str(ofa / "run_scripts" / script)],
            cwd=run_dir,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        argv = record.read_bytes().decode().split("\0")[:-1]
    start = next(index for index, value in enumerate(argv) if value.endswith("train.py"))
    return argv[start + 1 :]


def override(argv: list[str], flags: dict[str, str | None]) -> list[str]:
    """Replace `--name=value` / `--name value` / bare `--name` flags; None removes one; new flags are appended."""
    out, skip, seen = [], False, set()
    for index, value in enumerate(argv):
        if skip:
            skip = False
            continue
        name = value.split("=", 1)[0]
        if name in flags:
            seen.add(name)
            has_separate_value = "=" not in value and index + 1 < len(argv) and not argv[index + 1].startswith("--")
            skip = has_separate_value
            if flags[name] is not None:
                out.append(f"{name}={flags[name]}")
            continue
        out.append(value)
    out.extend(f"{name}={value}" for name, value in flags.items() if name not in seen and value is not None)
    return out


def plain(value):
    if isinstance(value, Namespace):
        return {"__namespace__": True, **{key: plain(item) for key, item in vars(value).items()}}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def cfg_for(argv: list[str]) -> dict:
    from fairseq import models, options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, argv)
    cfg = convert_namespace_to_omegaconf(args)
    # train.py saves the model arguments after the model's build_model completed them in place (architecture
    # defaults, vocab_size from the task's dictionary): a small copy of the model is built to learn them.
    # The dictionaries come from OFA's common task set-up (the task's own would also read its data files).
    from tasks.ofa_task import OFATask

    trial = Namespace(**{**vars(cfg.model), **SHRUNK})
    models.ARCH_MODEL_REGISTRY[cfg.model.arch].build_model(trial, OFATask.setup_task(cfg.task))
    for key, value in vars(trial).items():
        if key not in SHRUNK and getattr(cfg.model, key, object()) != value:
            setattr(cfg.model, key, value)
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return plain(container)


def changes(base: dict, cfg: dict) -> dict:
    """What `cfg` sets differently from `base`, group by group and key by key ("__removed__": keys it lacks)."""
    out = {}
    for group, values in cfg.items():
        if values == base.get(group):
            continue
        if isinstance(values, dict) and isinstance(base.get(group), dict):
            diff = {key: value for key, value in values.items() if base[group].get(key, object()) != value}
            removed = sorted(set(base[group]) - set(values))
            out[group] = {**diff, **({"__removed__": removed} if removed else {})}
        else:
            out[group] = values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ofa", type=Path, default=Path("/work/ref/OFA"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ofa, out = args.ofa.resolve(), args.out.resolve()
    sys.path[:0] = [str(ofa), str(ofa / "fairseq")]
    os.chdir(ofa / "run_scripts" / "caption")  # relative paths in the scripts (user dir, bpe dir) resolve from here
    entries, base = {}, None
    for name, (script, flags, derived) in ENTRIES.items():
        argv = override(recorded_argv(ofa, script), flags)
        cfg = cfg_for(argv)
        base = base or cfg
        entries[name] = {
            "script": f"run_scripts/{script}",
            "derived_from": derived or None,
            "argv": argv,
            "changes": changes(base, cfg),
        }
        print(f"{name}: {len(argv)} arguments", file=sys.stderr)
    document = {
        "format": 1,
        "source": "OFA-Sys/OFA main: run_scripts/*/train_*.sh read by fairseq's training parser",
        "base": base,
        "entries": entries,
    }
    out.write_text(json.dumps(document, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
