"""Per-group k-nearest-neighbour accuracy of the label in a representation, on bounded queries.

Exact kNN over all n test rows costs O(n^2 d) (every row against every other): on Adult x4's
36,178 test rows it was the audit stage's largest quadratic part (issue 22). Here every row
still serves as a neighbour (the folds' training rows are all rows, so the geometry judged is
the whole representation's), but only a stratified subsample of at most `max_queries` rows is
scored: O(m n d), linear in n for a fixed m. Up to `max_queries` rows (Adult's 9,045 test rows
among them) every row is scored and the result is exactly the full computation.

Scoring a uniform subsample within each group is an unbiased estimate of the full value: the
full value is a finite population mean of each row's 0/1 correctness, and the subsample draws
m_g of the group's N_g rows without replacement. Its sampling error is stated beside it
(`accuracy_interval`) and tested against the full computation (tests/unit/test_scale_knn.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from core.audit.representation import _as_groups, _as_matrix, stratified_subsample
from core.errors import InputError

#: Rows scored by `knn_accuracy_by_group` (each against every row): its cost is m x n, not n^2.
KNN_MAX_QUERIES = 10_000

#: Confidence of the subsample's interval around each accuracy.
KNN_CONFIDENCE = 0.95


def accuracy_interval(correct: int, scored: int, population: int,
                      confidence: float = KNN_CONFIDENCE) -> list[float] | None:
    """Interval of a population's mean correctness from `scored` of its `population` rows, drawn
    without replacement: a Wilson interval on the effective sample size

        n_eff = m (N - 1) / (N - m)      (m scored of N; the finite-population correction)
        p = correct / m,  z = Phi^-1((1 + confidence) / 2)
        (p + z^2 / 2n_eff +- z sqrt(p(1 - p) / n_eff + z^2 / 4n_eff^2)) / (1 + z^2 / n_eff)

    None when every row was scored (the value is exact, no sampling error) or none was."""
    if scored == 0 or scored >= population:
        return None
    n_eff = scored * (population - 1) / (population - scored)
    p, z = correct / scored, float(norm.ppf((1 + confidence) / 2))
    centre = p + z * z / (2 * n_eff)
    half = z * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff))
    scale = 1 + z * z / n_eff
    return [float(max(0.0, (centre - half) / scale)), float(min(1.0, (centre + half) / scale))]


def _overall_interval(records: list[dict], n: int, confidence: float) -> list[float] | None:
    """Normal interval of the group-size-weighted accuracy, sum_g (N_g / n) p_g, from each
    group's without-replacement variance (N_g / n)^2 p_g (1 - p_g) / m_g (N_g - m_g) / (N_g - 1)."""
    if all(r["n_scored"] >= r["n"] for r in records):
        return None
    overall = sum(r["n"] / n * r["accuracy"] for r in records)
    variance = sum((r["n"] / n) ** 2 * r["accuracy"] * (1 - r["accuracy"]) / r["n_scored"]
                   * (r["n"] - r["n_scored"]) / max(r["n"] - 1, 1) for r in records if r["n_scored"])
    half = float(norm.ppf((1 + confidence) / 2)) * np.sqrt(variance)
    return [float(max(0.0, overall - half)), float(min(1.0, overall + half))]


def knn_accuracy_by_group(
    embeddings: Any,
    labels: Any,
    groups: Any,
    *,
    k: int = 10,
    n_splits: int = 5,
    random_state: int = 0,
    max_queries: int = KNN_MAX_QUERIES,
    sample_state: int | None = None,
    confidence: float = KNN_CONFIDENCE,
) -> dict[str, Any]:
    """Cross-validated k-nearest-neighbour accuracy of the label, overall and per group.

    Each scored row's label is predicted by a majority vote of its k nearest neighbours
    (Euclidean, on the embeddings as they are: the encoder's geometry is what is being judged)
    among the training folds of `n_splits` shuffled folds stratified by label x group
    (`random_state`), over all rows. Accuracy_g = mean over scored rows of group g of
    1[pred == label]; a low value means the representation places that group's positives and
    negatives close together. Strata too small for the folds fall back to the label alone.

    Scored rows: all of them up to `max_queries`, else a subsample stratified by group
    (`stratified_subsample`, seeded by `sample_state`, default `random_state`); overall is then
    the group-size-weighted mean sum_g (N_g / n) accuracy_g, each with its sampling interval
    (`accuracy_interval`, None when every row of it was scored).

    Returns {"overall", "interval", "k", "n_splits", "n", "n_scored", "sample_seed",
    "groups": [{"group", "n", "n_scored", "accuracy", "interval"}]}.
    """
    x = _as_matrix(embeddings, "embeddings").astype(np.float32)
    n = x.shape[0]
    y = np.asarray(labels)
    if y.shape != (n,):
        raise InputError(f"labels must have shape ({n},), got {y.shape}", "one label per row")
    labels_of_groups = _as_groups(groups, "groups", n)
    if n < n_splits or n_splits < 2:
        raise InputError(
            f"kNN accuracy needs at least n_splits={n_splits} >= 2 rows, got {n}",
            "embed more rows",
        )
    seed = random_state if sample_state is None else sample_state
    scored = np.zeros(n, dtype=bool)
    scored[stratified_subsample(labels_of_groups, max_queries, random_state=seed)] = True
    # Stratify by label x group so every fold holds each group's positives and negatives;
    # fall back to the label alone, then to plain folds, when strata are too small.
    strata = pd.Series(y.astype(str)).str.cat(pd.Series(labels_of_groups), sep="|").to_numpy()
    if np.unique(strata, return_counts=True)[1].min() < n_splits:
        strata = y.astype(str)
    if np.unique(strata, return_counts=True)[1].min() < n_splits:
        splits = KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(x)
    else:
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        splits = folds.split(x, strata)
    correct = np.zeros(n, dtype=bool)
    for train, test in splits:
        test = test[scored[test]]
        if len(test) == 0:
            continue
        model = KNeighborsClassifier(n_neighbors=int(min(k, len(train))))
        model.fit(x[train], y[train])
        correct[test] = model.predict(x[test]) == y[test]
    records = []
    for group in np.unique(labels_of_groups):
        rows = labels_of_groups == group
        hits, m, size = int(correct[rows & scored].sum()), int((rows & scored).sum()), int(rows.sum())
        records.append({"group": str(group), "n": size, "n_scored": m,
                        "accuracy": float(hits / m) if m else None,
                        "interval": accuracy_interval(hits, m, size, confidence)})
    everything = bool(scored.all())
    overall = float(correct.mean()) if everything else float(
        sum(r["n"] / n * r["accuracy"] for r in records if r["accuracy"] is not None))
    return {"overall": overall, "interval": None if everything else _overall_interval(records, n, confidence),
            "k": k, "n_splits": n_splits, "n": n, "n_scored": int(scored.sum()), "sample_seed": seed,
            "groups": records}
