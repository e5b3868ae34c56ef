"""The scorecard: one row per model, the answer a stakeholder meeting needs, as data.

    scorecard(report, *, outcome_effect=None, measure=None) -> {"rows", "headline", "answers", "baseline", ...}

Each row: the model's plain label (core.results.wording; its code name as the hover title),
accuracy and ROC AUC with intervals and the AUC against the best baseline, the quality flag
(core.results.quality.model_quality), per sensitive attribute the headline gap with its one
interval, the sentence of who is favoured and the verdict against the supervised baseline, and
the worst-off group. Nothing is recomputed: every value and verdict is read from report.json
(the verdicts are the audit's, replicate-aware and Holm-adjusted, with the practical floor of
core.audit.multiplicity). The Fairness and Compare pages and the report's `id="scorecard"` only
draw it.

The best baseline is the classical baseline (strategy "classical") with the highest ROC AUC;
without one, the supervised model. A gap below the practical floor is marked `trivial` and is
never a headline; a gap whose extreme group has fewer than `min_group_size` test rows says so.
"""

from __future__ import annotations

from typing import Any

from core.audit.multiplicity import PRACTICAL_FLOOR, clears_floor
from core.results.folder import ModelView, ReportView
from core.results.formatting import fmt_ci, fmt_int, fmt_num, fmt_pct, is_number
from core.results.quality import CHANCE_FLAGS, best_classical, quality_of, versus_classical
from core.results.wording import (MEASURE_LABELS, OUTCOME_EFFECTS, VERDICT_PLAIN, comparison_verdict, gap_sentence,
                                  model_label, model_title)
from core.vocabulary import GAP_NAMES, SUPERVISED

DEFAULT_MEASURE = "equalized_odds_difference"


def best_baseline(view: ReportView) -> ModelView | None:
    """The classical baseline with the highest ROC AUC (core.results.quality.best_classical), else the
    supervised model (None without either)."""
    classical = best_classical([m.entry for m in view.models])
    if classical is not None:
        return ModelView(classical)
    return next((m for m in view.models if m.name == SUPERVISED), None)


def outcome_effect_of(view: ReportView, given: str | None = None) -> str | None:
    """The study's answer (given by the page or the CLI), else the one the audit was run with."""
    for effect in (given, view.config.get("outcome_effect")):
        if effect in OUTCOME_EFFECTS:
            return effect
    return None


def _value(value: Any, ci: Any, pct: bool) -> dict:
    fmt = fmt_pct if pct else fmt_num
    return {"value": value if is_number(value) else None, "ci": list(ci) if ci else None,
            "text": fmt(value), "ci_text": fmt_ci(ci, fmt) if ci else ""}


def _small_note(model: ModelView, partition: str, groups: list, min_size: int) -> str:
    small = []
    for group in groups:
        row = model.group(partition, group) or {}
        if row.get("small") or (is_number(row.get("n")) and row["n"] < min_size):
            small.append(f"\u201c{group}\u201d has only {fmt_int(row.get('n'))} test rows")
    return ("; ".join(small) + ", so this gap rests on very few people") if small else ""


def gap_cell(view: ReportView, model: ModelView, attribute: str, measure: str, effect: str | None) -> dict:
    """One gap of one model for reading: value, its one interval, the two groups, who is favoured
    (`sentence`), `trivial` (below the practical floor), `small` (an extreme group is tiny), `differ`."""
    gaps = model.gaps(attribute)
    value = gaps.get(measure)
    between = model.between(attribute, measure)
    high, low, metric = between.get("max_group"), between.get("min_group"), between.get("metric")
    rate = (lambda g: (model.group(attribute, g) or {}).get(metric)) if metric else (lambda g: None)
    cell = _value(value, model.gap_ci(attribute, measure), pct=False)
    trivial = clears_floor(value) is False
    sentence = (f"Below {fmt_num(PRACTICAL_FLOOR)}: too small to matter." if trivial else
                gap_sentence(metric, high, low, rate(high), rate(low), view.positive_label, effect))
    chance = (gaps.get("chance") or {}).get(measure) or {}
    cell.update(attribute=attribute, measure=measure, high=high, low=low, metric=metric, trivial=trivial,
                differ=chance.get("differ"),
                sentence=sentence,
                small=_small_note(model, attribute, [g for g in (high, low) if g is not None], view.min_group_size))
    return cell


