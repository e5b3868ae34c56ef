"""Issue 22: the audit's bounded subsamples (kNN queries, leakage probes) against the full computation.

Each subsample is tested where both it and the exact full computation are cheap: the kNN
accuracy's sampling interval must cover the full-data value in a seeded simulation, and the
subsampled probe must land next to the probe of every row.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.audit.knn import accuracy_interval, knn_accuracy_by_group
from core.audit.representation import attribute_leakage


def _knn_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two groups of 4:1, labels readable from the embedding for the big group far better
    than for the small one, so the groups' accuracies (and a wrong weighting) differ."""
    rng = np.random.default_rng(seed)
    groups = np.where(rng.random(n) < 0.8, "big", "small").astype(object)
    labels = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, 6))
    x[:, 0] += np.where(groups == "big", 2.5, 0.4) * labels
    return x, labels, groups


def test_knn_scores_every_row_up_to_max_queries_and_says_no_sampling_error():
    x, labels, groups = _knn_table(600, seed=1)
    result = knn_accuracy_by_group(x, labels, groups, max_queries=600)
    assert result["n_scored"] == result["n"] == 600
    assert result["interval"] is None and all(r["interval"] is None for r in result["groups"])


def test_knn_subsample_interval_covers_the_full_data_value():
    """Folds fixed (random_state), 40 query subsamples of 500 of 2,500 rows (sample_state):
    each 95% interval (overall and per group) covers the full computation's value in at least
    85% of draws, and the subsample's mean error is small."""
    x, labels, groups = _knn_table(2_500, seed=2)
    full = knn_accuracy_by_group(x, labels, groups, random_state=0, max_queries=2_500)
    full_groups = {r["group"]: r["accuracy"] for r in full["groups"]}
    assert full_groups["big"] - full_groups["small"] > 0.2  # the weighting matters
    covered, errors = [], []
    for draw in range(40):
        sub = knn_accuracy_by_group(x, labels, groups, random_state=0, max_queries=500, sample_state=draw)
        assert sub["n_scored"] == 500 and sub["sample_seed"] == draw
        low, high = sub["interval"]
        covered.append(low <= full["overall"] <= high)
        errors.append(sub["overall"] - full["overall"])
        for record in sub["groups"]:
            low, high = record["interval"]
            covered.append(low <= full_groups[record["group"]] <= high)
    assert np.mean(covered) >= 0.85
    assert abs(np.mean(errors)) < 0.01  # unbiased: the error averages out over draws


def test_accuracy_interval_narrows_to_nothing_as_the_whole_population_is_scored():
    wide = accuracy_interval(80, 100, 10_000)
    narrow = accuracy_interval(800, 1_000, 1_001)
    assert wide[0] < 0.8 < wide[1] and narrow[0] < 0.8 < narrow[1]
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5
    assert accuracy_interval(80, 100, 100) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_subsampled_leakage_probe_is_close_to_the_probe_of_every_row(seed):
    """A planted partial leak on 6,000 rows: the probe of a 2,000-row stratified subsample is
    within 0.03 balanced accuracy of the probe of all rows, and says it was subsampled."""
    rng = np.random.default_rng(seed)
    n = 6_000
    attribute = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]).astype(object)
    x = rng.normal(size=(n, 8))
    x[:, 0] += 0.8 * (attribute == "b") - 0.8 * (attribute == "c")
    full = attribute_leakage(x, attribute, random_state=0, max_rows=n)
    sub = attribute_leakage(x, attribute, random_state=0, max_rows=2_000)
    assert full["sample_seed"] is None and full["n"] == full["n_total"] == n
    assert sub["sample_seed"] == 0 and sub["n"] == 2_000 and sub["n_total"] == n
    assert 0.45 < full["balanced_accuracy"] < 0.8  # partly readable: room to be wrong both ways
    assert abs(sub["balanced_accuracy"] - full["balanced_accuracy"]) < 0.03
    assert sub["interval"][0] <= full["balanced_accuracy"] <= sub["interval"][1]


def test_the_report_states_each_subsample_its_size_and_seed():
    from core.run.assemble import subsample_summary  # noqa: PLC0415 - the run floor, for this test only

    small, large = subsample_summary(9_045, 0), subsample_summary(36_178, 7)
    assert not any(entry["subsampled"] for entry in small.values())
    assert small["knn_scored_rows"]["rows"] == 9_045
    assert large["knn_scored_rows"] == {**large["knn_scored_rows"], "rows": 10_000, "of": 36_178, "seed": 7,
                                        "subsampled": True}
    assert large["umap_rows"]["rows"] == 20_000 and large["leakage_probe_rows"]["rows"] == 10_000
