"""Adversarial removal of a sensitive attribute from the representation (Ganin & Lempitsky 2015).

An adversary a(.) reads the group from the embedding h = encoder(x) through a gradient-reversal
layer R_alpha (identity forward, -alpha * gradient backward):

    L_batch = BCE(head(h), y) + CE(a(R_alpha(h)), group)

The adversary's weights descend CE (they learn to read the group), while the encoder receives
-alpha * dCE/dh: it is pushed towards embeddings from which the group cannot be read, at the
same time as it learns the label. alpha sets how hard. The adversary is an MLP with one hidden
layer (a linear adversary is easier to fool than the audit's linear probe refitted afterwards),
trained at the head's learning rate; it is dropped after training (the saved model is the
encoder and head alone). Fine-tuning only: a reversal during pretraining would cost a new
pretraining per replicate, and the audit's probes read the fine-tuned encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from core.learning.debias.hook import TrainingHook

#: Width of the adversary's hidden layer.
ADVERSARY_HIDDEN = 64


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.alpha * grad, None


def reverse_gradient(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """R_alpha(x): x forward, -alpha * the gradient backward."""
    return _ReverseGradient.apply(x, alpha)


class AdversarialRemoval(TrainingHook):
    """The adversary and its reversed gradient as a fine-tuning hook (module docstring).

    groups  integer group codes 0..G-1 of the labelled training rows, in their order
    alpha   the reversal weight
    """

    def __init__(self, groups: np.ndarray, *, alpha: float, random_state: int = 0) -> None:
        if not alpha > 0:
            raise ValueError(f"the reversal weight alpha must be > 0, got {alpha}")
        self.groups = np.asarray(groups, dtype=np.int64)
        self.n_groups = int(self.groups.max()) + 1
        self.alpha, self.random_state = float(alpha), random_state
        self.adversary_loss: list[float] = []

    def attach(self, encoder: nn.Module, head: nn.Module, device: torch.device) -> list[nn.Parameter]:
        with torch.random.fork_rng(devices=[]):  # its own initialisation; the loop's draws stay as they are
            torch.manual_seed(self.random_state)
            self.adversary = nn.Sequential(nn.Linear(encoder.embed_dim, ADVERSARY_HIDDEN), nn.ReLU(),
                                           nn.Linear(ADVERSARY_HIDDEN, self.n_groups)).to(device)
        self.groups_t = torch.from_numpy(self.groups).to(device)
        return list(self.adversary.parameters())

    def loss(self, embedding: torch.Tensor, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        read = self.adversary(reverse_gradient(embedding, self.alpha))
        loss = nn.functional.cross_entropy(read, self.groups_t[rows])
        self.adversary_loss.append(float(loss.detach()))
        return loss

    def finish(self, encoder: nn.Module) -> None:
        del self.adversary, self.groups_t  # not part of the model

    def summary(self) -> dict[str, Any]:
        last = self.adversary_loss[-20:]
        share = np.bincount(self.groups) / len(self.groups)
        share = share[share > 0]
        # What an adversary that only knows the group sizes scores: the entropy of the groups.
        chance = float(-(share * np.log(share)).sum())
        return {"adversary": {"alpha": self.alpha, "n_groups": self.n_groups, "hidden": ADVERSARY_HIDDEN,
                              "final_cross_entropy": float(np.mean(last)) if last else None,
                              "chance_cross_entropy": chance}}
