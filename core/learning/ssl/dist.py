"""The few torch.distributed pieces the objectives need under DDP.

Objectives compute losses over the *global* batch when `torch.distributed` is initialised
with world size > 1 (set up by core.learning.pretrain under torchrun):
    gather(z)      all-gathered rows of every rank, concatenated in rank order, with
                   gradient (torch.distributed.nn.functional.all_gather: its backward
                   sums the gradients of every rank's loss into each rank's rows).
    row_offset(n)  where this rank's n rows sit inside the gathered tensor.
Inside `local_only()` (validation, collapse check) every helper acts as in a single process.

Batch statistics: every rank holds a slice of the batch, so BatchNorm layers must see the
whole batch for results to match one process. On CUDA that is nn.SyncBatchNorm. Its
forward refuses CPU tensors, so CPU runs (gloo) use `CpuSyncBatchNorm`, the same
computation with differentiable all-reduces:
    mean = sum_r sum_i x / N,   var = sum_r sum_i (x - mean)^2 / N,   N = global batch
    y = (x - mean) / sqrt(var + eps) * weight + bias
    running_var is updated with the unbiased var * N / (N - 1), as BatchNorm does.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn

_local_only = False


def is_active() -> bool:
    """True inside a multi-process group (and not inside `local_only()`)."""
    return (not _local_only and dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if is_active() else (0, 1)


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Compute as one process would on the rows it has (no collective calls)."""
    global _local_only
    previous, _local_only = _local_only, True
    try:
        yield
    finally:
        _local_only = previous


def _functional():
    # Imported here, inside the filter: importing the module itself warns (FutureWarning).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import torch.distributed.nn.functional as functional
    return functional


def gather(x: torch.Tensor) -> torch.Tensor:
    """Rows of all ranks, concatenated in rank order, differentiable; x itself if local."""
    if not is_active():
        return x
    with warnings.catch_warnings():
        # The public differentiable collectives warn that they are deprecated in favour of
        # private ones; the public API is the stable choice here.
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(_functional().all_gather(x), dim=0)


def gather_nograd(x: torch.Tensor) -> torch.Tensor:
    if not is_active():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks; x itself if local."""
    if not is_active():
        return x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _functional().all_reduce(x)


def row_offset(n_local: int) -> int:
    """Index of this rank's first row in a gathered tensor (equal shards per rank)."""
    rank, _ = rank_and_world()
    return rank * n_local


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """Average of a detached scalar over ranks (for logging)."""
    if not is_active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


class CpuSyncBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics cover the global batch (see module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_active()):
            return super().forward(x)
        n_global = x.shape[0] * dist.get_world_size()
        mean = all_reduce_sum(x.sum(dim=0)) / n_global
        var = all_reduce_sum(((x - mean) ** 2).sum(dim=0)) / n_global
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                unbiased = var.detach() * n_global / max(n_global - 1, 1)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """nn.SyncBatchNorm on accelerators; `CpuSyncBatchNorm` on CPU. State dict keys are
    unchanged, so checkpoints load into a plain `Encoder`."""
    if device.type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm1d) and not isinstance(module, CpuSyncBatchNorm):
        new = CpuSyncBatchNorm(module.num_features, module.eps, module.momentum,
                               module.affine, module.track_running_stats)
        new.load_state_dict(module.state_dict())
        for name, param in new.named_parameters():  # keep frozen target networks frozen
            param.requires_grad_(getattr(module, name).requires_grad)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module
