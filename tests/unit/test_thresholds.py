"""Threshold what-ifs: fitted (ThresholdOptimizer) and manual per-group thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.audit.fairness import audit_fairness
from core.audit.thresholds import apply_thresholds, evaluate_thresholds, optimize_thresholds
from core.errors import InputError


def _scored_rows(n: int, seed: int):
    """Two groups with different base rates and a score that favours group A."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(["A", "B"], size=n, p=[0.7, 0.3]).astype(object)
    y = (rng.random(n) < np.where(groups == "A", 0.4, 0.2)).astype(np.int64)
    logit = 3.0 * (y - 0.5) + np.where(groups == "A", 0.3, -0.5) + rng.normal(size=n)
    return 1.0 / (1.0 + np.exp(-logit)), y, groups


def test_demographic_parity_thresholds_close_the_gap_on_held_out_rows():
    # Fit on 20,000 rows, evaluate on 20,000 others from the same distribution. A selection-
    # rate gap between groups of ~6,000 and ~14,000 rows has a standard error of ~0.008 per
    # sample; fitting and evaluation noise together ~0.011, so 0.03 is about 3 standard errors.
    fit_on, evaluate_on = _scored_rows(20_000, 1), _scored_rows(20_000, 2)
    result = optimize_thresholds("demographic_parity", fit_on=fit_on, evaluate_on=evaluate_on)
    assert result["baseline"]["gaps"]["demographic_parity_difference"] > 0.15
    assert result["gaps"]["demographic_parity_difference"] < 0.03
    assert result["expected"]["gaps"]["demographic_parity_difference"] < 0.03
    assert result["evaluated_on"] == "evaluate_on rows" and result["n_fit"] == 20_000
    assert result["accuracy_cost"] == result["accuracy"] - result["baseline"]["accuracy"]
    assert result["y_pred"].shape == (20_000,)
    assert {r["group"] for r in result["groups"]} == {"A", "B"}


def test_equalized_odds_is_randomised_reproducibly_and_closes_both_gaps():
    # TPR is estimated on ~1,200 positives of group B: standard error ~0.014 per sample,
    # ~0.02 for fit and evaluation together; 0.04 is about two standard errors (fixed seeds).
    fit_on, evaluate_on = _scored_rows(20_000, 3), _scored_rows(20_000, 4)
    result = optimize_thresholds("equalized_odds", fit_on=fit_on, evaluate_on=evaluate_on)
    assert result["randomized"]
    assert result["gaps"]["equalized_odds_difference"] < 0.04
    again = optimize_thresholds("equalized_odds", fit_on=fit_on, evaluate_on=evaluate_on)
    assert np.array_equal(result["y_pred"], again["y_pred"])
    other = optimize_thresholds(
        "equalized_odds", fit_on=fit_on, evaluate_on=evaluate_on, random_state=1
    )
    p = result["p_positive"]
    certain = (p == 0) | (p == 1)
    assert np.array_equal(result["y_pred"][certain], other["y_pred"][certain])
    assert not np.array_equal(result["y_pred"], other["y_pred"])


def test_p_positive_is_the_probability_fairlearn_draws_against():
    # fairlearn's predict is 1[p >= u] with u ~ RandomState(random_state).rand(n); our
    # written-out p must reproduce its draws exactly.
    fit_on, evaluate_on = _scored_rows(3000, 5), _scored_rows(3000, 6)
    for constraint in ("demographic_parity", "equal_opportunity", "equalized_odds"):
        result = optimize_thresholds(
            constraint, fit_on=fit_on, evaluate_on=evaluate_on, random_state=7
        )
        draws = np.random.RandomState(7).rand(3000)
        assert np.array_equal(result["y_pred"], (result["p_positive"] >= draws).astype(int))


def test_equal_opportunity_equalises_true_positive_rates():
    # Same tolerance as for equalized odds: ~2 standard errors of a TPR gap on ~1,200 positives.
    fit_on, evaluate_on = _scored_rows(20_000, 8), _scored_rows(20_000, 9)
    result = optimize_thresholds("equal_opportunity", fit_on=fit_on, evaluate_on=evaluate_on)
    assert result["baseline"]["gaps"]["equal_opportunity_difference"] > 0.1
    assert result["gaps"]["equal_opportunity_difference"] < 0.04


def test_evaluating_on_the_fitting_rows_is_labelled_optimistic():
    rows = _scored_rows(2000, 10)
    result = optimize_thresholds("demographic_parity", fit_on=rows)
    assert result["evaluated_on"].startswith("fit_on rows (optimistic")


