"""fairlearn's mitigations as models of the study: what they decide, on the study's encoded
matrix X, and how they are saved (JSON only, never pickle) and loaded for the Explain page.

Three shapes cover every fairlearn mitigation Equiscope offers (core.mitigation.catalog):

    mixture        ExponentiatedGradient's randomized classifier: predictors h_j with weights w_j,
                   each a logistic regression z_j(x) = c_j . x + b_j deciding 1[z_j(x) > 0]
                   (scikit-learn's predict; a constant predictor is c_j = 0, b_j = +-1):
                       predict_proba(x) = sum_j w_j 1[z_j(f(x)) > 0]
                   f(x) = x (raw features) or the frozen SSL embedding of its base (`inner`).
                   fairlearn's own `predict` draws one h_j per row at random; this score is the
                   probability of a positive decision (`_pmf_predict(X)[:, 1]`), and the audit
                   draws each row's decision from it, seeded (`randomized`;
                   core.results.folder.drawn_decisions): a decision at 0.5 of it would undo the
                   constraint (Adult: an equalized-odds gap of 0.165 where the rule had 0.016).
    decorrelated   CorrelationRemover then a logistic regression: with s the sensitive columns,
                   u the others, x' = alpha (u - (s - mean_s) beta) + (1 - alpha) u, and
                       predict_proba(x) = sigmoid(c . x' + b)
    thresholds     ThresholdOptimizer on a trained model's scores (`inner`): per group g a rule
                   p_g(s) = sum_k q_k 1[s op_k t_k], replaced with probability p_c by a coin of rate c:
                       predict_proba(x) = p_c c + (1 - p_c) p_g(x)(s(x)),  g(x) decoded from x's
                   encoded sensitive columns (`GroupDecoder`): it reads the attribute when deciding.

Saved as DIR/model.json (the numbers above), with the inner model, where there is one, in
DIR/base (its own JSON/safetensors format).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from core import __version__
from core.data.features import check_encoded_rows
from core.errors import InputError
from core.files import atomic_write
from core.learning.classical import ClassicalModel, is_classical_folder
from core.learning.finetune.classifier import TrainedClassifier
from core.vocabulary import MITIGATION

META_FILE = "model.json"
INNER_FOLDER = "base"
FORMAT_VERSION = 1
MIXTURE, DECORRELATED, THRESHOLDS = "mixture", "decorrelated", "thresholds"
#: Decimals an encoded sensitive block is rounded to before it is looked up (float32 one-hot / z-scores).
PATTERN_DECIMALS = 5


class GroupDecoder:
    """Each row's group of one sensitive attribute, read from its encoded columns of X.

    Learned from rows whose groups are known: every distinct encoded pattern of the attribute's
    block and the one group it belongs to. A pattern of several groups (values the encoder merged
    into "(other)", or a binned numeric attribute) cannot be decoded: `fit` refuses it.
    """

    def __init__(self, attribute: str, block: slice) -> None:
        self.attribute, self.block = attribute, block

    def fit(self, X: np.ndarray, groups: np.ndarray) -> GroupDecoder:
        patterns, inverse = np.unique(self._patterns(X), axis=0, return_inverse=True)
        groups = np.asarray(groups, dtype=object).astype(str)
        owners = [np.unique(groups[inverse.ravel() == k]) for k in range(len(patterns))]
        if any(len(owner) != 1 for owner in owners):
            raise InputError(f"The groups of '{self.attribute}' cannot be read back from its encoded columns",
                             "Group-specific thresholds need a categorical attribute whose values are all kept "
                             "by the encoder")
        self.patterns_, self.groups_ = patterns, [str(owner[0]) for owner in owners]
        return self

    def decode(self, X: np.ndarray) -> np.ndarray:
        rows = self._patterns(X)
        found = np.full(len(rows), -1, dtype=np.int64)
        for k, pattern in enumerate(self.patterns_):
            found[np.all(rows == pattern, axis=1)] = k
        if (found < 0).any():
            raise InputError(f"A row's value of '{self.attribute}' was never seen when the thresholds were fitted",
                             "Explain rows of the study's own table")
        return np.asarray(self.groups_, dtype=object)[found]

    def _patterns(self, X: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(X, dtype=np.float64)[:, self.block], PATTERN_DECIMALS)

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "block": [self.block.start, self.block.stop],
                "patterns": self.patterns_.tolist(), "groups": self.groups_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupDecoder:
        decoder = cls(data["attribute"], slice(*data["block"]))
        decoder.patterns_ = np.asarray(data["patterns"], dtype=np.float64)
        decoder.groups_ = list(data["groups"])
        return decoder


class MitigatedModel:
    """A fairlearn mitigation of the audit model `base`, by the variant contract (core.run.variants).

    `shape` is MIXTURE, DECORRELATED or THRESHOLDS (module docstring) and `state` its numbers;
    `inner` is the trained model it reads (the embedding's or the scores' model), or None;
    `decoder` the GroupDecoder of THRESHOLDS. `mitigation` = {"name", "kind", "base", "params"}.
    """

    strategy = MITIGATION
    calibration = None

    def __init__(self, *, name: str, base: str, mitigation: dict, shape: str, state: dict, n_features_in: int,
                 inner: Any = None, decoder: GroupDecoder | None = None, history: list | None = None) -> None:
        self.name, self.base, self.mitigation = name, base, dict(mitigation)
        self.shape, self.state, self.n_features_in_ = shape, state, int(n_features_in)
        self.inner, self.decoder = inner, decoder
        self.history = list(history or [])
        self.pretraining = getattr(inner, "pretraining", None)

    @property
    def randomized(self) -> bool:
        """Whether its decisions are drawn from predict_proba (a mixture or a threshold rule with
        a coin), as fairlearn's own predict does, rather than taken at 0.5 of it."""
        return self.shape in (MIXTURE, THRESHOLDS)

    @property
    def n_trainable_params(self) -> int:
        """What this mitigation fitted (its base's parameters are counted with its base)."""
        if self.shape == MIXTURE:
            return int(np.size(self.state["coef"]) + np.size(self.state["intercept"]) + len(self.state["weights"]))
        if self.shape == DECORRELATED:
            return int(np.size(self.state["beta"]) + np.size(self.state["coef"]) + 1)
        return int(sum(2 * len(rule["thresholds"]) + 2 for rule in self.state["rules"].values()))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of a positive decision, float64 (n,) (the formulas of the module docstring),
        clipped to [0, 1]: fairlearn's weights sum to 1 only up to rounding (Adult: 1 + 2e-16)."""
        X = self._check_input(X)
        if self.shape == MIXTURE:
            features = self.inner.embed(X) if self.inner is not None else X
            z = features.astype(np.float64) @ np.asarray(self.state["coef"]).T + np.asarray(self.state["intercept"])
            p = (z > 0).astype(np.float64) @ np.asarray(self.state["weights"], dtype=np.float64)
        elif self.shape == DECORRELATED:
            p = expit(decorrelate(X, self.state) @ np.asarray(self.state["coef"]) + self.state["intercept"])
        else:
            p = rule_probabilities(self.state["rules"], self.inner.predict_proba(X), self.decoder.decode(X))
        return np.clip(p, 0.0, 1.0)

    def embed(self, X: np.ndarray) -> None:
        """None: a mixture over the embedding has its base's representation, audited with its base."""
        return None

    def _check_input(self, X: np.ndarray) -> np.ndarray:
        return check_encoded_rows(X, self.n_features_in_, self.name)

    def save(self, folder: str | Path) -> Path:
        """DIR/model.json, and the inner model in DIR/base (module docstring)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.inner is not None:
            self.inner.save(folder / INNER_FOLDER)
        meta = {"format_version": FORMAT_VERSION, "equiscope_version": __version__, "name": self.name,
                "strategy": MITIGATION, "pretraining": self.pretraining, "base": self.base,
                "mitigation": self.mitigation, "shape": self.shape, "state": _jsonable(self.state),
                "n_features_in": self.n_features_in_, "history": self.history,
                "decoder": self.decoder.to_dict() if self.decoder is not None else None}
        atomic_write(folder / META_FILE, json.dumps(meta))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MitigatedModel:
        path = Path(folder) / META_FILE
        if not path.exists():
            raise InputError(f"No saved model in '{folder}' ({META_FILE} expected)",
                             "Point to a folder written by MitigatedModel.save, e.g. OUT/models/NAME")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION or meta.get("strategy") != MITIGATION:
            raise InputError(f"'{path}' is not a mitigated model of format {FORMAT_VERSION}",
                             "Run the audit again with this version of Equiscope")
        inner_dir = Path(folder) / INNER_FOLDER
        inner = None
        if inner_dir.is_dir():
            inner = ClassicalModel.load(inner_dir) if is_classical_folder(inner_dir) else TrainedClassifier.load(inner_dir)
        decoder = GroupDecoder.from_dict(meta["decoder"]) if meta.get("decoder") else None
        return cls(name=meta["name"], base=meta["base"], mitigation=meta["mitigation"], shape=meta["shape"],
                   state=meta["state"], n_features_in=meta["n_features_in"], inner=inner, decoder=decoder,
                   history=meta.get("history"))

    def __repr__(self) -> str:
        return f"MitigatedModel(name={self.name!r}, shape={self.shape!r}, base={self.base!r})"


def decorrelate(X: np.ndarray, state: dict) -> np.ndarray:
    """CorrelationRemover's transform: x' = alpha (u - (s - mean_s) beta) + (1 - alpha) u."""
    X = np.asarray(X, dtype=np.float64)
    sensitive = np.asarray(state["sensitive"], dtype=np.int64)
    others = np.setdiff1d(np.arange(X.shape[1]), sensitive)
    u, s = X[:, others], X[:, sensitive]
    filtered = u - (s - np.asarray(state["mean"])) @ np.asarray(state["beta"]).reshape(len(sensitive), len(others))
    return float(state["alpha"]) * filtered + (1 - float(state["alpha"])) * u


def rule_probabilities(rules: dict[str, dict], scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """p = p_c c + (1 - p_c) sum_k q_k 1[s op_k t_k] per row, with its group's rule (the rules of
    core.audit.thresholds.optimize_thresholds: "thresholds" [{"operator", "threshold", "probability"}],
    "p_constant", "constant_positive_rate")."""
    scores = np.asarray(scores, dtype=np.float64)
    p = np.zeros(len(scores))
    unknown = sorted(set(map(str, groups)) - set(rules))
    if unknown:
        raise InputError(f"No threshold rule for group(s) {', '.join(unknown)}",
                         "Every group must occur among the rows the thresholds were fitted on")
    for group, rule in rules.items():
        rows = groups == group
        s = scores[rows]
        value = np.zeros(len(s))
        for part in rule["thresholds"]:
            threshold = float(part["threshold"])
            above = s > threshold if part["operator"] == ">" else s < threshold
            value += float(part["probability"]) * above
        p_constant = float(rule.get("p_constant") or 0.0)
        if p_constant:
            value = p_constant * float(rule["constant_positive_rate"]) + (1 - p_constant) * value
        p[rows] = value
    return p


def _jsonable(value: Any) -> Any:
    """Arrays as lists and non-finite floats as text ("inf"), so model.json is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return str(float(value))
    if isinstance(value, np.generic):
        return value.item()
    return value
