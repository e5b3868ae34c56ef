"""Results in plain words: names of metrics and gaps, what they mean, and how to read an interval.

Numbers are rounded for reading: rates as percentages, gaps with two decimals (three when two
would show 0.00); undefined values read "n/a", never 0. Downloads keep the exact values.
"""

from __future__ import annotations

import math

from dashboard.components.format import md

METRIC_NAMES = {"accuracy": "Accuracy", "tpr": "True-positive rate", "fpr": "False-positive rate",
                "selection_rate": "Selection rate", "precision": "Precision",
                "balanced_accuracy": "Balanced accuracy"}
GAP_NAMES = {"equalized_odds_difference": "Equalized-odds gap",
             "demographic_parity_difference": "Demographic-parity gap",
             "equal_opportunity_difference": "Equal-opportunity gap",
             "fpr_difference": "False-positive-rate gap", "accuracy_difference": "Accuracy gap",
             "mean_subgroup_gap": "Mean subgroup gap", "worst_group_accuracy": "Worst-group accuracy"}


def metric_meaning(metric: str, positive: str) -> str:
    positive = md(positive)
    return {
        "accuracy": "the share of rows the model gets right",
        "tpr": f"among rows whose true outcome is {positive}, the share the model predicts as {positive}",
        "fpr": f"among rows whose true outcome is not {positive}, the share the model wrongly predicts as {positive}",
        "selection_rate": f"the share of rows the model predicts as {positive}",
        "precision": f"among rows predicted {positive}, the share that truly are",
        "balanced_accuracy": "the mean of the true-positive rate and the true-negative rate",
    }[metric]


def gap_meaning(gap: str, positive: str) -> str:
    """What a gap measures, in one sentence."""
    positive = md(positive)
    return {
        "demographic_parity_difference": f"the difference in **selection rate** (share predicted {positive}) "
                                         "between the group with the highest rate and the group with the lowest.",
        "equal_opportunity_difference": f"the difference in **true-positive rate** between groups: among rows that "
                                        f"truly are {positive}, how much more often one group is recognised as "
                                        "such than another.",
        "equalized_odds_difference": "the larger of two differences between groups: in **true-positive rate** "
                                     f"(rows truly {positive} recognised as such) and in **false-positive rate** "
                                     f"(rows not {positive} wrongly predicted {positive}).",
        "fpr_difference": f"the difference in **false-positive rate** between groups: how much more often one "
                          f"group's rows that are not {positive} are wrongly predicted {positive}.",
        "accuracy_difference": "the difference in **accuracy** between the best- and the worst-served group.",
        "mean_subgroup_gap": "the average distance of each group's **accuracy** from the overall accuracy.",
        "worst_group_accuracy": "the **accuracy** of the worst-served group (higher is better).",
    }[gap]


GAP_SCALE = ("A gap of 0 means the groups are treated alike on this measure; 0.10 means the rates differ by "
             "10 percentage points.")
GAP_INTERVAL = (
    "**Reading the intervals.** The bar's error bar is the interval of the gap itself. A gap is the highest "
    "group's rate minus the lowest, so it can never be negative, and its interval sits above 0 *even when the "
    "groups do not really differ*. It tells you how large the gap might be, not whether it is real. "
    "Whether the two groups at the extremes really differ is read from the interval of their **signed** "
    "difference: if that interval includes 0, the difference could be chance. Whether pretraining changed the "
    "gap is read from the **paired comparison** with the supervised baseline (same test rows, resampled "
    "together): only an interval that excludes 0 is a clear change.")


def number(value: float | None, digits: int = 2) -> str:
    """A gap or difference for reading: 0.1234 -> '0.12'; 0.004 -> '0.004'; None/NaN -> 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    if float(text) == 0 and value != 0:
        text = f"{value:.{digits + 1}f}"
    return text


def rate(value: float | None, digits: int = 1) -> str:
    """0.7234 -> '72.3%'; None/NaN -> 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def interval(lo: float | None, hi: float | None, fmt=number) -> str:
    """'0.02 to 0.36', or 'no interval' when there is none."""
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)) or \
            (isinstance(hi, float) and math.isnan(hi)):
        return "no interval"
    return f"{fmt(lo)} to {fmt(hi)}"


def with_interval(value: float, lo: float, hi: float, fmt=rate) -> str:
    """'72.3% (65.1% to 78.0%)'; 'n/a' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return fmt(value)
    return f"{fmt(value)} ({fmt(lo)} to {fmt(hi)})"


def _text(value: object) -> str | None:
    """A table cell as text, or None when empty (None, or NaN in a pandas column)."""
    return value if isinstance(value, str) and value else None


def compact(value: float, lo: float, hi: float) -> str:
    """A rate and its interval in a table cell: '57.1% (42.8–71.5)'; 'n/a' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return rate(value)
    return f"{100 * value:.1f}% ({100 * lo:.1f}–{100 * hi:.1f})"


def pair_sentence(row: dict, confidence: float) -> str:
    """Whether the two groups at the extremes of a gap really differ, from the signed interval."""
    if not _text(row.get("max_group")) or not _text(row.get("min_group")):
        return ""
    metric = METRIC_NAMES.get(_text(row.get("metric")) or "", _text(row.get("metric")) or "rate").lower()
    groups = f"*{md(row['max_group'])}* and *{md(row['min_group'])}*"
    if row.get("groups_differ") not in (True, False):
        return f"The gap is between {groups} ({metric}); no interval for their difference."
    span = interval(row["pair_lo"], row["pair_hi"])
    if row["groups_differ"]:
        return (f"The gap is between {groups} ({metric}). Their signed difference, {confidence:.0%} interval "
                f"{span}, excludes 0: more than chance alone would explain.")
    return (f"The gap is between {groups} ({metric}). Their signed difference, {confidence:.0%} interval "
            f"{span}, includes 0: the difference could be chance.")


VERDICT_WORDS = {"narrower": "**narrower**", "wider": "**wider**", "higher": "**higher**", "lower": "**lower**",
                 "no clear difference": "**not clearly different**"}


def supervised_sentence(row: dict, confidence: float) -> str:
    """Paired comparison of a model's gap with the supervised baseline's, in words."""
    verdict = _text(row.get("vs_verdict"))
    if verdict is None:
        return ""
    span = interval(row["vs_lo"], row["vs_hi"])
    zero = "includes" if verdict == "no clear difference" else "excludes"
    return (f"Against the supervised baseline, this gap is {VERDICT_WORDS[verdict]} (difference "
            f"{number(row['vs_supervised'])}, {confidence:.0%} interval {span}, which {zero} 0).")
