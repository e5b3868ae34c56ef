"""The dashboard's paths for models Equiscope did not train (issue 16, items 1-2): the Data page's
"I already have a model's predictions" (map, check, audit as a job), a model file next to the
table (a pickle refused in words), and every result page on a predictions-only run (Embeddings
and Explain say why they are not available). No worker process is started."""

from __future__ import annotations

import io
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apphelpers import errors
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.data.source import open_source
from core.results.formatting import fmt_pct
from core.run import uploaded
from core.run.uploaded import UploadedConfig, run_uploaded_audit
from core.workspace import jobs
from core.workspace.store import Workspace
from dashboard.components import review_views

FAIRNESS, COMPARE, REVIEW = "app_pages/fairness.py", "app_pages/compare.py", "app_pages/review.py"
EMBEDDINGS, EXPLAIN = "app_pages/embeddings.py", "app_pages/explain.py"
TREE_TYPE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def predictions_csv(n: int = 400, seed: int = 1, **overrides) -> bytes:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], n)
    y = rng.random(n) < 0.45
    vendor = np.clip(0.3 * y + 0.7 * rng.random(n) + 0.1 * (sex == "Male"), 0, 1)
    frame = pd.DataFrame({"repaid": np.where(y, "yes", "no"), "sex": sex, "vendor_score": vendor,
                          "inhouse_score": np.clip(0.4 * y + 0.6 * rng.random(n), 0, 1),
                          "officer": np.where(rng.random(n) < 0.5, "yes", "no")})
    for column, value in overrides.items():
        frame[column] = value
    return frame.to_csv(index=False).encode()


@pytest.fixture
def worker_calls(monkeypatch) -> list:
    calls: list = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: calls.append(ws.root) or True)
    return calls


def predictions_page(make_app, data: bytes):
    app = make_app(data_source="predictions")
    app.run()
    app.file_uploader(key="upload_file").upload("scores.csv", data, "text/csv").run()
    assert not app.exception, app.exception
    return app


def test_the_data_page_maps_a_predictions_table_and_queues_its_audit(make_app, workspace, worker_calls):
    app = predictions_page(make_app, predictions_csv())
    app.selectbox(key="pred_target").set_value("repaid").run()
    assert app.multiselect(key="pred_sensitive").value == ["sex"]
    assert app.multiselect(key="pred_scores").value == ["vendor_score", "inhouse_score"]  # first guesses
    app.selectbox(key="pred_positive").set_value("yes").run()
    app.multiselect(key="pred_decisions").set_value(["officer"]).run()
    assert not errors(app), errors(app)
    assert any("3 models" in m.value and "**officer** (decisions)" in m.value for m in app.markdown)
    app.button(key="pred_audit").click().run()
    assert not app.exception and not errors(app), errors(app)

    ws = Workspace(workspace)
    study, = ws.list_studies()
    run, = ws.list_runs(study_id=study["id"], kind="audit")
    config = run["config"]
    assert run["status"] == "queued" and config["kind"] == "predictions"
    assert (config["scores"], config["decisions"], config["positive"]) == (
        ["vendor_score", "inhouse_score"], ["officer"], "yes")
    assert (workspace / study["settings"]["stored_path"]).read_bytes() == predictions_csv()
    assert config["data"] == str(workspace / study["settings"]["stored_path"])
    assert worker_calls and any("Fairness page" in box.value for box in app.success)


def test_a_score_column_outside_zero_one_is_refused_before_anything_is_saved(make_app, workspace, worker_calls):
    app = predictions_page(make_app, predictions_csv(vendor_score=np.linspace(0, 10, 400)))
    app.selectbox(key="pred_target").set_value("repaid").run()
    app.multiselect(key="pred_scores").set_value(["vendor_score"]).run()
    assert any("The score column 'vendor_score' has values outside [0, 1]" in e for e in errors(app))
    assert all(b.key != "pred_audit" for b in app.button)
    assert not (workspace / "uploads").exists() and not worker_calls


@pytest.mark.parametrize("name", ["model.pkl", "model.skops"])
def test_a_pickle_given_as_the_model_file_is_refused_in_words(make_app, workspace, worker_calls, name):
    app = predictions_page(make_app, predictions_csv())
    app.selectbox(key="pred_target").set_value("repaid").run()
    app.file_uploader(key="pred_model_file").upload(name, pickle.dumps({"not": "a model"}),
                                                     "application/octet-stream").run()
    assert any("is a pickle (or joblib) file, which Equiscope never loads" in e for e in errors(app))
    assert all(b.key != "pred_audit" for b in app.button) and not worker_calls


@pytest.fixture(scope="module")
def predictions_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predictions-run")
    path = folder / "scores.csv"
    path.write_bytes(predictions_csv())
    config = UploadedConfig(data=str(path), target="repaid", positive="yes", sensitive=["sex"],
                            scores=["vendor_score", "inhouse_score"], decisions=["officer"], n_boot=50)
    run_uploaded_audit(config, folder / "run")
    return folder / "run", config


