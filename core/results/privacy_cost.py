"""The fairness cost of privacy (issue 19, item 3): what each differentially private model
loses against the model it is a private version of (its base), overall and for each group,
read from report.json. No statistics are computed here.

Where the numbers come from (all replicate-aware: training replicates and test rows together,
replicate r of the private model paired with replicate r of its base):
    accuracy, per-group accuracy   the entry's `compared_with_base_metrics` (core.run.replicates,
                                   replicated_paired_rates), Holm-adjusted in the family
                                   "variant_vs_base (accuracy)"
    worst-group accuracy           `compared_with_base[attribute]["worst_group_accuracy"]` (a gap
                                   of core.audit.replicated), Holm-adjusted in "variant_vs_base
                                   (other gaps and intersections)"
    the epsilon curve's points     each model's `aggregate`: accuracy and worst-group accuracy,
                                   mean over replicates and the interval covering training

A change is decided on the family-adjusted test (`excludes_zero`) and then the practical floor
(`below_floor`, core.audit.multiplicity.PRACTICAL_FLOOR): a difference below the floor is "no
change that matters", whatever its interval. A run written before `compared_with_base_metrics`
existed has no per-group accuracy cost: those parts are empty, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.results.formatting import fmt_ci, fmt_num, is_number
from core.results.quality import flagged_models
from core.results.wording import epsilon_words, model_label

#: Quality flags under which a model's numbers say little: its changes are never findings.
BLOCKING_FLAGS = ("one-label", "near-chance")

FELL, ROSE, UNCLEAR, TOO_SMALL = "fell", "rose", "no clear change", "no change that matters"


def is_private(entry: Mapping[str, Any]) -> bool:
    """A differentially private model: its `privacy` names an epsilon (not a federated model's)."""
    return is_number((entry.get("privacy") or {}).get("epsilon"))


def cost_verdict(entry: Mapping[str, Any] | None) -> str | None:
    """"fell" | "rose" | "no clear change" | "no change that matters" | None (no test) for one
    paired difference (private minus base): the family-adjusted decision, then the floor."""
    if not entry or not is_number(entry.get("difference")) or entry.get("excludes_zero") is None:
        return None
    if not entry["excludes_zero"]:
        return UNCLEAR
    if entry.get("below_floor"):
        return TOO_SMALL
    return FELL if entry["difference"] < 0 else ROSE


def _with_verdict(entry: Mapping[str, Any] | None) -> dict | None:
    return None if not entry else {**entry, "verdict": cost_verdict(entry)}


def _point(aggregate: Mapping[str, Any] | None) -> dict:
    """{"mean", "ci"} of an aggregate entry (None where missing)."""
    aggregate = aggregate or {}
    return {"mean": aggregate.get("mean"), "ci": aggregate.get("ci")}


def privacy_costs(report: Mapping[str, Any]) -> list[dict]:
    """One item per private model, in the report's order:
    {"name", "label", "base", "base_label", "target_epsilon", "epsilon", "delta",
     "overall": entry | None, "groups": {attribute: {group: entry}},
     "worst_group": {attribute: entry | None}, "sentences": [str]}
    where entry is the paired difference (private minus base) with its `verdict`."""
    models = {m["name"]: m for m in report.get("models") or []}
    attributes = list((report.get("study") or {}).get("sensitive") or [])
    flags = {f["model"]: f["text"] for f in flagged_models(report) if f["flag"] in BLOCKING_FLAGS}
    costs = []
    for entry in models.values():
        if not is_private(entry):
            continue
        base = models.get(entry.get("base"), {"name": entry.get("base")})
        metrics = entry.get("compared_with_base_metrics") or {}
        privacy = entry["privacy"]
        cost = {"name": entry["name"], "label": model_label(entry), "base": base["name"],
                "base_label": model_label(base), "target_epsilon": privacy.get("target_epsilon", privacy["epsilon"]),
                "epsilon": privacy["epsilon"], "delta": privacy.get("delta"),
                "overall": _with_verdict((metrics.get("overall") or {}).get("accuracy")),
                "groups": {attribute: {group: _with_verdict(rates.get("accuracy"))
                                       for group, rates in ((metrics.get("groups") or {}).get(attribute) or {}).items()}
                           for attribute in attributes},
                "worst_group": {attribute: _with_verdict(((entry.get("compared_with_base") or {}).get(attribute) or {})
                                                         .get("worst_group_accuracy"))
                                for attribute in attributes},
                "flag": flags.get(entry["name"]) or flags.get(base["name"])}
        cost["sentences"] = cost_sentences(cost)
        costs.append(cost)
    return costs


def _change(what: str, entry: Mapping[str, Any]) -> str:
    verdict = entry["verdict"]
    if verdict in (FELL, ROSE):
        return f"{what} {verdict} by {fmt_num(abs(entry['difference']))} ({fmt_ci(_magnitude(entry))})"
    return f"{what}: {verdict} (difference {fmt_num(entry['difference'])}, interval {fmt_ci(entry.get('ci'))})"


def _magnitude(entry: Mapping[str, Any]) -> list | None:
    """The interval of |difference| for a fall (its sign turned), as the sentence states a size."""
    ci = entry.get("ci")
    if not ci or entry["difference"] >= 0:
        return ci
    return [-ci[1], -ci[0]]


def cost_sentences(cost: Mapping[str, Any]) -> list[str]:
    """Plain sentences of one private model's cost: overall, then every group whose accuracy
    fell or rose (a finding), then the worst-off group per attribute."""
    guarantee = f"With the privacy guarantee ({epsilon_words(cost)})"
    against = f"against {cost['base_label']}"
    if cost.get("flag"):  # a model no better than chance or with one label: its changes are never findings
        return [f"{guarantee}, {cost['label']} is flagged, so its changes are not findings: {cost['flag']}"]
    sentences = []
    if cost["overall"] and cost["overall"]["verdict"]:
        sentences.append(f"{guarantee}, {_change('accuracy', cost['overall'])} ({against}).")
    for attribute, groups in cost["groups"].items():
        for group, entry in groups.items():
            if entry and entry["verdict"] in (FELL, ROSE):
                sentences.append(f"{guarantee}, {_change(f'accuracy for {attribute} = {group}', entry)}.")
        worst = cost["worst_group"].get(attribute)
        if worst and worst["verdict"]:
            sentences.append(f"{guarantee}, {_change(f'the worst-off {attribute} group’s accuracy', worst)}.")
    return sentences


def epsilon_curve(report: Mapping[str, Any]) -> list[dict]:
    """Per base with private versions: its points, strongest guarantee first and the base
    itself last (epsilon None: no privacy), each {"epsilon", "name", "accuracy": {"mean", "ci"},
    "worst_group_accuracy": {attribute: {"mean", "ci"}}}. Returns [{"base", "base_label", "points"}]."""
    models = report.get("models") or []
    by_name = {m["name"]: m for m in models}
    attributes = list((report.get("study") or {}).get("sensitive") or [])

    def point(entry: Mapping[str, Any], epsilon: float | None) -> dict:
        aggregate = entry.get("aggregate") or {}
        return {"epsilon": epsilon, "name": entry["name"],
                "accuracy": _point((aggregate.get("overall") or {}).get("accuracy")),
                "worst_group_accuracy": {a: _point(((aggregate.get("gaps") or {}).get(a) or {})
                                                   .get("worst_group_accuracy")) for a in attributes}}

    curves = []
    for base in dict.fromkeys(m.get("base") for m in models if is_private(m)):
        private = sorted((m for m in models if is_private(m) and m.get("base") == base),
                         key=lambda m: m["privacy"].get("target_epsilon", m["privacy"]["epsilon"]))
        points = [point(m, m["privacy"].get("target_epsilon", m["privacy"]["epsilon"])) for m in private]
        if base in by_name:
            points.append(point(by_name[base], None))
        curves.append({"base": base, "base_label": model_label(by_name.get(base, {"name": base})), "points": points})
    return curves


def strongest_guarantee_sentences(report: Mapping[str, Any]) -> list[str]:
    """The headline words: for each base, the sentences of its most private version (smallest epsilon)."""
    costs = privacy_costs(report)
    strongest: dict[str, dict] = {}
    for cost in costs:
        if cost["base"] not in strongest or cost["target_epsilon"] < strongest[cost["base"]]["target_epsilon"]:
            strongest[cost["base"]] = cost
    return [sentence.replace("With the privacy guarantee (", "With the strongest guarantee (", 1)
            for cost in strongest.values() for sentence in cost["sentences"]]
