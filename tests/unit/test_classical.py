"""Classical baselines (issue 16, item 3): settings chosen on validation, the same interface as
every audited model, no representation, saved as JSON that predicts exactly what was fitted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from core.errors import InputError
from core.learning.calibration import binary_nll
from core.learning.classical import C_GRID, HGB_GRID, ClassicalModel, fit_classical, is_classical_folder, same_logits
from core.vocabulary import CLASSICAL, GRADIENT_BOOSTING, LOGISTIC_REGRESSION


def xor_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """y = 1 where x0 and x1 share a sign (no linear model can tell), plus 4 noise columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = ((X[:, 0] > 0) == (X[:, 1] > 0)).astype(np.int64)
    return X, y


def linear_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - X[:, 1] + 0.5 * X[:, 2])))).astype(np.int64)
    return X, y


@pytest.mark.parametrize("kind", [LOGISTIC_REGRESSION, GRADIENT_BOOSTING])
def test_the_setting_is_the_grid_point_of_lowest_validation_loss(kind):
    (X, y), (X_val, y_val) = linear_rows(600, 0), linear_rows(300, 1)
    model = fit_classical(kind, X, y, X_val, y_val, seed=0)
    assert len(model.history) == (len(C_GRID) if kind == LOGISTIC_REGRESSION else len(HGB_GRID))
    best = min(model.history, key=lambda record: record["val_loss"])
    assert all(model.setting_[key] == best[key] for key in model.setting_)
    assert (model.name, model.pretraining, model.strategy) == (kind, None, CLASSICAL)
    assert model.embed(X_val) is None and model.n_trainable_params > 0
    # Temperature scaling moves no decision and no AUC, and never makes the validation NLL worse.
    assert model.calibration["nll_after"] <= model.calibration["nll_before"] + 1e-12
    assert roc_auc_score(y_val, model.predict_proba(X_val)) == pytest.approx(roc_auc_score(y_val, model.logits(X_val)))


def test_boosting_finds_what_a_linear_model_cannot_and_regression_is_a_good_linear_model():
    (X, y), (X_val, y_val), (X_test, y_test) = xor_rows(1500, 0), xor_rows(500, 1), xor_rows(1000, 2)
    boosting = fit_classical(GRADIENT_BOOSTING, X, y, X_val, y_val, seed=0)
    logistic = fit_classical(LOGISTIC_REGRESSION, X, y, X_val, y_val, seed=0)
    assert roc_auc_score(y_test, boosting.predict_proba(X_test)) > 0.95
    assert roc_auc_score(y_test, logistic.predict_proba(X_test)) < 0.6
    (X, y), (X_val, y_val), (X_test, y_test) = linear_rows(1500, 0), linear_rows(500, 1), linear_rows(2000, 2)
    logistic = fit_classical(LOGISTIC_REGRESSION, X, y, X_val, y_val, seed=0)
    true_logit = X_test[:, 0] - X_test[:, 1] + 0.5 * X_test[:, 2]
    assert roc_auc_score(y_test, logistic.predict_proba(X_test)) > roc_auc_score(y_test, true_logit) - 0.01


def test_the_trees_evaluated_here_are_scikit_learns_model():
    (X, y), (X_val, y_val) = xor_rows(800, 0), xor_rows(400, 1)
    model = fit_classical(GRADIENT_BOOSTING, X, y, X_val, y_val, seed=3)
    reference = HistGradientBoostingClassifier(**model.setting_, max_iter=500, early_stopping=True,
                                               n_iter_no_change=20, scoring="loss", random_state=3)
    reference.fit(X, y, X_val=X_val, y_val=y_val)
    X_nan = X_val.copy()
    X_nan[::7, 0] = np.nan  # missing values go where the split sends them
    assert np.allclose(model.logits(X_nan), reference.decision_function(X_nan), atol=1e-9)


@pytest.mark.parametrize("kind", [LOGISTIC_REGRESSION, GRADIENT_BOOSTING])
def test_saved_as_json_and_loaded_it_predicts_the_same(kind, tmp_path):
    (X, y), (X_val, y_val) = xor_rows(500, 0), xor_rows(200, 1)
    model = fit_classical(kind, X, y, X_val, y_val, seed=0)
    folder = model.save(tmp_path / kind)
    assert [path.name for path in folder.iterdir()] == ["model.json"]
    assert json.loads((folder / "model.json").read_text())["strategy"] == CLASSICAL and is_classical_folder(folder)
    loaded = ClassicalModel.load(folder)
    assert np.array_equal(loaded.predict_proba(X_val), model.predict_proba(X_val))
    assert loaded.n_trainable_params == model.n_trainable_params and loaded.history == model.history
    assert binary_nll(loaded.logits(X_val), y_val) == pytest.approx(min(r["val_loss"] for r in model.history))


def test_bad_kind_and_bad_input_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="Unknown classical baseline"):
        ClassicalModel("random-forest")
    (X, y), (X_val, y_val) = linear_rows(300, 0), linear_rows(100, 1)
    model = fit_classical(LOGISTIC_REGRESSION, X, y, X_val, y_val, seed=0)
    with pytest.raises(InputError, match="expects 8 features"):
        model.predict_proba(X[:, :3])
    with pytest.raises(InputError, match="No saved model"):
        ClassicalModel.load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 1, "strategy": "full"}))
    with pytest.raises(InputError, match="not a classical baseline"):
        ClassicalModel.load(tmp_path)


def test_same_logits_allows_float32_rounding_of_large_cancelling_terms_and_nothing_more():
    """On separable rows a logistic regression's weights are large and a logit's terms cancel:
    scikit-learn's float32 sum then differs from ours (float64) by more than 1e-5 of the logit
    (a planted 1,000,000-row table once stopped the audit with "reads back differently"), but
    not by more than 1e-5 of the terms. A model with four weights 1% off is still told apart."""
    rng = np.random.default_rng(0)
    w = rng.normal(scale=300.0, size=48)
    X = rng.normal(size=(256, 48))
    X[:, -1] = -(X[:, :-1] @ w[:-1]) / w[-1] + rng.normal(scale=0.01, size=256)  # rows near the boundary
    X = X.astype(np.float32)
    ours = X.astype(np.float64) @ w
    theirs = (X @ w.astype(np.float32)).astype(np.float64)  # what scikit-learn computes for float32 rows
    terms = np.abs(X) @ np.abs(w)
    assert not np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)  # the old check failed here
    assert same_logits(ours, theirs, terms)
    other = w.copy()
    other[:4] *= 1.01  # another model: four weights 1% off
    assert not same_logits(ours, X.astype(np.float64) @ other, terms)