def installed(make_app, workspace, predictions_run, page):
    run_dir, config = predictions_run
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    run_id = ws.create_run("audit", "Audit of 3 uploaded models", config.to_dict(),
                           study_id=ws.list_studies()[0]["id"])
    ws.start_run(run_id)
    shutil.copytree(run_dir, ws.run_dir(run_id), dirs_exist_ok=True)
    ws.finish_run(run_id, "succeeded", metrics={})
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


@pytest.mark.parametrize("page", [FAIRNESS, COMPARE, REVIEW])
def test_the_result_pages_read_a_predictions_run(make_app, workspace, predictions_run, page):
    app = installed(make_app, workspace, predictions_run, page)
    assert not errors(app), errors(app)
    shown = " ".join(str(getattr(e, "value", "")) for e in [*app.markdown, *app.selectbox, *app.caption])
    shown = shown.replace("\\", "")  # Markdown escapes: vendor\_score
    assert "vendor_score" in shown
    assert "trained once" not in " ".join(w.value for w in [*app.warning, *app.info])


@pytest.mark.parametrize(("page", "words"), [
    (EMBEDDINGS, "no representation to show: these models were not trained by Equiscope"),
    (EXPLAIN, "Explanations need the model itself"),
])
def test_embeddings_and_explain_say_why_they_are_not_available(make_app, workspace, predictions_run, page, words):
    app = installed(make_app, workspace, predictions_run, page)
    assert any(words in box.value for box in app.info), [box.value for box in app.info]


def test_threshold_what_ifs_work_on_uploaded_scores_and_say_why_not_on_decisions(make_app, workspace, predictions_run):
    app = installed(make_app, workspace, predictions_run, FAIRNESS)
    app.selectbox(key="fair_model").set_value("vendor_score").run()
    assert not errors(app), errors(app)
    assert any(s.key.startswith("threshold|") and s.key.endswith("|Male") for s in app.slider)
    app.selectbox(key="fair_model").set_value("officer").run()
    assert any("'officer' was uploaded as decisions, without scores to set thresholds on" in e for e in errors(app))
    app.selectbox(key="fair_model").set_value("vendor_score").run()
    app.radio(key="fair_whatif_mode").set_value("fair").run()
    app.button(key="fair_button_demographic_parity").click().run()
    assert any("Uploaded predictions have no validation rows to fit fair thresholds on" in e for e in errors(app))


def test_explain_asks_an_outside_model_audited_alone(make_app, workspace, tmp_path):
    """The Data page's model-file path ends in a run like this one (a real .skops file of a
    scikit-learn model fitted on German's raw columns); Explain explains and flips through it."""
    german = open_source("german").frame
    columns = ["duration", "credit_amount", "age", "sex"]
    fitted = make_pipeline(ColumnTransformer([("num", StandardScaler(), columns[:3]),
                                              ("cat", OneHotEncoder(), columns[3:])]),
                           LogisticRegression(max_iter=500)).fit(german[columns], german["credit"])
    model_file = tmp_path / "vendor.skops"
    sio.dump(fitted, model_file)
    config = UploadedConfig(data="german", target="credit", positive="good", sensitive=["sex"], model=str(model_file),
                            n_boot=20, kind=uploaded.OUTSIDE_MODEL_STUDY)
    run_uploaded_audit(config, tmp_path / "run")
    app = installed(make_app, workspace, (tmp_path / "run", config), EXPLAIN)
    app.session_state["explain_num_samples"] = 1000
    app.run()
    assert not app.exception and not errors(app), errors(app)
    assert app.selectbox(key="explain_model").value == "vendor"
    row = app.selectbox(key="explain_row").value
    expected = fitted.predict_proba(german.iloc[[row]][columns])[0, list(fitted.classes_).index("good")]
    assert fmt_pct(expected) in [metric.value for metric in app.metric]  # LIME's row, asked of the vendor's model
    flips = next(d.value for d in app.dataframe if "From → to" in d.value.columns)
    assert len(flips) == 1  # sex: one other group
    flipped = german.iloc[[row]].assign(sex=flips.iloc[0]["From → to"].split("→")[-1].strip())
    after = fitted.predict_proba(flipped[columns])[0, list(fitted.classes_).index("good")]
    assert fmt_pct(after) in flips.astype(str).to_numpy().ravel().tolist()  # the flip asked the model too
    assert not any("Explanations need the model itself" in box.value for box in app.info)


