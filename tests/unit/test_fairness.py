"""Point metrics of core.audit.metrics and core.audit.fairness against fairlearn and scikit-learn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_score,
    roc_auc_score,
)

from core.audit.fairness import audit_fairness
from core.audit.metrics import weighted_roc_auc
from core.errors import InputError
from core.learning.calibration import (
    ECE_BINS,
    calibration_summary,
    expected_calibration_error,
    weighted_calibration_error,
)
from core.vocabulary import GROUP_METRICS

FAIRLEARN_METRICS = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "fnr": false_negative_rate,
    "precision": precision_score,
    "selection_rate": selection_rate,
}


def make_data(n: int = 900, seed: int = 0):
    """Three attributes with unequal groups, a biased classifier, every group large enough
    that every metric is defined (so fairlearn's 0-for-undefined never kicks in)."""
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame({
        "sex": rng.choice(["Female", "Male"], n, p=[0.4, 0.6]),
        "race": rng.choice(["Black", "White", "Other"], n, p=[0.3, 0.5, 0.2]),
        "age": rng.choice(["<40", "40+"], n),
    })
    y = rng.integers(0, 2, n)
    shift = np.where(sensitive["sex"] == "Female", -0.15, 0.1) + (sensitive["race"] == "Black") * -0.1
    score = np.clip(0.25 + 0.45 * y + shift + rng.normal(0, 0.2, n), 0, 1)
    score = np.round(score, 2)  # ties, to exercise the tie rule of ROC AUC
    pred = (score >= 0.5).astype(int)
    return y, pred, score, sensitive


def ece_loop(y, s, n_bins=10):
    """ECE written the slow, obvious way."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        rows = (s >= lo) & ((s < hi) if b < n_bins - 1 else (s <= hi))
        if rows.any():
            total += rows.sum() / len(y) * abs(y[rows].mean() - s[rows].mean())
    return total


@pytest.fixture(scope="module")
def audited():
    y, pred, score, sensitive = make_data()
    return (y, pred, score, sensitive), audit_fairness(y, pred, score, sensitive, n_boot=0)


def test_partition_keys_are_attributes_pairs_and_all(audited):
    _, result = audited
    assert list(result["groups"]) == [
        "sex", "race", "age", "sex & race", "sex & age", "race & age", "sex & race & age"
    ]
    assert list(result["gaps"]) == list(result["groups"])
    labels = [row["group"] for row in result["groups"]["sex & race"]]
    assert "Female & Black" in labels and len(labels) == 6


def test_group_metrics_equal_fairlearn_metricframe(audited):
    (y, pred, score, sensitive), result = audited
    for key, rows in result["groups"].items():
        attrs = key.split(" & ")
        mf = MetricFrame(metrics=FAIRLEARN_METRICS, y_true=y, y_pred=pred,
                         sensitive_features=sensitive[attrs])
        auc = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=score,
                          sensitive_features=sensitive[attrs])
        assert len(rows) == len(mf.by_group)
        for row in rows:
            index = tuple(row["values"][a] for a in attrs)
            index = index if len(attrs) > 1 else index[0]
            expected = mf.by_group.loc[index]
            for metric in FAIRLEARN_METRICS:
                assert row[metric] == pytest.approx(expected[metric], abs=1e-12), (key, metric)
            assert row["roc_auc"] == pytest.approx(auc.by_group.loc[index], abs=1e-12)
            rows_g = np.all([sensitive[a] == row["values"][a] for a in attrs], axis=0)
            assert row["n"] == rows_g.sum()
            assert row["calibration_error"] == pytest.approx(
                ece_loop(y[rows_g], score[rows_g]), abs=1e-12)


def test_overall_metrics_equal_sklearn(audited):
    (y, pred, score, _), result = audited
    overall = result["overall"]
    assert overall["n"] == len(y)
    assert overall["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert overall["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert overall["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_one_calibration_error_in_a_report(audited):
    # Temperature scaling's before/after ECE (model.calibration in report.json) is the audit's
    # calibration_error: the same function, the same bins.
    (y, _, score, _), result = audited
    assert calibration_summary(4 * score - 2, y)["n_bins"] == ECE_BINS == 10
    assert expected_calibration_error(y, score) == result["overall"]["calibration_error"]
    assert result["overall"]["calibration_error"] == pytest.approx(ece_loop(y, score), abs=1e-12)


def test_gaps_equal_fairlearn(audited):
    (y, pred, _, sensitive), result = audited
    for key, gaps in result["gaps"].items():
        sf = sensitive[key.split(" & ")]
        acc = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=sf)
        sel = MetricFrame(metrics=selection_rate, y_true=y, y_pred=pred, sensitive_features=sf)
        expected = {
            "demographic_parity_difference": demographic_parity_difference(y, pred, sensitive_features=sf),
            "equalized_odds_difference": equalized_odds_difference(y, pred, sensitive_features=sf),
            "equal_opportunity_difference": equal_opportunity_difference(y, pred, sensitive_features=sf),
            "demographic_parity_ratio": demographic_parity_ratio(y, pred, sensitive_features=sf),
            "accuracy_difference": acc.difference(method="between_groups"),
            "worst_group_accuracy": acc.group_min(),
            "mean_subgroup_gap": (acc.by_group - acc.overall).abs().mean(),
        }
        for name, value in expected.items():
            assert gaps[name] == pytest.approx(value, abs=1e-12), (key, name)
        # disparate impact against the largest group (the default reference)
        sizes = sf.value_counts()
        reference = " & ".join(sizes.idxmax())
        assert gaps["disparate_impact"]["reference_group"] == reference
        ratios = sel.by_group / sel.by_group.loc[sizes.idxmax() if len(sizes.idxmax()) > 1 else sizes.idxmax()[0]]
        assert gaps["min_disparate_impact_ratio"] == pytest.approx(ratios.min(), abs=1e-12)
        assert gaps["four_fifths_flag"] == bool(ratios.min() < 0.8)
        between = gaps["between"]["demographic_parity_difference"]
        by_label = {" & ".join(k if isinstance(k, tuple) else (k,)): v
                    for k, v in sel.by_group.items()}
        assert by_label[between["max_group"]] == sel.by_group.max()
        assert by_label[between["min_group"]] == sel.by_group.min()


def test_report_contract_fields_and_json(audited):
    _, result = audited
    assert {"n", "accuracy", "balanced_accuracy", "roc_auc"} <= set(result["overall"])
    contract_gaps = {"demographic_parity_difference", "equalized_odds_difference",
                     "equal_opportunity_difference", "accuracy_difference",
                     "worst_group_accuracy", "mean_subgroup_gap"}
    for key, rows in result["groups"].items():
        assert contract_gaps <= set(result["gaps"][key])
        for row in rows:
            assert {"group", "n", "accuracy", "tpr", "fpr", "selection_rate", "small", "ci"} <= set(row)
            assert set(GROUP_METRICS) <= set(row["ci"])
    json.dumps(result, allow_nan=False)


def test_undefined_metrics_are_none_and_left_out_of_gaps():
    # group "a": no positives; "b": no negatives; "c": no predicted positives; "d": normal
    y = np.array([0] * 40 + [1] * 40 + [0, 1] * 20 + [0, 1] * 20)
    pred = np.array([0, 1] * 20 + [1, 0] * 20 + [0] * 40 + [1, 1, 0, 0] * 10)
    score = np.where(pred == 1, 0.7, 0.3)
    groups = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 40 + ["c"] * 40 + ["d"] * 40})
    result = audit_fairness(y, pred, score, groups, n_boot=200)
    rows = {row["group"]: row for row in result["groups"]["g"]}
    for metric in ("tpr", "fnr", "roc_auc"):
        assert rows["a"][metric] is None and rows["a"]["ci"][metric] is None
    assert rows["a"]["balanced_accuracy"] == pytest.approx(0.5)  # TNR alone, as scikit-learn
    assert rows["b"]["fpr"] is None and rows["b"]["roc_auc"] is None
    assert rows["c"]["precision"] is None and rows["c"]["selection_rate"] == 0.0
    assert all(rows["d"][m] is not None for m in GROUP_METRICS)
    gaps = result["gaps"]["g"]
    assert gaps["excluded_groups"] == {"tpr": ["a"], "fpr": ["b"]}
    tpr = [rows[g]["tpr"] for g in "bcd"]
    assert gaps["equal_opportunity_difference"] == pytest.approx(max(tpr) - min(tpr))
    fpr = [rows[g]["fpr"] for g in "acd"]
    assert gaps["fpr_difference"] == pytest.approx(max(fpr) - min(fpr))
    json.dumps(result, allow_nan=False)


def test_gap_needs_two_groups_with_the_metric():
    y = np.array([0] * 40 + [0] * 39 + [1])
    pred = np.array([0, 1] * 40)
    groups = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 40})
    gaps = audit_fairness(y, pred, None, groups, n_boot=0)["gaps"]["g"]
    assert gaps["equal_opportunity_difference"] is None
    assert gaps["equalized_odds_difference"] is None
    assert gaps["fpr_difference"] is not None


def test_small_groups_flagged_with_threshold_parameter():
    y, pred, score, sensitive = make_data(n=300, seed=1)
    sensitive = sensitive[["race"]].copy()
    sensitive.iloc[:20, 0] = "Tiny"
    rows = audit_fairness(y, pred, score, sensitive, n_boot=0)["groups"]["race"]
    flags = {row["group"]: row["small"] for row in rows}
    assert flags["Tiny"] is True and sum(flags.values()) == 1
    rows = audit_fairness(y, pred, score, sensitive, n_boot=0, min_group_size=10)["groups"]["race"]
    assert not any(row["small"] for row in rows)
    gaps = audit_fairness(y, pred, score, sensitive, n_boot=0)["gaps"]["race"]
    assert gaps["small_groups"] == ["Tiny"]


def test_reference_group_is_selectable():
    y, pred, score, sensitive = make_data(n=300, seed=2)
    gaps = audit_fairness(y, pred, score, sensitive[["race"]], n_boot=0,
                          reference_groups={"race": "Black"})["gaps"]["race"]
    assert gaps["disparate_impact"]["reference_group"] == "Black"
    assert gaps["disparate_impact"]["ratios"]["Black"] == 1.0
    with pytest.raises(InputError, match="reference group 'Nobody'"):
        audit_fairness(y, pred, score, sensitive[["race"]], n_boot=0,
                       reference_groups={"race": "Nobody"})


def test_weighted_roc_auc_is_auc_of_repeated_rows():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = np.round(rng.random(80), 1)  # many ties
    weights = rng.integers(0, 4, (5, 80))
    got = weighted_roc_auc(y, s, weights)
    for b in range(5):
        expected = roc_auc_score(np.repeat(y, weights[b]), np.repeat(s, weights[b]))
        assert got[b] == pytest.approx(expected, abs=1e-12)
        assert weighted_calibration_error(y, s, weights[b])[0] == pytest.approx(
            ece_loop(np.repeat(y, weights[b]), np.repeat(s, weights[b])), abs=1e-12)


def test_bad_input_raises_input_error():
    y, pred, score, sensitive = make_data(n=100)
    with pytest.raises(InputError, match="y_true must contain only 0 and 1"):
        audit_fairness(y + 1, pred, score, sensitive, n_boot=0)
    with pytest.raises(InputError, match="rows"):
        audit_fairness(y, pred[:-1], score, sensitive, n_boot=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        audit_fairness(y, pred, score * 2, sensitive, n_boot=0)
    broken = sensitive.copy()
    broken.loc[0, "sex"] = None
    with pytest.raises(InputError, match="'sex' has 1 missing"):
        audit_fairness(y, pred, score, broken, n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit_fairness(y, pred, score, sensitive, n_boot=50)  # no stray numpy warnings
