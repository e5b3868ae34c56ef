"""Explanations of an audited model's decisions (docs/explanations.md).

- `load_run(run_dir) -> RunContext`: an audit run folder opened once (study, models, predictions).
- `explain_row(ctx, row_id, model, num_samples=5000, seed=0, repeats=5) -> RowExplanation`:
  LIME over the original columns, with its stability across seeds (`lime_tabular`).
- `compare_models(ctx, row_id, [model_a, model_b])`: the same row, weights side by side.
- `subgroup_importance(ctx, attribute, model, ...)`: mean |weight| per feature and group, with
  bootstrap intervals and the differences between groups (`subgroup`; job kind "explain-subgroup").
- `flip_row`, `flip_rates`, `nearest_counterfactuals`: attribute-flip and nearest real
  counterfactuals (`counterfactual`).
"""

from core.explain.context import RunContext, load_run
from core.explain.counterfactual import flip_rates, flip_row, flip_values, nearest_counterfactuals, proxies
from core.explain.lime_tabular import RowExplanation, compare_models, explain_row
from core.explain.subgroup import subgroup_importance

__all__ = ["RowExplanation", "RunContext", "compare_models", "explain_row", "flip_rates", "flip_row", "flip_values",
           "load_run", "nearest_counterfactuals", "proxies", "subgroup_importance"]
