"""Clustering objective: DeepCluster (Caron et al. 2018, "Deep Clustering for Unsupervised
Learning of Visual Features", ECCV).

At the start of every epoch (`before_epoch`), on the embeddings h = f(x) of all training rows
(eval mode, no gradient):
    z = normalize( (h - mean) W ),  W = PCA components / sqrt(their variance)   (PCA-whitened to
        p = min(pca_dim, embed_dim) dimensions, then L2-normalised, as the paper does; a
        component with variance under 1e-6 of the largest gets weight 0 instead of a blown-up one)
    centroids c_1..c_K = scikit-learn KMeans(K, random_state drawn from the run's seeded RNG) on z
    empty clusters re-seeded as in the paper (its faiss k-means): the largest cluster is split by
        perturbing its centroid, c_empty = c_big (1 + e s), c_big = c_big (1 - e s), s_j = +-1
        alternating, e = 1/1024, until no cluster is empty
    the linear classification head is re-initialised (the labels' numbering is arbitrary), and its
        optimizer state dropped by the loop
The pseudo-label of a row is its nearest centroid, y(x) = argmin_c |z(x) - c|, with z from a frozen
copy of the encoder taken at that moment; for the training rows that is their k-means assignment,
and it needs no row index inside the loop's shuffled batches. Training, on one corrupted view v of
each row (the views of TwoViewObjective; labels from the clean row, as the paper labels the
un-augmented image):
    L = 1/n sum_i w_{y_i} CE( head(f(v_i)), y_i ),  w_c = N / (K' N_c)
w weights each row inversely to its cluster's size N_c (K' non-empty clusters, N training rows):
the paper's alternative to uniform sampling over clusters against the trivial solution of one
big cluster; E[w_y] = 1, and a plain mean keeps the DDP average the global loss. The validation
loss is measured against the current epoch's clusters, so it jumps at every reassignment.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from torch import nn

from core.errors import InputError
from core.learning.models import EncoderConfig
from core.learning.ssl.base import Objective, TwoViewObjective
from core.learning.ssl.views import FeatureLayout, corrupted_view

SPLIT_EPS = 1.0 / 1024      # faiss' perturbation when it splits a cluster for an empty one
VARIANCE_FLOOR = 1e-6       # relative: PCA components below it are dropped from the whitening


def whitening(h: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (k,), W (k, p)): PCA whitening of the rows h (n, k), z = (h - mean) W."""
    # covariance_eigh: exact, and fast for many rows of few dimensions (0.3 s on 30,000 x 128 rows, "full" 1.9 s)
    pca = PCA(n_components=min(n_components, *h.shape), svd_solver="covariance_eigh").fit(h)
    variance = pca.explained_variance_
    keep = variance > VARIANCE_FLOOR * max(float(variance.max()), 1e-30)
    scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, variance, 1.0)), 0.0)
    w = np.zeros((h.shape[1], n_components))
    w[:, :len(variance)] = pca.components_.T * scale
    return pca.mean_, w


