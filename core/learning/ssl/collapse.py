"""Detect representation collapse (Jing et al. 2022; the SimSiam paper's std check).

u_i = h_i / |h_i| (L2-normalised embeddings, n rows, k dims)
embedding_std = 1/k sum_j std_i(u_ij)
Spread-out embeddings give about 1/sqrt(k) (the value for directions uniform on the
sphere); a collapsed encoder (every row mapped to the same direction) gives 0.
collapsed  <=>  embedding_std * sqrt(k) < COLLAPSE_THRESHOLD   (0.05, i.e. under 5% of the
uniform-sphere value). The ratio makes the rule independent of the embedding width.
An all-zero embedding (dead ReLUs) counts as collapsed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

COLLAPSE_THRESHOLD = 0.05


def collapse_report(embeddings: torch.Tensor, threshold: float = COLLAPSE_THRESHOLD) -> dict:
    """{"embedding_std", "relative_std", "threshold", "collapsed"} for (n, k) embeddings."""
    h = embeddings.detach().float()
    n, k = h.shape
    if n < 2:
        raise ValueError("collapse check needs at least 2 rows")
    norms = h.norm(dim=1)
    u = F.normalize(h, dim=1)
    std = float(u.std(dim=0).mean())
    relative = std * math.sqrt(k)
    dead = bool((norms < 1e-12).float().mean() > 0.5)
    return {"embedding_std": std, "relative_std": relative, "threshold": threshold,
            "collapsed": bool(relative < threshold or dead or not math.isfinite(std))}
