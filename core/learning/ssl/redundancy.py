"""Redundancy-reduction objectives: VICReg and Barlow Twins.

Both are computed on the expander/projector outputs Z, Z' (N, D) of two views over the
global batch (gathered across ranks under DDP, so the batch statistics are the same as in
one process).

VICReg (Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning", ICLR), lambda = mu = 25, nu = 1:
    s(Z, Z') = 1/(N D) sum_ij (Z_ij - Z'_ij)^2
    v(Z)     = 1/D sum_j max(0, gamma - sqrt(Var(Z_:j) + eps)),  gamma 1, eps 1e-4,
               Var unbiased (N - 1)
    c(Z)     = 1/D sum_{j != k} C(Z)_jk^2,  C(Z) = 1/(N-1) sum_i (Z_i - mean)(Z_i - mean)^T
    L = lambda s + mu [v(Z) + v(Z')] / 2 + nu [c(Z) + c(Z')]
This is the loss of the official implementation (facebookresearch/vicreg, main_vicreg.py:
`std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2`, the
covariance terms summed, not halved), with which the paper's weights 25 / 25 / 1 were
tuned. The paper's Eq. 6 writes the variance terms summed; with the same mu that doubles
the variance weight relative to the runs that chose the weights, so the code is followed.

Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
Reduction", ICML), lambda = 5e-3:
    Z^ = (Z - mean) / sqrt(Var_biased + 1e-5)   per dimension over the batch (as BatchNorm)
    C  = Z^^T Z'^ / N
    L  = sum_j (1 - C_jj)^2 + lambda sum_{j != k} C_jk^2
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl import dist
from core.learning.ssl.base import TwoViewObjective
from core.learning.ssl.views import FeatureLayout


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    return m - torch.diag(torch.diagonal(m))


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, sim_weight: float = 25.0,
                var_weight: float = 25.0, cov_weight: float = 1.0, gamma: float = 1.0,
                eps: float = 1e-4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)

    def variance(z: torch.Tensor) -> torch.Tensor:
        return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()

    def covariance(z: torch.Tensor) -> torch.Tensor:
        zc = z - z.mean(dim=0)
        cov = zc.T @ zc / (n - 1)
        return _off_diagonal(cov).pow(2).sum() / d

    var_term = (variance(z1) + variance(z2)) / 2  # halved as in the reference code (docstring)
    cov_term = covariance(z1) + covariance(z2)
    loss = sim_weight * invariance + var_weight * var_term + cov_weight * cov_term
    return loss, {"invariance": invariance.detach(), "variance": var_term.detach(),
                  "covariance": cov_term.detach()}


def barlow_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3,
                eps: float = 1e-5) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    n = z1.shape[0]

    def standardise(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)

    c = standardise(z1).T @ standardise(z2) / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = _off_diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag, {"on_diag": on_diag.detach(), "off_diag": off_diag.detach()}


class VICReg(TwoViewObjective):
    """Invariance / variance / covariance, weights 25 / 25 / 1 on the reference code's loss
    (variance terms averaged over the two views; see the module docstring)."""

    name = "vicreg"
    paper = "Bardes et al., VICReg, ICLR 2022"
    defaults = {**TwoViewObjective.defaults, "sim_weight": 25.0, "var_weight": 25.0, "cov_weight": 1.0,
                "proj_hidden": 256, "proj_dim": 256, "proj_depth": 3}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.expander = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"],
                                p["proj_depth"])

    def compute_loss(self, v1, v2):
        z1 = dist.gather(self.expander(self.encoder(v1)))
        z2 = dist.gather(self.expander(self.encoder(v2)))
        p = self.params
        return vicreg_loss(z1, z2, p["sim_weight"], p["var_weight"], p["cov_weight"])


class BarlowTwins(TwoViewObjective):
    """Cross-correlation towards the identity, off-diagonal weight lambda = 5e-3."""

    name = "barlow"
    paper = "Zbontar et al., Barlow Twins, ICML 2021"
    defaults = {**TwoViewObjective.defaults, "lambd": 5e-3, "proj_hidden": 256, "proj_dim": 256,
                "proj_depth": 3}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.projector = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"],
                                 p["proj_depth"])

    def compute_loss(self, v1, v2):
        z1 = dist.gather(self.projector(self.encoder(v1)))
        z2 = dist.gather(self.projector(self.encoder(v2)))
        return barlow_loss(z1, z2, self.params["lambd"])
