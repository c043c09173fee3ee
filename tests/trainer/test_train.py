"""Training end to end on tiny generated data: learning, freezing, resume, crash safety, evaluation."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
import torch
from safetensors.torch import load_file

from ofa_core import OFAError
from ofa_core.data import Collator, GroupDataset, group_examples
from ofa_core.model.generation_config import as_generation_config
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.search import SearchSettings, special_token_ids
from ofa_core.recipe.training import TrainingConfig
from ofa_core.testing import tiny_model
from ofa_core.trainer import checkpointing as ckpt
from ofa_core.trainer.loop import Trainer
from ofa_core.trainer.optim import build_optimizer

from .helpers import examples, kill_while_saving, make_processor


def make_trainer(tmp_path: Path, model=None, images: int = 4, captions: int = 2, **options) -> Trainer:
    tmp_path.mkdir(parents=True, exist_ok=True)
    processor = make_processor(tmp_path)
    settings = {
        "output_dir": str(tmp_path / "run"),
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "learning_rate": 3e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        **options,
    }
    model = model or tiny_model(patch_image_size=32, scale=0.1)
    data = examples(processor, images, captions)
    return Trainer(model, TrainingConfig(**settings), processor, train_examples=data, eval_examples=data[::captions])


def losses(output_dir: Path) -> dict[int, float]:
    rows = [orjson.loads(line) for line in (output_dir / "log.jsonl").read_bytes().splitlines()]
    return {row["step"]: row["loss"] for row in rows if row["split"] == "train"}


def test_loss_falls_and_frozen_encoder_stays_bit_identical(tmp_path: Path) -> None:
    trainer = make_trainer(
        tmp_path,
        max_steps=30,
        lr_scheduler_type="constant",
        freeze_encoder=True,
        freeze_patterns=["model.decoder.layers.0.*"],
    )
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    result = trainer.train()
    frozen = [n for n in before if n.startswith(("model.encoder.", "model.decoder.layers.0."))]
    trainable = [n for n in before if n not in frozen]
    params = dict(trainer.model.named_parameters())
    assert all(torch.equal(params[n], before[n]) for n in frozen)
    assert all(
        not torch.equal(params[n], before[n]) for n in ("model.shared.weight", "model.decoder.layer_norm.weight")
    )
    assert result["trainable_parameters"] == sum(before[n].numel() for n in trainable)
    assert result["frozen_parameters"] == sum(before[n].numel() for n in frozen)
    steps = losses(tmp_path / "run")
    assert sum(list(steps.values())[-3:]) < 0.6 * sum(list(steps.values())[:3])


def test_freeze_word_embed_and_image_backbone(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_steps=1, freeze_word_embed=True, freeze_image_backbone=True)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    for name, parameter in trainer.model.named_parameters():
        frozen = name == "model.shared.weight" or name.startswith("model.encoder.embed_images.")
        assert parameter.requires_grad is not frozen and (not frozen or torch.equal(parameter, before[name]))
    assert torch.equal(trainer.model.lm_head.weight, before["model.shared.weight"])  # tied


def test_grouped_encoder_pass_gives_the_per_caption_logits(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, freeze_encoder=True)
    data = trainer.tasks[0].train_examples
    collate = Collator(1, 32)
    outputs = []
    for by_image in (True, False):
        groups = group_examples(data, by_image)
        dataset = GroupDataset(data, groups, trainer.processor.image_processor)
        batch = collate([dataset[g] for g in range(len(groups))])
        with torch.no_grad():
            outputs.append(
                trainer.model(
                    decoder_input_ids=batch["decoder_input_ids"], encoder_outputs=trainer._encode(batch)
                ).logits
            )
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)


def test_resume_reproduces_the_uninterrupted_losses(tmp_path: Path) -> None:
    options = {
        "max_steps": 6,
        "per_device_train_batch_size": 3,
        "gradient_accumulation_steps": 2,
        "save_strategy": "steps",
        "save_steps": 3,
        "warmup_steps": 2,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.01,
    }
    make_trainer(tmp_path / "a", model=tiny_model(patch_image_size=32, dropout=0.1), **options).train()
    full = losses(tmp_path / "a" / "run")
    run = tmp_path / "a" / "run"
    shutil.rmtree(run / "checkpoint-6")
    (run / "log.jsonl").unlink()
    resumed = make_trainer(
        tmp_path / "a",
        model=tiny_model(seed=7, patch_image_size=32, dropout=0.1),
        resume_from_checkpoint="auto",
        **options,
    )
    resumed.train()
    assert set(losses(run)) == {4, 5, 6}
    assert all(losses(run)[step] == full[step] for step in (4, 5, 6))


def test_sigkill_while_saving_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    kill_while_saving("test_train:make_trainer", tmp_path, 4, max_steps=4, save_strategy="steps", save_steps=2)
    run = tmp_path / "run"
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["checkpoint-2"]
    assert list(run.glob(".tmp-checkpoint-4-*"))
    assert ckpt.resolve_resume("auto", run) == run / "checkpoint-2"
    OFAForConditionalGeneration.from_pretrained(run / "checkpoint-2")
    result = make_trainer(
        tmp_path, max_steps=4, save_strategy="steps", save_steps=2, resume_from_checkpoint="auto"
    ).train()
    assert result["steps"] == 4 and not list(run.glob(".tmp-checkpoint-*"))
    steps = [orjson.loads(line)["step"] for line in (run / "log.jsonl").read_bytes().splitlines()]
    assert steps == [1, 2, 3, 4, 3, 4]  # the killed run logged 3-4, the resumed run redid them


class ScriptedMetric:
    """Scores from a script, one per evaluation: what best-checkpoint bookkeeping needs."""

    calls = 0
    SCORES = (0.5, 0.9, 0.1)

    def __init__(self) -> None:
        self.count = 0

    def update(self, predictions, references) -> None:
        self.count += len(predictions)

    def state(self) -> dict:
        return {"count": self.count}

    def load_state(self, merged: dict) -> None:
        self.count = merged["count"]

    def compute(self) -> dict[str, float]:
        ScriptedMetric.calls += 1
        return {"score": self.SCORES[ScriptedMetric.calls - 1], "count": float(self.count)}


def test_evaluation_best_checkpoint_and_rotation(tmp_path: Path) -> None:
    ScriptedMetric.calls = 0
    trainer = make_trainer(
        tmp_path,
        max_steps=6,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        save_total_limit=1,
        metric_for_best_model="score",
        report_to="tensorboard",
    )
    trainer.tasks[0].metrics = {"scripted": ScriptedMetric}
    trainer.tasks[0].generation_config = as_generation_config(
        SearchSettings(beam=2, max_len_b=3, min_len=1), **special_token_ids(trainer.model.config)
    )
    result = trainer.train()
    run = tmp_path / "run"
    assert result["best_metric"] == 0.9 and result["best_checkpoint"] == str(run / "checkpoint-4")
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["checkpoint-4", "checkpoint-6"]
    assert result["eval"]["count"] == 4.0
    assert list((run / "runs").glob("events.out.tfevents.*"))
    state = ckpt.read_state(run / "checkpoint-6")
    assert state["best_checkpoint"] == str(run / "checkpoint-4")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state_0.pt"):
        torch.load(run / "checkpoint-6" / name, weights_only=True)
    assert (
        set(load_file(run / "checkpoint-6" / "model.safetensors"))
        and (run / "checkpoint-6" / "tokenizer.json").exists()
    )


def test_best_checkpoint_follows_the_metrics_direction_by_default(tmp_path: Path) -> None:
    ScriptedMetric.calls = 0
    trainer = make_trainer(
        tmp_path, max_steps=6, eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2
    )
    trainer.tasks[0].metrics, trainer.tasks[0].higher_is_better = {"scripted": ScriptedMetric}, {"scripted": False}
    trainer.tasks[0].generation_config = as_generation_config(
        SearchSettings(beam=1, max_len_b=2, min_len=1), **special_token_ids(trainer.model.config)
    )
    result = trainer.train()
    assert result["best_metric"] == 0.1 and result["best_checkpoint"].endswith("checkpoint-6")


def test_bf16_autocast_on_cpu_and_fp16_refused(tmp_path: Path) -> None:
    assert make_trainer(tmp_path, max_steps=1, mixed_precision="bf16").train()["steps"] == 1
    if not torch.cuda.is_available():
        with pytest.raises(OFAError, match="fp16 needs a CUDA GPU"):
            make_trainer(tmp_path, mixed_precision="fp16")


def test_cached_images_are_decoded_once_and_train_the_same(tmp_path: Path, monkeypatch) -> None:
    """`cache_images`: each image is processed once over three epochs, and the run is bitwise the run without it."""
    runs = {}
    for cache in (False, True):
        trainer = make_trainer(tmp_path / str(cache), max_steps=6, cache_images=cache)  # 8 groups of 4: 2 steps/epoch
        processor = trainer.processor.image_processor
        calls = []
        to_tensor = processor.to_tensor
        monkeypatch.setattr(
            processor,
            "to_tensor",
            lambda image, calls=calls, to_tensor=to_tensor: calls.append(image) or to_tensor(image),
        )
        trainer.train()
        runs[cache] = (
            calls,
            losses(tmp_path / str(cache) / "run"),
            [p.detach().clone() for p in trainer.model.parameters()],
        )
    (plain_calls, plain_losses, plain_weights), (cached_calls, cached_losses, cached_weights) = runs[False], runs[True]
    assert len(plain_calls) == 24 and len(cached_calls) == 8
    assert cached_losses == plain_losses and len(cached_losses) == 6
    assert all(torch.equal(a, b) for a, b in zip(plain_weights, cached_weights))


def test_fused_adamw_is_the_same_update_in_one_kernel(tmp_path: Path) -> None:
    """`optim: adamw_torch_fused` asks torch for the fused kernel; from the same weights and gradients, its
    updates agree with the default's to float rounding."""
    trainer = make_trainer(tmp_path, max_steps=2, optim="adamw_torch_fused")
    assert trainer.train()["steps"] == 2 and trainer.run.optimizer.defaults["fused"]
    models = {optim: tiny_model(patch_image_size=32, scale=0.1) for optim in ("adamw_torch", "adamw_torch_fused")}
    models["adamw_torch_fused"].load_state_dict(models["adamw_torch"].state_dict())
    generator = torch.Generator().manual_seed(0)
    gradients = [torch.randn(p.shape, generator=generator) for p in models["adamw_torch"].parameters()]
    for optim, model in models.items():
        optimizer = build_optimizer(
            model, TrainingConfig(output_dir="", optim=optim, learning_rate=1e-3, weight_decay=0.01)
        )
        assert bool(optimizer.defaults["fused"]) == (optim == "adamw_torch_fused")
        for _ in range(3):
            for parameter, gradient in zip(model.parameters(), gradients):
                parameter.grad = gradient.clone()
            optimizer.step()
    for plain, fused in zip(models["adamw_torch"].parameters(), models["adamw_torch_fused"].parameters()):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="optim"):
        TrainingConfig(output_dir="", optim="sgd")
