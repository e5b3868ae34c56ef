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
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_score,
    roc_auc_score,
)

from core.audit.comparison import paired_gap_differences
from core.audit.fairness import audit_fairness
from core.audit.metrics import weighted_roc_auc, wilson_interval
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


def fairlearn_gaps(y, pred, sf) -> dict[str, float]:
    """fairlearn's value of each gap it defines, over every group of `sf`."""
    acc = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=sf)
    return {
        "demographic_parity_difference": demographic_parity_difference(y, pred, sensitive_features=sf),
        "equalized_odds_difference": equalized_odds_difference(y, pred, sensitive_features=sf),
        "equal_opportunity_difference": equal_opportunity_difference(y, pred, sensitive_features=sf),
        "demographic_parity_ratio": demographic_parity_ratio(y, pred, sensitive_features=sf),
        "accuracy_difference": acc.difference(method="between_groups"),
        "worst_group_accuracy": acc.group_min(),
        "mean_subgroup_gap": (acc.by_group - acc.overall).abs().mean(),
    }


def test_gaps_equal_fairlearn(audited):
    # every group of make_data is large enough for the headline, so both sets agree with fairlearn
    (y, pred, _, sensitive), result = audited
    for key, gaps in result["gaps"].items():
        sf = sensitive[key.split(" & ")]
        sel = MetricFrame(metrics=selection_rate, y_true=y, y_pred=pred, sensitive_features=sf)
        expected = fairlearn_gaps(y, pred, sf)
        assert gaps["small_groups"] == [] and gaps["excluded_groups"] == {"tpr": [], "fpr": []}
        for name, value in expected.items():
            assert gaps[name] == pytest.approx(value, abs=1e-12), (key, name)
            assert gaps["all_groups"][name] == pytest.approx(value, abs=1e-12), (key, name)
        # disparate impact against the group with the highest selection rate (29 CFR 1607.4(D))
        highest = sel.by_group.idxmax()
        assert gaps["disparate_impact"]["reference_group"] == " & ".join(highest if isinstance(highest, tuple)
                                                                         else (highest,))
        ratios = sel.by_group / sel.by_group.max()
        assert gaps["min_disparate_impact_ratio"] == pytest.approx(ratios.min(), abs=1e-12)
        assert gaps["four_fifths_flag"] == bool(ratios.min() < 0.8)
        largest = sf.value_counts().idxmax()
        assert gaps["disparate_impact"]["largest_group"]["reference_group"] == " & ".join(largest)
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


