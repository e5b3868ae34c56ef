"""Do LIME and SHAP tell the same story about one decision?

Both attribute the model's probability of the positive label to the same readable columns, but
on different scales (a LIME weight is the local surrogate's coefficient of "being in this
quartile / category", a SHAP value a share of f(row) - base value), so they are compared by rank
and sign, never by size:

- top features of each: `lime_tabular.top_features` (the `k` = 5 largest |attributions| that are
  at least 10% of the largest; smaller ones are noise-level for reading), the same definition as
  LIME's stability check;
- U = the union of both top sets; with r_L and r_S the ranks of |LIME| and |SHAP| over the
  features of U (average ranks for ties), the Spearman rank correlation is

      rho = cov(r_L, r_S) / (sd(r_L) sd(r_S))     (Pearson's correlation of the ranks)

  reported as None when U has fewer than 2 features or either ranking is constant;
- disagreements, over U: "sign" when both are non-zero and their signs differ (one pushes up
  where the other pushes down), "top_lime_only" / "top_shap_only" when the feature is in one's
  top set and not the other's.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from core.errors import InputError
from core.explain.lime_tabular import MIN_SHARE, TOP_K, top_features

#: The explainers one may ask for (`--explainer`, the Explain page): each alone, or both side by side.
LIME, SHAP, BOTH = "lime", "shap", "both"
CHOICES = (LIME, SHAP, BOTH)


def explainers_of(choice: str) -> tuple[str, ...]:
    """"lime" -> ("lime",), "shap" -> ("shap",), "both" -> ("lime", "shap"); anything else: InputError."""
    if choice not in CHOICES:
        raise InputError(f"Unknown explainer '{choice}'", f"Use one of: {', '.join(CHOICES)}")
    return (LIME, SHAP) if choice == BOTH else (choice,)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's correlation of the average ranks of `a` and `b` (None if undefined)."""
    if len(a) < 2:
        return None
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    scale = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / scale) if scale > 0 else None


def agreement(features: list[str], lime: np.ndarray, shap: np.ndarray, *, k: int = TOP_K,
              min_share: float = MIN_SHARE) -> dict:
    """Rank agreement of two attributions of one decision over the same `features` (docstring).

    Returns {"k", "features" (U, by largest |SHAP| then |LIME|), "spearman", "top_lime",
    "top_shap", "disagreements": [{"feature", "reason", "lime", "shap"}]}."""
    lime, shap = np.asarray(lime, dtype=np.float64), np.asarray(shap, dtype=np.float64)
    top_lime, top_shap = top_features(lime, k, min_share), top_features(shap, k, min_share)
    union = sorted(top_lime | top_shap, key=lambda j: (-abs(shap[j]), -abs(lime[j]), j))
    disagreements = []
    for j in union:
        if lime[j] != 0 and shap[j] != 0 and np.sign(lime[j]) != np.sign(shap[j]):
            reason = "sign"
        elif j in top_lime and j not in top_shap:
            reason = "top_lime_only"
        elif j in top_shap and j not in top_lime:
            reason = "top_shap_only"
        else:
            continue
        disagreements.append({"feature": features[j], "reason": reason, "lime": float(lime[j]),
                              "shap": float(shap[j])})
    index = np.array(union, dtype=np.int64)
    return {"k": k, "features": [features[j] for j in union],
            "spearman": spearman(np.abs(lime[index]), np.abs(shap[index])),
            "top_lime": [features[j] for j in sorted(top_lime, key=lambda j: -abs(lime[j]))],
            "top_shap": [features[j] for j in sorted(top_shap, key=lambda j: -abs(shap[j]))],
            "disagreements": disagreements}


def explanations_agreement(lime_weights: list[dict], shap_values: list[dict], *, k: int = TOP_K) -> dict:
    """`agreement` of a LIME explanation's "weights" and a SHAP explanation's "values" (their
    `to_dict()` lists, in any order), aligned by feature."""
    features = [w["feature"] for w in lime_weights]
    by_feature = {v["feature"]: v["value"] for v in shap_values}
    return agreement(features, np.array([w["weight"] for w in lime_weights]),
                     np.array([by_feature.get(f, 0.0) for f in features]), k=k)
