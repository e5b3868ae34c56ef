"""Explanations of an audited model's decisions (docs/explanations.md).

- `load_run(run_dir) -> RunContext`: an audit run folder opened once (study, models, predictions).
- `explain_row(ctx, row_id, model, num_samples=5000, seed=0, repeats=5) -> RowExplanation`:
  LIME over the original columns, with its stability across seeds (`lime_tabular`).
- `compare_models(ctx, row_id, [model_a, model_b])`: the same row, weights side by side.
- `subgroup_importance(ctx, attribute, model, ...)`: mean |weight| per feature and group, with
  bootstrap intervals and the differences between groups (`subgroup`; job kind "explain-subgroup").
- `explain_row_shap(ctx, row_id, model, seed=0) -> ShapExplanation`: SHAP (permutation) over the
  same columns and training rows (`shap_tabular`).
- `agreement`, `explanations_agreement`: rank agreement of LIME and SHAP on one decision (`agreement`).
- `flip_row`, `flip_rates`, `nearest_counterfactuals`, `explain_flip`: attribute-flip, nearest real
  counterfactuals, and the flip explained by LIME and/or SHAP (`counterfactual`).
"""

from core.explain.agreement import agreement, explanations_agreement
from core.explain.context import RunContext, load_run
from core.explain.counterfactual import (explain_flip, flip_rates, flip_row, flip_values, nearest_counterfactuals,
                                         proxies)
from core.explain.lime_tabular import RowExplanation, compare_models, explain_row
from core.explain.shap_tabular import ShapExplanation, explain_row_shap
from core.explain.subgroup import subgroup_importance

__all__ = ["RowExplanation", "RunContext", "ShapExplanation", "agreement", "compare_models", "explain_flip",
           "explain_row", "explain_row_shap", "explanations_agreement", "flip_rates", "flip_row", "flip_values",
           "load_run", "nearest_counterfactuals", "proxies", "subgroup_importance"]
