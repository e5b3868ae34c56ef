"""Clustering objective: SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features
by Contrasting Cluster Assignments", NeurIPS).

z = normalize(g(f(v))), prototypes C (K, D) with unit rows, scores s = z C^T (B, K).
Codes by Sinkhorn-Knopp (3 iterations, epsilon 0.05) over the global batch, no gradient:
    Q = exp(s / epsilon)^T / sum;  repeat: rows of Q sum to 1/K, then columns to 1/B;
    codes q = B Q^T   (each row sums to 1, prototypes used equally over the batch)
Swapped prediction, temperature 0.1:
    L = -1/2 mean_i [ sum_k q1_ik log softmax(s2_i / T)_k + sum_k q2_ik log softmax(s1_i / T)_k ]
Prototypes are renormalised to unit length before every step, as in the paper. Left out
for tabular batches: the queue of past embeddings and multi-crop (rows have no crops).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl import dist
from core.learning.ssl.base import TwoViewObjective
from core.learning.ssl.views import FeatureLayout


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, n_iters: int = 3) -> torch.Tensor:
    """Sinkhorn-Knopp codes (B, K) for scores (B, K); see the module docstring. The global
    max is subtracted before exp (cancels in the normalisation, avoids overflow)."""
    q = torch.exp((scores - scores.max()) / epsilon).T      # (K, B)
    q = q / q.sum()
    k, b = q.shape
    for _ in range(n_iters):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).T


def swav_loss(s1: torch.Tensor, s2: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor,
              temperature: float = 0.1) -> torch.Tensor:
    """Swapped prediction: codes of one view are the targets of the other's scores."""
    term1 = (q1 * F.log_softmax(s2 / temperature, dim=1)).sum(dim=1)
    term2 = (q2 * F.log_softmax(s1 / temperature, dim=1)).sum(dim=1)
    return -0.5 * (term1 + term2).mean()


class SwAV(TwoViewObjective):
    """Prototypes + Sinkhorn-Knopp codes (3 iterations, eps 0.05), temperature 0.1."""

    name = "swav"
    paper = "Caron et al., SwAV, NeurIPS 2020"
    defaults = {**TwoViewObjective.defaults, "n_prototypes": 32, "epsilon": 0.05,
                "sinkhorn_iters": 3, "temperature": 0.1, "proj_hidden": 256, "proj_dim": 128}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.projector = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"], 2)
        self.prototypes = nn.Linear(p["proj_dim"], p["n_prototypes"], bias=False)

    def compute_loss(self, v1, v2):
        p = self.params
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        s1 = self.prototypes(F.normalize(self.projector(self.encoder(v1)), dim=1))
        s2 = self.prototypes(F.normalize(self.projector(self.encoder(v2)), dim=1))
        n, lo = s1.shape[0], dist.row_offset(s1.shape[0])
        q1 = sinkhorn(dist.gather_nograd(s1.detach()), p["epsilon"], p["sinkhorn_iters"])[lo:lo + n]
        q2 = sinkhorn(dist.gather_nograd(s2.detach()), p["epsilon"], p["sinkhorn_iters"])[lo:lo + n]
        loss = swav_loss(s1, s2, q1, q2, p["temperature"])
        return loss, {"swav": loss.detach()}
