"""TrainingHook: what a debiasing method (core.learning.debias) may add to the fine-tuning loop.

The loop (core.learning.finetune.training) calls, on the copy of the encoder it trains:
    attach(encoder, head, device) -> extra trainable parameters (an adversary's head), once before training
    loss(embedding, logits, rows)  -> a term added to the batch's BCE (or None), every step;
                                      `rows` are the batch's positions in the labelled training rows
    after_step()                   -> after every optimizer step (pruning: put the zeros back)
    finish(encoder)                -> once after training, before the classifier is built
    summary()                      -> JSON-able facts kept in the model's extra["debias"]
The base class adds nothing, so a loop with the default hook trains exactly as without one.
Light: no torch at import (type names only), so the loop's import stays as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


class TrainingHook:
    """The default hook: adds nothing (module docstring)."""

    def attach(self, encoder: nn.Module, head: nn.Module, device: torch.device) -> list[nn.Parameter]:
        return []

    def loss(self, embedding: torch.Tensor, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | None:
        return None

    def after_step(self) -> None:
        return None

    def finish(self, encoder: nn.Module) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {}
