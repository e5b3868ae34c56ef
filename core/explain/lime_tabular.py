"""LIME for one row, over the original columns, with its stability across seeds.

We use the `lime` library (`lime.lime_tabular.LimeTabularExplainer`) as published; this
module only decides what it is given and reads what it returns:

- Columns: the study's original feature columns (not one-hot fragments), personal data left
  out. Categorical columns are `categorical_features` with their category names (label codes,
  see `core.explain.context`); numeric columns are discretised into training quartiles, LIME's
  default (`discretize_continuous=True, discretizer="quartile"`): a weight then reads
  "being in this quartile vs. not" ("27.00 < age <= 33.00"), comparable in scale to the 0/1
  categorical indicators, which raw-scale weights would not be.
- Training data: the study's training rows (never test rows), in original columns.
- Every column gets a weight: `num_features = number of columns`, `feature_selection="none"`
  (the local surrogate is a Ridge regression, alpha = 1, on all of LIME's interpretable 0/1
  features), so weights are comparable across rows, seeds and models.
- The explained quantity is the model's probability of the positive label;
  `intercept`, `local_fit_r2` (LIME's `score`: the weighted R^2 of the surrogate on its
  perturbation sample) and `local_prediction` (surrogate at the row) come from LIME.
- The predict function turns LIME's whole perturbation sample into one DataFrame of raw
  columns, encodes it with the fitted TabularEncoder and runs the model in batches under
  torch inference mode: no per-row Python.

Stability: the explanation is repeated with seeds `seed, seed+1, ..., seed+repeats-1`; the
reported weights are those of `seed` (LIME's own output, reproducible), each with the
standard deviation over repeats (ddof=1). A repeat's *top features* are its `top_k` largest
|weights| that are at least `min_share` of its largest |weight| (smaller ones are noise-level
for reading); the explanation is flagged unstable when the top features differ between
repeats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from core.errors import InputError
from core.explain.context import THRESHOLD, RunContext, display_value

TOP_K = 5
MIN_SHARE = 0.1
REPEATS = 5
NUM_SAMPLES = 5000


@dataclass
class FeatureWeight:
    feature: str
    value: object
    condition: str
    weight: float
    std: float = 0.0


@dataclass
class Stability:
    repeats: int
    seeds: list[int]
    top_k: int
    unstable: bool
    top_features: list[str]
    always_top: list[str]
    sometimes_top: list[str]
    agreement: float  # share of repeats whose top features equal those of the first
    max_std: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RowExplanation:
    row_id: int
    model: str
    prediction: int
    probability: float
    label: str
    weights: list[FeatureWeight]
    intercept: float
    local_fit_r2: float
    local_prediction: float
    stability: Stability | None
    num_samples: int
    seed: int
    split: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["stability"] = self.stability.to_dict() if self.stability else None
        return out


def explainer(ctx: RunContext):
    """LIME's explainer over the study's training rows (built once per run, see module docstring)."""
    from lime.lime_tabular import LimeTabularExplainer

    with ctx.lock:
        if "lime" not in ctx._cache:
            codec = ctx.codec
            train = ctx.lime_matrix[ctx.train_rows]
            categorical = [j for j in range(len(codec.columns)) if not codec.is_numeric[j]]
            names = {j: [str(v) for v in codec.vocab[codec.columns[j]]] for j in categorical}
            ctx._cache["lime"] = LimeTabularExplainer(
                train, mode="classification", feature_names=list(codec.columns), categorical_features=categorical,
                categorical_names=names, class_names=[ctx.negative_label, ctx.positive_label],
                discretize_continuous=True, discretizer="quartile", feature_selection="none", random_state=0)
        return ctx._cache["lime"]


_CONTROLLER: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """One controller per process (building one scans the loaded libraries: ~2 ms each time)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _reseed(lime_explainer, seed: int) -> None:
    """One seeded stream for everything random in LIME, so the same seed gives the same weights
    whatever was explained before with the shared explainer."""
    state = np.random.RandomState(seed)
    lime_explainer.random_state = state
    lime_explainer.base.random_state = state
    if lime_explainer.discretizer is not None:
        lime_explainer.discretizer.random_state = state


