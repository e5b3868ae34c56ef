"""Comparisons across models and runs: the Pareto table, paired differences, label-fraction curves.

    comparison_table(runs, attribute, gap)             every model of every run, Pareto flags
    pareto_front(x, y)                                 which points no other point dominates
    paired_difference(results, a, b, partition, gap)   gap(A) - gap(B) on the same test rows
    label_fraction_curves(runs, partition, metric)     a metric per label fraction and model
    audit_changes(earlier, later, measure)             two audits of one study: what changed, with intervals

`runs` are (run record, report) pairs as the workspace lists them. Nothing is re-audited except
a paired difference between two SSL models, which the audit does not store: it is computed from
predictions.parquet with the audit's own resamples, confidence and seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from core.audit.comparison import paired_gap_differences
from core.errors import InputError
from core.results.tables import interval, interval_excludes_zero, number, verdict
from core.results.folder import ReportView, RunResults, pred_column, section
from core.results.wording import comparison_verdict, model_label
from core.vocabulary import HIGHER_IS_BETTER, SHOWN_GROUP_METRICS, SUPERVISED, split_partition


def pareto_front(x: Iterable[float], y: Iterable[float], *, maximize_x: bool = True,
                 maximize_y: bool = True) -> np.ndarray:
    """Boolean mask of the points no other point dominates: another point is at least as
    good on both axes and strictly better on one. NaN points are never on the front."""
    xs = np.asarray(list(x), dtype=float) * (1 if maximize_x else -1)
    ys = np.asarray(list(y), dtype=float) * (1 if maximize_y else -1)
    valid = ~(np.isnan(xs) | np.isnan(ys))
    front = np.zeros(len(xs), dtype=bool)
    for i in np.flatnonzero(valid):
        others = valid.copy()
        others[i] = False
        dominated = others & (xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))
        front[i] = not dominated.any()
    return front


def comparison_table(runs: Iterable[tuple[Mapping, dict]], attribute: str, gap: str) -> pd.DataFrame:
    """Every model of every run: (run record, report) pairs -> one row per model.

    Columns: run_id, run_name, finished_at, label_fraction, method, model, label (its plain name), strategy,
    n_trainable_params, accuracy (+ _lo/_hi), balanced_accuracy, roc_auc,
    worst_group_accuracy (+ _lo/_hi, for `attribute`), gap (+ _lo/_hi, `gap` of
    `attribute`), gap_vs_supervised (+ _lo/_hi), pareto_worst_group (on the front of
    accuracy vs worst-group accuracy, both higher = better) and pareto_gap (accuracy
    higher, gap lower = better)."""
    rows = []
    for run, report in runs:
        view = ReportView(report)
        for entry in view.models:
            overall, gaps = entry.overall, entry.gaps(attribute)
            compared = entry.compared(attribute, gap) or {}
            row = {"run_id": run.get("id"), "run_name": run.get("name"), "finished_at": run.get("finished_at"),
                   "label_fraction": view.label_fraction, "method": view.config.get("method"), "model": entry.name,
                   "label": model_label(entry.entry),
                   "strategy": entry.strategy, "n_trainable_params": entry.n_trainable_params,
                   "accuracy": number(overall.get("accuracy")),
                   "balanced_accuracy": number(overall.get("balanced_accuracy")),
                   "roc_auc": number(overall.get("roc_auc")),
                   "worst_group_accuracy": number(gaps.get("worst_group_accuracy")),
                   "gap": number(gaps.get(gap)), "gap_vs_supervised": number(compared.get("difference"))}
            row["accuracy_lo"], row["accuracy_hi"] = interval(entry.overall_ci.get("accuracy"))
            row["worst_group_accuracy_lo"], row["worst_group_accuracy_hi"] = interval(
                entry.gap_ci(attribute, "worst_group_accuracy"))
            row["gap_lo"], row["gap_hi"] = interval(entry.gap_ci(attribute, gap))
            row["gap_vs_supervised_lo"], row["gap_vs_supervised_hi"] = interval(compared.get("ci"))
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["pareto_worst_group"] = pareto_front(table["accuracy"], table["worst_group_accuracy"])
    table["pareto_gap"] = pareto_front(table["accuracy"], table["gap"], maximize_y=gap in HIGHER_IS_BETTER)
    return table


def paired_difference(results: RunResults, model_a: str, model_b: str, partition: str, gap: str) -> dict:
    """Bootstrap interval of gap(A) - gap(B) on the run's test rows (same rows for both).

    When one model is the supervised baseline the audit's own paired comparison is used
    (`compared_with_supervised`, sign flipped if the baseline is A); otherwise it is computed
    with `paired_gap_differences` on predictions.parquet with the audit's resamples,
    confidence and seed. Returns {"model_a", "model_b", "value_a", "value_b", "difference",
    "ci", "excludes_zero", "verdict", "source": "audit" | "computed", "n_boot", "confidence"}.
    """
    if model_a == model_b:
        raise InputError("Both sides are the same model", "Choose two different models to compare")
    view = results.view
    n_boot, confidence = view.n_boot(1000), float(view.bootstrap.get("confidence", 0.95))
    entry, flip, source = None, False, "audit"
    if model_b == SUPERVISED:
        entry = view.model(model_a).compared(partition, gap)
    elif model_a == SUPERVISED:
        entry, flip = view.model(model_b).compared(partition, gap), True
    if entry is None:
        frame = results.predictions
        for name in (model_a, model_b):
            if pred_column(name) not in frame.columns:
                raise InputError(f"No predictions of model '{name}' in this run", "Choose another model")
        computed = paired_gap_differences(frame["y_true"].to_numpy(), frame[pred_column(model_a)].to_numpy(),
                                          frame[pred_column(model_b)].to_numpy(),
                                          frame[split_partition(partition)].astype(str),
                                          n_boot=n_boot, confidence=confidence, random_state=view.seed)
        entry, source = computed[partition][gap], "computed"
    ci = entry.get("ci")
    # the audit's verdict is its family-adjusted test; a computed one is a single comparison
    excludes = entry.get("excludes_zero") if source == "audit" and entry.get("p_adjusted") is not None \
        else interval_excludes_zero(ci)
    value_a, value_b, difference = entry.get("model_a"), entry.get("model_b"), entry.get("difference")
    if flip:
        value_a, value_b = value_b, value_a
        difference = None if difference is None else -difference
        ci = None if ci is None else [-ci[1], -ci[0]]
    return {"model_a": model_a, "model_b": model_b, "partition": partition, "gap": gap, "value_a": value_a,
            "value_b": value_b, "difference": difference, "ci": ci, "excludes_zero": excludes,
            "verdict": verdict(gap, ci, excludes, difference), "source": source, "n_boot": n_boot, "confidence": confidence}


def label_fraction_curves(runs: Iterable[tuple[Mapping, dict]], partition: str, metric: str) -> pd.DataFrame:
    """Per label fraction and model: a group metric (one row per group) or a gap (group = None).

    `runs` are (run record, report) pairs, oldest first; when several runs share a label
    fraction, the newest one counts (each point is one audit, never an average of audits).
    Columns: label_fraction, model, group, value, lo, hi, run_id."""
    newest: dict[float, tuple[Mapping, ReportView]] = {}
    for run, report in runs:
        view = ReportView(report)
        newest[float(view.study["label_fraction"])] = (run, view)
    rows = []
    for fraction in sorted(newest):
        run, view = newest[fraction]
        for entry in view.models:
            if metric in SHOWN_GROUP_METRICS:
                for group in entry.groups(partition):
                    lo, hi = interval(section(group, "ci").get(metric))
                    rows.append({"label_fraction": fraction, "model": entry.name, "group": group["group"],
                                 "value": number(group.get(metric)), "lo": lo, "hi": hi, "run_id": run.get("id")})
            else:
                lo, hi = interval(entry.gap_ci(partition, metric))
                rows.append({"label_fraction": fraction, "model": entry.name, "group": None,
                             "value": number(entry.gaps(partition).get(metric)), "lo": lo, "hi": hi,
                             "run_id": run.get("id")})
    return pd.DataFrame(rows, columns=["label_fraction", "model", "group", "value", "lo", "hi", "run_id"])


def audit_changes(earlier: dict, later: dict, measure: str = "equalized_odds_difference") -> list[dict]:
    """What changed between two audits of the same study, per model present in both and sensitive
    attribute: the `measure` gap with its interval in each, the change, and each audit's verdict
    against the supervised baseline (read from each report, never recomputed). The two audits
    are separate samples of training, so the change is a description: read it beside the two
    intervals, not as a test."""
    from_view, to_view = ReportView(earlier), ReportView(later)
    before = {m.name: m for m in from_view.models}
    rows = []
    for model in to_view.models:
        old = before.get(model.name)
        if old is None:
            continue
        for attribute in to_view.sensitive:
            a, b = number(old.gaps(attribute).get(measure)), number(model.gaps(attribute).get(measure))
            rows.append({"model": model.name, "attribute": attribute, "before": a,
                         "before_ci": old.gap_ci(attribute, measure), "after": b,
                         "after_ci": model.gap_ci(attribute, measure), "change": b - a,
                         "verdict_before": comparison_verdict(old.compared(attribute, measure)),
                         "verdict_after": comparison_verdict(model.compared(attribute, measure))})
    return rows