def test_four_fifths_reference_is_the_highest_selection_rate_among_groups_large_enough():
    # "big" (500 rows) selects 30%, "mid" (60 rows) 60%, "tiny" (12 rows) 100%: the rule's
    # reference is "mid", not the largest group, and not the tiny group whose rate is noise
    sizes, rates = {"big": 500, "mid": 60, "tiny": 12}, {"big": 0.3, "mid": 0.6, "tiny": 1.0}
    groups = pd.DataFrame({"g": np.repeat(list(sizes), list(sizes.values()))})
    pred = np.concatenate([(np.arange(n) < rates[g] * n).astype(int) for g, n in sizes.items()])
    y = np.tile([0, 1], len(pred) // 2)
    gaps = audit_fairness(y, pred, None, groups, n_boot=200)["gaps"]["g"]
    impact = gaps["disparate_impact"]
    assert impact["reference_group"] == "mid" and impact["reference"] == "highest selection rate"
    assert impact["ratios"] == {"big": pytest.approx(0.5), "mid": 1.0, "tiny": pytest.approx(1 / 0.6)}
    assert gaps["min_disparate_impact_ratio"] == pytest.approx(0.5) and gaps["four_fifths_flag"] is True
    assert gaps["between"]["min_disparate_impact_ratio"] == {"metric": "selection_rate", "reference_group": "mid",
                                                             "min_group": "big"}
    assert impact["largest_group"] == {"reference_group": "big",
                                       "ratios": {"big": 1.0, "mid": pytest.approx(2.0), "tiny": pytest.approx(1 / 0.3)}}
    assert gaps["all_groups"]["min_disparate_impact_ratio"] == pytest.approx(0.3)  # big / tiny
    lo, hi = gaps["ci"]["min_disparate_impact_ratio"]
    assert lo < 0.5 < hi <= 1.0  # the reference is re-chosen in each resample: never above 1


def test_headline_gaps_leave_out_small_and_few_event_groups():
    # "few" has 60 rows but only 6 positives: out of the TPR gap, in the selection-rate gap;
    # "tiny" has 12 rows: out of every headline gap; both stay in the all-groups values
    rng = np.random.default_rng(4)
    sizes, positives = {"a": 400, "b": 300, "few": 60, "tiny": 12}, {"a": 200, "b": 150, "few": 6, "tiny": 6}
    groups = pd.DataFrame({"g": np.repeat(list(sizes), list(sizes.values()))})
    y = np.concatenate([(np.arange(n) < positives[g]).astype(int) for g, n in sizes.items()])
    pred = np.where(rng.random(len(y)) < 0.8, y, 1 - y)
    pred[groups["g"] == "tiny"] = 1 - y[groups["g"] == "tiny"]  # an extreme, tiny group
    result = audit_fairness(y, pred, None, groups, n_boot=0)["gaps"]["g"]
    assert result["small_groups"] == ["tiny"]
    assert result["excluded_groups"] == {"tpr": ["few"], "fpr": []}
    sf = groups["g"]
    assert result["all_groups"] == pytest.approx({**result["all_groups"], **fairlearn_gaps(y, pred, sf)}, abs=1e-12)
    large = (sf != "tiny").to_numpy()
    for_rates = fairlearn_gaps(y[large], pred[large], sf[large])
    many = (~sf.isin(["tiny", "few"])).to_numpy()
    for_tpr = fairlearn_gaps(y[many], pred[many], sf[many])
    for name in ("demographic_parity_difference", "demographic_parity_ratio", "accuracy_difference",
                 "worst_group_accuracy"):
        assert result[name] == pytest.approx(for_rates[name], abs=1e-12), name
    assert result["equal_opportunity_difference"] == pytest.approx(for_tpr["equal_opportunity_difference"], abs=1e-12)
    assert result["worst_group_accuracy"] > result["all_groups"]["worst_group_accuracy"]  # "tiny" got 0%
    # the threshold is a parameter
    loose = audit_fairness(y, pred, None, groups, n_boot=0, min_class_rows=5)["gaps"]["g"]
    assert loose["excluded_groups"]["tpr"] == []
    assert loose["equal_opportunity_difference"] != result["equal_opportunity_difference"]
    with pytest.raises(InputError, match="min_class_rows"):
        audit_fairness(y, pred, None, groups, n_boot=0, min_class_rows=0)
    # the paired comparison judges the same headline gaps the audit reports
    compared = paired_gap_differences(y, pred, y, groups, n_boot=0)["g"]
    assert compared["equal_opportunity_difference"]["model_a"] == result["equal_opportunity_difference"]
    assert compared["worst_group_accuracy"]["model_a"] == result["worst_group_accuracy"]


def test_group_rates_get_wilson_intervals_not_degenerate_at_0_or_1():
    # 15 rows, every one right and predicted positive: accuracy 100% is not "100.0 (100.0-100.0)"
    y = np.r_[np.ones(15, int), np.tile([0, 1], 100)]
    pred = np.r_[np.ones(15, int), np.tile([0, 1], 100)]
    groups = pd.DataFrame({"g": ["few"] * 15 + ["many"] * 200})
    result = audit_fairness(y, pred, None, groups, n_boot=100, confidence=0.95)
    few = {row["group"]: row for row in result["groups"]["g"]}["few"]
    assert few["accuracy"] == 1.0 and few["fpr"] is None
    expected = binomtest(15, 15).proportion_ci(0.95, method="wilson")
    assert few["ci"]["accuracy"] == pytest.approx([expected.low, expected.high], abs=1e-9)
    assert few["ci"]["accuracy"][0] == pytest.approx(15 / (15 + 1.959963984540054 ** 2))
    assert few["ci"]["fpr"] is None and few["ci"]["precision"] == few["ci"]["accuracy"]
    assert few["ci_excluded"]["tpr"] == 0 and result["bootstrap"]["group_rate_interval"] == "wilson"
    for k, n in ((0, 20), (3, 20), (17, 20), (20, 20)):
        lo, hi = wilson_interval(np.array(k), np.array(n), 0.9)
        want = binomtest(k, n).proportion_ci(0.9, method="wilson")
        assert (lo, hi) == (pytest.approx(want.low, abs=1e-9), pytest.approx(want.high, abs=1e-9))
        assert lo < hi
    assert np.isnan(wilson_interval(np.array(0), np.array(0), 0.95)[0])


def test_reference_group_is_selectable():
    y, pred, score, sensitive = make_data(n=300, seed=2)
    gaps = audit_fairness(y, pred, score, sensitive[["race"]], n_boot=0,
                          reference_groups={"race": "Black"})["gaps"]["race"]
    assert gaps["disparate_impact"]["reference_group"] == "Black"
    assert gaps["disparate_impact"]["reference"] == "named"
    assert gaps["disparate_impact"]["ratios"]["Black"] == 1.0
    ratios = gaps["disparate_impact"]["ratios"]
    assert gaps["min_disparate_impact_ratio"] == pytest.approx(min(ratios.values()))
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
