"""Calibration of a binary classifier's probabilities: temperature scaling and ECE.

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

Expected calibration error of the positive-class probability, with B equal-width bins on
[0, 1] (bin b holds p in [b/B, (b+1)/B), the last bin includes 1):

    ECE = sum_b (n_b / n) * | mean_{i in b} y_i - mean_{i in b} p_i |

(the "class-wise" ECE for the positive label; empty bins contribute 0). Default B = 15
as in Guo et al.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

N_BINS = 15
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


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of the positive-class probabilities p against labels y (formula in the module docstring)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and probabilities must be non-empty and of the same length, got {y.shape}, {p.shape}")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins).astype(np.float64)
    gaps = np.abs(np.bincount(bins, weights=y, minlength=n_bins) - np.bincount(bins, weights=p, minlength=n_bins))
    # sum_b (n_b / n) * |sum_y / n_b - sum_p / n_b| = sum_b |sum_y - sum_p| / n
    return float(gaps.sum() / counts.sum())


def calibration_summary(logits: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Fit T on (logits, y) and report ECE and NLL before (T = 1) and after."""
    temperature = fit_temperature(logits, y)
    z = np.asarray(logits, dtype=np.float64)
    return {"method": "temperature", "temperature": temperature, "n_rows": int(z.size), "n_bins": n_bins,
            "ece_before": expected_calibration_error(y, expit(z), n_bins),
            "ece_after": expected_calibration_error(y, expit(z / temperature), n_bins),
            "nll_before": binary_nll(z, y), "nll_after": binary_nll(z, y, temperature)}
