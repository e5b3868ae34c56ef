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

import numpy as np
import pandas as pd

from core.audit.multiplicity import clears_floor, holm
from core.audit.replicated import replicated_paired_rates
from core.data.study import Study
from core.learning.federated_sites import site_labels
from core.results.folder import RunResults, replicate_columns, section

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
