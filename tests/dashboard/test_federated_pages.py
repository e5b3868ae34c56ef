"""Federated pretraining on the pages (issue 19): the Train page queues an audit federated by a
column; the Compare page says, from the Holm-adjusted comparisons, what federating cost overall and
which group, and shows each site's accuracy against the central model."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from apphelpers import errors

import results_artifact
from core.workspace import jobs
from core.workspace.store import Workspace

TRAIN, COMPARE = "app_pages/train.py", "app_pages/compare.py"
FEDERATED, BASE = "scarf-fed+linear", "scarf+linear"


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    return results_artifact.build(tmp_path_factory)


def test_the_train_page_queues_a_federated_audit(make_app, workspace, monkeypatch):
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: True)
    app = make_app(dataset="german")
    app.run()
    app.switch_page(TRAIN).run()
    app.text_input(key="train_federated_by").set_value("housing").run()
    app.number_input(key="train_federated_rounds").set_value(3).run()
    assert "Federated by" in " ".join(c.value for c in app.caption)
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app)
    config = Workspace(workspace).list_runs(kind="audit")[0]["config"]
    assert config["federated_by"] == "housing" and config["federated_rounds"] == 3


def _with_a_federated_model(run_dir) -> None:
    """The artifact's run with a hand-made federated copy of scarf+linear (sites by housing) whose
    accuracy fell 3.0 points overall and 6.0 for women (Holm-adjusted, above the floor); its test
    decisions are its base's, so every site's paired difference is 0."""
    report = json.loads((run_dir / "report.json").read_text())
    base = next(m for m in report["models"] if m["name"] == BASE)
    entry = copy.deepcopy(base) | {"name": FEDERATED, "pretraining": "scarf-fed", "base": BASE}
    entry["privacy"] = {"federated": {"by": "housing", "sites": 3, "rounds": 5, "strategy": "fedavg",
                                      "local_epochs": 1, "rows_per_site": {"for free": 70, "own": 500, "rent": 130}}}
    fell = {"difference": -0.03, "ci": [-0.05, -0.01], "excludes_zero": True, "below_floor": False,
            "p_adjusted": 0.01, "family": "variant_vs_base (accuracy)"}
    unclear = fell | {"difference": -0.005, "ci": [-0.02, 0.01], "excludes_zero": False}
    entry["compared_with_base_metrics"] = {"overall": {"accuracy": fell}, "groups": {
        "sex": {"female": {"accuracy": fell | {"difference": -0.06, "ci": [-0.1, -0.02]}}, "male": {"accuracy": unclear}}}}
    report["models"].append(entry)
    (run_dir / "report.json").write_text(json.dumps(report))
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    predictions[f"score__{FEDERATED}"] = predictions[f"score__{BASE}"]
    predictions[f"pred__{FEDERATED}"] = predictions[f"pred__{BASE}"]
    predictions.to_parquet(run_dir / "predictions.parquet")


def test_the_compare_page_says_what_federating_cost_each_site_and_group(make_app, workspace, artifact):
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    run_id = results_artifact.install(ws, ws.list_studies()[0]["id"], artifact)
    _with_a_federated_model(ws.run_dir(run_id))
    app.switch_page(COMPARE).run()
    assert not app.exception, app.exception
    text = " ".join(m.value for m in app.markdown).replace("\\", "")
    assert ("Pretrained (SCARF, federated), output layer only (3 sites by housing), against the central Pretrained "
            "(SCARF), output layer only: accuracy fell by 3.0 points (95% CI −5.0 to −1.0)") in text
    assert "sex female: accuracy fell by 6.0 points" in text and "sex male" not in text
    sites = next(frame.value for frame in app.dataframe if "Site" in frame.value.columns)
    assert sorted(sites["Site"]) == ["for free", "own", "rent"]
    assert set(sites["Difference (points)"]) == {"0.0"}  # the same decisions as its base at every site
