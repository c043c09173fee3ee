"""A recipe's `peft` section at training time: which parameters train, the modules the method adds, and
checkpoints that hold only the trained tensors (a delta, `ofa_core.inference.delta`) over the recipe's base model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ofa_core._errors import OFAError
from ofa_core.inference import delta
from ofa_core.inference.loading import model_directory
from ofa_core.recipe import Recipe
from ofa_core.recipe.peft import model_settings, trains


@attrs.frozen
class PeftPlan:
    """What a parameter-efficient run trains and which base model its deltas apply to."""

    settings: dict[str, Any]
    """The method and its options, defaults filled in (`PeftSection.settings()`)."""
    base: Path
    """The base model directory (a run directory's chosen checkpoint)."""
    base_sha256: str

    @property
    def method(self) -> str:
        return self.settings["method"]

    @property
    def model_config(self) -> dict[str, Any]:
        """OFAConfig options that build the method's modules (prefix, prompt, adapter)."""
        return model_settings(self.settings)

    def trains(self, name: str) -> bool:
        return trains(self.settings, name)

    def attach(self, model: Any) -> None:
        """Check the model has the method's modules and add LoRA's (in place)."""
        delta.check_model_supports(model.config, self.settings)
        delta.attach(model, self.settings)

    def write(self, directory: Path, model: Any, weights: dict[str, Any] | None = None) -> None:
        """The checkpoint's model files: the trained tensors and the delta config (`weights`: a sharded model's)."""
        if weights is not None:
            weights = {name: tensor for name, tensor in weights.items() if self.trains(name)}
        delta.write(directory, model, self.settings, self.base, self.base_sha256, weights)

    def load(self, model: Any, checkpoint: Path, device: str) -> None:
        """A checkpoint's trained tensors into `model`, refusing a delta of another method or base."""
        config = delta.read_config(checkpoint)
        if config["settings"] != self.settings or config["base_sha256"] != self.base_sha256:
            raise OFAError(
                f"training.resume_from_checkpoint: {checkpoint} holds a {config['method']} delta of other "
                f"settings or another base model than this recipe's peft and model.checkpoint; resume with "
                f"the recipe that wrote it or start a new output_dir"
            )
        delta.load_weights(model, delta.read_weights(checkpoint, device), self.settings, checkpoint)


def plan(recipe: Recipe) -> PeftPlan | None:
    """The recipe's plan, or None without a `peft` section; its base is the model directory the run starts from."""
    section = recipe.spec.peft
    if section is None:
        return None
    base = model_directory(recipe.spec.model.checkpoint)
    if delta.is_delta(base):
        raise OFAError(
            f"{recipe.path}: model.checkpoint: {base} is itself a delta; write it out as a plain model "
            f"with `ofa merge {base} --out DIR` and start from DIR"
        )
    if recipe.training.fsdp:
        raise OFAError(f"{recipe.path}: training.fsdp: a peft run trains too few parameters to shard; set it to false")
    settings = section.settings()
    delta.check_model_supports(_config_class()(), settings)
    return PeftPlan(settings, base, delta.base_hash(base))


def _config_class() -> type:
    from ofa_core.model.configuration import OFAConfig

    return OFAConfig
