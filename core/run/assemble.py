"""The report dict of one audit (report.json), put together from what the stages returned.

    model_entry(model, result, raw_leakage, group_order, replicated)   one entry of `models`
    assemble_report(config, study, entries, pretrained)    the whole report

The keys and their order are the report.json contract (ARCHITECTURE.md, docs/metrics.md): a
change here changes every stored run's comparison with a new one, so nothing is renamed.
Timings never go in (they would make the report irreproducible; core.results.folder.TIMINGS).
"""

from __future__ import annotations

import fairlearn
import numpy as np
import pandas as pd
import sklearn
import torch

from core import __version__
from core.audit.multiplicity import apply_families
from core.audit.knn import KNN_MAX_QUERIES
from core.audit.representation import PROBE_MAX_ROWS, UMAP_MAX_ROWS, beside_raw_features
from core.data.profile import negative_label
from core.data.study import Study
from core.learning.pretrain import PretrainResult
from core.run.config import AuditConfig
from core.vocabulary import DRAWN_DECISIONS, TRAINING_STUDY


def model_entry(model, result: dict, raw_leakage: dict[str, dict], group_order: dict[str, list[str]],
                replicated: dict) -> dict:
    """A trained model's entry: replicate 0's audit `result` (core.audit.per_model), with each
    attribute's leakage probe set beside the same probe on the raw features, then what its
    training replicates give (`replicated`, core.run.replicates): the comparison with the
    supervised baseline over every replicate (it replaces replicate 0's alone), each
    replicate's point values and their aggregate."""
    fairness, representation = result["fairness"], result["representation"]
    entry = {"name": model.name, "pretraining": model.pretraining, "strategy": model.strategy,
             "n_trainable_params": model.n_trainable_params,
             "overall": fairness["overall"], "groups": in_natural_order(fairness["groups"], group_order),
             "gaps": fairness["gaps"]}
    if representation is not None:  # an uploaded model has none: no training sections at all
        for attribute, probe in representation["leakage"].items():
            representation["leakage"][attribute] = beside_raw_features(probe, raw_leakage[attribute])
        entry["representation"] = representation
    if model.calibration is not None:  # the classical baselines have one without a representation
        entry["calibration"] = model.calibration
    if replicated["compared_with_supervised"] is not None:
        entry["compared_with_supervised"] = replicated["compared_with_supervised"]
    if getattr(model, "base", None):  # a variant (core.run.variants): what it changes, and how it compares
        entry["base"] = model.base
        entry["compared_with_base"] = replicated.get("compared_with_base")
        entry["compared_with_base_metrics"] = replicated.get("compared_with_base_metrics")
        for key in ("mitigation", "privacy"):
            if getattr(model, key, None) is not None:
                entry[key] = getattr(model, key)
    if getattr(model, "randomized", False):  # its decisions are a seeded draw, not its score at 0.5
        entry["decisions"] = DRAWN_DECISIONS
    entry["replicates"] = replicated["replicates"]
    entry["aggregate"] = replicated["aggregate"]
    return entry


