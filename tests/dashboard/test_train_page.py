"""The Train page: settings and presets, Start queues an audit job with the chosen config, live
progress from the store (events, ETA, loss curve, cancel), the queue, failed and interrupted runs.

No worker process is started: `core.workspace.jobs.ensure_worker` is replaced by a recorder, and progress
is written into the store by the test, as the worker would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apphelpers import errors, people_csv, upload

from core.workspace import jobs
from core.run.pipeline import AuditConfig
from core.workspace.store import Workspace

TRAIN = "app_pages/train.py"


@pytest.fixture
def worker_calls(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: calls.append(ws.root) or True)
    return calls


def open_train(make_app, dataset="german"):
    app = make_app(dataset=dataset)
    app.run()
    app.switch_page(TRAIN).run()
    assert not app.exception, app.exception
    return app


def preset_shown(app) -> str:
    """The preset the page says the settings are ('Quick run', 'Full run' or 'Custom')."""
    line = next(c.value for c in app.caption if c.value.startswith("Settings: "))
    return line.removeprefix("Settings: **").split("**")[0]


def study_of(workspace) -> dict:
    return Workspace(workspace).list_studies()[0]


def test_without_a_study_the_page_points_to_data(make_app, worker_calls):
    app = make_app()
    app.run()
    app.switch_page(TRAIN).run()
    assert not app.exception
    assert "set up a study on the Data page" in app.info[0].value
    assert not app.button  # no Start without a study


def test_quick_preset_is_the_default_and_start_queues_an_audit_of_the_study(make_app, workspace, worker_calls):
    app = open_train(make_app)
    state = app.session_state
    assert preset_shown(app) == "Quick run" and state["train_epochs"] == 5 and state["train_n_boot"] == 200
    assert "bn-stats" in state["train_strategies"] and len(state["train_strategies"]) == 3
    assert any("Expected time: about 15 s for 1,000 rows (a full run: about 40 s)" in c.value for c in app.caption)
    from core.learning.ssl import method_names

    assert app.selectbox(key="train_method").options == method_names()  # all nine, in the registry's order

    app.selectbox(key="train_method").set_value("vicreg").run()
    assert preset_shown(app) == "Custom"
    app.select_slider(key="train_label_pct").set_value(10).run()
    assert app.session_state["train_method"] == "vicreg"  # a second change keeps the first
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app)

    runs = Workspace(workspace).list_runs(kind="audit")
    assert len(runs) == 1 and runs[0]["status"] == "queued" and worker_calls
    run, study = runs[0], study_of(workspace)
    assert run["study_id"] == study["id"]
    config = run["config"]
    assert config["data"] == "german" and config["target"] == study["spec"]["target"]
    assert config["sensitive"] == study["spec"]["sensitive"] and config["features"] == study["spec"]["features"]
    assert config["positive"] == study["spec"]["positive_label"]
    assert (config["method"], config["label_fraction"], config["epochs"], config["n_boot"]) == ("vicreg", 0.1, 5, 200)
    assert config["replicates"] == 1  # the quick preset trains each model once
    assert config["encoder"] == {"hidden_dim": 128, "depth": 2, "embed_dim": 64}
    assert "waiting in the queue: position 1 of 1" in " ".join(m.value for m in app.markdown)


def test_full_preset_and_a_second_job_queues_behind_the_first(make_app, workspace, worker_calls):
    app = open_train(make_app)
    app.button(key="train_preset_full").click().run()
    assert len(app.session_state["train_strategies"]) == 5 and preset_shown(app) == "Full run"
    app.button(key="train_start").click().run()
    app.button(key="train_start").click().run()
    assert not app.exception
    runs = Workspace(workspace).list_runs(kind="audit")
    assert [r["status"] for r in runs] == ["queued", "queued"]
    defaults = AuditConfig(data="", target="", sensitive=[])  # the full preset is `equiscope audit`'s defaults
    for key in ("method", "epochs", "finetune_epochs", "batch_size", "finetune_patience", "n_boot", "strategies",
                "label_fraction", "umap", "replicates"):
        assert runs[0]["config"][key] == getattr(defaults, key), key
    text = " ".join(m.value for m in app.markdown)
    assert "position 1 of 2" in text and "position 2 of 2" in text
    table = app.dataframe[0].value
    assert list(table["Status"]) == ["waiting in the queue"] * 2


def test_unaware_training_is_a_checkbox_outside_the_presets_and_reaches_the_config(make_app, workspace,
                                                                                     worker_calls):
    app = open_train(make_app)
    assert app.checkbox(key="train_unaware").value is False
    assert any(c.value.startswith("Unaware: the sensitive attributes are not given to the models") for c in app.caption)
    app.checkbox(key="train_unaware").check().run()
    assert preset_shown(app) == "Quick run"  # a choice about the study, not a preset's effort
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app)
    assert Workspace(workspace).list_runs(kind="audit")[0]["config"]["unaware"] is True


def test_the_preset_follows_the_settings_and_a_preset_button_resets_them(make_app, worker_calls):
    app = open_train(make_app)
    app.number_input(key="train_epochs").set_value(7).run()
    app.select_slider(key="train_n_boot").set_value(500).run()
    state = app.session_state
    assert (state["train_epochs"], state["train_n_boot"], preset_shown(app)) == (7, 500, "Custom")
    app.number_input(key="train_epochs").set_value(5).run()
    app.select_slider(key="train_n_boot").set_value(200).run()
    assert preset_shown(app) == "Quick run"  # the same values as the preset: it is the preset
    app.multiselect(key="train_strategies").set_value(["full", "linear", "bn-stats"]).run()
    assert preset_shown(app) == "Quick run"  # the order strategies were picked in does not matter
    app.number_input(key="train_epochs").set_value(9).run()
    app.button(key="train_preset_quick").click().run()
    assert app.session_state["train_epochs"] == 5 and preset_shown(app) == "Quick run"


def test_no_strategy_is_refused_with_the_fix(make_app, workspace, worker_calls):
    app = open_train(make_app)
    app.multiselect(key="train_strategies").set_value([]).run()
    app.button(key="train_start").click().run()
    assert not app.exception
    assert any("No fine-tuning strategy chosen" in e for e in errors(app))
    assert Workspace(workspace).list_runs() == [] and not worker_calls


def test_an_uploaded_study_is_audited_from_its_stored_file(make_app, workspace, worker_calls):
    app = make_app()
    app.run()
    upload(app, "people.csv", people_csv())
    app.selectbox(key="target_column").set_value("approved").run()
    app.selectbox(key="positive_label").set_value("yes").run()
    app.multiselect(key="sensitive_attributes").set_value(["sex"]).run()
    app.button(key="save_study").click().run()
    app.switch_page(TRAIN).run()
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app)
    run = Workspace(workspace).list_runs(kind="audit")[0]
    study = study_of(workspace)
    assert os.path.isabs(run["config"]["data"])
    assert run["config"]["data"] == str((workspace / study["settings"]["stored_path"]).resolve())
    assert "email" not in run["config"]["features"]


def running_run(workspace, study_id: str) -> str:
    ws = Workspace(workspace)
    run_id = ws.create_run("audit", "Quick run: scarf, 3 strategies + supervised", {"label_fraction": 1.0},
                           study_id=study_id)
    ws.start_run(run_id)  # this process: alive, so never taken for interrupted
    for step, loss in ((10, 4.2), (20, 3.9)):
        ws.add_event(run_id, {"stage": "pretrain", "message": "Pretraining scarf", "epoch": 1, "epochs": 5,
                              "step": step, "total_steps": 100, "loss": loss, "fraction": 0.02 + 0.43 * step / 100})
    ws.add_event(run_id, {"stage": "pretrain", "message": "Pretraining scarf", "epoch": 1, "epochs": 5, "step": 20,
                          "total_steps": 100, "loss": 3.8, "val_loss": 3.95, "fraction": 0.106})
    return run_id


def test_progress_shows_the_stored_events_and_cancel_asks_the_worker_to_stop(make_app, workspace, worker_calls):
    app = open_train(make_app)
    run_id = running_run(workspace, study_of(workspace)["id"])
    app.run()
    assert not app.exception
    assert app.get("progress")[0].proto.value == 10  # 0.106 of the bar, in percent
    assert "Pretraining: Pretraining scarf" in app.get("progress")[0].proto.text
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Done"] == "11%" and metrics["Epoch"] == "1 of 5"
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert [trace["name"] for trace in chart["data"]] == ["training loss", "validation loss"]
    app.button(key=f"cancel_{run_id}").click().run()
    assert not app.exception
    assert Workspace(workspace).get_run(run_id)["cancel_requested"]
    assert any("Cancelling" in info.value for info in app.info)


def test_a_queued_run_can_be_cancelled_at_once(make_app, workspace, worker_calls):
    app = open_train(make_app)
    run_id = Workspace(workspace).create_run("audit", "Queued", {}, study_id=study_of(workspace)["id"])
    app.run()
    app.button(key=f"cancel_{run_id}").click().run()
    assert Workspace(workspace).get_run(run_id)["status"] == "cancelled"
    assert app.dataframe[0].value["Status"].tolist() == ["cancelled"]


def test_a_failed_run_shows_its_reason_and_an_interrupted_run_says_so(make_app, workspace, worker_calls):
    app = open_train(make_app)
    ws, study_id = Workspace(workspace), study_of(workspace)["id"]
    failed = ws.create_run("audit", "Broken run", {}, study_id=study_id)
    ws.start_run(failed)
    ws.finish_run(failed, "failed", error="pretraining diverged: the scarf loss is nan in epoch 2")
    lost = ws.create_run("audit", "Lost run", {}, study_id=study_id)
    ws.start_run(lost, pid=2 ** 22 + 12345)  # a process that does not exist
    ws.recover_interrupted()
    app.run()
    assert not app.exception
    assert any("Broken run" in e and "pretraining diverged: the scarf loss is nan" in e for e in errors(app))
    assert any("Lost run" in w.value and "interrupted" in w.value for w in app.warning)
    table = app.dataframe[0].value
    assert set(table["Status"]) == {"failed", "interrupted"}
    assert "pretraining diverged" in " ".join(table["Reason"])


def test_a_refresh_reopens_the_study_in_the_address_with_its_runs(make_app, workspace, worker_calls):
    app = open_train(make_app)
    study_id = study_of(workspace)["id"]
    app.button(key="train_start").click().run()
    assert app.query_params["study"] == study_id
    other = Workspace(workspace).create_study("Another", "german", "0" * 64, {"target": "credit", "sensitive": ["sex"]})
    fresh = make_app(dataset="german")  # a refresh: a new session, the same address
    fresh.query_params["study"] = study_id
    fresh.run()
    fresh.switch_page(TRAIN).run()
    assert not fresh.exception
    assert fresh.session_state["current_study_id"] == study_id != other
    assert fresh.dataframe[0].value["Status"].tolist() == ["waiting in the queue"]


def test_drawing_the_train_page_does_not_import_torch():
    """Importing torch takes about 2 s on a server's first visit to Train: the page's modules avoid it
    (METHOD_WORDS instead of core.learning.ssl, core.run.config instead of core.run.pipeline)."""
    probe = ("import sys; import dashboard.components.train_views, dashboard.components.runs; "
             "print(sorted(m for m in ('torch', 'sklearn', 'core.run.pipeline', 'core.learning.ssl') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
