"""The agreement of LIME and SHAP on one decision, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.explain.agreement import agreement, explainers_of, explanations_agreement, spearman

FEATURES = ["age", "sex", "hours", "job", "noise"]


def test_hand_case_rank_correlation_and_disagreements():
    # |LIME|: age .5, sex .4, hours .3, job .2, noise .01 (below 10% of the largest: not a top feature)
    lime = np.array([0.5, -0.4, 0.3, 0.2, 0.01])
    # |SHAP|: hours .30, age .20, sex .10 (same sign as LIME), job .001 (below 10%), noise .05 (sign unlike LIME)
    shap = np.array([0.2, -0.1, 0.3, 0.001, -0.05])
    result = agreement(FEATURES, lime, shap, k=5)
    assert result["top_lime"] == ["age", "sex", "hours", "job"]
    assert result["top_shap"] == ["hours", "age", "sex", "noise"]
    # U = {age, sex, hours, job, noise}; ranks of |LIME| 5,4,3,2,1; of |SHAP| 4,3,5,1,2
    # d = 1,1,-2,1,-1, sum d^2 = 8: rho = 1 - 6*8 / (5*24) = 0.6
    assert result["spearman"] == pytest.approx(0.6)
    assert [(d["feature"], d["reason"]) for d in result["disagreements"]] == [("noise", "sign"),
                                                                            ("job", "top_lime_only")]


def test_identical_rankings_agree_and_top_k_limits_the_union():
    lime = np.array([0.9, 0.5, -0.3, 0.2, 0.1])
    result = agreement(FEATURES, lime, 0.1 * lime, k=2)
    assert result["features"] == ["age", "sex"] and result["spearman"] == pytest.approx(1.0)
    assert result["disagreements"] == []
    reversed_order = agreement(FEATURES, lime, np.array([0.1, 0.2, -0.3, 0.5, 0.9]), k=5)
    assert reversed_order["spearman"] == pytest.approx(-1.0)


def test_undefined_correlation_is_none():
    assert spearman(np.array([1.0]), np.array([2.0])) is None
    assert spearman(np.array([1.0, 1.0]), np.array([1.0, 2.0])) is None
    one = agreement(FEATURES, np.array([1.0, 0, 0, 0, 0]), np.array([0.3, 0, 0, 0, 0]))
    assert one["features"] == ["age"] and one["spearman"] is None and one["disagreements"] == []


def test_aligned_by_feature_from_explanation_dicts():
    weights = [{"feature": f, "weight": w} for f, w in zip(FEATURES, [0.5, -0.4, 0.3, 0.2, 0.01])]
    values = [{"feature": f, "value": v} for f, v in reversed(list(zip(FEATURES, [0.2, -0.1, 0.3, 0.001, -0.05])))]
    assert explanations_agreement(weights, values)["spearman"] == pytest.approx(0.6)


def test_explainer_choices():
    assert explainers_of("both") == ("lime", "shap") and explainers_of("shap") == ("shap",)
    with pytest.raises(InputError, match="Unknown explainer 'SHAP'"):
        explainers_of("SHAP")
