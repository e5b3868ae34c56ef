"""The tables the result pages draw from one finished run (read-only: nothing trains or re-audits).

    group_table(report, model, partition)        per-group metrics with intervals, worst group, small groups
    gap_table(report, partition, gap)            one gap per model: value, interval, the extreme pair's
                                                 signed interval, the paired comparison with supervised
    small_groups(report, partition)
    leakage_table(report, model)
    embedding_points(results, model)             UMAP coordinates joined with the row's groups and outcome

How to read a gap's interval: a gap such as max - min of selection rates is never negative, so
its bootstrap interval never covers 0 even when the groups do not differ (docs/metrics.md).
Whether the two extreme groups really differ is read from the *signed* interval of their
difference (`pair_ci`), and whether a model narrowed a gap from the paired comparison with the
supervised baseline. Comparisons across models and runs are core.results.compare, threshold
what-ifs core.results.whatif, the review's report export core.results.signoff.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.audit.multiplicity import clears_floor
from core.errors import InputError
from core.results.folder import ReportView, RunResults, partition_labels, pred_column, score_column, section
from core.vocabulary import HIGHER_IS_BETTER, SHOWN_GROUP_METRICS, SUPERVISED, is_intersection, split_partition

UNTRUSTED_EXCLUDED = 0.05  # share of undefined bootstrap replicates above which an interval is unreliable


# -------------------------------------------------------------------------------- values
def number(value: Any) -> float:
    """A report value as a float; undefined (None) becomes NaN, shown as 'n/a'."""
    return float("nan") if value is None else float(value)


def interval(ci: Any) -> tuple[float, float]:
    """A report interval as (lo, hi); NaN, NaN when there is none."""
    return (float(ci[0]), float(ci[1])) if ci else (float("nan"), float("nan"))


def interval_excludes_zero(ci: Any) -> bool | None:
    """True if a signed interval lies wholly above or below 0; None when there is no interval."""
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return bool(ci[0] > 0 or ci[1] < 0)


def verdict(gap: str, ci: Any, excludes_zero: bool | None = None, difference: Any = None) -> str | None:
    """What a difference of gaps says: "narrower" / "wider" (for higher-is-better measures
    "higher" / "lower"), "no clear difference", "too small to matter" (a clear `difference`
    below the practical floor, core.audit.multiplicity.PRACTICAL_FLOOR), or None. Decided by the
    report's `excludes_zero` where it has one (the family-adjusted test), else by whether the
    signed interval excludes 0."""
    excludes = interval_excludes_zero(ci) if excludes_zero is None or not ci else excludes_zero
    if excludes is None:
        return None
    if not excludes:
        return "no clear difference"
    if clears_floor(difference) is False:
        return "too small to matter"
    above = ci[0] + ci[1] > 0
    if gap in HIGHER_IS_BETTER:
        return "higher" if above else "lower"
    return "wider" if above else "narrower"


def ssl_models(report: dict) -> list[str]:
    return [m.name for m in ReportView(report).ssl_models]


# -------------------------------------------------------------------------------- fairness tables
def group_table(report: dict, model: str, partition: str) -> pd.DataFrame:
    """Per group of `partition` for `model`: n, positives, each metric with its interval
    (`<metric>_lo`, `<metric>_hi`; NaN when undefined), `small` (n < min_group_size),
    `worst` (lowest accuracy of the partition; ties all marked), `unreliable` (metrics whose
    interval left out more than 5% of the replicates as undefined)."""
    view = ReportView(report)
    entry = view.model(model)
    if partition not in entry.group_partitions:
        raise InputError(f"No groups '{partition}' in this run",
                         f"Choose one of: {', '.join(entry.group_partitions)}")
    n_boot = view.n_boot()
    rows = []
    for group in entry.groups(partition):
        row: dict[str, Any] = {"group": group["group"], "n": int(group["n"]), "n_positive": group.get("n_positive"),
                               "n_negative": group.get("n_negative"), "small": bool(group.get("small"))}
        for metric in SHOWN_GROUP_METRICS:
            row[metric] = number(group.get(metric))
            row[f"{metric}_lo"], row[f"{metric}_hi"] = interval(section(group, "ci").get(metric))
        excluded = section(group, "ci_excluded")
        row["unreliable"] = ", ".join(m for m in SHOWN_GROUP_METRICS
                                      if n_boot and excluded.get(m, 0) > UNTRUSTED_EXCLUDED * n_boot)
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["worst"] = table["accuracy"] == table["accuracy"].min()
    else:
        table["worst"] = pd.Series(dtype=bool)
    return table


def gap_table(report: dict, partition: str, gap: str) -> pd.DataFrame:
    """One row per model for one gap of one partition.

    Columns: model, pretraining, strategy, value, lo, hi (the gap's own interval: for a
    max - min gap it sits above 0 by construction), metric, max_group, min_group,
    pair_lo, pair_hi (signed interval of metric[max_group] - metric[min_group]),
    groups_differ (the permutation test of the gap, `gaps[partition]["chance"][gap]["differ"]`,
    family-adjusted; runs without it: whether that signed interval excludes 0),
    vs_supervised, vs_lo, vs_hi (this model's gap - the supervised model's, paired bootstrap
    on the same test rows) and vs_verdict: "narrower" / "wider" (interval excludes 0; for
    worst-group accuracy and ratios "higher" / "lower"), "no clear difference", or None.
    """
    rows = []
    for entry in ReportView(report).models:
        between = entry.between(partition, gap)
        pair = between.get("pair_ci")
        row = {"model": entry.name, "pretraining": entry.pretraining, "strategy": entry.strategy,
               "value": number(entry.gaps(partition).get(gap)), "metric": between.get("metric"),
               "max_group": between.get("max_group"),
               "min_group": between.get("min_group") or between.get("farthest_group")}
        row["lo"], row["hi"] = interval(entry.gap_ci(partition, gap))
        row["pair_lo"], row["pair_hi"] = interval(pair)
        chance = section(section(entry.gaps(partition), "chance"), gap)
        row["groups_differ"] = chance["differ"] if "differ" in chance else interval_excludes_zero(pair)
        compared = entry.compared(partition, gap)
        row["vs_supervised"] = number(compared["difference"]) if compared else float("nan")
        row["vs_lo"], row["vs_hi"] = interval(compared.get("ci") if compared else None)
        row["vs_verdict"] = (verdict(gap, compared.get("ci"), compared.get("excludes_zero"), compared.get("difference"))
                             if compared else None)
        row["trivial"] = clears_floor(row["value"]) is False  # below the practical floor: never a finding
        rows.append(row)
    return pd.DataFrame(rows)


def small_groups(report: dict, partition: str) -> list[dict]:
    """Groups of `partition` under the small-group size: [{"group", "n"}] (same rows in every model)."""
    first = ReportView(report).models[0]
    return [{"group": g["group"], "n": int(g["n"])} for g in first.groups(partition) if g.get("small")]


# -------------------------------------------------------------------------------- representation
def outcome_names(report: dict) -> tuple[str, str]:
    """Readable names of the two outcomes: (positive, negative), e.g. ('>50K', '<=50K'); ('>50K', 'not >50K')
    for a report written before the study's negative_label."""
    view = ReportView(report)
    return str(view.positive_label), view.negative_label


