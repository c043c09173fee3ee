"""The `scst` loss on a tiny model: baseline, the loss it returns, one encoder pass per image with a frozen
encoder, the trainer's seam (default path untouched), resume after a kill, two processes."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import orjson
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from ofa_core import OFAError
from ofa_core.cli import main
from ofa_core.plugin import LossContext
from ofa_core.recipe.resolution import registered_metric
from ofa_core.registry import load_plugins
from ofa_core.testing import tiny_checkpoint
from ofa_core.trainer import checkpointing as ckpt
from ofa_core.trainer.plugin import build_scst
from ofa_core.trainer.scst import ScstLoss, advantages, inputs_of
from ofa_core.trainer.scst_options import ScstOptions

from .helpers import kill_while_saving
from .test_distributed import OPTIONS, _free_port
from .test_distributed import model as float64_model
from .test_recipe import write_muge
from .test_train import losses, make_trainer


class LengthReward:
    """A reward that differs between a tiny random model's candidates: the caption's length."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[list[str]]]] = []

    def rewards(self, candidates, references):
        self.calls.append((list(candidates), [list(r) for r in references]))
        return [float(len(text)) for text in candidates]


def scst_trainer(tmp_path: Path, **options):
    trainer = make_trainer(tmp_path, **options)
    loss = build_scst(ScstOptions(search="caption", candidates=3))
    loss.reward = LengthReward()
    trainer.tasks[0].loss_fn = loss
    return trainer, loss


def test_baseline_is_the_mean_of_the_other_candidates() -> None:
    rewards = torch.tensor([[1.0, 2.0, 6.0], [4.0, 4.0, 4.0]])
    # baselines (2+6)/2=4, (1+6)/2=3.5, (1+2)/2=1.5; equal rewards leave nothing to learn
    assert advantages(rewards).tolist() == [[-3.0, -1.5, 4.5], [0.0, 0.0, 0.0]]


def test_scst_is_registered_and_checks_its_options() -> None:
    registry = load_plugins().registry()
    assert isinstance(registry.losses.get("scst").build(ScstOptions()), ScstLoss)
    assert hasattr(registry.metrics.get("cider_d").build(registry.metrics.get("cider_d").options()), "rewards")
    with pytest.raises(ValueError, match="between 2"):
        ScstOptions(search="caption", candidates=6)
    with pytest.raises(ValueError, match="between 2"):
        ScstOptions(candidates=1)


