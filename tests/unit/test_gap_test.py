"""The permutation test of a gap (core.audit.gap_test): "the groups differ" at most 5% of the
time when they do not, at any number of groups, and its power against a planted gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.audit.fairness import audit_fairness
from core.audit.gap_test import chance_p_values, permuted_cells
from core.audit.metrics import gap_values, headline_groups
from core.audit.multiplicity import holm

STUDIES, N_PERM, HEADLINE = 400, 400, ("demographic_parity_difference", "equalized_odds_difference")


def simulated_counts(rng: np.random.Generator, sizes: np.ndarray, tpr: np.ndarray, fpr: np.ndarray,
                     base_rate: float = 0.3) -> np.ndarray:
    """Confusion counts (G, 4) of groups of `sizes` rows with these true TPR and FPR."""
    pos = rng.binomial(sizes, base_rate)
    tp, fp = rng.binomial(pos, tpr), rng.binomial(sizes - pos, fpr)
    return np.column_stack([tp, fp, sizes - pos - fp, pos - tp])


def says_differ(rng: np.random.Generator, counts: np.ndarray) -> bool:
    """The report's verdict: a headline gap differs after Holm over the two headline tests."""
    used = headline_groups(counts, min_group_size=30)
    observed = {k: float(v) for k, v in gap_values(counts, used, None).items()}
    p = chance_p_values(counts, used, observed, N_PERM, rng)
    adjusted = holm([p[k] for k in HEADLINE])
    return any(a is not None and a < 0.05 for a in adjusted)


@pytest.mark.parametrize("n_groups", [2, 5, 10])
def test_groups_of_equal_rates_are_said_to_differ_at_most_5_percent(n_groups):
    rng = np.random.default_rng(n_groups)
    sizes = rng.integers(60, 400, n_groups)
    said = sum(says_differ(rng, simulated_counts(rng, sizes, np.full(n_groups, 0.6), np.full(n_groups, 0.2)))
               for _ in range(STUDIES))
    assert said / STUDIES <= 0.05, said / STUDIES


def test_a_planted_gap_is_found():
    rng = np.random.default_rng(11)
    sizes = np.full(5, 200)
    tpr = np.array([0.6, 0.6, 0.6, 0.6, 0.85])
    said = sum(says_differ(rng, simulated_counts(rng, sizes, tpr, np.full(5, 0.2))) for _ in range(STUDIES))
    assert said / STUDIES >= 0.75, said / STUDIES   # measured: docs/metrics.md


def test_permutations_keep_group_sizes_and_cell_totals():
    rng = np.random.default_rng(0)
    cells = np.array([[5, 3, 10, 2], [0, 0, 7, 1], [9, 9, 9, 9]])
    drawn = permuted_cells(cells, 500, rng)
    assert (drawn.sum(axis=2) == cells.sum(axis=1)).all() and (drawn.sum(axis=1) == cells.sum(axis=0)).all()
    assert (drawn >= 0).all() and len({tuple(d.ravel()) for d in drawn}) > 50


def test_audit_reports_the_chance_test_and_tells_equal_from_unequal_groups():
    rng = np.random.default_rng(1)
    n = 2000
    group = rng.choice(["a", "b"], n)
    y = rng.integers(0, 2, n)
    fair = (rng.random(n) < 0.5).astype(int)
    unfair = (rng.random(n) < np.where(group == "a", 0.3, 0.6)).astype(int)
    frame = pd.DataFrame({"g": group})
    far = audit_fairness(y, unfair, None, frame, n_boot=200)["gaps"]["g"]["chance"]
    assert far["demographic_parity_difference"]["p_value"] < 0.01
    assert far["demographic_parity_difference"]["differ"] is True
    same = audit_fairness(y, fair, None, frame, n_boot=200)["gaps"]["g"]["chance"]
    assert set(same) >= set(HEADLINE)
    assert audit_fairness(y, fair, None, frame, n_boot=0)["gaps"]["g"]["chance"]["equalized_odds_difference"][
        "p_value"] is None
