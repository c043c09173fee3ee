"""OFA-Chinese's own `train.py` on a MUGE folder, timed per epoch: the `OFA_CHINESE_BENCH` command of bench_lit.py.

Runs in OFA-Chinese's environment (its checkout and a venv with its transformers), not the project's:

    OFA_CHINESE_BENCH="/path/to/ofa-chinese-venv/bin/python benchmarks/ofa_chinese/train_bench.py \\
        --checkout /path/to/OFA-Chinese"

bench_lit.py sets OFA_BENCH_DATA (IC_train.jsonl + IC_train.tsv), OFA_BENCH_PORT, OFA_BENCH_PRECISION (fp32|bf16),
OFA_BENCH_BATCH and OFA_BENCH_EPOCHS. The model is OFA_BENCH_PORT (an OFA-Chinese port directory) or, when that is
empty, OFA-Chinese's `OFAModelForCaption` built from a CN-base config with random weights (768 wide, 6 + 6 layers,
ResNet-101, its 30,325-token vocabulary) and saved with its vocab files. `train.py` runs as it is: its argument file
is `train_args/train_ofa.json` with the bench's data, batch, epochs and precision, the CPU (`no_cuda`), the
schedule bench_lit.py gives ours (cosine, 1 warmup step) and no checkpoints, logs or DataLoader workers; only its
`Trainer` gains a callback that times each epoch. Prints 'epoch N: X samples/s' per epoch, then the last epoch's
'X samples/s'.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

CN_BASE = {
    "vocab_size": 30325,
    "d_model": 768,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_ffn_dim": 3072,
    "decoder_ffn_dim": 3072,
    "encoder_attention_heads": 12,
    "decoder_attention_heads": 12,
    "resnet_type": "resnet101",
}


def random_port(checkout: Path, folder: Path) -> Path:
    """A CN-base `OFAModelForCaption` with random weights and OFA-Chinese's vocabulary, saved as a port directory."""
    from component.ofa.configuration_ofa import OFAConfig
    from component.ofa.modeling_ofa import OFAModelForCaption

    OFAModelForCaption(OFAConfig(**CN_BASE)).save_pretrained(folder)
    for file in (checkout / "vocab").iterdir():
        shutil.copy(file, folder / file.name)
    return folder


def train_args(checkout: Path, data: Path, port: Path, out: Path) -> Path:
    args = json.loads((checkout / "train_args" / "train_ofa.json").read_text())
    bf16 = os.environ.get("OFA_BENCH_PRECISION", "fp32") == "bf16"
    args.update(
        output_dir=str(out / "output"),
        model_name_or_path=str(port),
        train_caption_file=str(data / "IC_train.jsonl"),
        train_image_file=str(data / "IC_train.tsv"),
        num_train_epochs=int(os.environ.get("OFA_BENCH_EPOCHS", 2)),
        per_device_train_batch_size=int(os.environ.get("OFA_BENCH_BATCH", 8)),
        warmup_steps=1,
        logging_steps=100000,
        save_strategy="no",
        fp16=False,
        bf16=bf16,
        no_cuda=True,
        dataloader_num_workers=0,
        report_to="none",
        disable_tqdm=True,
    )
    path = out / "train_args.json"
    path.write_text(json.dumps(args))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkout", type=Path, required=True, help="OFA-Chinese's work tree (train.py, component/, vocab/)"
    )
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    checkout = options.checkout.resolve()
    data = Path(os.environ["OFA_BENCH_DATA"]).resolve()
    sys.path.insert(0, str(checkout))
    import torch
    import train  # OFA-Chinese's train.py
    import transformers

    torch.set_num_threads(options.threads)
    epochs: list[tuple[float, int]] = []

    class EpochTimer(transformers.TrainerCallback):
        def __init__(self, examples: int):
            self.examples = examples  # every epoch reads the whole dataset (the last batch may be short)

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            epochs.append((time.perf_counter() - self.start, self.examples))

    class TimedTrainer(transformers.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(EpochTimer(len(self.train_dataset)))

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        port = Path(os.environ.get("OFA_BENCH_PORT") or random_port(checkout, out / "port"))
        train.Trainer = TimedTrainer
        sys.argv = ["train.py", "--train_args_file", str(train_args(checkout, data, port, out))]
        train.main()
    for number, (seconds, samples) in enumerate(epochs, 1):
        print(f"epoch {number}: {samples / seconds:.3f} samples/s")
    seconds, samples = epochs[-1]
    print(f"{samples / seconds:.3f} samples/s")


if __name__ == "__main__":
    main()