def positive_probability(ctx: RunContext, model_name: str, row: int):
    """Readable rows (n, columns) in LIME's matrix form -> (n,) the model's P(positive); the one
    bridge LIME and SHAP both ask (`row`: the explained row, for any withheld column a model reads)."""
    model = ctx.model(model_name)
    base_row = ctx.study.X[row]

    def probability(Z: np.ndarray) -> np.ndarray:
        return model.predict_proba(ctx.codec.encode(Z, base_row))

    return probability


def decision_of(ctx: RunContext, model_name: str, row: int) -> tuple[float, int]:
    """(probability of the positive outcome, decision at THRESHOLD) of the model for one test row."""
    probability = float(ctx.model(model_name).predict_proba(ctx.study.X[[row]])[0])
    return probability, int(probability >= THRESHOLD)


def missing_value_notes(ctx: RunContext, row: int, explainer_name: str) -> list[str]:
    """One note per numeric column missing in the row: the explainer sees the training median there."""
    raw = ctx.frame.iloc[row]
    return [f"'{c}' is missing in this row; {explainer_name} treats it as the training median "
            f"({display_value(ctx.study.encoder.medians_[c])})."
            for j, c in enumerate(ctx.codec.columns) if ctx.codec.is_numeric[j] and display_value(raw[c]) is None]


def predict_function(ctx: RunContext, model_name: str, row: int):
    """LIME's classifier_fn: perturbed raw rows (n, columns) -> (n, 2) [P(negative), P(positive)]."""
    probability = positive_probability(ctx, model_name, row)

    def predict(Z: np.ndarray) -> np.ndarray:
        p = probability(Z)
        return np.column_stack([1.0 - p, p])

    return predict


def lime_weights(ctx: RunContext, model_name: str, row: int, num_samples: int, seed: int,
                 z: np.ndarray | None = None) -> dict:
    """One LIME run: weight per column (in codec column order), condition names, intercept, R^2.
    `z`: the row to explain in LIME's matrix form (default: row `row`; the attribute flip passes
    the flipped row)."""
    lime_explainer = explainer(ctx)
    z = ctx.lime_matrix[row] if z is None else np.asarray(z, dtype=np.float64)
    predict = predict_function(ctx, model_name, row)
    n_columns = len(ctx.codec.columns)
    # The explainer's random state is shared: one explanation at a time per run. BLAS gets one
    # thread: LIME's Ridge works on a (num_samples x columns) matrix, far too small to gain from
    # threads, and on a busy machine their spinning cost 0.2-0.7 s per explanation (measured).
    with ctx.lock, _blas_controller().limit(limits=1, user_api="blas"):
        _reseed(lime_explainer, seed)
        explanation = lime_explainer.explain_instance(z, predict, labels=(1,), num_features=n_columns,
                                                      num_samples=num_samples)
    weights = np.zeros(n_columns)
    conditions = list(ctx.codec.columns)
    for (index, weight), (condition, _) in zip(explanation.local_exp[1], explanation.as_list(label=1)):
        weights[index] = weight
        conditions[index] = condition
    return {"weights": weights, "conditions": conditions, "intercept": float(explanation.intercept[1]),
            "score": float(explanation.score), "local_prediction": float(np.ravel(explanation.local_pred)[0])}


def top_features(weights: np.ndarray, top_k: int = TOP_K, min_share: float = MIN_SHARE) -> frozenset[int]:
    """Indices of the `top_k` largest |weights| that are at least `min_share` of the largest."""
    magnitude = np.abs(weights)
    largest = magnitude.max() if magnitude.size else 0.0
    if largest <= 0:
        return frozenset()
    order = np.argsort(-magnitude, kind="stable")[:top_k]
    return frozenset(int(i) for i in order if magnitude[i] >= min_share * largest)


