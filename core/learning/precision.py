"""Which arithmetic the training runs in: fp32, or bfloat16 autocast where the hardware has it.

    precision = resolve_precision("auto", torch.device("cpu"))   # "bf16" or "fp32"
    with autocast(precision, device):
        loss = objective(*views)

"auto" picks bf16 only where bfloat16 matrix products are native: a CUDA device that supports
bf16, or a CPU with AVX-512 BF16 / AMX (what oneDNN reports as bf16 support). Elsewhere bf16
is emulated and slow: on an AVX2-only EPYC a 4096x1024 by 1024x1024 bf16 product ran at
0.95 GFLOP/s against 171 GFLOP/s in fp32 (2 threads), so "auto" stays in fp32 there, and an
explicit "bf16" is honoured but slow (it is a way to check results, not to go faster).

Under autocast, matrix products run in bf16 while BatchNorm, softmax, losses and the optimiser
keep fp32 (torch's autocast op lists); parameters and optimiser state stay fp32, so the
weights a bf16 run saves are ordinary fp32 tensors.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from core.learning.pretrain_config import PRECISIONS


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matrix products are native on `device` (see the module docstring)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """"fp32" or "bf16" for the requested `name` on `device` ("auto": bf16 where native)."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """bfloat16 autocast on `device` for "bf16"; nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
