"""Classical baselines: logistic regression and gradient-boosted trees on the encoded matrix.

A fairness audit of a model nobody would deploy tells a reviewer little (issue 16: on a
1,319-row credit-card table our best MLP reached 0.909 test accuracy where scikit-learn's
LogisticRegression reached 0.955). So every training audit also fits the two models a data
scientist would try first, on the same labelled train rows and the same encoded matrix X the
MLPs see, with their settings chosen on the validation rows, and audits them like every
other model (replicates, paired comparisons, Holm families).

    logistic-regression   sklearn LogisticRegression (lbfgs, L2); C chosen from C_GRID by
                          the validation log loss. Small C first wins ties (the simpler model).
    gradient-boosting     sklearn HistGradientBoostingClassifier; learning rate x max leaves
                          from HGB_GRID by the validation log loss, each grid point stopped
                          early on the validation rows themselves (sklearn >= 1.7 `X_val`:
                          `n_iter_no_change` rounds without a lower validation loss), so the
                          number of trees is chosen on validation too; random_state = seed.

Large tables (issue 22): the settings are chosen on at most SEARCH_ROWS training rows (a seeded
uniform subsample; every row up to that size, Adult's 31,654 among them), then the chosen setting
is fitted once on every training row. On Adult x4 the four HGB grid points on all 126,617
rows (each row 4 times: no early stop before 500 trees) were most of fine-tuning's growth.

Both then get the MLPs' temperature scaling on the validation rows (core.learning.calibration):
it moves no decision and no ROC AUC, and the calibration report reads the same for every model.

    z(x) = w . x + b  (LR)    or    z(x) = baseline + sum_t tree_t(x)  (HGB)
    predict_proba(x) = sigmoid(z(x) / T)

They have no representation (`embed` returns None): core.audit.per_model skips the leakage,
kNN, CKA and UMAP parts for them. `n_trainable_params` counts what was fitted: the weights and
the bias of LR; the split thresholds and leaf values of the trees.

Saved as JSON only (DIR/model.json: coefficients, or every tree's nodes), never pickle or
joblib, and the trees are evaluated here from those nodes, so a saved model predicts what the
fitted one did without trusting any file to build Python objects.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from core import __version__
from core.data.features import check_encoded_rows
from core.data.split import bounded_rows
from core.errors import InputError
from core.files import atomic_write
from core.learning.calibration import binary_nll, calibration_summary
from core.vocabulary import CLASSICAL, GRADIENT_BOOSTING, LOGISTIC_REGRESSION

META_FILE = "model.json"
FORMAT_VERSION = 1
#: Inverse L2 strengths tried for logistic regression (the encoded features are standardised).
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
#: (learning rate, max leaf nodes) tried for gradient boosting; min_samples_leaf stays sklearn's 20.
HGB_GRID = tuple(product((0.05, 0.1), (15, 31)))
HGB_MAX_ITER = 500
HGB_PATIENCE = 20
#: Most training rows the settings search fits on; the chosen setting then fits on every row.
SEARCH_ROWS = 65_536


class ClassicalModel:
    """A fitted classical baseline: `fit(X_train, y_train, X_val, y_val)` then `predict_proba`.

    Parameters (scikit-learn style, in __init__): `kind` (LOGISTIC_REGRESSION or
    GRADIENT_BOOSTING) and `random_state`. Learned state ends in "_": `n_features_in_`, `coef_`/`intercept_`
    (LR), `trees_`/`baseline_` (HGB), `setting_` (the chosen grid point). `history` lists every
    grid point with its validation loss; `calibration` is the temperature scaling report.
    """

    pretraining = None
    strategy = CLASSICAL

    def __init__(self, kind: str = LOGISTIC_REGRESSION, *, random_state: int = 0) -> None:
        if kind not in (LOGISTIC_REGRESSION, GRADIENT_BOOSTING):
            raise InputError(f"Unknown classical baseline '{kind}'",
                             f"Choose {LOGISTIC_REGRESSION}, {GRADIENT_BOOSTING} or none")
        self.kind = kind
        self.random_state = int(random_state)
        self.history: list[dict] = []
        self.calibration: dict | None = None
        self.temperature = 1.0

    @property
    def name(self) -> str:
        return self.kind

    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> ClassicalModel:
        """Fit every grid point on the train rows, keep the one of lowest validation log loss,
        then fit the temperature on the validation rows."""
        X_train, X_val = _as_matrix(X_train), _as_matrix(X_val)
        y_train = np.asarray(y_train)
        self.n_features_in_ = int(X_train.shape[1])
        fit_one = self._fit_logistic if self.kind == LOGISTIC_REGRESSION else self._fit_boosting
        settings = [{"C": c} for c in C_GRID] if self.kind == LOGISTIC_REGRESSION else [
            {"learning_rate": lr, "max_leaf_nodes": leaves} for lr, leaves in HGB_GRID]
        search = bounded_rows(len(X_train), SEARCH_ROWS, self.random_state, stream=2)  # all up to SEARCH_ROWS
        best = None
        for setting in settings:
            model, report = fit_one(setting, X_train[search], y_train[search], X_val, y_val)
            val_loss = binary_nll(model.decision_function(X_val), y_val)
            self.history.append({**setting, **report, "val_loss": val_loss, "n_train": len(search)})
            if best is None or val_loss < best[0]:  # strict: the first (simplest) wins ties
                best = (val_loss, setting, model)
        _, self.setting_, model = best
        if len(search) < len(X_train):  # the chosen setting, fitted on every training row
            model, report = fit_one(self.setting_, X_train, y_train, X_val, y_val)
            self.history.append({**self.setting_, **report, "val_loss": binary_nll(model.decision_function(X_val), y_val),
                                 "n_train": len(X_train), "refit": True})
        self._set_state(_state_of(model))
        # What is evaluated here (and saved) must be scikit-learn's own model, or the audit audits another one
        # (LR: up to float32 rounding, which scikit-learn computes in for float32 rows). That rounding is
        # relative to the terms summed, not to their sum: on separable rows the weights are large and the
        # terms cancel (seen on a planted 1,000,000-row table: logits of terms in the thousands).
        probe = X_val[:256]
        terms = np.abs(probe) @ np.abs(self.coef_) + abs(self.intercept_) if self.kind == LOGISTIC_REGRESSION else 0.0
        if not same_logits(self.logits(probe), model.decision_function(probe), terms):
            raise RuntimeError(f"{self.kind} reads back differently from scikit-learn's model")
        self.calibration = calibration_summary(self.logits(X_val), y_val)
        self.temperature = float(self.calibration["temperature"])
        return self

    def _fit_logistic(self, setting: dict, X_train, y_train, X_val, y_val) -> tuple[LogisticRegression, dict]:
        model = LogisticRegression(C=setting["C"], max_iter=5000, random_state=self.random_state)
        model.fit(X_train, y_train)
        return model, {"n_iter": int(model.n_iter_[0])}

    def _fit_boosting(self, setting: dict, X_train, y_train, X_val,
                      y_val) -> tuple[HistGradientBoostingClassifier, dict]:
        model = HistGradientBoostingClassifier(learning_rate=setting["learning_rate"],
                                               max_leaf_nodes=setting["max_leaf_nodes"], max_iter=HGB_MAX_ITER,
                                               early_stopping=True, n_iter_no_change=HGB_PATIENCE,
                                               scoring="loss", random_state=self.random_state)
        model.fit(X_train, y_train, X_val=X_val, y_val=y_val)  # early stopping on the validation rows
        return model, {"n_trees": int(model.n_iter_)}

    def _set_state(self, state: dict) -> None:
        if self.kind == LOGISTIC_REGRESSION:
            self.coef_, self.intercept_ = np.asarray(state["coef"], dtype=np.float64), float(state["intercept"])
        else:
            self.trees_, self.baseline_ = state["trees"], float(state["baseline"])

    def _state(self) -> dict:
        if self.kind == LOGISTIC_REGRESSION:
            return {"coef": self.coef_, "intercept": self.intercept_}
        return {"trees": self.trees_, "baseline": self.baseline_}

    @property
    def n_trainable_params(self) -> int:
        """LR: weights + bias; HGB: one split threshold per internal node + one value per leaf."""
        if self.kind == LOGISTIC_REGRESSION:
            return int(self.coef_.size + 1)
        return int(sum(len(tree["value"]) for tree in self.trees_))

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated logits z(x), float64 (n,)."""
        return _logits(self._state(), self._check_input(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of the positive label, sigmoid(z / T), float64 (n,)."""
        return expit(self.logits(X) / self.temperature)

    def embed(self, X: np.ndarray) -> None:
        """No representation: the audit's representation parts do not apply (module docstring)."""
        return None

    def _check_input(self, X: np.ndarray) -> np.ndarray:
        return check_encoded_rows(X, self.n_features_in_, self.name)

    def to_dict(self) -> dict[str, Any]:
        state = {"coef": self.coef_.tolist(), "intercept": self.intercept_} if self.kind == LOGISTIC_REGRESSION \
            else {"trees": [{k: v.tolist() for k, v in tree.items()} for tree in self.trees_],
                  "baseline": self.baseline_}
        return {"format_version": FORMAT_VERSION, "equiscope_version": __version__, "name": self.name,
                "pretraining": None, "strategy": CLASSICAL, "kind": self.kind, "random_state": self.random_state,
                "n_features_in": self.n_features_in_, "setting": self.setting_, "n_trainable_params": self.n_trainable_params,
                "temperature": self.temperature, "calibration": self.calibration, "history": self.history,
                "state": state}

    def save(self, folder: str | Path) -> Path:
        """Write model.json into `folder` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / META_FILE, json.dumps(self.to_dict()))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ClassicalModel:
        path = Path(folder) / META_FILE
        if not path.exists():
            raise InputError(f"No saved model in '{folder}' ({META_FILE} expected)",
                             "Point to a folder written by ClassicalModel.save, e.g. OUT/models/NAME")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION or meta.get("strategy") != CLASSICAL:
            raise InputError(f"'{path}' is not a classical baseline of format {FORMAT_VERSION}",
                             "Retrain the model with this version of Equiscope")
        model = cls(meta["kind"], random_state=meta["random_state"])
        state = meta["state"]
        if model.kind == GRADIENT_BOOSTING:
            state = {"trees": [_tree_of(tree) for tree in state["trees"]], "baseline": state["baseline"]}
        model._set_state(state)
        model.n_features_in_ = int(meta["n_features_in"])
        model.setting_, model.history = meta["setting"], list(meta.get("history") or [])
        model.temperature, model.calibration = float(meta["temperature"]), meta.get("calibration")
        return model

    def __repr__(self) -> str:
        return f"ClassicalModel(kind={self.kind!r}, random_state={self.random_state})"


def is_classical_folder(folder: str | Path) -> bool:
    """Whether a saved model folder holds a classical baseline (model.json with strategy "classical")."""
    path = Path(folder) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("strategy") == CLASSICAL
    except (OSError, ValueError):
        return False


def same_logits(ours: np.ndarray, theirs: np.ndarray, terms: np.ndarray | float = 0.0) -> bool:
    """Whether two computations of the same logits agree up to float32 rounding:
        |ours - theirs| <= 1e-5 (1 + terms) + 1e-5 |theirs|
    where `terms` is the sum of the absolute values of the terms summed into each logit
    (sum_j |x_j w_j| + |b| for a linear model): rounding scales with the terms, and where they
    cancel the logit itself is small."""
    return bool(np.all(np.abs(ours - theirs) <= 1e-5 * (1 + np.asarray(terms)) + 1e-5 * np.abs(theirs)))


def fit_classical(kind: str, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                  seed: int, threads: int = 1) -> ClassicalModel:
    """One baseline fit as a picklable task (the pipeline runs it on its worker pool), on at most
    `threads` OpenMP/BLAS threads: HGB's default of one thread per core spins against the
    other workers (German: 13 s on 2 busy cores instead of 0.2 s)."""
    with threadpool_limits(limits=int(threads)):
        return ClassicalModel(kind, random_state=seed).fit(X_train, y_train, X_val, y_val)


_TREE_FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "value")


def _tree_of(nodes) -> dict[str, np.ndarray]:
    """The fields of one tree's nodes that prediction needs, as plain arrays (sklearn's record
    array, or the lists of a saved model)."""
    types = {"feature_idx": np.int64, "left": np.int64, "right": np.int64, "missing_go_to_left": bool,
             "is_leaf": bool, "num_threshold": np.float64, "value": np.float64}
    return {name: np.asarray(nodes[name], dtype=types[name]) for name in _TREE_FIELDS}


def _state_of(model) -> dict:
    """The learned numbers of a fitted scikit-learn model, as this module evaluates and saves them."""
    if isinstance(model, LogisticRegression):
        return {"coef": model.coef_.ravel().astype(np.float64), "intercept": float(model.intercept_[0])}
    trees = [_tree_of(predictors[0].nodes) for predictors in model._predictors]  # sklearn's fitted trees (binary)
    return {"trees": trees, "baseline": float(np.ravel(model._baseline_prediction)[0])}


def _tree_values(tree: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Each row's leaf value: from the root, go left where x[feature] <= threshold (NaN: where
    the split sends missing values), as scikit-learn's predictor does for numeric splits. (One
    tree at a time: walking all trees at once in one array was 2x slower on Adult's test rows.)"""
    node = np.zeros(len(X), dtype=np.int64)
    rows = np.arange(len(X))
    while True:
        active = ~tree["is_leaf"][node]
        if not active.any():
            return tree["value"][node]
        at, where = node[active], rows[active]
        x = X[where, tree["feature_idx"][at]]
        left = np.where(np.isnan(x), tree["missing_go_to_left"][at], x <= tree["num_threshold"][at])
        node[active] = np.where(left, tree["left"][at], tree["right"][at])


def _logits(state: dict, X: np.ndarray) -> np.ndarray:
    if "coef" in state:
        return X.astype(np.float64) @ np.asarray(state["coef"], dtype=np.float64) + float(state["intercept"])
    X = X.astype(np.float64)
    return float(state["baseline"]) + sum((_tree_values(tree, X) for tree in state["trees"]), np.zeros(len(X)))


def _as_matrix(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float32)
