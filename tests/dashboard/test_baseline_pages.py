"""The result pages with the classical baselines in a run (issue 16, items 3-4): they are listed
beside the other models, a model more than 0.02 below the best baseline's ROC AUC carries its
flag, and the Embeddings page says why the baselines have no map."""

from __future__ import annotations

import json

import pytest
import results_artifact
from apphelpers import errors

from core.results.quality import flagged_models
from core.run.config import AuditConfig
from core.run.pipeline import run_audit
from core.workspace.store import Workspace

FAIRNESS, COMPARE, EMBEDDINGS = "app_pages/fairness.py", "app_pages/compare.py", "app_pages/embeddings.py"


@pytest.fixture(scope="module")
def run_with_baselines(tmp_path_factory):
    """A tiny German audit with both baselines; logistic-regression's AUC set 0.05 below gradient-boosting's (the
    tiny MLPs may predict one label, a flag that comes first)."""
    out = tmp_path_factory.mktemp("german-baselines")
    run_audit(AuditConfig(data="german", target="credit", sensitive=["sex", "age"], positive="good", epochs=1,
                          finetune_epochs=2, n_boot=30, strategies=["linear"], umap=True, replicates=1,
                          encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16}), out)
    report = json.loads((out / "report.json").read_text())
    models = {m["name"]: m for m in report["models"]}
    models["logistic-regression"]["overall"]["roc_auc"] = models["gradient-boosting"]["overall"]["roc_auc"] - 0.05
    (out / "report.json").write_text(json.dumps(report))
    return out


def _open(make_app, workspace, artifact, page):
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    results_artifact.install(ws, ws.list_studies()[0]["id"], artifact, name="With baselines")
    app.switch_page(page).run()
    assert not app.exception, app.exception
    assert not errors(app), errors(app)
    return app


def _shown(app) -> str:
    return " ".join(box.value for kind in ("markdown", "warning", "caption", "info") for box in getattr(app, kind)
                    ).replace("\\", "")


def test_fairness_and_compare_show_the_baselines_and_the_below_baseline_flag(make_app, workspace, run_with_baselines):
    report = json.loads((run_with_baselines / "report.json").read_text())
    flagged = {f["model"]: f for f in flagged_models(report)}
    assert flagged["logistic-regression"]["flag"] == "below-baseline"
    for page in (FAIRNESS, COMPARE):
        app = _open(make_app, workspace, run_with_baselines, page)
        shown = _shown(app)
        assert flagged["logistic-regression"]["text"] in shown


def test_the_embeddings_page_says_why_the_baselines_have_no_map(make_app, workspace, run_with_baselines):
    app = _open(make_app, workspace, run_with_baselines, EMBEDDINGS)
    assert "The classical baselines (Logistic regression and Gradient boosting) learn no representation" in \
        _shown(app)
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]
    assert not any("regression" in title or "boosting" in title for title in titles)
