"""The classical baselines in a training audit (issue 16, item 3): audited like every other model
on the same test rows, compared with the supervised baseline over the replicates, in the Holm
families, saved without pickle, explained like the others; `--baselines none` leaves them out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.cli import main as cli
from core.explain.context import load_run
from core.explain.counterfactual import flip_row, nearest_counterfactuals
from core.results.quality import flagged_models, versus_classical
from core.run.config import AuditConfig
from core.run.pipeline import run_audit
from core.run.training import shared_fit
from core.vocabulary import BASELINES

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1, finetune_epochs=2,
            n_boot=30, strategies=["linear"], umap=False, workers=1, replicates=2,
            encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16})


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit-baselines")
    run_audit(AuditConfig(**TINY), out)
    return out


def test_the_baselines_are_models_of_the_report(audit_dir):
    report = json.loads((audit_dir / "report.json").read_text())
    models = {m["name"]: m for m in report["models"]}
    assert list(models) == ["scarf+linear", "supervised", *BASELINES]
    for name in BASELINES:
        model = models[name]
        assert (model["pretraining"], model["strategy"]) == (None, "classical")
        assert "representation" not in model and model["calibration"]["method"] == "temperature"
        assert 0.6 < model["overall"]["roc_auc"] <= 1 and model["n_trainable_params"] > 0
        assert len(model["replicates"]) == 2 and model["aggregate"]["overall"]["roc_auc"]["n_replicates"] == 2
        assert set(model["compared_with_supervised"]) >= {"sex"}  # the paired machinery, over replicates
        saved = json.loads((audit_dir / "models" / name / "model.json").read_text())
        assert saved["strategy"] == "classical" and [p.name for p in (audit_dir / "models" / name).iterdir()] == \
            ["model.json"]
    # One Holm family: 3 models (scarf+linear and the two baselines) x 2 headline gaps x 1 attribute vs supervised
    assert report["multiplicity"]["ssl_vs_supervised"]["size"] == 6
    compared = models["gradient-boosting"]["compared_with_supervised"]["sex"]["equalized_odds_difference"]
    assert compared["family"] == "ssl_vs_supervised" and compared["n_replicates"] == [2, 2]
    predictions = pd.read_parquet(audit_dir / "predictions.parquet")
    assert {f"score__{name}" for name in BASELINES} <= set(predictions.columns)
    assert versus_classical(report)["baseline"] in BASELINES
    assert all(f["flag"] in ("one-label", "near-chance", "below-baseline") for f in flagged_models(report))


def test_a_baseline_is_explained_like_every_other_model(audit_dir):
    ctx = load_run(audit_dir)
    stored = pd.read_parquet(audit_dir / "predictions.parquet")
    row = int(stored.iloc[0]["row_id"])
    for name in BASELINES:  # the saved model predicts what was audited
        assert np.isclose(ctx.model(name).predict_proba(ctx.study.X[[row]])[0], stored.iloc[0][f"score__{name}"])
    assert ctx.embeddings("gradient-boosting").shape == ctx.study.X.shape  # nearest in the encoded features
    assert flip_row(ctx, row, "gradient-boosting")
    assert nearest_counterfactuals(ctx, row, "sex", "logistic-regression")


def test_baselines_none_on_the_command_line_leaves_them_out():
    parser = cli.build_parser()
    base = ["audit", "--data", "german", "--target", "credit", "--sensitive", "sex", "--out", "x"]
    assert parser.parse_args(base).baselines == "logistic-regression,gradient-boosting"
    assert parser.parse_args([*base, "--baselines", "none"]).baselines == "none"
    with pytest.raises(Exception, match="Unknown or repeated baseline 'random-forest'"):
        AuditConfig(**{**TINY, "baselines": ["random-forest"]}).validate()
    assert AuditConfig(data="german", target="credit", sensitive=["sex"]).baselines == list(BASELINES)


def test_an_audit_without_baselines_has_none(tmp_path):
    report = run_audit(AuditConfig(**{**TINY, "replicates": 1, "baselines": []}), tmp_path)
    assert [m["name"] for m in report["models"]] == ["scarf+linear", "supervised"]


def test_replicates_on_the_same_rows_share_one_classical_fit(audit_dir):
    rows = [np.arange(10), np.arange(10)[::-1], np.arange(5), np.arange(10)]
    assert [shared_fit(rows, r) for r in range(4)] == [0, 0, 2, 0]
    report = json.loads((audit_dir / "report.json").read_text())  # label fraction 1: the same rows twice
    for model in report["models"]:
        spread = model["aggregate"]["overall"]["roc_auc"]
        assert (spread["sd"] == 0) == (model["strategy"] == "classical")