def stability(runs: np.ndarray, columns: list[str], seeds: list[int], top_k: int = TOP_K,
              min_share: float = MIN_SHARE) -> Stability:
    """Spread of weights over repeats (rows of `runs`) and whether the top features change."""
    sets = [top_features(w, top_k, min_share) for w in runs]
    always = frozenset.intersection(*sets) if sets else frozenset()
    union = frozenset.union(*sets) if sets else frozenset()
    std = runs.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(runs.shape[1])
    first = sorted(sets[0], key=lambda i: -abs(runs[0][i])) if sets else []
    return Stability(repeats=len(runs), seeds=list(seeds), top_k=top_k, unstable=any(s != sets[0] for s in sets),
                     top_features=[columns[i] for i in first],
                     always_top=[columns[i] for i in sorted(always, key=lambda i: -abs(runs[0][i]))],
                     sometimes_top=[columns[i] for i in sorted(union - always, key=lambda i: -abs(runs[0][i]))],
                     agreement=float(np.mean([s == sets[0] for s in sets])) if sets else 1.0,
                     max_std=float(std.max()) if std.size else 0.0)


def explain_row(ctx: RunContext, row_id: int, model_name: str | None = None, *, num_samples: int = NUM_SAMPLES,
                seed: int = 0, repeats: int = REPEATS, top_k: int = TOP_K) -> RowExplanation:
    """LIME explanation of one row of the study's table for one model, with its stability."""
    row = ctx.check_row(row_id)
    model_name = model_name or ctx.default_model
    ctx.model(model_name)  # unknown model -> InputError before any work
    if num_samples < 10:
        raise InputError(f"num_samples {num_samples} is too small", "Use at least 10 (LIME's default is 5000)")
    if repeats < 1:
        raise InputError(f"repeats {repeats} must be at least 1", "Use 5 to measure stability, 1 to skip it")
    seeds = [seed + i for i in range(repeats)]
    runs = [lime_weights(ctx, model_name, row, num_samples, s) for s in seeds]
    main = runs[0]
    weights = np.stack([r["weights"] for r in runs])
    columns = ctx.codec.columns
    std = weights.std(axis=0, ddof=1) if repeats > 1 else np.zeros(len(columns))
    raw = ctx.frame.iloc[row]
    order = np.argsort(-np.abs(main["weights"]), kind="stable")
    features = [FeatureWeight(feature=columns[j], value=display_value(raw[columns[j]]), condition=main["conditions"][j],
                              weight=float(main["weights"][j]), std=float(std[j])) for j in order]
    probability, prediction = decision_of(ctx, model_name, row)
    notes = missing_value_notes(ctx, row, "LIME")
    return RowExplanation(
        row_id=row, model=model_name, prediction=prediction, probability=probability,
        label=ctx.positive_label if prediction else ctx.negative_label, weights=features,
        intercept=main["intercept"], local_fit_r2=main["score"], local_prediction=main["local_prediction"],
        stability=stability(weights, columns, seeds, top_k) if repeats > 1 else None,
        num_samples=num_samples, seed=seed, split=ctx.split_of(row), notes=notes)


def compare_models(ctx: RunContext, row_id: int, model_names: list[str], *, num_samples: int = NUM_SAMPLES,
                   seed: int = 0, repeats: int = 1) -> dict:
    """The same row explained by several models, weights side by side.

    Returns {"row_id", "models": [RowExplanation dicts], "table": [{"feature", "value",
    "weights": {model: weight}, "difference"}]} where difference = weight of the first model
    minus weight of the second (None with one model), rows ordered by the largest |weight|."""
    explanations = [explain_row(ctx, row_id, name, num_samples=num_samples, seed=seed, repeats=repeats)
                    for name in model_names]
    by_model = [{w.feature: w for w in e.weights} for e in explanations]
    table = []
    for feature in ctx.codec.columns:
        weights = {e.model: by_model[i][feature].weight for i, e in enumerate(explanations)}
        values = list(weights.values())
        table.append({"feature": feature, "value": by_model[0][feature].value,
                      "conditions": {e.model: by_model[i][feature].condition for i, e in enumerate(explanations)},
                      "weights": weights, "difference": values[0] - values[1] if len(values) > 1 else None})
    table.sort(key=lambda r: -max(abs(w) for w in r["weights"].values()))
    return {"row_id": int(row_id), "models": [e.to_dict() for e in explanations], "table": table}
