"""Models no better than chance, or worse than a classical baseline: the flag every page and
report section shows beside their numbers.

A model that predicts one label for nearly every row, or whose balanced accuracy is within
`CHANCE_MARGIN` of chance (or below it), has small gaps for the wrong reason: it treats the groups
alike because it tells no one apart. Tried on a public arrests table where every model predicted
the same outcome for ~98% of people, only one page warned (issue 14). `model_quality` is the one
rule; the summary never leads with such a model's gaps (core.results.summary), and the report and
the dashboard's Fairness, Compare, Embeddings and Explain pages show its sentence.

"below-baseline" (issue 16): a model whose test ROC AUC is more than `BASELINE_MARGIN` below
the best classical baseline of its report (core.learning.classical) is one nobody would deploy
in that baseline's place, so its gaps describe a weaker model than the team could have had.
Unlike the two chance flags, its gaps still describe a model that tells people apart, so the
summary keeps it in its headlines (`CHANCE_FLAGS` are the flags that leave a model out).
`versus_classical` says how the self-supervised models compare with that baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.results.folder import ModelView, ReportView
from core.results.wording import MEASURE_LABELS, model_label
from core.results.formatting import ci_label, fmt_ci, fmt_int, fmt_num, fmt_pct, is_number
from core.vocabulary import CLASSICAL, GAP_NAMES, HEADLINE_GAPS

#: "one-label": the model predicts the same label for at least this share of the test rows.
ONE_LABEL_SHARE = 0.98
#: "near-chance": balanced accuracy at most this far above 0.5 (chance), or below it.
CHANCE_MARGIN = 0.02
CHANCE = 0.5
#: "below-baseline": test ROC AUC more than this below the best classical baseline's.
BASELINE_MARGIN = 0.02
#: The flags of a model no better than chance: its gaps are small for the wrong reason.
CHANCE_FLAGS = ("one-label", "near-chance")


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
    return (f"{_who(model_entry)} is not clearly better than guessing: balanced accuracy "
            f"{fmt_num(overall.get('balanced_accuracy'))}{interval}, where {fmt_num(CHANCE)} is chance, so its gaps "
            f"say little about fair treatment.")


def _who(model_entry: Mapping) -> str:
    """The model's plain label (core.results.wording): these sentences sit beside its numbers on
    every page an ethicist reads (issue 17, item 6); the code name stays in the appendix."""
    return model_label(model_entry) if model_entry.get("name") else "This model"


def _one_label_text(model_entry: Mapping, positive_label: Any) -> str:
    overall = model_entry.get("overall") or {}
    text = (f"{_who(model_entry)} predicts {_quoted(positive_label)} for {_share(overall)} "
            f"(balanced accuracy {fmt_num(overall.get('balanced_accuracy'))}; {fmt_num(CHANCE)} is chance).")
    if overall.get("selection_rate") in (0, 1):
        return text + (" Its selection-rate gaps are 0 by construction: it treats everyone alike because it tells "
                       "no one apart. That is not fairness in any useful sense; do not choose it for its small gaps.")
    return text + (f" Gaps close to 0 are then expected whatever the groups (it is within "
                   f"{fmt_pct(1 - ONE_LABEL_SHARE, 0)} of predicting the same label for everyone), so they say "
                   f"little about fair treatment.")


def best_classical(models: Sequence[Mapping]) -> Mapping | None:
    """The classical baseline entry (strategy "classical") with the highest test ROC AUC, or None."""
    classical = [m for m in models if m.get("strategy") == CLASSICAL
                 and is_number((m.get("overall") or {}).get("roc_auc"))]
    return max(classical, key=lambda m: m["overall"]["roc_auc"]) if classical else None


def _below_baseline(model_entry: Mapping, baseline: Mapping | None) -> dict[str, Any] | None:
    """The "below-baseline" flag: ROC AUC < baseline's - BASELINE_MARGIN (never the baseline itself)."""
    auc = (model_entry.get("overall") or {}).get("roc_auc")
    if baseline is None or baseline.get("name") == model_entry.get("name") or not is_number(auc):
        return None
    base_auc = baseline["overall"]["roc_auc"]
    if not auc < base_auc - BASELINE_MARGIN:
        return None
    name, base = _who(model_entry), _who(baseline)  # plain labels: this sentence sits beside the numbers
    text = (f"{name} has a test AUC of {fmt_num(auc)}, {fmt_num(base_auc - auc)} below {base} "
            f"({fmt_num(base_auc)}), a classical baseline fitted on the same rows: few teams would deploy it in "
            f"the baseline's place, so its gaps describe a weaker model than they could have.")
    return {"flag": "below-baseline", "text": text,
            "badge": f"is {fmt_num(base_auc - auc)} below {base} in AUC"}


