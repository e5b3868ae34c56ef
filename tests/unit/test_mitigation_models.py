"""fairlearn mitigations as models (core.mitigation, core.run.mitigation_models) on small planted
data where the right answer is known: a shifted threshold that ThresholdOptimizer removes, a
selection-rate gap that ExponentiatedGradient narrows, a correlation CorrelationRemover takes
out; and every saved model predicts what the fitted one did."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.reductions import DemographicParity, ExponentiatedGradient
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from core.errors import InputError
from core.learning.classical import ClassicalModel
from core.mitigation.fairlearn_models import GroupDecoder, MitigatedModel, decorrelate
from core.mitigation.fitting import fit_correlation_remover, fit_reduction
from core.run.mitigation_models import _fit_threshold_task

MITIGATION = {"name": "test", "kind": "fairlearn", "base": "logistic-regression", "params": {}}


def planted(n: int, seed: int, *, label_shift: float = 0.0, feature_shift: float = 0.0):
    """X = [one-hot of group a/b, x]; y ~ Bernoulli(sigmoid(2x + label_shift * [a])), x ~ N(feature_shift [a], 1)."""
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.5
    x = rng.normal(size=n) + feature_shift * a
    y = (rng.random(n) < expit(2 * x + label_shift * a)).astype(np.int64)
    X = np.column_stack([a, ~a, x]).astype(np.float32)
    return X, y, np.where(a, "a", "b")


def rates(decisions: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, float]]:
    return {g: {"selection": decisions[groups == g].mean(), "tpr": decisions[(groups == g) & (y == 1)].mean(),
                "fpr": decisions[(groups == g) & (y == 0)].mean()} for g in ("a", "b")}


def equalized_odds_gap(decisions, y, groups) -> float:
    r = rates(decisions, y, groups)
    return max(abs(r["a"]["tpr"] - r["b"]["tpr"]), abs(r["a"]["fpr"] - r["b"]["fpr"]))


class ShiftedScores:
    """A trained model whose score favours group a: sigmoid(2x + 1.5 [a]) while y follows sigmoid(2x)."""

    pretraining = None

    def predict_proba(self, X):
        return expit(2 * X[:, 2].astype(np.float64) + 1.5 * X[:, 0])


def test_threshold_optimizer_removes_a_planted_threshold_gap():
    X_val, y_val, groups_val = planted(20000, 1)
    decoder = GroupDecoder("g", slice(0, 2)).fit(X_val, groups_val)
    model = _fit_threshold_task("shifted+threshold-optimizer", "shifted", ShiftedScores(), decoder, X_val, y_val, 1,
                                MITIGATION)
    X, y, groups = planted(50000, 2)  # fresh rows
    before = equalized_odds_gap((ShiftedScores().predict_proba(X) >= 0.5).astype(float), y, groups)
    after = equalized_odds_gap((model.predict_proba(X) >= 0.5).astype(float), y, groups)
    assert before > 0.15 and after < 0.025
    assert set(model.decoder.decode(X[:10])) <= {"a", "b"}


def test_exponentiated_gradient_narrows_a_planted_selection_rate_gap():
    X, y, groups = planted(3000, 3, label_shift=2.0)
    fresh_X, fresh_y, fresh_groups = planted(20000, 4, label_shift=2.0)
    plain = LogisticRegression(max_iter=5000).fit(X, y).predict(fresh_X).astype(float)
    model = fit_reduction(name="lr+eg-dp", base="logistic-regression", mitigation=MITIGATION, X=X, y=y, groups=groups,
                          constraint="demographic_parity", eps=0.01, C=1.0, random_state=0)
    mitigated = (model.predict_proba(fresh_X) >= 0.5).astype(float)

    def selection_gap(d):
        r = rates(d, fresh_y, fresh_groups)
        return abs(r["a"]["selection"] - r["b"]["selection"])

    assert selection_gap(plain) > 0.3 and selection_gap(mitigated) < 0.06
    # The score is fairlearn's own probability of a positive decision, not a draw.
    reduction = ExponentiatedGradient(LogisticRegression(C=1.0, max_iter=5000, random_state=0),
                                      constraints=DemographicParity(), eps=0.01)
    reduction.fit(X.astype(np.float64), y, sensitive_features=groups)
    np.testing.assert_allclose(model.predict_proba(fresh_X), reduction._pmf_predict(fresh_X.astype(np.float64))[:, 1],
                               atol=1e-9)


def test_correlation_remover_leaves_features_uncorrelated_with_the_attribute():
    X, y, _ = planted(3000, 5, feature_shift=1.5)
    model = fit_correlation_remover(name="lr+cr", base="logistic-regression", mitigation=MITIGATION, X=X, y=y,
                                    sensitive_columns=[0, 1], alpha=1.0, C=1.0, random_state=0)
    fresh, _, _ = planted(20000, 6, feature_shift=1.5)
    assert abs(np.corrcoef(fresh[:, 0], fresh[:, 2])[0, 1]) > 0.5
    # Exactly uncorrelated on the rows it was fitted on; on fresh rows up to the estimate's sampling error.
    assert abs(np.corrcoef(X[:, 0], decorrelate(X, model.state)[:, 0])[0, 1]) < 1e-6
    assert abs(np.corrcoef(fresh[:, 0], decorrelate(fresh, model.state)[:, 0])[0, 1]) < 0.06
    # Only the non-sensitive column is left for the logistic regression.
    assert np.size(model.state["coef"]) == 1


def test_saved_models_predict_what_the_fitted_ones_did(tmp_path):
    X, y, groups = planted(1500, 7, label_shift=1.0, feature_shift=0.5)
    base = ClassicalModel(random_state=0).fit(X[:1000], y[:1000], X[1000:], y[1000:])
    decoder = GroupDecoder("g", slice(0, 2)).fit(X, groups)
    models = [
        fit_reduction(name="m1", base="logistic-regression", mitigation=MITIGATION, X=X, y=y, groups=groups,
                      constraint="equalized_odds", eps=0.02, C=0.1, random_state=0),
        fit_correlation_remover(name="m2", base="logistic-regression", mitigation=MITIGATION, X=X, y=y,
                                sensitive_columns=[0, 1], alpha=1.0, C=1.0, random_state=0),
        _fit_threshold_task("m3", "logistic-regression", base, decoder, X[1000:], y[1000:], 0, MITIGATION),
    ]
    for model in models:
        loaded = MitigatedModel.load(model.save(tmp_path / model.name))
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        assert loaded.mitigation == MITIGATION and loaded.base == "logistic-regression"
        assert loaded.n_trainable_params == model.n_trainable_params > 0
    assert "Infinity" not in (tmp_path / "m3" / "model.json").read_text()  # strict JSON


def test_an_ambiguous_or_unseen_group_is_refused():
    X, _, groups = planted(200, 8)
    with pytest.raises(InputError, match="cannot be read back"):
        GroupDecoder("g", slice(2, 3)).fit(np.round(X, 0), groups)  # x rounded: one pattern, both groups
    decoder = GroupDecoder("g", slice(0, 2)).fit(X, groups)
    with pytest.raises(InputError, match="never seen"):
        decoder.decode(np.zeros((1, 3), dtype=np.float32))


def test_a_mixture_whose_weights_sum_past_1_by_rounding_still_scores_a_probability():
    state = {"weights": [0.43251521772141427, 0.5637771777263075, 0.0037076045522782958], "coef": np.ones((3, 1)),
             "intercept": np.zeros(3),
             "input": "features"}
    model = MitigatedModel(name="m", base="b", mitigation=MITIGATION, shape="mixture", state=state, n_features_in=1)
    assert (np.ones((1, 3)) @ np.asarray(state["weights"]))[0] > 1 and model.predict_proba(np.ones((2, 1))).max() == 1.0