def nearest_centroid(z: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """argmin_c |z_i - c|^2 for every row (ties: the lower index)."""
    return torch.cdist(z, centroids).argmin(dim=1)


def reseed_empty_clusters(z: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Centroids without an empty cluster: each empty one takes half of the largest cluster by
    splitting its centroid (module docstring). Stops if no cluster has two rows left to split."""
    centroids = centroids.clone()
    sign = torch.ones(centroids.shape[1], dtype=centroids.dtype, device=centroids.device)
    sign[1::2] = -1
    while True:
        sizes = torch.bincount(nearest_centroid(z, centroids), minlength=centroids.shape[0])
        empty = (sizes == 0).nonzero().flatten()
        if empty.numel() == 0 or int(sizes.max()) < 2:
            return centroids
        big = int(sizes.argmax())
        centroids[int(empty[0])] = centroids[big] * (1 + SPLIT_EPS * sign)
        centroids[big] = centroids[big] * (1 - SPLIT_EPS * sign)


class DeepCluster(Objective):
    """k-means pseudo-labels every epoch (32 clusters on PCA-whitened, L2-normalised
    embeddings), a linear head re-initialised at each reassignment, class-balanced cross-entropy."""

    name = "deepcluster"
    paper = "Caron et al., DeepCluster, ECCV 2018"
    # One corrupted view per row, corrupted as the two-view methods corrupt theirs.
    defaults = {**TwoViewObjective.defaults, "n_clusters": 32, "pca_dim": 32, "kmeans_iters": 300}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p, k = self.params, encoder_config.embed_dim
        n_clusters, dim = int(p["n_clusters"]), min(int(p["pca_dim"]), k)
        if n_clusters < 2:
            raise InputError(f"deepcluster needs at least 2 clusters, got {n_clusters}", "Use n_clusters 2 or more")
        self.head = nn.Linear(k, n_clusters)
        # The encoder as it was at the last reassignment: it labels the rows of the epoch's batches.
        self.assignment_encoder = copy.deepcopy(self.encoder).requires_grad_(False).eval()
        # Persistent buffers: the epoch's clustering is training state (checkpoints, resume).
        self.register_buffer("pca_mean", torch.zeros(k))
        self.register_buffer("pca_weight", torch.eye(k, dim))
        self.register_buffer("centroids", torch.zeros(n_clusters, dim))
        self.register_buffer("class_weight", torch.ones(n_clusters))

    def train(self, mode: bool = True) -> DeepCluster:
        super().train(mode)
        self.assignment_encoder.eval()  # labels come from eval-mode embeddings, as at the reassignment
        return self

    def make_views(self, x, generator):
        p = self.params
        return corrupted_view(x, self.layout, p["corruption_rate"], p["noise_std"], generator), x

    def _whitened(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize((h - self.pca_mean) @ self.pca_weight, dim=1)

    def pseudo_labels(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return nearest_centroid(self._whitened(self.assignment_encoder(x)), self.centroids)

    @torch.no_grad()
    def before_epoch(self, embed_rows: Callable[[], torch.Tensor]) -> list[nn.Parameter]:
        """Reassign: k-means on the training rows' embeddings, re-seed empty clusters, reset the head."""
        h = embed_rows().float()
        n_clusters = self.centroids.shape[0]
        if h.shape[0] < n_clusters:
            raise InputError(f"deepcluster's {n_clusters} clusters need at least as many training rows, "
                             f"got {h.shape[0]}", "Use fewer clusters (n_clusters) or more rows")
        mean, weight = whitening(h.double().cpu().numpy(), self.pca_weight.shape[1])
        self.pca_mean.copy_(torch.as_tensor(mean))
        self.pca_weight.copy_(torch.as_tensor(weight))
        z = self._whitened(h)
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,)))  # the run's seeded global RNG
        kmeans = KMeans(n_clusters, n_init=1, max_iter=int(self.params["kmeans_iters"]), random_state=seed)
        kmeans.fit(z.double().cpu().numpy())
        centroids = reseed_empty_clusters(z, torch.as_tensor(kmeans.cluster_centers_, dtype=z.dtype, device=z.device))
        self.centroids.copy_(centroids)
        sizes = torch.bincount(nearest_centroid(z, centroids), minlength=n_clusters).to(z.dtype)
        self.class_weight.copy_(torch.where(sizes > 0, h.shape[0] / ((sizes > 0).sum() * sizes.clamp(min=1)), 0.0))
        self.assignment_encoder.load_state_dict(self.encoder.state_dict())
        self.head.reset_parameters()
        return list(self.head.parameters())

    def compute_loss(self, v, x):
        labels = self.pseudo_labels(x)
        ce = F.cross_entropy(self.head(self.encoder(v)), labels, reduction="none")
        loss = (self.class_weight[labels] * ce).mean()
        return loss, {"deepcluster": loss.detach()}
