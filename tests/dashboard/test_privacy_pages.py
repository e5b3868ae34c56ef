"""Differential privacy on the pages: the Train page offers private training at chosen epsilons
with what epsilon means and covers, and queues it; the Compare page draws the epsilon curve and
says, from the Holm-adjusted comparisons, what the strongest guarantee cost and whom."""

from __future__ import annotations

import copy
import json

import pytest
from apphelpers import errors

import results_artifact
from core.workspace import jobs
from core.workspace.store import Workspace

TRAIN, COMPARE = "app_pages/train.py", "app_pages/compare.py"


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    return results_artifact.build(tmp_path_factory)


def _with_a_private_model(report: dict) -> dict:
    """The artifact's report with a hand-made private copy (epsilon 1) of the supervised baseline whose
    accuracy fell 0.06 [0.04, 0.08] for women (Holm-adjusted, above the floor) and did not clearly change
    for men."""
    base = next(m for m in report["models"] if m["name"] == "supervised")
    entry = copy.deepcopy(base) | {"name": "supervised+dp-eps1", "base": "supervised"}
    entry["privacy"] = {"epsilon": 0.98, "delta": 0.0014, "target_epsilon": 1.0, "max_grad_norm": 1.0}
    fell = {"model_a": 0.70, "model_b": 0.76, "difference": -0.06, "ci": [-0.08, -0.04], "excludes_zero": True,
            "below_floor": False, "p_adjusted": 0.01, "family": "variant_vs_base (accuracy)"}
    unclear = fell | {"difference": -0.005, "ci": [-0.02, 0.01], "excludes_zero": False, "below_floor": True}
    entry["compared_with_base_metrics"] = {"overall": {"accuracy": unclear}, "groups": {
        "sex": {"female": {"accuracy": fell}, "male": {"accuracy": unclear}}}}
    entry["compared_with_base"] = {"sex": {"worst_group_accuracy": fell}}
    report["models"].append(entry)
    return report


def test_train_offers_private_training_and_compare_says_what_it_cost_whom(make_app, workspace, artifact,
                                                                           monkeypatch):
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: True)
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    results_artifact.install(ws, ws.list_studies()[0]["id"], artifact, edit=_with_a_private_model)

    app.switch_page(TRAIN).run()
    app.checkbox(key="train_dp").check().run()
    app.multiselect(key="train_dp_epsilon").set_value([1.0, 8.0]).run()
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert "Epsilon bounds how much any one person's row" in captions and "not the pretraining rows" in captions
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app)
    config = next(r for r in ws.list_runs(kind="audit") if r["status"] == "queued")["config"]
    assert config["dp_epsilon"] == [1.0, 8.0]

    app.switch_page(COMPARE).run()
    assert not app.exception, app.exception
    text = " ".join(m.value for m in app.markdown).replace("\\", "")
    assert "With the strongest guarantee (epsilon 1), accuracy for sex = female fell by 0.06 (0.04 to 0.08)" in text
    assert "sex = male fell" not in text and "accuracy: no clear change" in text
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]
    assert any(title.startswith("Ordinary model (no pretraining): what each guarantee costs") for title in titles)
