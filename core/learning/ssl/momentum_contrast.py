"""Contrast against a queue of momentum-encoded keys: MoCo v2 (He et al. 2020, "Momentum
Contrast for Unsupervised Visual Representation Learning", CVPR; Chen et al. 2020, "Improved
Baselines with Momentum Contrastive Learning": MLP projector, temperature 0.2).

Query network (f_q, g_q) on view 1, key network (f_k, g_k) = exponential moving average of it
on view 2, keys k without gradient; a FIFO queue Q (K, D) of the keys of past batches:
    q_i = g_q(f_q(v1_i)) / |.|,   k_i = g_k(f_k(v2_i)) / |.|
    L = -1/n sum_i log( exp(q_i.k_i / T) / (exp(q_i.k_i / T) + sum_{j<K} exp(q_i.Q_j / T)) )
    after each step:  theta_k <- m theta_k + (1 - m) theta_q
then the batch's keys are enqueued, newest first, and the oldest dropped. The queue starts as
K random unit vectors, as in the paper.
Validation (eval mode) contrasts each query with the keys of its own validation batch instead
(InfoNCE with the batch as the queue, core.learning.ssl.contrastive.info_nce) and leaves the
queue alone: the queue changes every step and starts random (easy negatives), so losses against
it are not comparable between epochs, and early stopping compares epochs.
Under DDP the keys of all ranks are gathered before enqueueing, so every rank holds
the same queue (that of one process on the global batch).

Defaults for tables (docs/ssl.md): momentum 0.99 rather than the paper's 0.999, since a table
gives a few hundred steps rather than ImageNet's hundreds of thousands, and a key network with
a time constant of 1,000 steps would hardly move from its initialisation; queue 512 keys, two
batches of 256 (German credit's 700 training rows give 2 such batches an epoch), so the queue
holds keys at most 2 steps old, whose encoder differs little (1 - 0.99^2 = 2% of a step's
pull) from the current one. Left out: shuffling BN (the key network's BatchNorm sees the
whole batch, synchronised under DDP, as in MoCo v3).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl import dist
from core.learning.ssl.base import TwoViewObjective
from core.learning.ssl.contrastive import info_nce
from core.learning.ssl.views import FeatureLayout


def moco_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of queries q (n, D) with positives k (n, D) and negatives queue (K, D), all
    L2-normalised here; the positive is logit 0 (see the module docstring)."""
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)                     # (n, 1)
    logits = torch.cat([positive, q @ queue.T], dim=1) / temperature  # (n, 1 + K)
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def enqueue(queue: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The queue after pushing `keys` in front and dropping the oldest rows (same shape)."""
    return torch.cat([keys, queue])[:queue.shape[0]]


class MoCo(TwoViewObjective):
    """MoCo v2: momentum key network (0.99), queue of 512 negative keys, temperature 0.2."""

    name = "moco"
    paper = "He et al., MoCo, CVPR 2020; Chen et al., MoCo v2, 2020"
    defaults = {**TwoViewObjective.defaults, "temperature": 0.2, "momentum": 0.99, "queue_size": 512,
                "proj_hidden": 256, "proj_dim": 128}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.projector = MLPHead(encoder_config.embed_dim, p["proj_hidden"], p["proj_dim"], 2)
        self.key_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        # Persistent: the queue is training state (checkpoints, resume).
        self.register_buffer("queue", F.normalize(torch.randn(int(p["queue_size"]), p["proj_dim"]), dim=1))

    def compute_loss(self, v1, v2):
        q = self.projector(self.encoder(v1))
        with torch.no_grad():
            k = F.normalize(self.key_projector(self.key_encoder(v2)), dim=1)
        temperature = self.params["temperature"]
        if not self.training:  # validation: the batch's keys as negatives (module docstring)
            loss = info_nce(q, k, torch.arange(q.shape[0], device=q.device), temperature)
            return loss, {"moco": loss.detach()}
        # A copy: the queue changes below, and the backward pass needs the negatives it used.
        loss = moco_loss(q, k, self.queue.clone(), temperature)
        with torch.no_grad():
            self.queue.copy_(enqueue(self.queue, dist.gather_nograd(k)))
        return loss, {"moco": loss.detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        m = self.params["momentum"]
        for query, key in ((self.encoder, self.key_encoder), (self.projector, self.key_projector)):
            for pq, pk in zip(query.parameters(), key.parameters()):
                pk.lerp_(pq, 1 - m)          # pk = m pk + (1 - m) pq
