"""Is a gap larger than chance? A permutation test of the max - min gap itself.

The groups at a gap's extremes are the two most extreme of G, so an interval of their
difference is optimistic: with ten groups of equal rates some pair always looks apart. This
test asks the question that selection cannot bias: is the observed max - min over the G
groups larger than it would be if group membership did not matter, with groups of exactly
these sizes? Under that null the group labels are exchangeable among the rows, so:

* selection-rate and accuracy gaps: the labels are permuted over all rows of the groups;
* TPR gaps (FPR gaps): the labels are permuted among the truly positive (negative) rows
  only, which keeps every group's number of positives (negatives), the denominator;
* the equalized-odds gap, max(TPR gap, FPR gap): both at once, within each class.

A permutation's group counts of each cell follow a multivariate hypergeometric law given the
groups' sizes and the cells' totals, drawn group after group as a chain of univariate
hypergeometric draws, vectorised over the permutations (no rows are shuffled). The p-value
is ``(1 + #{permuted gap >= observed gap}) / (1 + n_perm)``. Only the groups that enter the
point gap (`used`: the audit's headline groups) take part. docs/metrics.md has the
simulation checks.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from core.audit.metrics import count_metrics

#: The gaps tested (max - min of one rate, or the larger of the TPR and FPR gaps).
TESTED_GAPS = ("demographic_parity_difference", "equalized_odds_difference",
               "equal_opportunity_difference", "fpr_difference", "accuracy_difference")
#: A permuted gap counts as "as large" when within this of the observed one (float ties).
TIE = 1e-12


def permuted_cells(cells: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """(n_perm, G, C) counts when the group labels of the rows counted in `cells` (G, C) are
    permuted: each group's sizes stay, each cell's total stays."""
    cells = np.asarray(cells, dtype=np.int64)
    G, C = cells.shape
    left = np.broadcast_to(cells.sum(axis=0), (n_perm, C)).copy()    # rows of each cell not yet dealt
    out = np.zeros((n_perm, G, C), dtype=np.int64)
    for g in range(G - 1):
        need = np.full(n_perm, cells[g].sum(), dtype=np.int64)
        for c in range(C - 1):
            others = left[:, c + 1:].sum(axis=1)
            take = rng.hypergeometric(left[:, c], others, need) if need.any() else np.zeros_like(need)
            out[:, g, c] = take
            left[:, c] -= take
            need -= take
        out[:, g, C - 1] = need
        left[:, C - 1] -= need
    out[:, G - 1] = left
    return out


def _spread(rate: np.ndarray) -> np.ndarray:
    return np.ptp(rate, axis=-1)


def _null_gaps(counts: np.ndarray, used: Mapping[str, np.ndarray], n_perm: int,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Permutation replicates (n_perm,) of every tested gap over the used groups."""
    tp, fp, tn, fn = (counts[:, i] for i in range(4))
    out: dict[str, np.ndarray] = {}
    sel = used["selection_rate"]
    # all rows of the groups: cells (selected, not) and (correct, not) are permuted together
    whole = permuted_cells(counts[sel], n_perm, rng)
    m = count_metrics(whole)
    out["demographic_parity_difference"] = _spread(m["selection_rate"])
    acc = used["accuracy"]
    out["accuracy_difference"] = (_spread(m["accuracy"]) if np.array_equal(acc, sel)
                                  else _spread(count_metrics(permuted_cells(counts[acc], n_perm, rng))["accuracy"]))
    tpr, fpr = used["tpr"], used["fpr"]
    pos = permuted_cells(np.column_stack([tp, fn])[tpr], n_perm, rng)
    neg = permuted_cells(np.column_stack([fp, tn])[fpr], n_perm, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["equal_opportunity_difference"] = _spread(pos[..., 0] / pos.sum(axis=-1))
        out["fpr_difference"] = _spread(neg[..., 0] / neg.sum(axis=-1))
    out["equalized_odds_difference"] = np.maximum(out["equal_opportunity_difference"], out["fpr_difference"])
    return out


def chance_p_values(counts: np.ndarray, used: Mapping[str, np.ndarray], observed: Mapping[str, float],
                    n_perm: int, rng: np.random.Generator) -> dict[str, float | None]:
    """Permutation p-value of each tested gap: how often a gap at least as large as the
    `observed` one arises when group membership does not matter (module docstring).

    `counts` (G, 4) are the confusion counts [TP, FP, TN, FN]; `used` the groups in each gap
    (by metric: selection_rate, accuracy, tpr, fpr); None where the gap is undefined (fewer
    than two used groups) or `n_perm` is 0."""
    counts = np.asarray(counts, dtype=np.int64)
    enough = {m: int(np.sum(used[m])) >= 2 for m in ("selection_rate", "accuracy", "tpr", "fpr")}
    needs = {"demographic_parity_difference": ("selection_rate",), "accuracy_difference": ("accuracy",),
             "equal_opportunity_difference": ("tpr",), "fpr_difference": ("fpr",),
             "equalized_odds_difference": ("tpr", "fpr")}
    if n_perm == 0 or not any(enough.values()):
        return {k: None for k in TESTED_GAPS}
    safe = {m: (u if enough[m] else np.ones_like(u)) for m, u in used.items()}
    null = _null_gaps(counts, safe, n_perm, rng)
    result: dict[str, float | None] = {}
    for k in TESTED_GAPS:
        value = observed.get(k)
        if value is None or np.isnan(value) or not all(enough[m] for m in needs[k]):
            result[k] = None
            continue
        result[k] = float((1 + np.sum(null[k] >= value - TIE)) / (1 + n_perm))
    return result


def chance_entry(p_values: Mapping[str, float | None], confidence: float) -> dict[str, dict]:
    """The gaps entry's `chance`: per tested gap {"p_value", "p_adjusted", "family",
    "family_size", "differ"}; until core.audit.multiplicity sets the family, `p_adjusted` is
    the p-value itself and `differ` is ``p_value < 1 - confidence``."""
    alpha = 1 - confidence
    return {k: {"p_value": p, "p_adjusted": p, "family": None, "family_size": None,
                "differ": None if p is None else bool(p < alpha)}
            for k, p in p_values.items()}
