"""Mitigations on the pages: the Train page offers them from the catalog (each one's plain line and
expected time) and queues an audit with them; the Compare page draws a run's mitigated models
against their bases and says what each bought and cost (core.results.tradeoff)."""

from __future__ import annotations

import copy
import json

import pytest
from apphelpers import errors

import results_artifact
from core.mitigation.catalog import MITIGATIONS
from core.vocabulary import DRAWN_DECISIONS, GAPS
from core.workspace import jobs
from core.workspace.store import Workspace

TRAIN, COMPARE, FAIRNESS = "app_pages/train.py", "app_pages/compare.py", "app_pages/fairness.py"


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    return results_artifact.build(tmp_path_factory)


def _with_a_mitigation(report: dict) -> dict:
    """The artifact's report with one hand-made mitigation of its logistic regression: the gap
    narrowed by 0.04 [0.02, 0.06] for 0.8 [0.3, 1.3] accuracy points, Holm-adjusted."""
    base = next(m for m in report["models"] if m["name"] == "logistic-regression")
    entry = copy.deepcopy(base) | {"name": "logistic-regression+eg-equalized-odds", "strategy": "mitigation",
                                   "base": "logistic-regression"}
    entry["mitigation"] = {"name": "eg-equalized-odds", "kind": "fairlearn", "base": "logistic-regression",
                           "params": {"eps": 0.01}}
    entry["decisions"] = DRAWN_DECISIONS  # a randomized rule, as fairlearn's reductions are
    change = {"difference": -0.04, "ci": [-0.06, -0.02], "excludes_zero": True, "below_floor": False,
              "p_adjusted": 0.01, "family": "variant_vs_base"}
    entry["compared_with_base"] = {attribute: {gap: change for gap in GAPS} for attribute in base["gaps"]}
    entry["compared_with_base_metrics"] = {"overall": {"accuracy": {
        "difference": -0.008, "ci": [-0.013, -0.003], "excludes_zero": True, "below_floor": False,
        "family": "variant_vs_base (accuracy)"}}}
    report["models"].append(entry)
    return report


def test_train_offers_the_mitigations_and_compare_says_what_one_bought_and_cost(make_app, workspace, artifact,
                                                                                  monkeypatch):
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: True)
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    results_artifact.install(ws, ws.list_studies()[0]["id"], artifact, edit=_with_a_mitigation)

    app.switch_page(TRAIN).run()
    app.multiselect(key="train_mitigations").set_value(["eg-equalized-odds", "threshold-optimizer"]).run()
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    for name in ("eg-equalized-odds", "threshold-optimizer"):
        assert MITIGATIONS[name].cost in captions and "Expected time" in captions
    assert "some laws forbid" in captions  # the threshold optimizer reads the attribute when deciding
    app.checkbox(key="train_mitigation_sweep").check().run()
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app)
    config = next(r for r in ws.list_runs(kind="audit") if r["status"] == "queued")["config"]
    assert config["mitigations"] == ["eg-equalized-odds", "threshold-optimizer"] and config["mitigation_sweep"]

    app.switch_page(COMPARE).run()
    assert not app.exception, app.exception
    text = " ".join(m.value for m in app.markdown).replace("\\", "")
    assert ("narrowed the sex equalized-odds gap by 0.04 (95% CI 0.02 to 0.06), for 0.8 accuracy points "
            "(95% CI 0.3 to 1.3)") in text
    charts = [json.loads(chart.proto.spec)["layout"].get("meta", {}).get("chart") for chart in app.get("plotly_chart")]
    assert "mitigation_tradeoff" in charts

    # Its decisions are drawn: the Fairness page offers no threshold what-if for it, and says why.
    app.switch_page(FAIRNESS).run()
    app.selectbox(key="fair_model").set_value("logistic-regression+eg-equalized-odds").run()
    assert not app.exception and not errors(app)
    notes = " ".join(box.value for box in app.info).replace("\\", "")
    assert "does not decide at a threshold" in notes
    assert not [radio for radio in app.radio if radio.key == "fair_whatif_mode"]
