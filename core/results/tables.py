"""Read-only access to a finished audit run, and the tables the dashboard and the report draw.

    load_results(run_dir) -> RunResults          report.json + predictions + embeddings + timings
    group_table(report, model, partition)        per-group metrics with intervals, worst group, small groups
    gap_table(report, partition, gap)            one gap per model: value, interval, the extreme pair's
                                                 signed interval, the paired comparison with supervised
    comparison_table(runs, attribute, gap)       every model of every run, Pareto flags
    paired_difference(results, a, b, partition, gap)
    label_fraction_curves(runs, partition, metric)
    embedding_points(results, model)             UMAP coordinates joined with the row's groups and outcome
    leakage_table(report, model)
    manual_whatif / fair_whatif                  threshold what-ifs (core.audit.thresholds) on the run's rows

Nothing here trains or re-audits: every number comes from the run's artifacts or from the
audit functions applied to its stored predictions. How to read a gap's interval: a gap such
as max - min of selection rates is never negative, so its bootstrap interval never covers 0
even when the groups do not differ (docs/metrics.md). Whether the two extreme groups really
differ is read from the *signed* interval of their difference (`pair_ci`), and whether a
model narrowed a gap from the paired comparison with the supervised baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InputError

SUPERVISED = "supervised"
GROUP_METRICS = ("accuracy", "tpr", "fpr", "selection_rate", "precision", "balanced_accuracy")
GAPS = ("equalized_odds_difference", "demographic_parity_difference", "equal_opportunity_difference",
        "fpr_difference", "accuracy_difference", "mean_subgroup_gap")
HIGHER_IS_BETTER = ("worst_group_accuracy", "demographic_parity_ratio", "min_disparate_impact_ratio")
#: Why a metric can be undefined for a group (shown as "n/a", never 0).
UNDEFINED_WHY = {"tpr": "no truly positive rows", "fnr": "no truly positive rows",
                 "fpr": "no truly negative rows", "precision": "no row predicted positive",
                 "roc_auc": "needs both outcomes in the group"}
UNTRUSTED_EXCLUDED = 0.05  # share of undefined bootstrap replicates above which an interval is unreliable


# -------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class RunResults:
    """A finished run's artifacts. Treat as read-only: the dashboard shares one copy."""

    run_dir: Path
    report: dict
    predictions: pd.DataFrame
    validation: pd.DataFrame | None
    embeddings: pd.DataFrame | None
    timings: dict

    @property
    def models(self) -> list[str]:
        return [m["name"] for m in self.report["models"]]

    @property
    def sensitive(self) -> list[str]:
        return list(self.report["study"]["sensitive"])

    @property
    def partitions(self) -> list[str]:
        return partitions(self.report)

    def model(self, name: str) -> dict:
        return model_entry(self.report, name)


def load_results(run_dir: Path | str) -> RunResults:
    """Read a run's artifacts; InputError if the run has no readable report (not finished, or removed)."""
    run_dir = Path(run_dir)
    try:
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        predictions = pd.read_parquet(run_dir / "predictions.parquet")
    except FileNotFoundError as error:
        raise InputError(f"The run folder '{run_dir}' has no {Path(error.filename).name}",
                         "Choose a run that finished, or run the audit again") from None
    except (ValueError, OSError) as error:
        raise InputError(f"The results in '{run_dir}' cannot be read ({error})",
                         "Run the audit again") from None
    validation = _optional_parquet(run_dir / "validation_predictions.parquet")
    embeddings = _optional_parquet(run_dir / "embeddings.parquet")
    timings_path = run_dir / "timings.json"
    timings = json.loads(timings_path.read_text(encoding="utf-8")) if timings_path.is_file() else {}
    return RunResults(run_dir=run_dir, report=report, predictions=predictions, validation=validation,
                      embeddings=embeddings, timings=timings)


