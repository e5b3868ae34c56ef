"""Fitting fairlearn's reductions and pre-processing into MitigatedModels
(core.mitigation.fairlearn_models says what each computes and how it is saved).

    fit_reduction             ExponentiatedGradient(LogisticRegression(C), constraint, eps) on (X, y, groups)
    fit_correlation_remover   CorrelationRemover(sensitive columns, alpha) then LogisticRegression(C)

Both are pure functions of their inputs and `random_state` (the logistic regressions' seed; lbfgs
itself is deterministic), so replicate r refits exactly from replicate r's rows and seed.
"""

from __future__ import annotations

import numpy as np
from fairlearn.preprocessing import CorrelationRemover
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient, TruePositiveRateParity
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from core.mitigation.fairlearn_models import DECORRELATED, MIXTURE, MitigatedModel

#: fairlearn's constraint of each reduction by its short name.
CONSTRAINTS = {"demographic_parity": DemographicParity, "equalized_odds": EqualizedOdds,
               "true_positive_rate_parity": TruePositiveRateParity}
MAX_ITER_LR = 5000


def fit_reduction(*, name: str, base: str, mitigation: dict, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                  constraint: str, eps: float, C: float, random_state: int, inner=None,
                  n_features_in: int | None = None) -> MitigatedModel:
    """ExponentiatedGradient (Agarwal et al. 2018) with `constraint` violated by at most `eps` on
    the training rows, over logistic regressions of inverse strength C; `inner` (a trained model)
    when X is its embedding, and then `n_features_in` is the study's width."""
    estimator = LogisticRegression(C=C, max_iter=MAX_ITER_LR, random_state=random_state)
    reduction = ExponentiatedGradient(estimator, constraints=CONSTRAINTS[constraint](), eps=eps)
    with threadpool_limits(limits=1):  # one worker, one core: BLAS threads would fight the other workers
        reduction.fit(np.asarray(X, dtype=np.float64), np.asarray(y), sensitive_features=np.asarray(groups, dtype=str))
    used = [t for t in reduction.weights_.index if reduction.weights_[t] > 0]
    coefs, intercepts = zip(*(_linear(reduction.predictors_[t], X.shape[1]) for t in used))
    state = {"weights": [float(reduction.weights_[t]) for t in used], "coef": np.vstack(coefs),
             "intercept": np.asarray(intercepts), "input": "embedding" if inner is not None else "features"}
    history = [{"n_oracle_calls": int(reduction.n_oracle_calls_), "best_gap": float(reduction.best_gap_),
                "n_predictors": len(reduction.predictors_), "n_used": len(used)}]
    return MitigatedModel(name=name, base=base, mitigation=mitigation, shape=MIXTURE, state=state,
                          n_features_in=n_features_in or X.shape[1], inner=inner, history=history)


def fit_correlation_remover(*, name: str, base: str, mitigation: dict, X: np.ndarray, y: np.ndarray,
                            sensitive_columns: list[int], alpha: float, C: float,
                            random_state: int) -> MitigatedModel:
    """CorrelationRemover fitted on the training rows (the least-squares projection of the other
    columns on the sensitive ones), then a logistic regression on what is left."""
    X = np.asarray(X, dtype=np.float64)
    remover = CorrelationRemover(sensitive_feature_ids=list(sensitive_columns), alpha=alpha).fit(X)
    filtered = remover.transform(X)
    with threadpool_limits(limits=1):
        head = LogisticRegression(C=C, max_iter=MAX_ITER_LR, random_state=random_state).fit(filtered, y)
    state = {"sensitive": list(map(int, sensitive_columns)), "mean": remover.sensitive_mean_, "beta": remover.beta_,
             "alpha": float(alpha), "coef": head.coef_.ravel(), "intercept": float(head.intercept_[0])}
    return MitigatedModel(name=name, base=base, mitigation=mitigation, shape=DECORRELATED, state=state,
                          n_features_in=X.shape[1], history=[{"n_iter": int(head.n_iter_[0])}])


def _linear(predictor, n_features: int) -> tuple[np.ndarray, float]:
    """(c, b) with predictor.predict(x) = 1[c . x + b > 0]; a constant predictor (fairlearn uses a
    DummyClassifier when the reweighted labels are all one class) has c = 0 and b = +-1."""
    if isinstance(predictor, DummyClassifier):
        return np.zeros(n_features), 1.0 if int(predictor.constant) == 1 else -1.0
    return predictor.coef_.ravel().astype(np.float64), float(predictor.intercept_[0])