def model_quality(model_entry: Mapping, *, positive_label: Any = None, confidence: Any = None,
                  baseline: Mapping | None = None) -> dict[str, Any]:
    """{"flag": None | "one-label" | "near-chance" | "below-baseline", "text": a plain sentence ("" when unflagged),
    "badge": what the model does, to follow its name in a table cell or a sentence ("predicts one
    label for every row"; "" when unflagged)} of one `report["models"]` entry.

    "one-label": one label for at least ONE_LABEL_SHARE of the test rows (checked first: such a model
    is near chance too, and the share says why). "near-chance": balanced accuracy at most
    0.5 + CHANCE_MARGIN (within the margin of chance, or below it: a model worse than guessing is no
    better for the gaps). "below-baseline" (checked last): test ROC AUC below that of `baseline`
    (the report's `best_classical` entry) by more than BASELINE_MARGIN. `positive_label` and
    `confidence` only make the sentence more precise.
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
    return _below_baseline(model_entry, baseline) or {"flag": None, "text": "", "badge": ""}


def quality_of(view: ReportView, model: ModelView) -> dict[str, Any]:
    """`model_quality` of one model of a report, in that report's words (positive label, confidence),
    against the report's best classical baseline."""
    return model_quality(model.entry, positive_label=view.positive_label, confidence=view.confidence,
                         baseline=best_classical([m.entry for m in view.models]))


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


def versus_classical(report: Mapping) -> dict[str, Any] | None:
    """How the self-supervised models compare with the best classical baseline, as data and one
    plain sentence (for the summary and the scorecard); None without a baseline or an SSL model.

    {"baseline": name, "accuracy", "roc_auc": the baseline's, "models": [{"model", "accuracy",
    "roc_auc", "accuracy_difference", "auc_difference" (model minus baseline), "gaps":
    {attribute: {gap: {"model", "baseline", "difference"}}}}] for every model with a pretraining,
    best ROC AUC first, "text"}. The gaps are the headline gaps (HEADLINE_GAPS) of every single
    sensitive attribute; the sentence names the best SSL model and the first attribute's first gap.
    """
    view = ReportView(report)
    entries = [m.entry for m in view.models]
    baseline = best_classical(entries)
    ssl = [m for m in view.models if m.pretraining is not None]
    if baseline is None or not ssl:
        return None
    base = ModelView(baseline)

    def difference(a: Any, b: Any) -> float | None:
        return a - b if is_number(a) and is_number(b) else None

    rows = []
    for model in ssl:
        gaps = {attribute: {gap: {"model": model.gaps(attribute).get(gap), "baseline": base.gaps(attribute).get(gap),
                                  "difference": difference(model.gaps(attribute).get(gap), base.gaps(attribute).get(gap))}
                            for gap in HEADLINE_GAPS} for attribute in view.sensitive}
        rows.append({"model": model.name, "accuracy": model.overall.get("accuracy"),
                     "roc_auc": model.overall.get("roc_auc"),
                     "accuracy_difference": difference(model.overall.get("accuracy"), base.overall.get("accuracy")),
                     "auc_difference": difference(model.overall.get("roc_auc"), base.overall.get("roc_auc")),
                     "gaps": gaps})
    rows.sort(key=lambda row: -row["roc_auc"] if is_number(row["roc_auc"]) else 0.0)
    best, attribute = rows[0], view.sensitive[0] if view.sensitive else None
    gap = HEADLINE_GAPS[0]
    # Plain labels (core.results.wording): ethicists read this sentence first (issue 17, item 6).
    best_label = model_label(next(m.entry for m in ssl if m.name == best["model"]))
    text = (f"The best pretrained model, {best_label}, reaches AUC {fmt_num(best['roc_auc'])} and "
            f"accuracy {fmt_pct(best['accuracy'])}, against {fmt_num(base.overall.get('roc_auc'))} and "
            f"{fmt_pct(base.overall.get('accuracy'))} for {model_label(baseline).lower()}, the best classical baseline")
    if attribute is not None:
        pair = best["gaps"][attribute][gap]
        text += (f"; its gap in {MEASURE_LABELS.get(gap, GAP_NAMES[gap])} by {attribute} is "
                 f"{fmt_num(pair['model'])} against the baseline's {fmt_num(pair['baseline'])}")
    return {"baseline": base.name, "accuracy": base.overall.get("accuracy"), "roc_auc": base.overall.get("roc_auc"),
            "models": rows, "text": text + "."}