def test_manual_thresholds_reproduce_a_hand_computation():
    y_score = np.array([0.9, 0.4, 0.35, 0.1, 0.8, 0.6, 0.65, 0.2])
    y_true = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"], dtype=object)
    thresholds = {"a": 0.3, "b": 0.7}
    # a: scores >= 0.3 -> 1,1,1,0 ; b: scores >= 0.7 -> 1,0,0,0
    assert apply_thresholds(y_score, groups, thresholds).tolist() == [1, 1, 1, 0, 1, 0, 0, 0]
    result = evaluate_thresholds(thresholds, evaluate_on=(y_score, y_true, groups))
    a, b = result["groups"]
    # a: TP 2 of 2 positives, FP 1 of 2 negatives, 3 correct of 4, 3 selected of 4.
    assert a == {"group": "a", "n": 4, "accuracy": 0.75, "tpr": 1.0, "fpr": 0.5,
                 "selection_rate": 0.75}
    # b: TP 1 of 2 positives, FP 0 of 2 negatives, 3 correct of 4, 1 selected of 4.
    assert b == {"group": "b", "n": 4, "accuracy": 0.75, "tpr": 0.5, "fpr": 0.0,
                 "selection_rate": 0.25}
    assert result["gaps"] == {
        "demographic_parity_difference": 0.5,
        "equalized_odds_difference": 0.5,
        "equal_opportunity_difference": 0.5,
    }
    # At 0.5: a -> 1,0,0,0 (3 correct), b -> 1,1,1,0 (3 correct): 6/8 as with the new ones.
    assert result["baseline"]["accuracy"] == 0.75 and result["accuracy"] == 0.75
    assert result["accuracy_cost"] == 0.0
    assert not result["randomized"]


def test_thresholds_all_at_one_half_cost_exactly_nothing():
    rows = _scored_rows(5000, 11)
    result = evaluate_thresholds({"A": 0.5, "B": 0.5}, evaluate_on=rows)
    assert result["accuracy_cost"] == 0.0
    assert result["groups"] == result["baseline"]["groups"]
    assert result["gaps"] == result["baseline"]["gaps"]


def test_undefined_rates_are_none_not_zero():
    result = evaluate_thresholds(
        {"a": 0.5}, evaluate_on=(np.array([0.2, 0.7]), np.array([0, 0]), np.array(["a", "a"]))
    )
    assert result["groups"][0]["tpr"] is None
    assert result["gaps"]["equal_opportunity_difference"] is None
    assert result["groups"][0]["fpr"] == 0.5  # FPR still defined
    # The audit's gap rule (core.audit.metrics, docs/metrics.md), as in report.json: a
    # difference needs two groups where its rate is defined, and equalized odds needs both
    # of its components; one group gives no gap (it was 0.0 before issue 13: 0 for undefined).
    assert result["gaps"]["equalized_odds_difference"] is None
    assert result["gaps"]["demographic_parity_difference"] is None


@pytest.mark.parametrize("positives_only_in_a", [False, True])
def test_baseline_is_the_reports_numbers_for_the_same_rows(positives_only_in_a):
    # One definition of the rates and gaps: the what-if's 0.5 baseline is what report.json
    # (audit_fairness) says of the same rows, also where groups have no positives (then
    # their TPR enters no gap; with positives in one group only, there is no TPR gap).
    scores, y, groups = _scored_rows(3000, 13)
    groups[:40], y[:40] = "C", 0
    if positives_only_in_a:
        y[groups != "A"] = 0
    result = evaluate_thresholds({"A": 0.5, "B": 0.5, "C": 0.5}, evaluate_on=(scores, y, groups))
    report = audit_fairness(y, (scores >= 0.5).astype(np.int64), scores,
                            pd.DataFrame({"g": groups}), n_boot=0)
    for gap, value in result["baseline"]["gaps"].items():
        assert value == report["gaps"]["g"][gap], gap
    tpr_gap = result["baseline"]["gaps"]["equal_opportunity_difference"]
    assert (tpr_gap is None) == positives_only_in_a
    for mine, theirs in zip(result["baseline"]["groups"], report["groups"]["g"], strict=True):
        assert mine["group"] == theirs["group"] and mine["n"] == theirs["n"]
        assert all(mine[m] == theirs[m] for m in ("accuracy", "tpr", "fpr", "selection_rate"))
    assert result["baseline"]["accuracy"] == report["overall"]["accuracy"]


def test_bad_input_is_an_input_error():
    rows = _scored_rows(500, 12)
    with pytest.raises(InputError, match="no threshold for group"):
        evaluate_thresholds({"A": 0.4}, evaluate_on=rows)
    assert apply_thresholds(rows[0], rows[2], {"A": 0.4}, default=0.5).shape == (500,)
    with pytest.raises(InputError, match="unknown constraint"):
        optimize_thresholds("parity", fit_on=rows)
    scores, y, groups = rows
    unseen = groups.copy()
    unseen[:5] = "C"
    with pytest.raises(InputError, match="not in fit_on"):
        optimize_thresholds(fit_on=rows, evaluate_on=(scores, y, unseen))
    one_label = y.copy()
    one_label[groups == "B"] = 0
    with pytest.raises(InputError, match="only one label"):
        optimize_thresholds(fit_on=(scores, one_label, groups))
    with pytest.raises(InputError, match="only 0 and 1"):
        evaluate_thresholds({"A": 0.5, "B": 0.5}, evaluate_on=(scores, y * 2, groups))
