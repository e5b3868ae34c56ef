"""Self-distillation without negatives: BYOL and SimSiam (a predictor chases a stop-gradient target).

BYOL (Grill et al. 2020, "Bootstrap Your Own Latent", NeurIPS): online f, projector g,
predictor q; target network (f', g') = exponential moving average of (f, g):
    l(p, z') = || p/|p| - z'/|z'| ||^2 = 2 - 2 cos(p, z'),   mean over the batch
    L = l(q(g(f(v1))), g'(f'(v2))) + l(q(g(f(v2))), g'(f'(v1)))          (symmetric)
    after each step:  theta' <- tau_k theta' + (1 - tau_k) theta,
    tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2,  tau_base = 0.996 -> 1 at k = K.

SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning", CVPR):
    D(p, z) = -cos(p, stopgrad(z)),  mean over the batch
    L = D(h(z1), z2) / 2 + D(h(z2), z1) / 2,  z = projector(f(v)), h = predictor
projector of 3 layers with BN on its output, bottleneck predictor (hidden = dim / 4).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl.base import TwoViewObjective
from core.learning.ssl.views import FeatureLayout


def byol_loss(p: torch.Tensor, z_target: torch.Tensor) -> torch.Tensor:
    """mean_i (2 - 2 cos(p_i, z_i)); z_target is treated as a constant."""
    return (2 - 2 * F.cosine_similarity(p, z_target.detach(), dim=1)).mean()


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -mean_i cos(p_i, stopgrad(z_i))."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def ema_tau(step: int, total_steps: int, tau_base: float) -> float:
    """BYOL's cosine schedule: tau_base at step 0, 1 at step total_steps."""
    return 1 - (1 - tau_base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1) / 2


class Byol(TwoViewObjective):
    """Online/target networks, EMA target (0.996 -> 1, cosine), predictor, symmetric loss."""

    name = "byol"
    paper = "Grill et al., BYOL, NeurIPS 2020"
    defaults = {**TwoViewObjective.defaults, "tau_base": 0.996, "proj_hidden": 256, "proj_dim": 128,
                "pred_hidden": 256}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.projector = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"], 2)
        self.predictor = MLPHead(p["proj_dim"], p["pred_hidden"], p["proj_dim"], 2)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.tau = p["tau_base"]

    def compute_loss(self, v1, v2):
        p1 = self.predictor(self.projector(self.encoder(v1)))
        p2 = self.predictor(self.projector(self.encoder(v2)))
        with torch.no_grad():
            t1 = self.target_projector(self.target_encoder(v1))
            t2 = self.target_projector(self.target_encoder(v2))
        loss = byol_loss(p1, t2) + byol_loss(p2, t1)
        return loss, {"byol": loss.detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        self.tau = ema_tau(step, total_steps, self.params["tau_base"])
        for online, target in ((self.encoder, self.target_encoder),
                               (self.projector, self.target_projector)):
            for po, pt in zip(online.parameters(), target.parameters()):
                pt.lerp_(po, 1 - self.tau)          # pt = tau pt + (1 - tau) po


class SimSiam(TwoViewObjective):
    """Predictor + stop-gradient, symmetric negative cosine."""

    name = "simsiam"
    paper = "Chen & He, SimSiam, CVPR 2021"
    defaults = {**TwoViewObjective.defaults, "proj_hidden": 256, "proj_dim": 128, "pred_hidden": 32}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.projector = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"], 3,
                                 last_bn=True)
        self.predictor = MLPHead(p["proj_dim"], p["pred_hidden"], p["proj_dim"], 2)

    def compute_loss(self, v1, v2):
        z1 = self.projector(self.encoder(v1))
        z2 = self.projector(self.encoder(v2))
        loss = negative_cosine(self.predictor(z1), z2) / 2 + negative_cosine(self.predictor(z2), z1) / 2
        return loss, {"simsiam": loss.detach()}
