"""R modules of one architecture as one batched module: the replicas' tensors stacked on dim 0.

    stack = StackedReplicas([module_0, ..., module_{R-1}])   # same class, shapes and modes
    out = stack(x)            # x (R, n, ...) -> module_r(x[r]) for every r, in one vmapped call
    stack.module              # one module whose every parameter and buffer is (R, ...)
    stack.replicas[r]         # module_r again, its tensors now views of row r of the stacks

`torch.func.stack_module_state` stacks the parameters and buffers; `stack.module` (a copy of
module_0) holds the stacks themselves, so an optimiser over `stack.module.parameters()` is one
optimiser for all replicas, and `torch.func.functional_call` + `torch.vmap` run module_r's
forward on x[r] with row r of every stack. Each replica module is then re-pointed at its row
(`tensor.data = stack[r]`, shared storage): whatever changes a stack in place (optimiser steps,
BatchNorm running statistics inside vmap, an objective's in-place renormalisation, an EMA over
the stacked tensors) is what module_r reads, and whatever changes module_r in place (its
validation pass) is what the stack holds. No tensor is copied per step.

vmap runs with randomness="error": nothing random may happen inside the batched forward (the
replicas' random streams are drawn outside, per replica, so each equals its solo run's). A
forward that draws (dropout) raises instead of silently sharing or changing a stream.

Under bfloat16 autocast the stack module's BatchNorm layers get their input in float32 (a
forward pre-hook): vmap's batch rule for batch_norm with running statistics refuses a bf16
input with fp32 statistics ("expected scalar type BFloat16 but found Float", torch 2.13),
which is what autocast hands it, while the solo run's batch_norm accepts the mix and computes
in fp32 anyway. The next Linear casts back to bf16, as in the solo run.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state


class StackedReplicas:
    """The replicas of one architecture, trained as one module (see the module docstring)."""

    def __init__(self, replicas: Sequence[nn.Module]) -> None:
        if len(replicas) < 1:
            raise ValueError("StackedReplicas needs at least one module")
        params, buffers = stack_module_state(list(replicas))
        self.module = copy.deepcopy(replicas[0])
        for name, tensor in params.items():
            _owner(self.module, name)._parameters[_leaf(name)] = nn.Parameter(
                tensor, requires_grad=tensor.requires_grad)
        for name, tensor in buffers.items():
            _owner(self.module, name)._buffers[_leaf(name)] = tensor
        for layer in self.module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.register_forward_pre_hook(_float32_input)
        stacks = {**dict(self.module.named_parameters()), **dict(self.module.named_buffers())}
        for r, replica in enumerate(replicas):
            for name, tensor in [*replica.named_parameters(), *replica.named_buffers()]:
                tensor.data = stacks[name].detach()[r]
        self.replicas = list(replicas)

    @property
    def size(self) -> int:
        return len(self.replicas)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        """module_r(*(x[r] for x in inputs)) for every r, stacked on dim 0 (outputs may be
        tuples and dicts of tensors). Runs in the stack module's current train/eval modes."""
        params = dict(self.module.named_parameters())
        buffers = dict(self.module.named_buffers())

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *xs: torch.Tensor) -> Any:
            return functional_call(self.module, (p, b), xs)

        return torch.vmap(one, in_dims=0, randomness="error")(params, buffers, *inputs)


def _float32_input(layer: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A BatchNorm's input in float32 when autocast made it half precision (module docstring)."""
    x = args[0]
    return (x.float(), *args[1:]) if x.dtype in (torch.bfloat16, torch.float16) else args


def _owner(module: nn.Module, dotted: str) -> nn.Module:
    """The submodule that holds tensor `dotted` ("blocks.0.norm.weight" -> blocks[0].norm)."""
    for part in dotted.split(".")[:-1]:
        module = getattr(module, part)
    return module


def _leaf(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]