def _optional_parquet(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


# -------------------------------------------------------------------------------- report access
def partitions(report: dict) -> list[str]:
    """Partition keys in report order: each attribute, then intersections ("sex & race")."""
    models = report.get("models") or []
    return list(models[0]["groups"]) if models else list(report["study"]["sensitive"])


def model_entry(report: dict, name: str) -> dict:
    for model in report["models"]:
        if model["name"] == name:
            return model
    raise InputError(f"No model '{name}' in this run", f"Models: {', '.join(m['name'] for m in report['models'])}")


def ssl_models(report: dict) -> list[str]:
    return [m["name"] for m in report["models"] if m["name"] != SUPERVISED]


def min_group_size(report: dict) -> int:
    return int((report.get("config") or {}).get("min_group_size", 30))


def _num(value: Any) -> float:
    """A report value as a float; undefined (None) becomes NaN, shown as 'n/a'."""
    return float("nan") if value is None else float(value)


def _ci(ci: Any) -> tuple[float, float]:
    return (float(ci[0]), float(ci[1])) if ci else (float("nan"), float("nan"))


def interval_excludes_zero(ci: Any) -> bool | None:
    """True if a signed interval lies wholly above or below 0; None when there is no interval."""
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return bool(ci[0] > 0 or ci[1] < 0)


# -------------------------------------------------------------------------------- fairness tables
def group_table(report: dict, model: str, partition: str) -> pd.DataFrame:
    """Per group of `partition` for `model`: n, positives, each metric with its interval
    (`<metric>_lo`, `<metric>_hi`; NaN when undefined), `small` (n < min_group_size),
    `worst` (lowest accuracy of the partition; ties all marked), `unreliable` (metrics whose
    interval left out more than 5% of the replicates as undefined)."""
    entry = model_entry(report, model)
    groups = entry["groups"].get(partition)
    if groups is None:
        raise InputError(f"No groups '{partition}' in this run", f"Choose one of: {', '.join(entry['groups'])}")
    n_boot = int((report.get("bootstrap") or {}).get("n_boot") or 0)
    rows = []
    for group in groups:
        row: dict[str, Any] = {"group": group["group"], "n": int(group["n"]), "n_positive": group.get("n_positive"),
                               "n_negative": group.get("n_negative"), "small": bool(group.get("small"))}
        for metric in GROUP_METRICS:
            row[metric] = _num(group.get(metric))
            row[f"{metric}_lo"], row[f"{metric}_hi"] = _ci((group.get("ci") or {}).get(metric))
        excluded = group.get("ci_excluded") or {}
        row["unreliable"] = ", ".join(m for m in GROUP_METRICS
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
    groups_differ (True when that signed interval excludes 0; None when there is none),
    vs_supervised, vs_lo, vs_hi (this model's gap - the supervised model's, paired bootstrap
    on the same test rows) and vs_verdict: "narrower" / "wider" (interval excludes 0; for
    worst-group accuracy and ratios "higher" / "lower"), "no clear difference", or None.
    """
    rows = []
    for entry in report["models"]:
        gaps = entry["gaps"].get(partition) or {}
        between = (gaps.get("between") or {}).get(gap) or {}
        pair = between.get("pair_ci")
        row = {"model": entry["name"], "pretraining": entry.get("pretraining"), "strategy": entry.get("strategy"),
               "value": _num(gaps.get(gap)), "metric": between.get("metric"), "max_group": between.get("max_group"),
               "min_group": between.get("min_group") or between.get("farthest_group")}
        row["lo"], row["hi"] = _ci((gaps.get("ci") or {}).get(gap))
        row["pair_lo"], row["pair_hi"] = _ci(pair)
        row["groups_differ"] = interval_excludes_zero(pair)
        compared = ((entry.get("compared_with_supervised") or {}).get(partition) or {}).get(gap)
        row["vs_supervised"] = _num(compared["difference"]) if compared else float("nan")
        row["vs_lo"], row["vs_hi"] = _ci(compared.get("ci") if compared else None)
        row["vs_verdict"] = _verdict(gap, compared.get("ci") if compared else None) if compared else None
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict(gap: str, ci: Any) -> str | None:
    excludes = interval_excludes_zero(ci)
    if excludes is None:
        return None
    if not excludes:
        return "no clear difference"
    above = ci[0] > 0
    if gap in HIGHER_IS_BETTER:
        return "higher" if above else "lower"
    return "wider" if above else "narrower"


def small_groups(report: dict, partition: str) -> list[dict]:
    """Groups of `partition` under the small-group size: [{"group", "n"}] (same rows in every model)."""
    entry = report["models"][0]
    return [{"group": g["group"], "n": int(g["n"])} for g in entry["groups"].get(partition, []) if g.get("small")]


# -------------------------------------------------------------------------------- comparison
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

    Columns: run_id, run_name, finished_at, label_fraction, method, model, strategy,
    n_trainable_params, accuracy (+ _lo/_hi), balanced_accuracy, roc_auc,
    worst_group_accuracy (+ _lo/_hi, for `attribute`), gap (+ _lo/_hi, `gap` of
    `attribute`), gap_vs_supervised (+ _lo/_hi), pareto_worst_group (on the front of
    accuracy vs worst-group accuracy, both higher = better) and pareto_gap (accuracy
    higher, gap lower = better)."""
    rows = []
    for run, report in runs:
        config = report.get("config") or {}
        for entry in report["models"]:
            overall, gaps = entry["overall"], (entry["gaps"].get(attribute) or {})
            compared = ((entry.get("compared_with_supervised") or {}).get(attribute) or {}).get(gap) or {}
            row = {"run_id": run.get("id"), "run_name": run.get("name"), "finished_at": run.get("finished_at"),
                   "label_fraction": float(report["study"].get("label_fraction", config.get("label_fraction", 1.0))),
                   "method": config.get("method"), "model": entry["name"], "strategy": entry.get("strategy"),
                   "n_trainable_params": entry.get("n_trainable_params"),
                   "accuracy": _num(overall.get("accuracy")),
                   "balanced_accuracy": _num(overall.get("balanced_accuracy")),
                   "roc_auc": _num(overall.get("roc_auc")),
                   "worst_group_accuracy": _num(gaps.get("worst_group_accuracy")),
                   "gap": _num(gaps.get(gap)), "gap_vs_supervised": _num(compared.get("difference"))}
            row["accuracy_lo"], row["accuracy_hi"] = _ci((overall.get("ci") or {}).get("accuracy"))
            row["worst_group_accuracy_lo"], row["worst_group_accuracy_hi"] = _ci(
                (gaps.get("ci") or {}).get("worst_group_accuracy"))
            row["gap_lo"], row["gap_hi"] = _ci((gaps.get("ci") or {}).get(gap))
            row["gap_vs_supervised_lo"], row["gap_vs_supervised_hi"] = _ci(compared.get("ci"))
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["pareto_worst_group"] = pareto_front(table["accuracy"], table["worst_group_accuracy"])
    table["pareto_gap"] = pareto_front(table["accuracy"], table["gap"], maximize_y=gap in HIGHER_IS_BETTER)
    return table


def partition_labels(frame: pd.DataFrame, partition: str) -> np.ndarray:
    """Each row's group in `partition`: the attribute's value, or the values joined with " & "
    in the key's attribute order (the audit's naming)."""
    attributes = partition.split(" & ")
    missing = [a for a in attributes if a not in frame.columns]
    if missing:
        raise InputError(f"The predictions have no column '{missing[0]}'", "Choose another attribute")
    labels = frame[attributes[0]].astype(str)
    for attribute in attributes[1:]:
        labels = labels + " & " + frame[attribute].astype(str)
    return labels.to_numpy(dtype=object)


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
    report = results.report
    boot = report.get("bootstrap") or {}
    n_boot, confidence = int(boot.get("n_boot", 1000)), float(boot.get("confidence", 0.95))
    entry, flip, source = None, False, "audit"
    if model_b == SUPERVISED:
        entry = _compared(model_entry(report, model_a), partition, gap)
    elif model_a == SUPERVISED:
        entry, flip = _compared(model_entry(report, model_b), partition, gap), True
    if entry is None:
        from core.audit.bootstrap import paired_gap_differences

        frame = results.predictions
        for name in (model_a, model_b):
            if f"pred__{name}" not in frame.columns:
                raise InputError(f"No predictions of model '{name}' in this run", "Choose another model")
        attributes = partition.split(" & ")
        seed = int((report.get("config") or {}).get("seed", 0))
        computed = paired_gap_differences(frame["y_true"].to_numpy(), frame[f"pred__{model_a}"].to_numpy(),
                                          frame[f"pred__{model_b}"].to_numpy(), frame[attributes].astype(str),
                                          n_boot=n_boot, confidence=confidence, random_state=seed)
        entry, source = computed[partition][gap], "computed"
    ci = entry.get("ci")
    value_a, value_b, difference = entry.get("model_a"), entry.get("model_b"), entry.get("difference")
    if flip:
        value_a, value_b = value_b, value_a
        difference = None if difference is None else -difference
        ci = None if ci is None else [-ci[1], -ci[0]]
    return {"model_a": model_a, "model_b": model_b, "partition": partition, "gap": gap, "value_a": value_a,
            "value_b": value_b, "difference": difference, "ci": ci, "excludes_zero": interval_excludes_zero(ci),
            "verdict": _verdict(gap, ci), "source": source, "n_boot": n_boot, "confidence": confidence}


def _compared(entry: dict, partition: str, gap: str) -> dict | None:
    return ((entry.get("compared_with_supervised") or {}).get(partition) or {}).get(gap)


def label_fraction_curves(runs: Iterable[tuple[Mapping, dict]], partition: str, metric: str) -> pd.DataFrame:
    """Per label fraction and model: a group metric (one row per group) or a gap (group = None).

    `runs` are (run record, report) pairs, oldest first; when several runs share a label
    fraction, the newest one counts (each point is one audit, never an average of audits).
    Columns: label_fraction, model, group, value, lo, hi, run_id."""
    newest: dict[float, tuple[Mapping, dict]] = {}
    for run, report in runs:
        newest[float(report["study"]["label_fraction"])] = (run, report)
    rows = []
    for fraction in sorted(newest):
        run, report = newest[fraction]
        for entry in report["models"]:
            if metric in GROUP_METRICS:
                for group in entry["groups"].get(partition) or []:
                    lo, hi = _ci((group.get("ci") or {}).get(metric))
                    rows.append({"label_fraction": fraction, "model": entry["name"], "group": group["group"],
                                 "value": _num(group.get(metric)), "lo": lo, "hi": hi, "run_id": run.get("id")})
            else:
                gaps = entry["gaps"].get(partition) or {}
                lo, hi = _ci((gaps.get("ci") or {}).get(metric))
                rows.append({"label_fraction": fraction, "model": entry["name"], "group": None,
                             "value": _num(gaps.get(metric)), "lo": lo, "hi": hi, "run_id": run.get("id")})
    return pd.DataFrame(rows, columns=["label_fraction", "model", "group", "value", "lo", "hi", "run_id"])


# -------------------------------------------------------------------------------- representation
def outcome_names(report: dict) -> tuple[str, str]:
    """Readable names of the two outcomes: (positive, negative), e.g. ('>50K', 'not >50K')."""
    positive = str(report["study"].get("positive_label"))
    return positive, f"not {positive}"


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
    withheld = set(results.report.get("withheld_columns") or [])
    attributes = [a for a in results.sensitive if a not in withheld]
    keep = ["row_id", *attributes, "y_true", f"score__{model}", f"pred__{model}"]
    frame = coords[["row_id", "umap_x", "umap_y"]].merge(results.predictions[keep], on="row_id", how="inner")
    for partition in results.partitions:
        if " & " in partition and all(a in attributes for a in partition.split(" & ")):
            frame[partition] = partition_labels(frame, partition)
    positive, negative = outcome_names(results.report)
    y, pred = frame.pop("y_true").to_numpy(), frame.pop(f"pred__{model}").to_numpy()
    frame["label"] = np.where(y == 1, positive, negative)
    frame["prediction"] = np.where(pred == 1, positive, negative)
    frame["score"] = frame.pop(f"score__{model}")
    frame["error"] = np.select([pred == y, pred == 1], ["correct", "false positive"], "false negative")
    return frame.reset_index(drop=True)


def leakage_table(report: dict, model: str) -> pd.DataFrame:
    """How well a linear probe reads each sensitive attribute from the model's representation.

    Columns: attribute, balanced_accuracy (5-fold probe on the embeddings), std (across
    folds), chance (1 / number of groups), raw (same probe on the raw features), n_groups,
    note, and reading: "undefined"; "about chance" when balanced_accuracy - chance <= 2 std
    (the representation gives the attribute away no better than guessing); otherwise
    "readable". `vs_raw` compares with the raw features: "less", "more" or "similar"
    (within 2 std)."""
    rows = []
    for attribute, probe in ((model_entry(report, model).get("representation") or {}).get("leakage") or {}).items():
        ba, chance, std = probe.get("balanced_accuracy"), probe.get("chance"), probe.get("std") or 0.0
        raw = probe.get("raw_features_balanced_accuracy")
        if ba is None or chance is None:
            reading, vs_raw = "undefined", None
        else:
            reading = "about chance" if ba - chance <= 2 * std else "readable"
            vs_raw = None if raw is None else ("similar" if abs(ba - raw) <= 2 * std else
                                               "less" if ba < raw else "more")
        rows.append({"attribute": attribute, "balanced_accuracy": _num(ba), "std": _num(probe.get("std")),
                     "chance": _num(chance), "raw": _num(raw), "n_groups": probe.get("n_groups"),
                     "note": probe.get("note") or "", "reading": reading, "vs_raw": vs_raw})
    return pd.DataFrame(rows, columns=["attribute", "balanced_accuracy", "std", "chance", "raw", "n_groups", "note",
                                       "reading", "vs_raw"])


# -------------------------------------------------------------------------------- threshold what-ifs
def threshold_rows(results: RunResults, model: str, partition: str,
                   split: str = "test") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, labels, groups) of the run's test rows, or of its validation rows (`split="validation"`)."""
    frame = results.predictions if split == "test" else results.validation
    if frame is None:
        raise InputError("This run has no validation predictions to fit thresholds on",
                         "Run the audit again with this version of Equiscope")
    if f"score__{model}" not in frame.columns:
        raise InputError(f"No scores of model '{model}' in this run", "Choose another model")
    return (frame[f"score__{model}"].to_numpy(np.float64), frame["y_true"].to_numpy(np.int64),
            partition_labels(frame, partition))


def manual_whatif(results: RunResults, model: str, partition: str, thresholds: Mapping[str, float]) -> dict:
    """Hand-set per-group thresholds judged on the test rows (`evaluate_thresholds`): per-group
    metrics, gaps, accuracy, and `accuracy_cost` against one threshold of 0.5 for everyone."""
    from core.audit.thresholds import evaluate_thresholds

    return evaluate_thresholds(dict(thresholds), evaluate_on=threshold_rows(results, model, partition))


def fair_whatif(results: RunResults, model: str, partition: str, constraint: str) -> dict:
    """Per-group thresholds meeting `constraint` ("demographic_parity", "equal_opportunity",
    "equalized_odds"), fitted on the validation rows and judged on the test rows
    (`optimize_thresholds`, decisions drawn with the run's seed). `randomized` says whether
    some rows are decided by a weighted coin (equalized odds usually needs that)."""
    from core.audit.thresholds import optimize_thresholds

    seed = int((results.report.get("config") or {}).get("seed", 0))
    return optimize_thresholds(constraint, fit_on=threshold_rows(results, model, partition, "validation"),
                               evaluate_on=threshold_rows(results, model, partition), random_state=seed)


def whatif_groups(result: dict) -> pd.DataFrame:
    """Per group, before (one threshold of 0.5) and after the what-if: n, accuracy, tpr, fpr,
    selection_rate as `<metric>_before` / `<metric>_after` (NaN where undefined)."""
    before = {g["group"]: g for g in result["baseline"]["groups"]}
    rows = []
    for group in result["groups"]:
        row: dict[str, Any] = {"group": group["group"], "n": group["n"]}
        for metric in ("accuracy", "tpr", "fpr", "selection_rate"):
            row[f"{metric}_before"] = _num(before[group["group"]][metric])
            row[f"{metric}_after"] = _num(group[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def whatif_gaps(result: dict) -> pd.DataFrame:
    """Gaps and overall accuracy before and after the what-if: columns measure, before, after, change."""
    rows = [{"measure": "accuracy", "before": result["baseline"]["accuracy"], "after": result["accuracy"]}]
    for gap, after in result["gaps"].items():
        rows.append({"measure": gap, "before": _num(result["baseline"]["gaps"][gap]), "after": _num(after)})
    table = pd.DataFrame(rows)
    table["change"] = table["after"] - table["before"]
    return table


def describe_rule(rule: Mapping) -> str:
    """A per-group decision rule in words: 'score >= 0.42', or a randomised mix of two
    thresholds, or (equalized odds) a share of rows decided by a coin."""
    parts = []
    for part in rule.get("thresholds") or []:
        threshold = part["threshold"]
        text = ("always positive" if threshold == -math.inf else "never positive" if threshold == math.inf
                else f"score {part['operator']} {threshold:.3f}")
        parts.append(text if part["probability"] >= 1 else f"{text} for {_share(part['probability'])} of rows")
    text = "; ".join(parts) or "no rule"
    if rule.get("p_constant"):
        text += (f"; {_share(rule['p_constant'])} of rows decided by a coin that says positive with "
                 f"probability {_share(rule.get('constant_positive_rate') or 0)}")
    return text


def _share(p: float) -> str:
    """A probability as a share of rows: never rounded to a misleading 0% or 100%."""
    if 0 < p < 0.01:
        return "under 1%"
    if 0.99 < p < 1:
        return "over 99%"
    return f"{100 * p:.0f}%"


# -------------------------------------------------------------------------------- review and report
def sign_off(notes: Iterable[Mapping]) -> dict | None:
    """The note that records the decision: the newest note with status "approved" (notes as
    `Workspace.list_notes` returns them), or None."""
    approved = [dict(n) for n in notes if n.get("status") == "approved"]
    return max(approved, key=lambda n: (n.get("created_at") or "", n.get("id") or 0)) if approved else None


def stakeholder_html(results: RunResults, notes: list[dict] | None = None, sign_off_note: dict | None = None) -> str:
    """The self-contained stakeholder report of this run (core.results.report), with the review notes and
    the sign-off; the maps are coloured by the first sensitive attribute."""
    from core.results.report import load_embeddings, render_html

    attribute = results.sensitive[0] if results.sensitive else None
    embeddings = load_embeddings(results.run_dir, attribute)
    return render_html(results.report, embeddings=embeddings, notes=notes, sign_off=sign_off_note)


def write_review_report(results: RunResults, out_dir: Path, notes: list[dict] | None = None, *,
                        pdf: bool = False, stamp: str | None = None) -> tuple[Path, Path | None]:
    """Write the stakeholder report with the review notes and sign-off into `out_dir` as
    report-<stamp>.html (and .pdf with `pdf=True` where Chromium is installed; None otherwise).
    Each build is a new file: the folder keeps every version that was shared."""
    from datetime import datetime, timezone

    from core.results.report import html_to_pdf
    from core.files import atomic_write

    stamp = stamp or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out_dir)
    html_path = out_dir / f"report-{stamp}.html"
    atomic_write(html_path, stakeholder_html(results, notes, sign_off(notes or [])))
    pdf_path = html_to_pdf(html_path, html_path.with_suffix(".pdf")) if pdf else None
    return html_path, pdf_path
