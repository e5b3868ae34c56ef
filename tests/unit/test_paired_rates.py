"""replicated_paired_rates: the accuracy cost of a change, overall and per group, over training
replicates and test rows. Its point values are sklearn's; simulated with fixed seeds, its
interval covers the true difference about as often as it says, and under no difference it
finds one about 5% of the time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from core.audit.replicated import replicated_paired_rates


def _world(rng: np.random.Generator, n: int):
    groups = pd.DataFrame({"sex": rng.choice(["f", "m"], n, p=[0.4, 0.6])})
    y = rng.integers(0, 2, n)
    # Rows differ in difficulty (shared by every replicate), replicates in training noise.
    difficulty = rng.normal(0, 0.6, n)
    return y, groups, difficulty


def _replicates(rng, y, difficulty, accuracy: float, R: int) -> list[np.ndarray]:
    logit = np.log(accuracy / (1 - accuracy)) - difficulty
    out = []
    for _ in range(R):
        right = rng.random(len(y)) < 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3)))) # a replicate's own shift
        out.append(np.where(right, y, 1 - y))
    return out


def test_point_values_are_sklearns():
    rng = np.random.default_rng(1)
    y, groups, difficulty = _world(rng, 500)
    a, b = _replicates(rng, y, difficulty, 0.8, 3), _replicates(rng, y, difficulty, 0.7, 3)
    out = replicated_paired_rates(y, a, b, groups, n_boot=50)
    expect = np.mean([accuracy_score(y, p) for p in a]) - np.mean([accuracy_score(y, p) for p in b])
    assert np.isclose(out["overall"]["accuracy"]["difference"], expect)
    f = groups["sex"].to_numpy() == "f"
    expect_f = np.mean([balanced_accuracy_score(y[f], p[f]) for p in a]) - \
        np.mean([balanced_accuracy_score(y[f], p[f]) for p in b])
    assert np.isclose(out["groups"]["sex"]["f"]["balanced_accuracy"]["difference"], expect_f)
    assert out["overall"]["accuracy"]["n_replicates"] == [3, 3]


def _simulate(true_a: float, true_b: float, sims: int = 120, n: int = 400, R: int = 3):
    """Each simulation: fresh test rows from the population and fresh trainings of both sides.
    The truth is the population's expected difference, estimated once on a very large sample."""
    rng = np.random.default_rng(7)
    y, groups, difficulty = _world(rng, 200_000)
    big_a = _replicates(rng, y, difficulty, true_a, 40)
    big_b = _replicates(rng, y, difficulty, true_b, 40)
    truth = np.mean([(p == y).mean() for p in big_a]) - np.mean([(p == y).mean() for p in big_b])
    covered, found = 0, 0
    for s in range(sims):
        rows = rng.choice(len(y), n, replace=False)
        a = _replicates(rng, y[rows], difficulty[rows], true_a, R)
        b = _replicates(rng, y[rows], difficulty[rows], true_b, R)
        entry = replicated_paired_rates(y[rows], a, b, groups.iloc[rows].reset_index(drop=True), n_boot=100,
                                        random_state=s)["overall"]["accuracy"]
        covered += entry["ci"][0] <= truth <= entry["ci"][1]
        found += entry["p_value"] < 0.05
    return covered / sims, found / sims


def test_the_interval_covers_the_true_difference():
    coverage, _ = _simulate(0.8, 0.75)
    assert 0.88 <= coverage <= 0.99


def test_no_difference_is_found_about_five_percent_of_the_time():
    _, false_positive = _simulate(0.75, 0.75)
    assert false_positive <= 0.10
