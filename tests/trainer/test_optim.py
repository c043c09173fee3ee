"""The update's parts: fused AdamW by default, the gradients' scale and clip in one pass."""

from __future__ import annotations

import pytest
import torch

from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.optim import build_optimizer, scale_and_clip_


def gradients(seed: int = 0) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(shape)) for shape in ((64, 32), (32,), (7, 5, 3))]
    for param in params:
        param.grad = torch.randn(param.shape, generator=generator) * 40
    return params


@pytest.mark.parametrize("max_norm", [1.0, 1e6, float("inf")])
def test_scale_and_clip_is_scale_then_clip_grad_norm(max_norm):
    """One pass gives what `mul_(scale)` then `clip_grad_norm_` give, to float rounding: clipped (1.0) or not."""
    scale = 1 / 37
    ours, reference = gradients(), gradients()
    norm = scale_and_clip_(ours, scale, max_norm)
    for param in reference:
        param.grad.mul_(scale)
    expected = torch.nn.utils.clip_grad_norm_(reference, max_norm)
    torch.testing.assert_close(norm, expected, rtol=1e-6, atol=0)
    for mine, theirs in zip(ours, reference):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-6, atol=1e-9)
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours]))
    assert float(total) == pytest.approx(min(max_norm, float(expected)), rel=1e-5)


def test_scale_and_clip_skips_parameters_without_gradients():
    params = gradients()
    params[1].grad = None
    norm = scale_and_clip_(params, 0.5, float("inf"))
    assert params[1].grad is None
    assert float(norm) == pytest.approx(
        0.5 * float(torch.linalg.vector_norm(torch.cat([gradients()[i].grad.flatten() for i in (0, 2)]))), rel=1e-6
    )


def test_fused_adamw_is_the_default():
    model = torch.nn.Linear(4, 3)
    assert TrainingConfig(output_dir="").optim == "adamw_torch_fused"
    assert build_optimizer(model, TrainingConfig(output_dir="")).defaults["fused"]
    assert not build_optimizer(model, TrainingConfig(output_dir="", optim="adamw_torch")).defaults["fused"]
