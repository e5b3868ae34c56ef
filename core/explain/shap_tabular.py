"""SHAP for one row, over the same readable columns and training rows LIME reads.

We use the `shap` library's model-agnostic permutation explainer
(`shap.explainers.Permutation` over a `shap.maskers.Independent` background) as published;
this module only decides what it is given and reads what it returns:

- Columns: the study's original feature columns in LIME's matrix form (`RunContext.lime_matrix`:
  numerics raw, categoricals as label codes, personal data left out), so a SHAP value and a LIME
  weight name the same feature. The model is asked through the same bridge as LIME
  (`lime_tabular.positive_probability`: encode with the fitted TabularEncoder, then the model).
- Background: `BACKGROUND_ROWS` (100) of the study's training rows (never test rows), drawn once
  per run with `numpy.random.default_rng(0)` (fixed, like LIME's explainer, so that the seed of an
  explanation moves only the permutations). A "missing" feature takes the background rows'
  values, one at a time (interventional SHAP).
- The explained quantity is the model's probability of the positive label f. Per row,
  `base_value` = mean of f over the background rows, and the permutation explainer's values
  satisfy efficiency exactly (each permutation's forward and backward pass telescope):
      base_value + sum_j value_j = f(row)
- `MAX_EVALS` (500, shap's default) masked rows per explanation, i.e.
  500 // (2 M + 1) antithetic permutations for M columns (17 for Adult's 14 columns), each
  evaluated on every background row: 500 x 100 = 50,000 model rows per explanation.
- Why permutation and not Kernel SHAP: on an Adult row the Kernel explainer at its default
  `nsamples` (2 M + 2048 coalitions) took many times longer for the same background (measured in
  docs/decisions.md, issue 20), and its efficiency holds only through its constrained regression;
  the permutation explainer's holds by construction.
- Reproducibility: shap draws its permutations from NumPy's global random state; an
  explanation seeds it with `seed` and puts the caller's state back afterwards, under the run's
  lock (one explanation at a time per run), so the same seed gives the same values whatever ran
  before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from core.errors import InputError
from core.explain.context import RunContext, display_value
from core.explain.lime_tabular import decision_of, missing_value_notes, positive_probability

BACKGROUND_ROWS = 100
MAX_EVALS = 500
BACKGROUND_SEED = 0
ALGORITHM = "permutation"


@dataclass
class FeatureValue:
    feature: str
    value: float  # the SHAP value: this feature's share of f(row) - base_value
    feature_value: object = None  # the row's own (raw) value of the feature, for reading


@dataclass
class ShapExplanation:
    row_id: int
    model: str
    prediction: int
    probability: float
    label: str
    values: list[FeatureValue]
    base_value: float
    seed: int
    max_evals: int
    background_rows: int
    algorithm: str = ALGORITHM
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def background(ctx: RunContext) -> np.ndarray:
    """The background rows (LIME's matrix form) shared by every SHAP explanation of the run."""
    with ctx.lock:
        if "shap_background" not in ctx._cache:
            rows = ctx.train_rows
            take = min(BACKGROUND_ROWS, len(rows))
            picked = np.sort(np.random.default_rng(BACKGROUND_SEED).choice(rows, size=take, replace=False))
            ctx._cache["shap_background"] = ctx.lime_matrix[picked]
        return ctx._cache["shap_background"]


def _masker(ctx: RunContext):
    # Imported here: shap loads numba and its own compiled code (seconds), which a run that only
    # asks LIME, and `equiscope --help`, must not pay for.
    import shap

    with ctx.lock:
        if "shap_masker" not in ctx._cache:
            data = background(ctx)
            ctx._cache["shap_masker"] = shap.maskers.Independent(data, max_samples=len(data))
        return ctx._cache["shap_masker"]


def shap_values(ctx: RunContext, model_name: str, row: int, seed: int = 0, *, max_evals: int = MAX_EVALS,
                z: np.ndarray | None = None) -> dict:
    """One SHAP run: value per column (codec column order), base value, and f at the row.

    `z`: the row to explain in LIME's matrix form (default: row `row` of the table; the attribute
    flip passes the flipped row)."""
    import shap  # see _masker

    n_columns = len(ctx.codec.columns)
    if max_evals < 2 * n_columns + 1:
        raise InputError(f"max_evals {max_evals} is too small for {n_columns} columns",
                         f"Use at least {2 * n_columns + 1} (shap's default is {MAX_EVALS})")
    z = ctx.lime_matrix[row] if z is None else np.asarray(z, dtype=np.float64)
    probability = positive_probability(ctx, model_name, row)
    masker = _masker(ctx)
    with ctx.lock:
        outside_state = np.random.get_state()
        try:
            explainer = shap.explainers.Permutation(probability, masker, seed=seed)  # seeds NumPy's global state
            explanation = explainer(z[None, :], max_evals=max_evals, silent=True)
        finally:
            np.random.set_state(outside_state)
    values = np.asarray(explanation.values, dtype=np.float64).reshape(n_columns)
    base = float(np.ravel(explanation.base_values)[0])
    return {"values": values, "base_value": base, "output": float(probability(z[None, :])[0])}


def explain_row_shap(ctx: RunContext, row_id: int, model_name: str | None = None, *, seed: int = 0,
                     max_evals: int = MAX_EVALS) -> ShapExplanation:
    """SHAP explanation of one row of the study's table for one model (module docstring)."""
    row = ctx.check_row(row_id)
    model_name = model_name or ctx.default_model
    ctx.model(model_name)  # unknown model -> InputError before any work
    result = shap_values(ctx, model_name, row, seed, max_evals=max_evals)
    columns = ctx.codec.columns
    raw = ctx.frame.iloc[row]
    order = np.argsort(-np.abs(result["values"]), kind="stable")
    probability, prediction = decision_of(ctx, model_name, row)
    notes = missing_value_notes(ctx, row, "SHAP")
    return ShapExplanation(
        row_id=row, model=model_name, prediction=prediction, probability=probability,
        label=ctx.positive_label if prediction else ctx.negative_label,
        values=[FeatureValue(feature=columns[j], value=float(result["values"][j]),
                             feature_value=display_value(raw[columns[j]])) for j in order],
        base_value=result["base_value"], seed=seed, max_evals=max_evals, background_rows=len(background(ctx)),
        notes=notes)