def test_a_predictions_run_takes_review_notes_a_sign_off_and_the_report(make_app, workspace, predictions_run):
    app = installed(make_app, workspace, predictions_run, REVIEW)
    app.text_input(key="review_author").set_value("Dana")
    app.text_area(key="review_body").set_value("Vendor and in-house scores checked.")
    app.selectbox(key="review_status").set_value("approved")
    app.button(key="FormSubmitter:review_note-Save note").click().run()
    assert not errors(app), errors(app)
    assert any("Signed off by **Dana**" in box.value for box in app.success)
    app.button(key="review_build").click().run()
    assert not errors(app), errors(app)
    ws = Workspace(workspace)
    run, = ws.list_runs(kind="audit")
    built, = review_views.reports_dir(ws, run["id"]).glob("report-*.html")
    html = built.read_text()
    assert "vendor_score" in html and "Vendor and in-house scores checked." in html


def test_a_model_file_next_to_the_table_queues_its_audit_alone(make_app, workspace, worker_calls):
    """A real .skops file of a gradient-boosting model: the types skops does not trust are
    listed by name and must be accepted before the model is loaded and the audit can start; the
    file is checked before anything is saved, then stored in the workspace with the table."""
    frame = pd.read_csv(io.BytesIO(predictions_csv()))
    fitted = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(
        frame[["vendor_score", "inhouse_score"]], frame["repaid"])
    data = io.BytesIO()
    sio.dump(fitted, data)
    model_bytes = data.getvalue()
    app = predictions_page(make_app, predictions_csv())
    app.selectbox(key="pred_target").set_value("repaid").run()
    app.file_uploader(key="pred_model_file").upload("vendor.skops", model_bytes, "application/octet-stream").run()
    assert not app.exception and not errors(app), errors(app)
    assert any(TREE_TYPE in box.value and "not trust by default" in box.value for box in app.warning)
    assert app.multiselect(key="pred_trust_types").options == [TREE_TYPE]
    assert not [b for b in app.button if b.key == "pred_audit"]  # no audit before the type is accepted
    assert not any("reads 2 columns" in c.value for c in app.caption)  # nor is the model loaded
    app.multiselect(key="pred_trust_types").set_value([TREE_TYPE]).run()
    assert not errors(app), errors(app)
    assert any("**vendor** reads 2 columns" in c.value for c in app.caption)
    assert not (workspace / "uploads").exists()
    app.button(key="pred_audit").click().run()
    assert not app.exception and not errors(app), errors(app)
    run, = Workspace(workspace).list_runs(kind="audit")
    config = run["config"]
    assert config["kind"] == "outside-model" and config["scores"] == [] and config["positive"] == "yes"
    assert config["trust_types"] == [TREE_TYPE]
    assert Path(config["model"]).read_bytes() == model_bytes
    assert workspace in Path(config["model"]).parents and worker_calls


TRAIN = "app_pages/train.py"


def test_a_predictions_study_offers_no_training(make_app, workspace, predictions_run, worker_calls):
    """Its columns are a model's outputs: the Train page says so in a sentence, with no settings
    or Start, and still lists the study's runs."""
    app = installed(make_app, workspace, predictions_run, TRAIN)
    assert not errors(app), errors(app)
    assert any("is a table of a model's predictions" in box.value and "nothing to train on it" in box.value
               for box in app.info)
    assert not [b for b in app.button if b.key == "train_start"] and not app.multiselect
    assert len(Workspace(workspace).list_runs(kind="audit")) == 1 and not worker_calls


def test_a_study_with_an_outside_model_trains_our_models_beside_it(make_app, workspace, tmp_path, worker_calls):
    """Start on the Train page queues a training audit that carries the study's model file and
    the types its reviewer accepted (core.run.pipeline audits it beside every replicate)."""
    model_file = tmp_path / "vendor-gbt.skops"
    model_file.write_bytes(b"PK\x03\x04 only its path is read here")
    outside = UploadedConfig(data="german", target="credit", positive="good", sensitive=["sex"],
                             model=str(model_file), trust_types=[TREE_TYPE], kind=uploaded.OUTSIDE_MODEL_STUDY)
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    ws.create_run("audit", "Audit of model vendor-gbt.skops", outside.to_dict(), study_id=ws.list_studies()[0]["id"])
    app.switch_page(TRAIN).run()
    assert not app.exception and not errors(app), errors(app)
    assert app.checkbox(key="train_outside").value and "vendor-gbt.skops" in app.checkbox(key="train_outside").label
    app.button(key="train_start").click().run()
    assert not app.exception and not errors(app), errors(app)
    trained = [r for r in Workspace(workspace).list_runs(kind="audit") if r["config"].get("kind") is None]
    config = trained[0]["config"]
    assert config["model"] == str(model_file) and config["trust_types"] == [TREE_TYPE] and worker_calls
    app.checkbox(key="train_outside").uncheck().run()
    app.button(key="train_start").click().run()
    second = [r for r in Workspace(workspace).list_runs(kind="audit") if r["config"].get("kind") is None][-1]
    assert second["config"]["model"] is None  # unticked: our models only
