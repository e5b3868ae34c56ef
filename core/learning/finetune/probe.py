"""The logistic head of `linear` and `bn-stats`, fitted to convergence on frozen embeddings.

With the encoder frozen in eval mode the embeddings h_i = encoder(x_i) are fixed, and the
head is logistic regression — a convex problem with one optimum. Fitting it with the same
mini-batch AdamW loop as the other strategies ties the result to a learning-rate and epoch
budget (on Adult with 10% of labels, lr 1e-3 for 100 epochs was still far from the optimum
on a random encoder's features); the usual linear-evaluation protocol solves it instead:

    u_i = (h_i - mean) / std                   standardised on the training rows (std 0 -> 1),
                                               so the penalty is the same for any embedding scale
    (v, c) = argmin  mean_i BCE_pw(v . u_i + c, y_i) + (l2 / 2) ||v||^2
    BCE_pw(z, y) = -(pw * y * log sigmoid(z) + (1 - y) * log(1 - sigmoid(z)))

solved in float64 with full-batch L-BFGS (strong-Wolfe line search) for each l2 in L2_GRID,
from largest to smallest, the first from v = 0, c = 0 and each next one warm-started from the
previous optimum (a convex problem: same optimum, about half the iterations); the l2 with the lowest unpenalised validation loss is kept (ties: the
larger l2). The standardisation is folded back into the head:
    w = v / std,   b = c - sum_j v_j mean_j / std_j,   so head(h) = w . h + b.
No randomness is involved: the fit is the same on every run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.learning.models import ClassifierHead

L2_GRID: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
MAX_ITER = 1000


def fit_probe(head: ClassifierHead, H_train: torch.Tensor, y_train: torch.Tensor, H_val: torch.Tensor,
              y_val: torch.Tensor, pos_weight: float, l2: float | None = None) -> tuple[list[dict], dict]:
    """Fit `head` in place (formula in the module docstring). Returns one record per l2 tried
    ({"l2", "train_loss", "val_loss", "iterations", "selected"}) and a summary."""
    H = H_train.double()
    mean = H.mean(0)
    std = H.std(0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    U, U_val = (H - mean) / std, (H_val.double() - mean) / std
    y, y_v = y_train.double(), y_val.double()
    pw = torch.tensor(pos_weight, dtype=torch.float64)
    records, best = [], None
    v = torch.zeros(U.shape[1], dtype=torch.float64)
    c = torch.zeros((), dtype=torch.float64)
    for penalty in (L2_GRID if l2 is None else (l2,)):
        v, c, iterations = _solve(U, y, pw, penalty, v, c)  # warm start from the previous (larger) l2's optimum
        with torch.no_grad():
            train_loss = float(F.binary_cross_entropy_with_logits(U @ v + c, y, pos_weight=pw))
            val_loss = float(F.binary_cross_entropy_with_logits(U_val @ v + c, y_v, pos_weight=pw))
        records.append({"l2": penalty, "train_loss": train_loss, "val_loss": val_loss, "iterations": iterations,
                        "selected": False})
        if best is None or val_loss < best[0]:
            best = (val_loss, len(records) - 1, v, c)
    _, index, v, c = best
    records[index]["selected"] = True
    with torch.no_grad():
        w = v / std
        b = c - (v * mean / std).sum()
        head.linear.weight.copy_(w.to(head.linear.weight.dtype).unsqueeze(0))
        head.linear.bias.copy_(b.to(head.linear.bias.dtype).reshape(1))
    return records, {"solver": "lbfgs", "l2": records[index]["l2"], "val_loss": records[index]["val_loss"],
                     "grid": [r["l2"] for r in records]}


def _solve(U: torch.Tensor, y: torch.Tensor, pw: torch.Tensor, l2: float, v0: torch.Tensor,
           c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    v = v0.clone().requires_grad_(True)
    c = c0.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([v, c], lr=1.0, max_iter=MAX_ITER, max_eval=2 * MAX_ITER, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(U @ v + c, y, pos_weight=pw) + 0.5 * l2 * (v @ v)
        loss.backward()
        return loss

    optimizer.step(closure)
    iterations = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
    return v.detach(), c.detach(), iterations
