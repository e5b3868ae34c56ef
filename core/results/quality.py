"""Models no better than chance: the flag every page and report section shows beside their numbers.

A model that predicts one label for nearly every row, or whose balanced accuracy is within
`CHANCE_MARGIN` of chance (or below it), has small gaps for the wrong reason: it treats the groups
alike because it tells no one apart. Tried on a public arrests table where every model predicted
the same outcome for ~98% of people, only one page warned (issue 14). `model_quality` is the one
rule; the summary never leads with such a model's gaps (core.results.summary), and the report and
the dashboard's Fairness, Compare, Embeddings and Explain pages show its sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.results.folder import ModelView, ReportView
from core.results.formatting import ci_label, fmt_ci, fmt_int, fmt_num, fmt_pct, is_number

#: "one-label": the model predicts the same label for at least this share of the test rows.
ONE_LABEL_SHARE = 0.98
#: "near-chance": balanced accuracy at most this far above 0.5 (chance), or below it.
CHANCE_MARGIN = 0.02
CHANCE = 0.5


def _quoted(positive_label: Any) -> str:
    return f"\u201c{positive_label}\u201d" if positive_label not in (None, "") else "the positive label"


def _share(overall: Mapping) -> str:
    """"every one of the 200 test rows" / "99.5% of the 200 test rows" / "none of ..."."""
    rate, n = overall.get("selection_rate"), fmt_int(overall.get("n"))
    if rate == 1:
        return f"every one of the {n} test rows"
    if rate == 0:
        return f"none of the {n} test rows"
    return f"{fmt_pct(rate)} of the {n} test rows"


def one_label_share(model_entry: Mapping) -> float | None:
    """The share of test rows given the model's more frequent label (None without a selection rate)."""
    rate = (model_entry.get("overall") or {}).get("selection_rate")
    return max(rate, 1 - rate) if is_number(rate) else None


def guessing_text(model_entry: Mapping, confidence: Any = None) -> str:
    """"NAME is not clearly better than guessing: balanced accuracy ..., where 0.50 is chance, ..."."""
    overall = model_entry.get("overall") or {}
    ci = (overall.get("ci") or {}).get("balanced_accuracy")
    interval = f" ({ci_label(confidence)} {fmt_ci(ci)})" if ci and confidence is not None else ""
    return (f"{model_entry.get('name', 'This model')} is not clearly better than guessing: balanced accuracy "
            f"{fmt_num(overall.get('balanced_accuracy'))}{interval}, where {fmt_num(CHANCE)} is chance, so its gaps "
            f"say little about fair treatment.")


def _one_label_text(model_entry: Mapping, positive_label: Any) -> str:
    overall = model_entry.get("overall") or {}
    text = (f"{model_entry.get('name', 'This model')} predicts {_quoted(positive_label)} for {_share(overall)} "
            f"(balanced accuracy {fmt_num(overall.get('balanced_accuracy'))}; {fmt_num(CHANCE)} is chance).")
    if overall.get("selection_rate") in (0, 1):
        return text + (" Its selection-rate gaps are 0 by construction: it treats everyone alike because it tells "
                       "no one apart. That is not fairness in any useful sense; do not choose it for its small gaps.")
    return text + (f" Gaps close to 0 are then expected whatever the groups (it is within "
                   f"{fmt_pct(1 - ONE_LABEL_SHARE, 0)} of predicting the same label for everyone), so they say "
                   f"little about fair treatment.")


def model_quality(model_entry: Mapping, *, positive_label: Any = None, confidence: Any = None) -> dict[str, Any]:
    """{"flag": None | "one-label" | "near-chance", "text": a plain sentence ("" when unflagged),
    "badge": what the model does, to follow its name in a table cell or a sentence ("predicts one
    label for every row"; "" when unflagged)} of one `report["models"]` entry.

    "one-label": one label for at least ONE_LABEL_SHARE of the test rows (checked first: such a model
    is near chance too, and the share says why). "near-chance": balanced accuracy at most
    0.5 + CHANCE_MARGIN (within the margin of chance, or below it: a model worse than guessing is no
    better for the gaps). `positive_label` and `confidence` only make the sentence more precise.
    """
    overall = model_entry.get("overall") or {}
    share = one_label_share(model_entry)
    if share is not None and share >= ONE_LABEL_SHARE:
        badge = ("predicts one label for every row" if share == 1
                 else f"predicts one label for {fmt_pct(share)} of rows")
        return {"flag": "one-label", "text": _one_label_text(model_entry, positive_label), "badge": badge}
    balanced = overall.get("balanced_accuracy")
    if is_number(balanced) and balanced <= CHANCE + CHANCE_MARGIN:
        return {"flag": "near-chance", "text": guessing_text(model_entry, confidence),
                "badge": f"is no better than chance (balanced accuracy {fmt_num(balanced)})"}
    return {"flag": None, "text": "", "badge": ""}


def quality_of(view: ReportView, model: ModelView) -> dict[str, Any]:
    """`model_quality` of one model of a report, in that report's words (positive label, confidence)."""
    return model_quality(model.entry, positive_label=view.positive_label, confidence=view.confidence)


def flagged_models(report: Mapping, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The flagged models of a report.json dict (those in `names`, default all), in report order:
    {"model", "flag", "text", "badge"} each. What a page shows above a model's numbers."""
    view = ReportView(report)
    out = []
    for model in view.models:
        if names is not None and model.name not in names:
            continue
        quality = quality_of(view, model)
        if quality["flag"] is not None:
            out.append({"model": model.name, **quality})
    return out
