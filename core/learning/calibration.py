"""Calibration of a binary classifier's probabilities: temperature scaling and the ECE.

Temperature scaling (Guo et al., 2017) divides the logit z of the positive label by one
scalar T > 0 fitted on held-out rows (the validation rows):

    p_T(x) = sigmoid(z(x) / T),   T = argmin_T  NLL(T),
    NLL(T) = mean_i [ softplus(z_i / T) - y_i * z_i / T ]      (binary cross-entropy)

NLL is convex in beta = 1 / T, so a bounded 1-d search over log(beta) finds the optimum.
Temperature scaling is chosen over Platt scaling (sigmoid(a * z + b)) because it cannot
move the decision boundary: sign(z / T) = sign(z), so predictions at the 0.5 threshold, ROC
AUC and every fairness metric computed on predicted labels are identical before and after
calibration; only the confidence changes. Platt's intercept b would shift predictions and
mix a threshold change into the comparison of fine-tuning strategies.

Expected calibration error of the positive-class probability p, with B = ECE_BINS = 10
equal-width bins on [0, 1] (bin b holds p in [b/B, (b+1)/B), the last bin includes 1):

    ECE = sum_b (n_b / n) * | mean_{i in b} y_i - mean_{i in b} p_i |
        = (1 / n) sum_b | sum_{i in b} (y_i - p_i) |

(the "class-wise" ECE for the positive label; empty bins contribute 0). This is the report's
one ECE: the audit (core.audit) computes its per-group calibration error and that error's
bootstrap replicates with these functions, so temperature scaling's before/after and the
fairness tables use the same bins.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

#: Equal-width bins of the expected calibration error: the one bin count of every ECE in a
#: report (the audit's per group and overall, and temperature scaling's before/after).
ECE_BINS = 10

# beta = 1/T is searched in [1e-3, 1e3]: T from 0.001 to 1000 covers any model worth calibrating.
_LOG_BETA_BOUNDS = (float(np.log(1e-3)), float(np.log(1e3)))


def binary_nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """mean[softplus(z / T) - y * z / T] in float64 (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the binary NLL of sigmoid(logits / T) against y (0/1).

    Returns 1.0 when no temperature lowers the NLL (e.g. constant logits), so calibration
    never makes the validation NLL worse.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if z.shape != y.shape or z.size == 0:
        raise ValueError(f"logits and labels must be non-empty and of the same length, got {z.shape}, {y.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or infinite values")

    def objective(log_beta: float) -> float:
        return binary_nll(z * np.exp(log_beta), y)

    result = minimize_scalar(objective, bounds=_LOG_BETA_BOUNDS, method="bounded",
                             options={"xatol": 1e-7, "maxiter": 500})
    temperature = float(np.exp(-result.x))
    return temperature if binary_nll(z, y, temperature) < binary_nll(z, y) else 1.0


# ----------------------------------------------------------------------------- ECE


def calibration_bins(y_score: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Bin index of each score: ``min(floor(n_bins * s), n_bins - 1)``; bins are
    ``[0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]`` for 10 bins."""
    s = np.asarray(y_score, dtype=np.float64)
    return np.minimum(np.floor(s * n_bins), n_bins - 1).astype(np.int64)


def calibration_residuals(y_true: np.ndarray, y_score: np.ndarray,
                          n_bins: int = ECE_BINS) -> np.ndarray:
    """``R[i, b] = (y_i - s_i) [bin_i = b]``, shape (n, n_bins)."""
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(y_score, dtype=np.float64)
    residual = np.zeros((len(y), n_bins))
    residual[np.arange(len(y)), calibration_bins(s, n_bins)] = y - s
    return residual


def ece_from_residuals(weights: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``sum_b |(W @ R)[:, b]| / sum_i W[:, i]`` for weights (B, n); NaN where W sums to 0."""
    w = np.asarray(weights, dtype=np.float64)
    per_bin = w @ residual
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, np.abs(per_bin).sum(axis=1) / total, np.nan)


def weighted_calibration_error(y_true: np.ndarray, y_score: np.ndarray,
                               weights: np.ndarray | None = None,
                               n_bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error with equal-width bins, for many weight vectors at once.

    ``ECE = sum_b (n_b / n) |mean_{i in b} y_i - mean_{i in b} s_i|
          = (1 / n) sum_b |sum_{i in b} (y_i - s_i)|``
    over the bins of `calibration_bins` (empty bins contribute 0): the "class-wise" ECE of
    the positive label's probability. With weights, n_b and the sums are weighted, so
    integer weights give the ECE of the repeated-row data set; the bin sums of all weight
    vectors are one matrix product ``W @ R`` with ``R[i, b] = (y_i - s_i) [bin_i = b]``.

    `weights` is None (unit weights), shape (n,) or (B, n). Returns shape (B,) (B = 1 for
    None or 1-D weights); NaN where a weight vector sums to 0.
    """
    w = np.ones((1, len(y_true))) if weights is None else np.atleast_2d(
        np.asarray(weights, dtype=np.float64))
    return ece_from_residuals(w, calibration_residuals(y_true, y_score, n_bins))


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """The ECE (`weighted_calibration_error`, unit weights) of one set of rows, as a float.

    Raises ValueError when the labels and scores are empty or of different lengths.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape or y.size == 0:
        raise ValueError("labels and probabilities must be non-empty and of the same length, "
                         f"got {y.shape}, {s.shape}")
    return float(weighted_calibration_error(y, s, None, n_bins)[0])


def calibration_summary(logits: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> dict:
    """Fit T on (logits, y) and report ECE and NLL before (T = 1) and after."""
    temperature = fit_temperature(logits, y)
    z = np.asarray(logits, dtype=np.float64)
    return {"method": "temperature", "temperature": temperature, "n_rows": int(z.size), "n_bins": n_bins,
            "ece_before": expected_calibration_error(y, expit(z), n_bins),
            "ece_after": expected_calibration_error(y, expit(z / temperature), n_bins),
            "nll_before": binary_nll(z, y), "nll_after": binary_nll(z, y, temperature)}