def _verdict_cell(view: ReportView, model: ModelView, attribute: str, measure: str, unjudged: str = "") -> dict:
    """The audit's verdict against the supervised model, or `unjudged` (why not) when either model is no
    better than chance: a small gap of a model that tells no one apart is no evidence of fairness."""
    if model.is_supervised:
        return {"verdict": "baseline", "text": "the baseline", "difference": None, "ci_text": "", "p_adjusted": None}
    if unjudged:
        return {"verdict": None, "text": unjudged, "difference": None, "ci_text": "", "p_adjusted": None}
    entry = model.compared(attribute, measure) or {}
    verdict = comparison_verdict(entry)
    if verdict is None:
        return {"verdict": None, "text": "not compared", "difference": None, "ci_text": "", "p_adjusted": None}
    return {"verdict": verdict, "text": VERDICT_PLAIN[verdict], "difference": entry.get("difference"),
            "difference_text": fmt_num(entry.get("difference")), "ci_text": fmt_ci(entry.get("ci")),
            "p_adjusted": entry.get("p_adjusted")}


def _worst_group(view: ReportView, model: ModelView) -> dict | None:
    worst = None
    for attribute in view.sensitive:
        value = model.gaps(attribute).get("worst_group_accuracy")
        if is_number(value) and (worst is None or value < worst["value"]):
            group = model.between(attribute, "worst_group_accuracy").get("min_group")
            row = model.group(attribute, group) or {}
            worst = {**_value(value, model.gap_ci(attribute, "worst_group_accuracy"), pct=True),
                     "attribute": attribute, "group": group, "n": row.get("n"), "small": bool(row.get("small"))}
    return worst


def _points(value: Any, base: Any) -> str:
    """An accuracy difference in percentage points ("−2.5 points"), "" when either is undefined."""
    if not (is_number(value) and is_number(base)):
        return ""
    return f"{fmt_num(100 * (value - base), 1)} points"


def _headline(rows: list[dict], attributes: list[str]) -> dict | None:
    """The largest gap worth a headline: at or above the floor, of a model that tells people apart (not
    flagged no better than chance; a below-baseline model may lead, with its flag said, as in the
    summary: core.results.quality)."""
    best = None
    for row in rows:
        if row["flag"] in CHANCE_FLAGS:
            continue
        for attribute in attributes:
            cell = row["gaps"][attribute]
            if cell["value"] is not None and not cell["trivial"] and (best is None or cell["value"] > best["value"]):
                best = {**cell, "model": row["name"], "label": row["label"], "badge": row["badge"]}
    return best


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"


def _sure(differ: bool | None) -> str:
    """How sure: the audit's permutation test of the gap, family-adjusted (core.audit.gap_test)."""
    if differ is None:
        return ""
    return ("A gap this large is not expected by chance: the groups differ." if differ else
            "A gap this large can arise by chance with groups of these sizes: the test data do not show that the "
            "groups differ.")


def _answers(rows: list[dict], attributes: list[str], headline: dict | None, measure: str, confidence: Any) -> list[str]:
    """The meeting's four questions in one line each: is a group treated worse, by which model, how sure,
    and is pretraining better than the ordinary model here."""
    name = GAP_NAMES[measure].lower()
    if headline is None and rows and all(row["flag"] in CHANCE_FLAGS for row in rows):
        # Every model is flagged: their gaps are small because they tell no one apart, which says
        # nothing about fair treatment (issue 17, item 1: never a headline from such models).
        lines = [f"No model can be judged on the {name}: every one is flagged below as predicting one label for "
                 "nearly everyone or as no better than chance, so its small gaps say nothing about fair treatment."]
    elif headline is None:
        lines = [f"No model shows {_article(name)} {name} of at least {fmt_num(PRACTICAL_FLOOR)} (models no better "
                 "than chance left out): no group is treated clearly worse on this measure."]
    else:
        level = f"{round(100 * confidence)}%" if is_number(confidence) else "95%"
        lines = [f"Largest gap: {headline['label']}, {headline['attribute']}, {headline['text']} ({level} interval "
                 f"{headline['ci_text'] or 'n/a'}). {headline['sentence']} {_sure(headline['differ'])}"
                 + (f" Note: {headline['small']}." if headline["small"] else "")
                 + (f" Caution: {headline['label']} {headline['badge']}." if headline["badge"] else "")]
    lines += _pretraining_answer(rows, attributes, name)
    guessing = [row["label"] for row in rows if row["flag"] in CHANCE_FLAGS]
    if guessing:
        lines.append("No better than chance, or one label for nearly everyone, so their small gaps mean little: "
                     f"{'; '.join(guessing)}.")
    weaker = [row["label"] for row in rows if row["flag"] is not None and row["flag"] not in CHANCE_FLAGS]
    if weaker:
        lines.append("Below the best classical baseline in ROC AUC (by more than 0.02), so their gaps describe a "
                     f"weaker model than the team could have: {'; '.join(weaker)}.")
    return lines


