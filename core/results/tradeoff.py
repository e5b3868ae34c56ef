"""The trade-off of mitigations, honestly (issue 18 part 3): accuracy against a chosen gap for
every model of a run, mitigations included, each with its replicate-aware interval on both axes;
the frontier; what each mitigation bought and cost, in words; sweeps as curves.

    tradeoff_points(report, attribute, gap)      one row per model: accuracy and gap (mean over the
                                                 replicates, interval over training and test rows), frontier
    mitigation_findings(report, attribute, gap)  per mitigated model: its gap and accuracy against its base,
                                                 the Holm-adjusted decisions, one sentence
    sweep_curves(report, attribute, gap)         variants of one mitigation on one base at several values
                                                 of one parameter (eps, lambda, sparsity), one row per value

Nothing is computed here but the frontier: the intervals are the report's `aggregate` (core.run.replicates),
the differences are `compared_with_base` (Holm family "variant_vs_base") and
`compared_with_base_metrics` (family "variant_vs_base (accuracy)"). A sentence calls a change a
finding only when its family-adjusted interval excludes 0 and it clears the practical floor
(core.results.wording.comparison_verdict), and never for a model flagged one-label or near chance
(core.results.quality): its gaps say little. The "below-baseline" flag (AUC below the best classical
baseline) is named in the sentence but does not stop a finding: a mitigation is expected to cost
accuracy, and what it costs against its own base is the sentence's second half (a mixture's
step-function score also has a lower AUC than the decisions it makes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from core.audit.multiplicity import PRACTICAL_FLOOR
from core.results.compare import pareto_front
from core.results.formatting import ci_label, fmt_ci, fmt_num, is_number
from core.results.quality import flagged_models
from core.results.wording import comparison_verdict, model_label
from core.vocabulary import GAP_NAMES, HIGHER_IS_BETTER

#: Quality flags under which a model's gaps say little: drawn, never on the frontier, never a finding.
BLOCKING_FLAGS = ("one-label", "near-chance")

#: The columns of `tradeoff_points`.
POINT_COLUMNS = ("model", "label", "base", "mitigation", "kind", "accuracy", "accuracy_low", "accuracy_high",
                 "gap", "gap_low", "gap_high", "n_replicates", "flagged", "frontier")


def _aggregate(entry: Mapping, *path: str) -> tuple[float, float, float]:
    """(mean, low, high) of an aggregate entry (NaN where absent)."""
    node: Any = entry.get("aggregate") or {}
    for key in path:
        node = (node or {}).get(key) if isinstance(node, Mapping) else None
    node = node or {}
    ci = node.get("ci") or [None, None]
    return tuple(float(v) if is_number(v) else float("nan") for v in (node.get("mean"), *ci))


def tradeoff_points(report: Mapping, attribute: str, gap: str) -> pd.DataFrame:
    """One row per model (POINT_COLUMNS). `frontier`: no other unflagged model is at least as accurate
    and at least as fair (a smaller gap; larger for worst-group accuracy and the ratios) and better on
    one; a model flagged one-label or near chance (`flagged`) is drawn but never on the frontier."""
    flagged = {f["model"] for f in flagged_models(report) if f["flag"] in BLOCKING_FLAGS}
    rows = []
    for entry in report.get("models", []):
        accuracy = _aggregate(entry, "overall", "accuracy")
        gap_value = _aggregate(entry, "gaps", attribute, gap)
        mitigation = entry.get("mitigation") or {}
        rows.append({"model": entry["name"], "label": model_label(entry), "base": entry.get("base"),
                     "mitigation": mitigation.get("name"), "kind": mitigation.get("kind"),
                     "accuracy": accuracy[0], "accuracy_low": accuracy[1], "accuracy_high": accuracy[2],
                     "gap": gap_value[0], "gap_low": gap_value[1], "gap_high": gap_value[2],
                     "n_replicates": len(entry.get("replicates") or []) or 1, "flagged": entry["name"] in flagged})
    frame = pd.DataFrame(rows, columns=[c for c in POINT_COLUMNS if c != "frontier"])
    eligible = ~frame["flagged"].astype(bool)
    frame["frontier"] = False
    if eligible.any():
        front = pareto_front(frame.loc[eligible, "accuracy"], frame.loc[eligible, "gap"],
                             maximize_y=gap in HIGHER_IS_BETTER)
        frame.loc[frame.index[eligible][front], "frontier"] = True
    return frame


def _points(value: Any) -> str:
    """A difference of rates in percentage points: 0.008 -> "0.8"."""
    return fmt_num(100 * value, 1) if is_number(value) else fmt_num(value)


def _gap_words(entry: Mapping | None, attribute: str, gap: str, confidence: Any) -> tuple[str, bool | None]:
    """What the change did to the gap, and whether it is a finding: True (fairer), False (less fair),
    None (no finding)."""
    name = f"{attribute} {GAP_NAMES[gap].lower()}"
    verdict = comparison_verdict(entry)
    if verdict is None:
        return f"could not be compared with its base on the {name}", None
    difference, ci = entry["difference"], entry["ci"]
    interval = f"{ci_label(confidence)} {fmt_ci(ci)}"
    if verdict == "no clear difference":
        return (f"made no clear change to the {name} ({fmt_num(difference)}, {interval}, Holm-adjusted "
                "interval includes 0)"), None
    if verdict == "too small to matter":
        return (f"changed the {name} by {fmt_num(difference)} ({interval}), less than the practical floor of "
                f"{fmt_num(float(entry.get('practical_floor', PRACTICAL_FLOOR)))}: no finding"), None
    lower = verdict == "narrowed"  # the gap fell
    better = lower != (gap in HIGHER_IS_BETTER)
    verb = ("narrowed" if lower else "widened") if gap not in HIGHER_IS_BETTER else ("lowered" if lower else "raised")
    low, high = sorted(abs(v) for v in ci)
    return f"{verb} the {name} by {fmt_num(abs(difference))} ({ci_label(confidence)} {fmt_ci([low, high])})", better


def _accuracy_words(entry: Mapping | None, confidence: Any) -> str:
    """The accuracy cost (or gain) in percentage points, from compared_with_base_metrics."""
    verdict = comparison_verdict(entry)
    if verdict is None:
        return "its accuracy cost is not in this report"
    difference, ci = entry["difference"], entry["ci"]
    low, high = sorted(abs(100 * v) for v in ci)
    interval = f"{ci_label(confidence)} {fmt_num(low, 1)} to {fmt_num(high, 1)}"
    if verdict in ("no clear difference", "too small to matter"):
        return (f"with no clear change in accuracy ({_points(difference)} points, {ci_label(confidence)} "
                f"{_points(ci[0])} to {_points(ci[1])})")
    if difference < 0:
        return f"for {_points(abs(difference))} accuracy points ({interval})"
    return f"while gaining {_points(difference)} accuracy points ({interval})"


def mitigation_findings(report: Mapping, attribute: str, gap: str) -> list[dict[str, Any]]:
    """Per mitigated model (report order): {"model", "label", "base", "base_label", "mitigation", "gap"
    (its compared_with_base entry), "accuracy" (compared_with_base_metrics' overall accuracy entry),
    "finding" (a Holm-adjusted change above the floor, of a model not flagged), "fairer" (that change
    made the gap fairer), "sentence"}."""
    confidence = (report.get("bootstrap") or {}).get("confidence") or (report.get("config") or {}).get("confidence")
    flags = {f["model"]: f for f in flagged_models(report)}
    labels = {entry["name"]: model_label(entry) for entry in report.get("models", [])}
    out = []
    for entry in report.get("models", []):
        if not entry.get("mitigation"):
            continue
        gap_entry = ((entry.get("compared_with_base") or {}).get(attribute) or {}).get(gap)
        accuracy_entry = ((entry.get("compared_with_base_metrics") or {}).get("overall") or {}).get("accuracy")
        gap_text, better = _gap_words(gap_entry, attribute, gap, confidence)
        base_label = labels.get(entry.get("base"), entry.get("base"))
        sentence = f"{labels[entry['name']]}, against {base_label}: {gap_text}, {_accuracy_words(accuracy_entry, confidence)}."
        flag = flags.get(entry["name"])
        if flag is not None and flag["flag"] not in BLOCKING_FLAGS:
            sentence += f" It {flag['badge']}."
            flag = None
        elif flag is not None:
            sentence += f" Flagged, so never a finding: {flag['text']}"
        out.append({"model": entry["name"], "label": labels[entry["name"]], "base": entry.get("base"),
                    "base_label": base_label, "mitigation": entry["mitigation"], "gap": gap_entry,
                    "accuracy": accuracy_entry, "finding": better is not None and flag is None,
                    "fairer": bool(better) and flag is None, "sentence": sentence})
    return out


def sweep_curves(report: Mapping, attribute: str, gap: str) -> pd.DataFrame:
    """Variants of one mitigation on one base that differ in one numeric parameter: one row per value
    ("curve" = "<mitigation> on <base label>", "parameter", "value", and tradeoff_points' columns),
    sorted by value. Empty when no mitigation was fitted at two or more values."""
    points = tradeoff_points(report, attribute, gap).set_index("model")
    by_curve: dict[tuple, list[Mapping]] = {}
    for entry in report.get("models", []):
        mitigation = entry.get("mitigation")
        if mitigation:
            by_curve.setdefault((mitigation["name"], entry.get("base")), []).append(entry)
    rows = []
    for (name, base), members in by_curve.items():
        params = [m["mitigation"].get("params") or {} for m in members]
        swept = [key for key in params[0] if all(is_number(p.get(key)) for p in params)
                 and len({p.get(key) for p in params}) == len(members)]
        if len(members) < 2 or not swept:
            continue
        base_label = points["label"].get(base, base)
        for member, param in zip(members, params):
            rows.append({"curve": f"{name} on {base_label}", "parameter": swept[0], "value": float(param[swept[0]]),
                         "model": member["name"], **points.loc[member["name"]].to_dict()})
    columns = ["curve", "parameter", "value", *POINT_COLUMNS]
    return pd.DataFrame(rows, columns=columns).sort_values(["curve", "value"], ignore_index=True) if rows \
        else pd.DataFrame(columns=columns)
