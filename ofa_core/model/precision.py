"""Inference precision modes: fp32 (exact), bf16, fp16 and int8, each checked against the device it would run on.

A mode that would be wrong or slower than fp32 where it runs is refused before any model is loaded, with the fix;
int8 on a model too narrow for it to pay is left in fp32 with a one-line notice. benchmarks/bench_generate.py
(speed) and benchmarks/bench_precision.py (agreement with fp32 and CIDEr-D on the trained demo model) measure
what each mode costs; docs/predict.md has the figures. Importing this module does not import torch, so the CLI can
offer the modes as choices and stay light.
"""

from __future__ import annotations

from typing import Any

import attrs

from ofa_core._errors import OFAError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
"""The modes, exact first."""
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""The floating-point modes' torch dtypes by name; int8 keeps fp32 outside its quantized linears."""
INT8_MIN_D_MODEL = 256
"""int8 is applied from this width (`ofa-tiny`'s, the narrowest official size) up. On the trained demo model (width
128) it was no faster than fp32 (0.90x at batch 1, 1.06x at batch 8): quantizing each step's activations costs about
what the smaller weights save. benchmarks/bench_generate.py measures both sides."""
HELP = (
    f"fp32: exact (default); bf16: GPUs and CPUs with native bf16; fp16: GPUs; int8: CPU, models of width "
    f"{INT8_MIN_D_MODEL} or more (docs/predict.md has what each costs in answers)"
)
"""The `--precision` help of every command that takes it."""


def int8_pays(config: Any) -> bool:
    """Whether the int8 mode is faster than fp32 for a model of this configuration's width."""
    return config.d_model >= INT8_MIN_D_MODEL


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX); elsewhere it is emulated, slower than
    fp32."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe is not None and probe() for probe in probes)


def check(precision: str, device: Any, option: str = "--precision") -> None:
    """Refuse `precision` on `device` (a torch device or its name) where it is unknown, wrong or slow; `option` names
    the setting in the message."""
    import torch

    device = torch.device(device)
    if precision not in PRECISIONS:
        raise OFAError(f"{option} {precision}: not a precision; choose one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        if precision == "int8":
            raise OFAError(f"{option} int8: the int8 mode runs on the CPU only; on {device} use bf16 or fp16")
        if not torch.cuda.is_available():
            raise OFAError(
                f"{option} {precision} on {device}: CUDA is not available here; run on a GPU machine or "
                f"use the CPU with fp32, int8 or (native) bf16"
            )
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise OFAError(f"{option} bf16: this GPU has no native bf16 (compute capability 8.0 or later); use fp16")
    elif device.type == "cpu":
        if precision == "fp16":
            raise OFAError(
                f"{option} fp16: half precision needs a GPU; on the CPU use bf16 (with native support) or int8"
            )
        if precision == "bf16" and not cpu_has_native_bf16():
            raise OFAError(
                f"{option} bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 would run slower "
                f"than fp32; use int8 or fp32"
            )
    elif precision != "fp32":
        raise OFAError(f"{option} {precision}: checked on CPUs and CUDA GPUs only; on {device} use fp32")


@attrs.frozen
class Applied:
    """What a model runs in after `apply`: `precision` differs from `requested` where int8 would not pay."""

    requested: str
    precision: str
    notice: str | None = None
    """One line for the user when the model was left as it was."""


def apply(model: Any, precision: str, device: Any, option: str = "--precision") -> tuple[Any, Applied]:
    """`model` moved to `device` in `precision`, and what was applied: fp32, bf16 and fp16 move and cast `model` itself
    (as `Module.to` does); int8 returns a quantized copy."""
    import torch

    from ofa_core.model.quantize import quantize_for_cpu

    check(precision, device, option)
    model = model.eval()
    if precision == "int8":
        if not int8_pays(model.config):
            notice = (
                f"{option} int8: left in fp32: this model's width ({model.config.d_model}) is below "
                f"{INT8_MIN_D_MODEL}, where int8 decoding is no faster than fp32"
            )
            return model.to(device), Applied(precision, "fp32", notice)
        return quantize_for_cpu(model.to(torch.float32), encoder=True).to(device), Applied(precision, precision)
    return model.to(device=device, dtype=getattr(torch, DTYPE_NAMES[precision])), Applied(precision, precision)