def embedding_points(results: RunResults, model: str) -> pd.DataFrame:
    """The model's UMAP coordinates of the test rows joined with what a point may show:
    row_id, umap_x, umap_y, each sensitive attribute, each intersection, label, prediction
    (outcome names), score (probability of the positive outcome) and error ("correct",
    "false positive": predicted positive, truly negative; "false negative": the reverse).
    Only the audit's own columns are joined: no feature and no withheld column."""
    if results.embeddings is None:
        raise InputError("This run has no 2-D map of the representations (it ran without UMAP)",
                         "Start a run with the map switched on")
    coords = results.embeddings[results.embeddings["model"] == model]
    if coords.empty:
        raise InputError(f"Model '{model}' has no map in this run", "Choose another model")
    withheld = set(results.view.withheld_columns)
    attributes = [a for a in results.sensitive if a not in withheld]
    score, pred = score_column(model), pred_column(model)
    keep = ["row_id", *attributes, "y_true", score, pred]
    frame = coords[["row_id", "umap_x", "umap_y"]].merge(results.predictions[keep], on="row_id", how="inner")
    for partition in results.partitions:
        if is_intersection(partition) and all(a in attributes for a in split_partition(partition)):
            frame[partition] = partition_labels(frame, partition)
    positive, negative = outcome_names(results.report)
    y, decided = frame.pop("y_true").to_numpy(), frame.pop(pred).to_numpy()
    frame["label"] = np.where(y == 1, positive, negative)
    frame["prediction"] = np.where(decided == 1, positive, negative)
    frame["score"] = frame.pop(score)
    frame["error"] = np.select([decided == y, decided == 1], ["correct", "false positive"], "false negative")
    return frame.reset_index(drop=True)


