"""The fairness penalty: fine-tuning's BCE plus lambda times a differentiable between-group difference.

With p_i = sigmoid(z_i) the predicted probability of row i of a batch, g_i its group and y_i
its label, and conditions C of the chosen gap,

    penalty = sum_{c in C} sum_{g present in c} (mean_{i in g, c} p_i - mean_{i in c} p_i)^2
    L_batch = BCE + lambda * penalty

    gap                              conditions C (rows the means run over)
    demographic_parity_difference    all rows                (selection rates)
    equalized_odds_difference        y = 1, and y = 0        (true- and false-positive rates)
    equal_opportunity_difference     y = 1                   (true-positive rates)
    fpr_difference                   y = 0                   (false-positive rates)

Each term is the squared distance of a group's mean probability from the batch's mean under
the same condition: zero exactly when every group has the same mean (the soft version of
the gap, which compares hard decisions and has no gradient). A group with no row in a batch
under a condition adds nothing that step; over an epoch every group is seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from core.learning.debias.hook import TrainingHook

#: The gaps the penalty can soften, and the labels of the rows each one compares (None: all rows).
CONDITIONS: dict[str, tuple[int | None, ...]] = {
    "demographic_parity_difference": (None,),
    "equalized_odds_difference": (1, 0),
    "equal_opportunity_difference": (1,),
    "fpr_difference": (0,),
}


def group_gap_penalty(probabilities: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor,
                      gap: str) -> torch.Tensor:
    """The penalty of the module docstring for one batch. `groups` are integer codes (n,),
    `labels` 0/1 (n,), `probabilities` in [0, 1] (n,); returns a scalar tensor."""
    total = probabilities.new_zeros(())
    for label in CONDITIONS[gap]:
        inside = torch.ones_like(labels, dtype=torch.bool) if label is None else labels == label
        if not bool(inside.any()):
            continue
        p, g = probabilities[inside], groups[inside]
        codes, g = torch.unique(g, return_inverse=True)
        sums = torch.zeros(len(codes), dtype=p.dtype, device=p.device).index_add(0, g, p)
        counts = torch.bincount(g, minlength=len(codes)).to(p.dtype)
        total = total + ((sums / counts - p.mean()) ** 2).sum()
    return total


class FairnessPenalty(TrainingHook):
    """lambda * group_gap_penalty on every batch (core.learning.debias.hook).

    groups  integer group codes of the labelled training rows, in their order
    labels  their 0/1 labels
    """

    def __init__(self, groups: np.ndarray, labels: np.ndarray, *, weight: float, gap: str) -> None:
        if gap not in CONDITIONS:
            raise ValueError(f"no penalty for gap '{gap}': choose one of {', '.join(CONDITIONS)}")
        if not weight >= 0:
            raise ValueError(f"the penalty's weight must be >= 0, got {weight}")
        self.groups, self.labels = np.asarray(groups, dtype=np.int64), np.asarray(labels, dtype=np.int64)
        self.weight, self.gap = float(weight), gap

    def attach(self, encoder: nn.Module, head: nn.Module, device: torch.device) -> list[nn.Parameter]:
        self.groups_t = torch.from_numpy(self.groups).to(device)
        self.labels_t = torch.from_numpy(self.labels).to(device)
        return []

    def loss(self, embedding: torch.Tensor, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        penalty = group_gap_penalty(torch.sigmoid(logits), self.labels_t[rows], self.groups_t[rows], self.gap)
        return self.weight * penalty

    def summary(self) -> dict[str, Any]:
        return {"penalty": {"lambda": self.weight, "gap": self.gap}}