def test_loss_is_minus_advantage_times_summed_log_probs_per_token(tmp_path: Path) -> None:
    trainer, loss = scst_trainer(tmp_path, freeze_encoder=True, images=2, captions=3, per_device_train_batch_size=6)
    trainer._prepare()
    batch = trainer._to_device(trainer._next_micro_batches(0)[0])
    captions = [example.record["caption"] for example in batch["examples"]]
    assert inputs_of(batch["examples"]) == {0: captions[:3], 3: captions[3:]}  # two images, three captions each
    encoder = trainer.model.get_encoder()
    passes, searched = [], []
    handle = encoder.register_forward_hook(
        lambda module, args, output: passes.append(output.last_hidden_state.shape[0])
    )
    generate = trainer.model.generate
    trainer.model.generate = lambda *args, **kwargs: searched.append(generate(*args, **kwargs)) or searched[-1]
    output = loss(trainer.model, batch, trainer._loss_context(0))
    handle.remove()
    assert passes == [2]  # frozen encoder: one pass, one row per image, for the search and the re-scoring
    candidates, references = loss.reward.calls[0]
    assert len(candidates) == 6 and references == [captions[:3]] * 3 + [captions[3:]] * 3
    # recompute each candidate's summed log-probability on its own, from its searched tokens
    eos = trainer.model.config.eos_token_id
    rewards = torch.tensor([float(len(text)) for text in candidates]).view(2, 3)
    total, tokens = 0.0, 0
    for index, sequence in enumerate(searched[0].tolist()):
        target = sequence[1 : sequence.index(eos, 1) + 1]
        row = batch["encoder_index"][[0, 3][index // 3]]
        inputs = {k: batch[k][row : row + 1] for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")}
        with torch.no_grad():
            logits = trainer.model(**inputs, decoder_input_ids=torch.tensor([sequence[: len(target)]])).logits
        log_prob = torch.log_softmax(logits.float(), -1)[0, torch.arange(len(target)), torch.tensor(target)].sum()
        total -= float(advantages(rewards).view(-1)[index] * log_prob)
        tokens += len(target)
    assert output.sample_size == tokens
    assert float(output.loss_sum.detach()) == pytest.approx(total, rel=1e-4, abs=1e-4)
    assert output.logs["reward_sum"] == pytest.approx(float(rewards.sum()))


def test_the_train_log_shows_the_mean_reward_of_each_steps_candidates(tmp_path: Path) -> None:
    trainer, loss = scst_trainer(tmp_path, max_steps=3, per_device_train_batch_size=2)  # logging_steps 1
    trainer.train()
    logged = [
        row["reward"]
        for row in map(orjson.loads, (tmp_path / "run" / "log.jsonl").read_bytes().splitlines())
        if row["split"] == "train"
    ]
    expected = [sum(map(len, candidates)) / len(candidates) for candidates, _ in loss.reward.calls]
    assert len(logged) == 3 and logged == pytest.approx(expected)


def test_a_trainable_encoder_gets_gradient_and_a_frozen_one_stays_bit_identical(tmp_path: Path) -> None:
    for frozen in (True, False):
        trainer, _ = scst_trainer(tmp_path / str(frozen), freeze_encoder=frozen, max_steps=2)
        before = {
            n: p.detach().clone() for n, p in trainer.model.named_parameters() if n.startswith("model.encoder.layers")
        }
        trainer.train()
        after = dict(trainer.model.named_parameters())
        changed = [n for n in before if not torch.equal(before[n], after[n])]
        assert (changed == []) if frozen else changed
        assert any(value != 0.0 for value in losses(tmp_path / str(frozen) / "run").values())


def test_default_loss_path_does_not_build_a_loss_context(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_steps=1)
    trainer.train()
    assert trainer._loss_contexts == {}


def test_context_gives_one_reference_list_per_training_input(tmp_path: Path) -> None:
    trainer, _ = scst_trainer(tmp_path, images=3, captions=2)
    context = trainer._loss_context(0)
    assert isinstance(context, LossContext)
    examples = trainer.tasks[0].train_examples
    # the helper's rows each reference only their own caption: an image's references are merged
    assert context.train_references() == [
        [examples[i].record["caption"], examples[i + 1].record["caption"]] for i in (0, 2, 4)
    ]


def test_reward_must_be_a_reward_metric(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_steps=1)
    trainer.tasks[0].loss_fn = build_scst(ScstOptions(reward="caption"))
    trainer.tasks[0].build_metric = functools.partial(registered_metric, load_plugins().registry().metrics, tmp_path)
    with pytest.raises(OFAError, match="'caption' has no rewards"):
        trainer.train()


def test_a_trainer_without_a_metric_registry_says_so(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_steps=1)
    trainer.tasks[0].loss_fn = build_scst(ScstOptions(reward="cider_d"))
    with pytest.raises(OFAError, match="no metric registry to build 'cider_d'.*TaskParts.build_metric"):
        trainer.train()


REWARD_PLUGIN = """
from ofa_core.plugin import MetricSpec, NoOptions, hookimpl


class Length:
    def update(self, predictions, references):
        pass

    def state(self):
        return {}

    def load_state(self, state):
        pass

    def compute(self):
        return {"length": 0.0}

    def rewards(self, candidates, references):
        return [float(len(text)) for text in candidates]


@hookimpl
def ofa_register_metrics(register):
    register("length_reward", MetricSpec(options=NoOptions, build=lambda options: Length(), higher_is_better=True))
"""


def test_the_reward_comes_from_the_recipes_registry_plugins_dir_included(tmp_path: Path, capsys) -> None:
    """`ofa run --plugins-dir DIR`: an SCST recipe rewards with a metric that only a folder plugin registers."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "length_reward.py").write_text(REWARD_PLUGIN)
    write_muge(tmp_path / "MUGE", "train", 4)
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "caption", "lang": "zh"},
        "data": {"reader": {"name": "muge", "folder": "MUGE"}},
        "generation": {"num_beams": 2, "max_new_tokens": 4},
        "loss": {"name": "scst", "reward": "length_reward", "search": "caption", "candidates": 2},
        "training": {
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "logging_steps": 1,
            "report_to": [],
            "save_strategy": "no",
        },
        "output_dir": "run",
    }
    (tmp_path / "recipe.json").write_bytes(orjson.dumps(recipe))
    assert main(["run", str(tmp_path / "recipe.json"), "--plugins-dir", str(tmp_path / "plugins")]) == 0, (
        capsys.readouterr().err
    )
    assert orjson.loads(capsys.readouterr().out)["steps"] == 2


def killable_scst_trainer(tmp_path: Path, **options):
    """`scst_trainer` for `kill_while_saving`, which builds a trainer from a 'module:function' name."""
    return scst_trainer(tmp_path, **options)[0]


def test_resume_after_a_kill_reproduces_the_uninterrupted_scst_losses(tmp_path: Path) -> None:
    options = {
        "max_steps": 4,
        "per_device_train_batch_size": 3,
        "save_strategy": "steps",
        "save_steps": 2,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 1,
    }
    killable_scst_trainer(tmp_path / "full", **options).train()
    full = losses(tmp_path / "full" / "run")
    kill_while_saving("test_scst:killable_scst_trainer", tmp_path / "cut", 4, **options)
    run = tmp_path / "cut" / "run"
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["checkpoint-2"]
    killable_scst_trainer(tmp_path / "cut", resume_from_checkpoint="auto", **options).train()
    resumed = losses(run)  # the resumed run's lines come after the killed run's
    assert any(full[step] != 0.0 for step in (3, 4))
    assert all(resumed[step] == full[step] for step in (3, 4))


def _worker(rank: int, tmp: str, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        scst_trainer(Path(tmp), model=float64_model(), images=6, captions=3, per_device_train_batch_size=3, **OPTIONS)[
            0
        ].train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    """torchrun: each process searches its own images; the summed gradients equal one process's on the whole batch."""
    mp.spawn(_worker, args=(str(tmp_path / "two"), _free_port()), nprocs=2, join=True)
    scst_trainer(
        tmp_path / "one", model=float64_model(), images=6, captions=3, per_device_train_batch_size=6, **OPTIONS
    )[0].train()
    two = load_file(tmp_path / "two" / "run" / "checkpoint-3" / "model.safetensors")
    one = load_file(tmp_path / "one" / "run" / "checkpoint-3" / "model.safetensors")
    start = float64_model().state_dict()
    assert not torch.equal(one["model.decoder.layer_norm.weight"], start["model.decoder.layer_norm.weight"])
    assert max(float((one[name] - two[name]).abs().max()) for name in one) <= 1e-5