def leakage_table(report: dict, model: str) -> pd.DataFrame:
    """How well a linear probe reads each sensitive attribute from the model's representation.

    Columns: attribute, balanced_accuracy (5-fold probe on the embeddings), std (across
    folds), low / high (its 95% t-interval over the folds, NaN for runs stored without one),
    chance (1 / number of groups), raw (same probe on the raw features), without (the raw
    features without the attribute's own columns: what its proxies alone reveal),
    without_low / without_high, n_dropped (encoded columns left out for `without`; 0 when the
    attribute was no feature), n_groups, note, and reading: "undefined"; "readable" ("a linear
    probe can read it") when the interval lies above chance; "about chance" otherwise (runs
    stored without an interval: balanced_accuracy - chance <= 2 std). `without_reading` is the
    same for `without`. `vs_raw` compares with the raw features: "less", "more" or "similar"
    (within 2 std)."""
    rows = []
    for attribute, probe in ReportView(report).model(model).leakage.items():
        ba, chance, std = probe.get("balanced_accuracy"), probe.get("chance"), probe.get("std") or 0.0
        raw = probe.get("raw_features_balanced_accuracy")
        without = probe.get("raw_features_without_attribute_balanced_accuracy")
        if ba is None or chance is None:
            reading, vs_raw = "undefined", None
        else:
            reading = _probe_reading(probe.get("readable"), ba - chance <= 2 * std)
            vs_raw = None if raw is None else ("similar" if abs(ba - raw) <= 2 * std else
                                               "less" if ba < raw else "more")
        without_reading = ("undefined" if without is None or chance is None else
                           _probe_reading(probe.get("raw_features_without_attribute_readable"), False))
        interval = probe.get("interval") or [None, None]
        without_interval = probe.get("raw_features_without_attribute_interval") or [None, None]
        rows.append({"attribute": attribute, "balanced_accuracy": number(ba), "std": number(probe.get("std")),
                     "low": number(interval[0]), "high": number(interval[1]), "chance": number(chance),
                     "raw": number(raw), "without": number(without), "without_low": number(without_interval[0]),
                     "without_high": number(without_interval[1]),
                     "n_dropped": probe.get("raw_features_without_attribute_n_dropped"),
                     "n_groups": probe.get("n_groups"), "note": probe.get("note") or "", "reading": reading,
                     "without_reading": without_reading, "vs_raw": vs_raw})
    return pd.DataFrame(rows, columns=["attribute", "balanced_accuracy", "std", "low", "high", "chance", "raw",
                                       "without", "without_low", "without_high", "n_dropped", "n_groups", "note",
                                       "reading", "without_reading", "vs_raw"])


def _probe_reading(readable: bool | None, near_chance_by_std: bool) -> str:
    """"readable" / "about chance" from the stored fold-interval verdict (core.audit.representation.
    probe_reads_attribute); runs stored before it fall back to the 2-std rule."""
    if readable is None:
        return "about chance" if near_chance_by_std else "readable"
    return "readable" if readable else "about chance"