def in_natural_order(groups: dict[str, list[dict]], order: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Sort each partition's group rows by the attributes' natural orders (age bins by age),
    intersections by the tuple of their parts' ranks."""
    def rank(row: dict) -> tuple:
        return tuple(order[a].index(v) if v in order.get(a, []) else len(order.get(a, []))
                     for a, v in row["values"].items())

    return {key: sorted(rows, key=rank) for key, rows in groups.items()}


def assemble_report(config: AuditConfig, study: Study, entries: list[dict], pretrained: PretrainResult) -> dict:
    """report.json: the study, every model's entry, pretraining, how intervals were drawn, the
    data's withheld columns, proxies, notes and warnings, the config and the library versions."""
    data = study.data
    return apply_families({  # last: every verdict Holm-adjusted within its family (report["multiplicity"])
        "equiscope_version": __version__,
        "study": study_summary(study, config),
        "models": entries,
        "replicates": int(config.replicates),  # 1: every verdict covers one training run only
        "pretraining": pretraining_summary(pretrained),
        "bootstrap": {"method": "percentile", "n_boot": config.n_boot, "confidence": config.confidence,
                      "resampling": "within groups"},
        "subsamples": subsample_summary(len(study.split.test), int(config.seed)),
        "withheld_columns": data.withheld_columns,
        "proxies": [finding.to_dict() for finding in study.proxies],
        "notes": study.source.notes + data.notes,
        "warnings": data.warnings,
        "config": config.to_dict(),
        "versions": versions(),
    })


def uploaded_report(study: dict, entries: list[dict], config: dict, *, n_boot: int, confidence: float,
                    notes: list[str], warnings: list[str]) -> dict:
    """report.json of an audit of models Equiscope did not train (core.run.uploaded): the same
    keys as `assemble_report`, with no training sections (`pretraining` None, no proxies of
    features the models were trained on) and one "replicate": the models are fixed, so every
    interval covers the test rows only, and that is all there is to cover."""
    report = apply_families({
        "equiscope_version": __version__,
        "study": study,
        "models": entries,
        "replicates": 1,
        "pretraining": None,
        "bootstrap": {"method": "percentile", "n_boot": int(n_boot), "confidence": float(confidence),
                      "resampling": "within groups"},
        "withheld_columns": [],
        "proxies": [],
        "notes": list(notes),
        "warnings": list(warnings),
        "config": config,
        "versions": versions(),
    })
    # The families keep their keys (every reader knows them); their words say what is compared here.
    for family, listed in report["multiplicity"].items():
        if family.startswith("ssl_vs_supervised"):
            listed["what"] = (f"every uploaded model vs the reference model '{study.get('reference')}'"
                              + (", on the other gaps and on the intersections" if family != "ssl_vs_supervised"
                                 else ", per sensitive attribute and headline gap (paired comparison of the gaps)"))
    return report


def subsample_summary(n_test: int, seed: int) -> dict:
    """The representation audit's bounded subsamples of the test rows (issue 22): for each, the
    most rows it uses, how many it used here, and its seed; each is stratified by group and its
    error against the full computation is measured in tests/unit/test_scale_subsamples.py."""
    bounds = {"knn_scored_rows": (KNN_MAX_QUERIES, "every test row is a neighbour; the accuracies' intervals "
                                                   "are the subsample's (Wilson, finite-population corrected)"),
              "leakage_probe_rows": (PROBE_MAX_ROWS, "the probe's folds and fit, embeddings and raw features alike"),
              "umap_rows": (UMAP_MAX_ROWS, "the map's display subsample")}
    return {name: {"max_rows": limit, "rows": min(n_test, limit), "of": n_test, "seed": seed,
                   "subsampled": n_test > limit, "what": what} for name, (limit, what) in bounds.items()}


def study_summary(study: Study, config: AuditConfig) -> dict:
    split = study.split
    return {"kind": TRAINING_STUDY, "dataset": study.source.name, "dataset_sha256": study.source.sha256,
            "target": study.spec.target,
            "positive_label": study.spec.positive_label, "sensitive": list(study.spec.sensitive),
            "negative_label": negative_label(study.data.frame[study.spec.target], study.spec.positive_label),
            "n_train": int(len(split.labelled_train)), "n_test": int(len(split.test)),
            "n_validation": int(len(split.validation)), "n_pretrain": int(len(split.pretrain)),
            "label_fraction": float(config.label_fraction), "seed": int(config.seed),
            "features": list(study.data.features), "n_encoded_features": int(study.encoder.n_features_out_)}


def pretraining_summary(pretrained: PretrainResult) -> dict:
    return {"method": pretrained.config.method, "epochs_completed": pretrained.epochs_completed,
            "best_epoch": pretrained.best_epoch, "best_val_loss": pretrained.best_val_loss,
            "initial_val_loss": pretrained.initial_val_loss, "stopped_early": pretrained.stopped_early,
            "collapse": pretrained.collapse,
            "history": [{k: v for k, v in epoch.items() if k in ("epoch", "loss", "val_loss")}
                        for epoch in pretrained.history]}


def versions() -> dict[str, str]:
    return {"equiscope": __version__, "torch": torch.__version__.split("+")[0], "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__, "fairlearn": fairlearn.__version__}