def _pretraining_answer(rows: list[dict], attributes: list[str], name: str) -> list[str]:
    """"Is pretraining better than the ordinary model here": the verdicts of the pretrained models
    only (not the classical or uploaded ones, which were not pretrained), and never of a model no
    better than chance, nor against an ordinary model that is (their gaps are small for the wrong
    reason, so "fairer" would credit a model that tells no one apart)."""
    supervised = next((row for row in rows if row["is_supervised"]), None)
    pretrained = [row for row in rows if row["pretrained"] and not row["is_supervised"]]
    if supervised is None or not pretrained:
        return []
    if supervised["flag"] in CHANCE_FLAGS:
        return [f"Pretraining against the ordinary model on the {name}: not judged, because the ordinary model is "
                "no better than chance or gives one label to nearly everyone."]
    judged = [row for row in pretrained if row["flag"] not in CHANCE_FLAGS]
    verdicts = [row["verdicts"][a]["verdict"] for row in judged for a in attributes]
    counted = {word: verdicts.count(word) for word in ("narrowed", "widened", "no clear difference",
                                                       "too small to matter")}
    left_out = len(pretrained) - len(judged)
    why = (f" ({left_out} pretrained model{'s' if left_out > 1 else ''} left out: no better than chance or one label "
           "for nearly everyone)") if left_out else ""
    if not verdicts:
        return [f"Pretraining against the ordinary model on the {name}: not judged{why}."]
    return [f"Pretraining against the ordinary model on the {name}, over {len(verdicts)} pretrained-model and "
            f"attribute pairs{why}: fairer in {counted['narrowed']}, less fair in {counted['widened']}, no clear or "
            f"no meaningful difference in {counted['no clear difference'] + counted['too small to matter']}."]


def scorecard(report: dict, *, outcome_effect: str | None = None, measure: str | None = None) -> dict:
    """The scorecard of a report.json dict (module docstring): {"rows": [...], "headline": the largest gap
    worth a headline (None when none clears the floor), "answers": the meeting's questions answered in one
    line each, "baseline": name or None,
    "baseline_label", "measure", "measure_name", "measure_label", "attributes", "outcome_effect",
    "confidence", "replicates"}."""
    view = ReportView(report)
    measure = measure if measure in GAP_NAMES else DEFAULT_MEASURE
    effect = outcome_effect_of(view, outcome_effect)
    baseline = best_baseline(view)
    base_auc = baseline.overall.get("roc_auc") if baseline is not None else None
    base_accuracy = baseline.overall.get("accuracy") if baseline is not None else None
    qualities = {model.name: quality_of(view, model) for model in view.models}
    supervised_guesses = (qualities.get(SUPERVISED) or {}).get("flag") in CHANCE_FLAGS
    rows = []
    for model in view.models:
        auc = model.overall.get("roc_auc")
        quality = qualities[model.name]
        unjudged = ("not judged: no better than chance" if quality["flag"] in CHANCE_FLAGS else
                    "not judged: the ordinary model is no better than chance" if supervised_guesses else "")
        rows.append({
            "name": model.name, "label": model_label(model.entry), "title": model_title(model.entry),
            "is_supervised": model.is_supervised, "is_baseline": baseline is not None and model.name == baseline.name,
            "pretrained": model.entry.get("pretraining") is not None,
            "accuracy": _value(model.overall.get("accuracy"), model.overall_ci.get("accuracy"), pct=True),
            "roc_auc": _value(auc, model.overall_ci.get("roc_auc"), pct=False),
            "auc_vs_baseline": (auc - base_auc) if is_number(auc) and is_number(base_auc) else None,
            "auc_vs_baseline_text": (fmt_num(auc - base_auc) if is_number(auc) and is_number(base_auc)
                                     and baseline is not None and model.name != baseline.name else ""),
            "accuracy_vs_baseline_text": _points(model.overall.get("accuracy"), base_accuracy)
            if baseline is not None and model.name != baseline.name else "",
            "flag": quality["flag"], "badge": quality["badge"],
            "gaps": {a: gap_cell(view, model, a, measure, effect) for a in view.sensitive},
            "verdicts": {a: _verdict_cell(view, model, a, measure, unjudged) for a in view.sensitive},
            "worst": _worst_group(view, model)})
    headline = _headline(rows, list(view.sensitive))
    answers = _answers(rows, list(view.sensitive), headline, measure, view.confidence)
    against = versus_classical(report)
    if against and against.get("text"):
        answers.append(against["text"])
    return {"rows": rows, "baseline": baseline.name if baseline is not None else None, "headline": headline,
            "answers": answers,
            "baseline_label": model_label(baseline.entry) if baseline is not None else "",
            "measure": measure, "measure_name": GAP_NAMES[measure], "measure_label": MEASURE_LABELS.get(measure, ""),
            "attributes": list(view.sensitive), "outcome_effect": effect, "confidence": view.confidence,
            "replicates": view.replicates}
