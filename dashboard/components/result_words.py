"""Results in plain words: what the metrics and gaps mean, and how to read an interval.

The names of metrics and gaps are core.vocabulary's (METRIC_NAMES, GAP_NAMES) and numbers are
written by core.results.formatting, as in the report and the CLI: rates as percentages, gaps with
two decimals (three when two would show 0.00), undefined values "n/a", never 0. Downloads keep
the exact values.
"""

from __future__ import annotations

from core.audit.multiplicity import PRACTICAL_FLOOR
from core.results.formatting import fmt_ci, fmt_num, fmt_pct, is_number
from core.vocabulary import METRIC_NAMES, NOT_AVAILABLE, is_intersection
from dashboard.components.format import md

#: The gaps a reviewer can choose on the Fairness and Compare pages, the headline first.
GAP_CHOICES = ["equalized_odds_difference", "demographic_parity_difference", "equal_opportunity_difference",
               "fpr_difference", "accuracy_difference", "mean_subgroup_gap"]


def partition_label(partition: str) -> str:
    """'sex', or 'sex & race (intersection)'."""
    return f"{partition} (intersection)" if is_intersection(partition) else partition


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
    "Whether the groups really differ is read from a **permutation test of the gap itself**: is a gap this "
    "large expected by chance with this many groups of these sizes? Whether pretraining changed the gap is read "
    "from the **paired comparison** with the supervised baseline (same test rows, over every training "
    "replicate). Both verdicts are decided on p-values Holm-adjusted within their family of comparisons (the "
    "summary says how many); the intervals shown are unadjusted descriptions.")


def _text(value: object) -> str | None:
    """A table cell as text, or None when empty (None, or NaN in a pandas column)."""
    return value if isinstance(value, str) and value else None


def compact(value: float, lo: float, hi: float) -> str:
    """A rate and its interval in a table cell: '57.1% (42.8–71.5)'; 'n/a' when undefined."""
    if not is_number(value):
        return NOT_AVAILABLE
    if not (is_number(lo) and is_number(hi)):
        return fmt_pct(value)
    if hi - lo < 1e-9:  # every resample agreed: too few rows to show any spread, not certainty
        return f"{fmt_pct(value)} (too few rows for an interval)"
    return f"{fmt_pct(value)} ({100 * lo:.1f}–{100 * hi:.1f})"


def pair_sentence(row: dict, confidence: float) -> str:
    """Whether the two groups at the extremes of a gap really differ, from the signed interval."""
    if not _text(row.get("max_group")) or not _text(row.get("min_group")):
        return ""
    metric = METRIC_NAMES.get(_text(row.get("metric")) or "", _text(row.get("metric")) or "rate").lower()
    groups = f"*{md(row['max_group'])}* and *{md(row['min_group'])}*"
    if row.get("groups_differ") not in (True, False):
        return f"The gap is between {groups} ({metric}); no interval for their difference."
    # one interval per gap (the gap's own, shown before this sentence): the pair's stays in the download
    if row.get("trivial"):
        return (f"The gap is between {groups} ({metric}) and is too small to matter (below "
                f"{fmt_num(PRACTICAL_FLOOR)}).")
    if row["groups_differ"]:
        return (f"The gap is between {groups} ({metric}). A gap this large is not expected by chance with these "
                f"groups (family-adjusted test): the groups differ.")
    return (f"The gap is between {groups} ({metric}). A gap this large is expected by chance with these groups "
            f"(family-adjusted test): the difference could be chance.")


VERDICT_WORDS = {"narrower": "**narrower**", "wider": "**wider**", "higher": "**higher**", "lower": "**lower**",
                 "no clear difference": "**not clearly different**",
                 "too small to matter": f"**different by less than {fmt_num(PRACTICAL_FLOOR)}, too small to matter**"}


def supervised_sentence(row: dict, confidence: float) -> str:
    """Paired comparison of a model's gap with the supervised baseline's, in words."""
    verdict = _text(row.get("vs_verdict"))
    if verdict is None:
        return ""
    span = fmt_ci((row["vs_lo"], row["vs_hi"]))
    return (f"Against the supervised baseline, this gap is {VERDICT_WORDS[verdict]} (difference "
            f"{fmt_num(row['vs_supervised'])}, {confidence:.0%} interval {span}; decided on the p-value "
            f"Holm-adjusted within its family of comparisons).")
