"""Model compression: global magnitude pruning of an encoder's Linear weights, fine-tuned after pruning.

prune_encoder(encoder, sparsity) uses torch.nn.utils.prune's global L1-unstructured pruning
over every block's Linear weight: the `sparsity` share of those weights with the smallest |w|
across all blocks together become 0 (so wide layers lose more than narrow ones, where the
small weights are). BatchNorm and biases are not pruned. The mask is then made permanent
(prune.remove): the encoder holds plain weights with zeros, so it deep-copies, trains, saves
and loads like any other (TrainedClassifier, safetensors).

KeepPruned keeps the mask while fine-tuning: after every optimizer step the pruned weights are
set back to 0. This is the same training as torch's reparametrisation (weight = weight_orig *
mask): a pruned weight is 0 in every forward pass, so the other weights get the same
gradients, and Adam's update is per weight.

realised_sparsity(encoder): the share of exact zeros among the Linear weights (what the saved
model really holds, recorded beside the sparsity asked for).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from core.learning.debias.hook import TrainingHook
from core.learning.models import Encoder


def linear_layers(encoder: Encoder) -> list[nn.Linear]:
    """Every block's Linear, from the input up."""
    return [block.linear for block in encoder.blocks]


def prune_encoder(encoder: Encoder, sparsity: float) -> Encoder:
    """A copy of `encoder` with the `sparsity` share of its Linear weights (smallest |w|, across
    all blocks) set to 0, as plain weights (module docstring); `encoder` is left unchanged."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    pruned = copy.deepcopy(encoder).cpu()
    layers = linear_layers(pruned)
    prune.global_unstructured([(layer, "weight") for layer in layers], pruning_method=prune.L1Unstructured,
                              amount=float(sparsity))
    for layer in layers:
        prune.remove(layer, "weight")
    return pruned


def realised_sparsity(encoder: Encoder) -> float:
    """Share of exact zeros among the encoder's Linear weights."""
    weights = [layer.weight.detach() for layer in linear_layers(encoder)]
    return float(sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights))


class KeepPruned(TrainingHook):
    """Fine-tuning hook: the zeros of a pruned encoder stay 0 (module docstring)."""

    def __init__(self, sparsity: float) -> None:
        self.sparsity = float(sparsity)

    def attach(self, encoder: nn.Module, head: nn.Module, device: torch.device) -> list[nn.Parameter]:
        self.layers = linear_layers(encoder)
        self.masks = [(layer.weight.detach() != 0).to(layer.weight.dtype) for layer in self.layers]
        return []

    def after_step(self) -> None:
        with torch.no_grad():
            for layer, mask in zip(self.layers, self.masks):
                layer.weight.mul_(mask)

    def finish(self, encoder: nn.Module) -> None:
        self.realised = realised_sparsity(encoder)
        del self.layers, self.masks

    def summary(self) -> dict[str, Any]:
        return {"pruning": {"sparsity": self.sparsity, "realised_sparsity": getattr(self, "realised", None)}}
