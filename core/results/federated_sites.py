"""Per-site accuracy of each federated model against its central base, from a finished run.

The per-group tables already cover the sensitive attributes; a federation's sites (the values
of `privacy.federated.by`) are another partition of the same test rows, and the question a
reviewer asks of them is "did federating cost some site more than others?". So for every
federated model F and its base B, in every site s of the test rows:

    difference_s = mean_r acc_s(F_r) - mean_r acc_s(B_r)

paired replicate r with r and the test rows resampled within sites (core.audit.replicated's
`replicated_paired_rates`: the machinery of every variant-vs-base comparison), its interval and
p-value, Holm-adjusted over every (model, site) of the run in the family FAMILY. A verdict
says a difference only when it excludes zero after Holm and clears the practical floor
(core.audit.multiplicity.PRACTICAL_FLOOR).

The sites of the test rows are read from the study's table (study.json names it and its
checksum), since the run's predictions keep only the sensitive columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.audit.multiplicity import clears_floor, holm
from core.audit.replicated import replicated_paired_rates
from core.data.study import Study
from core.learning.federated_sites import site_labels
from core.results.folder import RunResults, replicate_columns, section
from core.results.formatting import ci_label, fmt_num
from core.results.measure_choice import choose_measure
from core.results.quality import flagged_models
from core.results.tradeoff import BLOCKING_FLAGS
from core.results.wording import comparison_verdict, model_label
from core.vocabulary import GAP_NAMES

#: The Holm family of the per-site differences.
FAMILY = "federated_sites"

COLUMNS = ["model", "base", "site", "n_test", "accuracy", "base_accuracy", "difference", "ci_low", "ci_high",
           "p_value", "p_adjusted", "excludes_zero", "below_floor", "family"]


def federated_models(results: RunResults) -> list[dict]:
    """The report entries of the run's federated models (those with privacy.federated)."""
    return [m for m in results.report.get("models", []) if section(section(m, "privacy"), "federated")]


def test_sites(results: RunResults, column: str) -> np.ndarray:
    """The site of each test row of the run, in the predictions' order."""
    study = Study.load(results.run_dir)
    return site_labels(study.data.frame[column])[results.predictions["row_id"].to_numpy()]


def site_accuracy(results: RunResults, sites: np.ndarray | None = None) -> pd.DataFrame:
    """One row per (federated model, site): COLUMNS (module docstring). `sites`: the test rows'
    sites (default: read from the study's table); empty without federated models."""
    models = federated_models(results)
    if not models:
        return pd.DataFrame(columns=COLUMNS)
    column = models[0]["privacy"]["federated"]["by"]
    sites = test_sites(results, column) if sites is None else np.asarray(sites, dtype=object)
    config = section(results.report, "config")
    predictions = results.predictions
    y = predictions["y_true"].to_numpy()
    groups = pd.DataFrame({column: sites})
    rows = []
    for model in models:
        decisions = [predictions[pred].to_numpy() for _, pred in replicate_columns(model["name"], predictions.columns)]
        base = [predictions[pred].to_numpy() for _, pred in replicate_columns(model["base"], predictions.columns)]
        paired = replicated_paired_rates(y, decisions, base, groups, n_boot=int(config.get("n_boot", 1000)),
                                         confidence=float(config.get("confidence", 0.95)),
                                         random_state=int(config.get("seed", 0)))
        for site, entry in paired["groups"][column].items():
            accuracy = entry["accuracy"]
            ci = accuracy.get("ci") or [None, None]
            rows.append({"model": model["name"], "base": model["base"], "site": site,
                         "n_test": int((sites == site).sum()), "accuracy": accuracy["model_a"],
                         "base_accuracy": accuracy["model_b"], "difference": accuracy["difference"],
                         "ci_low": ci[0], "ci_high": ci[1], "p_value": accuracy["p_value"]})
    alpha = 1 - float(config.get("confidence", 0.95))
    adjusted = holm([row["p_value"] for row in rows])
    for row, p in zip(rows, adjusted):
        row.update(p_adjusted=p, excludes_zero=None if p is None else bool(p < alpha))
    table = pd.DataFrame(rows)
    table["below_floor"] = [None if (c := clears_floor(d)) is None else not c for d in table["difference"]]
    table["family"] = FAMILY
    return table[COLUMNS]


def _points(value: float) -> str:
    return fmt_num(100 * value, 1)


def change_words(entry: Mapping | None, what: str, confidence: Any) -> str | None:
    """"accuracy fell by 2.1 points (95% CI 0.8 to 3.4)" from one paired, Holm-adjusted entry
    (variant minus base); "no clear change in ..." when it does not exclude zero after Holm or is
    below the practical floor; None without the entry."""
    verdict = comparison_verdict(entry)
    if verdict is None:
        return None
    low, high = entry["ci"]
    interval = f"{ci_label(confidence)} {_points(low)} to {_points(high)}"
    if verdict in ("no clear difference", "too small to matter"):
        return f"no clear change in {what} ({_points(entry['difference'])} points, {interval})"
    direction = "fell" if entry["difference"] < 0 else "rose"
    return f"{what} {direction} by {_points(abs(entry['difference']))} points ({interval})"


def federated_findings(report: Mapping) -> list[dict[str, Any]]:
    """Per federated model (report order): {"model", "label", "base", "base_label", "sentence",
    "groups": [one sentence per group whose accuracy changed clearly], "flagged"}: what federating
    the pretraining cost, from compared_with_base_metrics (accuracy, overall and per group) and
    compared_with_base (the leading gap), every verdict Holm-adjusted and above the practical floor."""
    confidence = section(report, "bootstrap").get("confidence") or section(report, "config").get("confidence")
    measure = choose_measure(section(report, "config").get("outcome_effect"))["measure"]
    labels = {entry["name"]: model_label(entry) for entry in report.get("models", [])}
    flags = {flag["model"]: flag for flag in flagged_models(report)}
    out = []
    for entry in report.get("models", []):
        federated = section(section(entry, "privacy"), "federated")
        if not federated:
            continue
        metrics = section(entry, "compared_with_base_metrics")
        overall = change_words(section(section(metrics, "overall"), "accuracy") or None, "accuracy", confidence)
        gaps = [f"{GAP_NAMES[measure].lower()} for {attribute}: {words}" for attribute, by_gap in
                section(entry, "compared_with_base").items()
                if (words := change_words(by_gap.get(measure), "the gap", confidence)) is not None]
        base_label = labels.get(entry.get("base"), entry.get("base"))
        sentence = (f"{labels[entry['name']]} ({federated['sites']} sites by {federated['by']}), against the central "
                    f"{base_label}: "
                    f"{overall or 'its accuracy cost is not in this report'}"
                    + (f"; {'; '.join(gaps)}" if gaps else "") + ".")
        groups = [f"{attribute} {group}: {words}"
                  for attribute, by_group in section(metrics, "groups").items() for group, rates in by_group.items()
                  if (words := change_words(rates.get("accuracy"), "accuracy", confidence)) is not None
                  and not words.startswith("no clear")]
        flag = flags.get(entry["name"])
        if flag is not None and flag["flag"] not in BLOCKING_FLAGS:  # weaker than a baseline: said, not blocking
            sentence += f" It {flag['badge']}."
            flag = None
        elif flag is not None:
            sentence += f" Flagged, so never a finding: {flag['text']}"
            groups = []
        out.append({"model": entry["name"], "label": labels[entry["name"]], "base": entry.get("base"),
                    "base_label": base_label, "sentence": sentence, "groups": groups, "flagged": flag is not None})
    return out
