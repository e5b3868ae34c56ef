"""Compare page, Grids: the expected cost before a grid starts, Start queues a "grid" job, and a
finished grid's cells (real German audits with 1 epoch, listed by the real grid.json writer) flow
into the frontier, the label-fraction curves and the grid's verdicts."""

from __future__ import annotations

import json
import shutil

import pytest
from apphelpers import errors, values

import results_artifact
from core.data.datasets import load_card
from core.run.config import AuditConfig
from core.run.grid_config import GridConfig
from core.run.grid_manifest import GridManifest, cell_dir
from core.workspace import jobs
from core.workspace.store import Workspace

COMPARE = "app_pages/compare.py"


@pytest.fixture(scope="module")
def grid_artifact(tmp_path_factory):
    """A finished four-cell grid (scarf and vime at 20% and 100% of the labels) listed by the real
    grid.json writer (GridManifest, verdicts included). Its cells are the session's small real
    German audit (tests/results_artifact.py, shared with the other result pages), relabelled as
    results_artifact.install does (the share of labels; the vime cells' SSL models renamed): the
    page is under test here, not the training."""
    artifact = results_artifact.build(tmp_path_factory)
    original = json.loads((artifact / "report.json").read_text())
    grid = GridConfig(base=AuditConfig.from_dict(original["config"]), methods=["scarf", "vime"],
                      label_fractions=[0.2, 1.0])
    out = tmp_path_factory.mktemp("grid")
    manifest = GridManifest(out, grid)
    for cell in grid.cells():
        folder = cell_dir(out, cell)
        shutil.copytree(artifact, folder, ignore=shutil.ignore_patterns("checkpoints", "models", "encoder"))
        report = json.loads(json.dumps(original))
        report["study"]["label_fraction"] = report["config"]["label_fraction"] = cell.label_fraction
        report["config"]["method"] = cell.method
        for model in report["models"]:
            if model["pretraining"] is not None:
                model["name"], model["pretraining"] = model["name"].replace("scarf+", f"{cell.method}+"), cell.method
        (folder / "report.json").write_text(json.dumps(report))
        manifest.set(cell.name, "succeeded")
    manifest.compute_verdicts()
    manifest.write()
    return out


def _install(ws: Workspace, study_id: str, artifact) -> str:
    config = json.loads((artifact / "grid.json").read_text())["config"]
    run_id = ws.create_run("grid", "Grid: 1 methods x 1 strategies x 2 shares of labels", {"grid": config},
                           study_id=study_id)
    ws.start_run(run_id)
    shutil.copytree(artifact, ws.run_dir(run_id), dirs_exist_ok=True)
    ws.finish_run(run_id, "succeeded", metrics={})
    return run_id


def test_the_cost_shows_before_start_and_start_queues_a_grid_job(make_app, workspace, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: started.append(ws) or True)  # no worker, no Ray
    app = make_app(dataset="german")
    app.run()
    app.switch_page(COMPARE).run()
    assert not app.exception, app.exception
    caption = " ".join(c.value for c in app.caption)
    assert "**4 cells** (2 methods x 2 shares of labels), **20 trainings**" in caption  # 4 x 1 x (1 + 1 + 1 + 2)
    app.multiselect(key="grid_methods").set_value(["scarf", "vime", "dae"]).run()
    assert "**6 cells**" in " ".join(c.value for c in app.caption)
    app.multiselect(key="grid_label_pcts").set_value([]).run()
    assert any("No label fraction chosen" in e for e in errors(app))
    app.multiselect(key="grid_label_pcts").set_value([10, 100]).run()
    app.button(key="grid_start").click().run()
    assert not app.exception, app.exception
    runs = Workspace(workspace).list_runs(kind="grid")
    assert len(runs) == 1 and runs[0]["status"] == "queued" and started
    grid = GridConfig.from_dict(runs[0]["config"]["grid"])
    assert [c.name for c in grid.cells()] == ["scarf-lf0.1", "scarf-lf1", "vime-lf0.1", "vime-lf1", "dae-lf0.1",
                                              "dae-lf1"]
    assert grid.base.target == "credit" and grid.base.strategies == ["linear"]


def test_a_finished_grid_flows_into_the_frontier_curves_and_verdicts(make_app, workspace, grid_artifact):
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    _install(ws, ws.list_studies()[0]["id"], grid_artifact)
    app.switch_page(COMPARE).run()
    assert not app.exception, app.exception
    assert not errors(app), errors(app)
    charts = {json.loads(c.proto.spec)["layout"]["meta"]["chart"]: json.loads(c.proto.spec)
              for c in app.get("plotly_chart")}
    assert {"pareto_gap", "fractions"} <= set(charts)
    markers = [t for t in charts["pareto_gap"]["data"] if t.get("mode") == "markers"]
    models = json.loads((grid_artifact / "cells" / "scarf-lf1" / "report.json").read_text())["models"]
    ssl = [m for m in models if m["pretraining"] is not None]
    assert len(markers) == len(models) + len(ssl)  # one colour per recipe of both methods, the baselines once
    assert all(len(values(t["x"])) == 2 for t in markers)  # one marker per share of labels, never one per cell
    assert sorted(values(charts["fractions"]["data"][0]["x"])) == [20.0, 100.0]
    verdicts = app.dataframe[-1].value
    attribute = app.selectbox(key="grid_attribute").value
    assert len(verdicts) == 4 * 2 * 2  # 4 cells x 2 strategies x 2 headline gaps for the chosen attribute
    assert set(verdicts["Labels"]) == {"20%", "100%"} and set(verdicts["Method"]) == {"scarf", "vime"}
    grid = json.loads((grid_artifact / "grid.json").read_text())
    assert "Holm-adjusted" in " ".join(c.value for c in app.caption)
    assert grid["verdicts"]["size"] == 4 * 2 * 2 * len(load_card("german").sensitive) and attribute


def test_a_running_grid_shows_which_cell_is_where_and_can_be_cancelled(make_app, workspace):
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    run_id = ws.create_run("grid", "Grid: 2 methods x 1 strategies x 2 shares of labels", {"grid": {}},
                           study_id=ws.list_studies()[0]["id"])
    ws.start_run(run_id)
    ws.add_event(run_id, {"stage": "pretrain", "fraction": 0.3, "cell": "vime-lf1",
                          "message": "vime-lf1: Pretraining vime"})
    app.switch_page(COMPARE).run()
    assert not app.exception, app.exception
    assert any("vime-lf1: Pretraining vime" in p.proto.text for p in app.get("progress"))
    app.button(key=f"cancel_{run_id}").click().run()
    assert ws.get_run(run_id)["cancel_requested"]
