"""SCST training steps/s against cross-entropy steps/s on the same model and batch (CPU, 2 threads).

Run:  python -m pytest benchmarks/bench_scst.py --benchmark-columns=median,rounds

The batch is bench_train's LiT setting (MUGE-shaped, 256x256 images, 10 captions per image, encoder and word
embedding frozen), on the tiny test model and on a randomly initialised CN-base. An SCST step searches 5 candidates
per image with the official stage-2
search (beam 5, max_len_b 16, no-repeat 3), scores them with the registered `cider_d` reward and re-scores
them with a graph; a CE step is one teacher-forced pass over the 40 captions. The random model rarely ends a
caption, so its searches run to the full 17 tokens: the ratio is the worst case of the search's length. On the
tiny model the search is cheap beside the data pipeline; CN-base shows the ratio of a real model size.
"""

from __future__ import annotations

import pytest
import torch
from bench_train import CAPTIONS_PER_IMAGE, RESOLUTION, make_trainer, muge_records

from ofa_core.testing import tiny_model, tiny_processor
from ofa_core.trainer.plugin import build_scst
from ofa_core.trainer.scst_options import ScstOptions


@pytest.mark.parametrize(("preset", "batch", "steps"), [("tiny-test", 40, 3), ("ofa-cn-base", 20, 2)])
def test_scst_steps_per_second_relative_to_cross_entropy(benchmark, report, tmp_path, preset, batch, steps):
    """Both losses alternate within each round and the fastest round of each counts, so a neighbour's load on
    the shared CPU does not land on one loss only."""
    torch.set_num_threads(2)
    processor = tiny_processor(patch_image_size=RESOLUTION)
    records = [{**record, "references": [record["caption"]]} for record in muge_records(batch // CAPTIONS_PER_IMAGE)]
    seconds: dict[str, list[float]] = {"ce": [], "scst": []}
    encoder_rows: list[int] = []

    def both_losses() -> None:
        for loss in ("ce", "scst"):
            model = tiny_model(preset=preset, patch_image_size=RESOLUTION, scale=0.1)
            trainer = make_trainer(model, processor, records, str(tmp_path), steps, batch)
            if loss == "scst":
                trainer.tasks[0].loss_fn = build_scst(ScstOptions(search="caption", candidates=5))
                model.get_encoder().register_forward_hook(
                    lambda module, args, output: encoder_rows.append(output.last_hidden_state.shape[0])
                )
            seconds[loss].append(trainer.train()["train_seconds"])

    both_losses()  # warm-up: the registry, the reward's document frequencies
    benchmark.pedantic(both_losses, rounds=2, iterations=1)
    speed = {loss: steps / min(times[1:]) for loss, times in seconds.items()}
    images = batch // CAPTIONS_PER_IMAGE
    report(
        f"LiT {preset} @256px, {batch} captions of {images} images per step: CE {speed['ce']:.2f} steps/s, "
        f"SCST (5 candidates per image, beam 5, max_len_b 16) {speed['scst']:.2f} steps/s"
    )
    report(f"{preset}: SCST / CE steps per second: {speed['scst'] / speed['ce']:.3f}")
    # a frozen encoder runs once per image and step, for the search and the re-scoring together
    assert encoder_rows == [images] * (3 * steps)
