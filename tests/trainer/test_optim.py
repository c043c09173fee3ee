"""The update's parts: fused AdamW by default, the gradients' scale and clip in one pass."""

from __future__ import annotations

import pytest
import torch

from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.optim import build_optimizer, scale_and_clip_, scaled_step, total_norm


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


def _trained(optim: str, fold: bool, steps: int = 4) -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer]:
    """Weights after `steps` AdamW updates on fixed gradients, clipped (max norm 1) from the second step on."""
    params = [torch.nn.Parameter(torch.full(shape, 0.5)) for shape in ((64, 32), (32,), (7, 5, 3))]
    optimizer = build_optimizer(torch.nn.ParameterList(params), TrainingConfig(output_dir="", optim=optim))
    for step in range(steps):
        for param, source in zip(params, gradients(step)):
            param.grad = source.grad.clone() * (1 if step == 0 else 100)
        if fold:
            scaled_step(optimizer, params, 1 / 37, 1.0)
        else:
            scale_and_clip_(params, 1 / 37, 1.0)
            optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("optim", ["adamw_torch_fused", "adamw_torch"])
def test_scaled_step_is_scale_and_clip_then_step(optim):
    """Fused AdamW divides by the factor's reciprocal in its kernel: the same weights to float rounding, and no
    `grad_scale` left behind for a later step (or a GradScaler) to find."""
    folded, optimizer = _trained(optim, fold=True)
    multiplied, reference = _trained(optim, fold=False)
    for mine, theirs in zip(folded, multiplied):
        assert not torch.equal(mine, torch.full_like(mine, 0.5))
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
        # Adam's step hardly depends on the gradients' scale; its moments do, so they show the factor was applied.
        for moment in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(
                optimizer.state[mine][moment], reference.state[theirs][moment], rtol=1e-5, atol=1e-9
            )
    assert getattr(optimizer, "grad_scale", None) is None


def test_scaled_step_returns_the_scaled_norm_and_steps_without_gradients():
    params = gradients()
    optimizer = build_optimizer(torch.nn.ParameterList(params), TrainingConfig(output_dir=""))
    expected = float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))) / 37
    assert float(scaled_step(optimizer, params, 1 / 37, 1.0)) == pytest.approx(expected, rel=1e-6)
    for param in params:
        param.grad = None
    assert float(scaled_step(optimizer, params, 1 / 37, 1.0)) == 0.0


def test_total_norm_on_a_cpu_is_closer_to_the_exact_norm_than_torchs():
    generator = torch.Generator().manual_seed(1)
    grads = [torch.randn(shape, generator=generator) * 3 for shape in ((768, 3072), (768, 768), (768,), (3, 5))]
    exact = float(torch.stack([grad.double().pow(2).sum() for grad in grads]).sum().sqrt())
    ours, torchs = float(total_norm(grads)), float(torch.nn.utils.get_total_norm(grads))
    assert abs(ours - exact) <= abs(torchs - exact) + 1e-12 * exact
    assert ours == pytest.approx(exact, rel=5e-6)  # float32 products; their sum depends on the thread count
    assert total_norm([grad.to(torch.bfloat16) for grad in grads]).dtype == torch.bfloat16  # torch's, as before
