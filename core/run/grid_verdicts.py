"""The grid's verdicts: every SSL method x strategy x label fraction against the supervised
baseline of the same cell, per sensitive attribute and headline gap, Holm-adjusted as ONE family.

Each cell's report already decides its own comparisons within the cell's family
(core.audit.multiplicity); a grid makes many more of them, and at 5% each some would be "found"
by chance alone. So the grid collects every cell's unadjusted `compared_with_supervised`
p-values for the headline gaps and adjusts them together with `multiplicity.holm`:

    p_adjusted = holm(all p-values of the grid),   clear = p_adjusted < 1 - confidence

and, as everywhere else, a difference below multiplicity.PRACTICAL_FLOOR is never a finding
("too small to matter"). The words are core.results.wording.comparison_verdict's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.audit.multiplicity import PRACTICAL_FLOOR, clears_floor, holm
from core.results.wording import comparison_verdict
from core.vocabulary import HEADLINE_GAPS, model_name

FAMILY = "grid: every method x strategy x label fraction vs the supervised baseline"


def grid_verdicts(cells: Iterable[tuple[dict, dict]]) -> dict[str, Any]:
    """`cells`: (grid.json row, that cell's report) for every finished cell's row (one row per
    method, strategy, label fraction). Returns

        {"family", "method": "holm", "alpha", "practical_floor", "size", "rows": [
            {"method", "strategy", "label_fraction", "cell", "model", "attribute", "gap",
             "difference", "ci", "p_value", "p_adjusted", "clear", "below_floor", "verdict"}, ...]}

    size counts the comparisons with a p-value (the family Holm adjusted over)."""
    rows, alpha = [], None
    for row, report in cells:
        model = next((m for m in report.get("models") or []
                      if m.get("name") == model_name(row["method"], row["strategy"])), None)
        if model is None:
            continue
        confidence = float((report.get("bootstrap") or {}).get("confidence", 0.95))
        alpha = 1 - confidence if alpha is None else alpha
        for attribute in (report.get("study") or {}).get("sensitive") or []:
            for gap in HEADLINE_GAPS:
                entry = ((model.get("compared_with_supervised") or {}).get(attribute) or {}).get(gap)
                if not isinstance(entry, dict):
                    continue
                cleared = clears_floor(entry.get("difference"))
                rows.append({"method": row["method"], "strategy": row["strategy"],
                             "label_fraction": row["label_fraction"], "cell": row["cell"], "model": model["name"],
                             "attribute": attribute, "gap": gap, "difference": entry.get("difference"),
                             "ci": entry.get("ci"), "p_value": entry.get("p_value"),
                             "below_floor": None if cleared is None else not cleared})
    alpha = 0.05 if alpha is None else round(alpha, 10)
    adjusted = holm([row["p_value"] for row in rows])
    for row, p in zip(rows, adjusted):
        row["p_adjusted"] = p
        row["clear"] = None if p is None else bool(p < alpha)
        row["verdict"] = comparison_verdict({"difference": row["difference"], "ci": row["ci"],
                                             "excludes_zero": row["clear"], "below_floor": row["below_floor"]})
    return {"family": FAMILY, "method": "holm", "alpha": alpha, "practical_floor": PRACTICAL_FLOOR,
            "size": sum(p is not None for p in adjusted), "rows": rows}
