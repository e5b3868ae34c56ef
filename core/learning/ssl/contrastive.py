"""Contrastive objectives: SCARF and SimCLR.

cos(a, b) = a.b / (|a| |b|).

InfoNCE (SCARF, Bahri et al. 2022, "SCARF: Self-Supervised Contrastive Learning using
Random Feature Corruption", ICLR), anchors z_i = g(f(x_i)), positives z~_i = g(f(x~_i)):
    L = -1/n sum_i log( exp(cos(z_i, z~_i)/tau) / sum_k exp(cos(z_i, z~_k)/tau) )
the sum over k runs over the corrupted views of the whole (global) batch.

NT-Xent (SimCLR, Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML), 2N embeddings of two views; for anchor a with positive p(a):
    l(a) = -log( exp(cos(z_a, z_p(a))/tau) / sum_{k != a} exp(cos(z_a, z_k)/tau) )
    L = 1/(2N) sum_a l(a)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl import dist
from core.learning.ssl.base import Objective, TwoViewObjective
from core.learning.ssl.views import FeatureLayout, corrupted_view


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, positive_index: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Mean InfoNCE of each anchor (n, k) against candidates (N, k); the positive of
    anchor i is candidates[positive_index[i]] (see the module docstring)."""
    logits = F.normalize(anchors, dim=1) @ F.normalize(candidates, dim=1).T / temperature
    return F.cross_entropy(logits, positive_index)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float,
            all_z1: torch.Tensor | None = None, all_z2: torch.Tensor | None = None,
            offset: int = 0) -> torch.Tensor:
    """NT-Xent of the local anchors z1, z2 (n, k) against all rows all_z1, all_z2 (N, k)
    of the global batch (the local rows sit at [offset, offset + n)). Single process:
    leave all_z* as None."""
    all_z1 = z1 if all_z1 is None else all_z1
    all_z2 = z2 if all_z2 is None else all_z2
    n, big_n = z1.shape[0], all_z1.shape[0]
    anchors = F.normalize(torch.cat([z1, z2]), dim=1)
    candidates = F.normalize(torch.cat([all_z1, all_z2]), dim=1)
    logits = anchors @ candidates.T / temperature                      # (2n, 2N)
    local = torch.arange(n, device=z1.device) + offset
    self_index = torch.cat([local, local + big_n])
    positive = torch.cat([local + big_n, local])
    logits = logits.masked_fill(
        F.one_hot(self_index, 2 * big_n).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


class Scarf(Objective):
    """InfoNCE between a row and its copy with a fraction of columns replaced by draws from
    their empirical marginals (corruption_rate 0.6 and temperature 1.0 as in the paper)."""

    name = "scarf"
    paper = "Bahri et al., SCARF, ICLR 2022"
    defaults: dict[str, Any] = {"corruption_rate": 0.6, "temperature": 1.0, "noise_std": 0.0,
                                "proj_hidden": 256, "proj_dim": 128, "proj_depth": 2}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.head = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"],
                            p["proj_depth"])

    def make_views(self, x, generator):
        p = self.params
        return x, corrupted_view(x, self.layout, p["corruption_rate"], p["noise_std"], generator)

    def compute_loss(self, x, x_tilde):
        z = self.head(self.encoder(x))
        z_tilde = self.head(self.encoder(x_tilde))
        candidates = dist.gather(z_tilde)
        positive = torch.arange(z.shape[0], device=z.device) + dist.row_offset(z.shape[0])
        loss = info_nce(z, candidates, positive, self.params["temperature"])
        return loss, {"info_nce": loss.detach()}


class SimCLR(TwoViewObjective):
    """NT-Xent over two independently corrupted (+ numeric noise) views of each row."""

    name = "simclr"
    paper = "Chen et al., SimCLR, ICML 2020"
    defaults = {**TwoViewObjective.defaults, "temperature": 0.5, "proj_hidden": 256, "proj_dim": 128,
                "proj_depth": 2}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.head = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"],
                            p["proj_depth"])

    def compute_loss(self, v1, v2):
        z1 = self.head(self.encoder(v1))
        z2 = self.head(self.encoder(v2))
        loss = nt_xent(z1, z2, self.params["temperature"], dist.gather(z1), dist.gather(z2),
                       dist.row_offset(z1.shape[0]))
        return loss, {"nt_xent": loss.detach()}
