"""The predictions-only audit (issue 16, item 1): the table's checks, the report contract of
uploaded models, the paired comparisons with the reference model, and the CLI's exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.audit.replicated import replicated_paired_differences
from core.cli.main import main
from core.data.predictions import MAX_MODELS, read_predictions
from core.data.source import DataSource, open_source
from core.data.spec import DatasetSpec
from core.data.study import Study
from core.errors import InputError
from core.results import folder
from core.run.assemble import study_summary
from core.run.config import AuditConfig
from core.run.uploaded import UploadedConfig, run_uploaded_audit
from core.workspace.store import Workspace


def predictions_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Outcome, two attributes, a fair score, a score that favours men, and label decisions."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    region = rng.choice(["north", "south"], n)
    y = rng.random(n) < 0.4
    fair = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    biased = np.clip(fair + 0.3 * (sex == "male") - 0.1, 0, 1)
    return pd.DataFrame({"granted": np.where(y, "yes", "no"), "sex": sex, "region": region, "fair": fair,
                         "biased": biased, "decided": np.where(fair >= 0.5, "yes", "no")})


def source_of(frame: pd.DataFrame) -> DataSource:
    return DataSource(name="predictions.csv", frame=frame, sha256="0" * 64)


def read(frame: pd.DataFrame, **kwargs):
    options = {"scores": ["fair", "biased"], "positive": "yes"} | kwargs
    return read_predictions(source_of(frame), "granted", ["sex"], **options)


# ----------------------------------------------------------------------------- the table's checks
def test_score_and_decision_columns_become_models_named_after_them():
    frame = predictions_frame()
    table = read(frame, decisions=["decided"], threshold=0.6)
    assert [m.name for m in table.models] == ["fair", "biased", "decided"]
    fair = table.models[0]
    assert np.array_equal(fair.decisions, (frame["fair"] >= 0.6).to_numpy(dtype=int))
    assert np.array_equal(table.models[2].decisions, (frame["decided"] == "yes").to_numpy(dtype=int))
    assert table.models[2].scores is None
    assert np.array_equal(table.y, (frame["granted"] == "yes").to_numpy(dtype=int))


def test_zero_one_and_true_false_decisions_are_read_as_decisions():
    frame = predictions_frame().assign(flag=lambda f: np.where(f["fair"] >= 0.5, "True", "False"),
                                       binary=lambda f: (f["fair"] >= 0.5).astype(int))
    table = read(frame, scores=[], decisions=["flag", "binary"])
    assert np.array_equal(table.models[0].decisions, table.models[1].decisions)
    assert table.models[0].decisions.sum() == (frame["fair"] >= 0.5).sum()


@pytest.mark.parametrize(("change", "options", "words"), [
    (lambda f: f.assign(fair=f["fair"] * 2), {}, "The score column 'fair' has values outside [0, 1]"),
    (lambda f: f.assign(fair=f["fair"].where(f.index > 3)), {}, "The score column 'fair' has 4 missing values"),
    (lambda f: f, {"scores": ["decided"]}, "The score column 'decided' has 600 values that are not numbers"),
    (lambda f: f, {"scores": [], "decisions": ["fair"]}, "neither 0/1 nor labels of the target"),
    (lambda f: f, {"scores": ["fiar"]}, "The model column 'fiar' is not in the table"),
    (lambda f: f, {"scores": ["sex"]}, "The model column 'sex' is also a sensitive attribute"),
    (lambda f: f, {"scores": []}, "No model column given"),
    (lambda f: f, {"scores": ["fair", "fair"]}, "named twice"),
    (lambda f: f.head(40), {}, "40 rows with an outcome; an audit needs at least 50"),
    (lambda f: f, {"threshold": 1.5}, "--threshold must lie between 0 and 1"),
])
def test_bad_predictions_get_a_specific_message(change, options, words):
    with pytest.raises(InputError) as raised:
        read(change(predictions_frame()), **options)
    assert words in str(raised.value)


def test_more_than_twenty_models_are_refused():
    frame = predictions_frame()
    columns = {f"m{i}": frame["fair"] for i in range(MAX_MODELS + 1)}
    with pytest.raises(InputError, match="21 model columns given; a predictions audit takes at most 20"):
        read(frame.assign(**columns), scores=list(columns))


def test_rows_without_an_outcome_are_left_out_with_a_note():
    frame = predictions_frame()
    frame.loc[:9, "granted"] = None
    table = read(frame)
    assert len(table.row_ids) == 590 and table.row_ids[0] == 10
    assert any("10 rows have no 'granted'" in note for note in table.data.notes)


# ----------------------------------------------------------------------------- the audit
@pytest.fixture(scope="module")
def uploaded_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("uploaded")
    path = out.parent / "predictions.csv"
    predictions_frame().to_csv(path, index=False)
    config = UploadedConfig(data=str(path), target="granted", positive="yes", sensitive=["sex", "region"],
                            scores=["fair", "biased"], decisions=["decided"], n_boot=50)
    return run_uploaded_audit(config, out), out


def test_the_report_of_uploaded_models_follows_the_contract(uploaded_run):
    report, out = uploaded_run
    assert report == json.loads((out / folder.REPORT).read_text())
    study = report["study"]
    assert study["kind"] == "predictions" and study["reference"] == "fair"
    assert (study["positive_label"], study["negative_label"]) == ("yes", "no")  # the table's own word
    assert study["n_test"] == 600 and study["n_train"] == 0 and study["uploaded"]["decided"] == "decisions"
    assert report["pretraining"] is None and report["replicates"] == 1
    for model in report["models"]:
        assert model["pretraining"] is None and model["strategy"] == "uploaded"
        assert "representation" not in model and "calibration" not in model
        assert set(model["gaps"]) == {"sex", "region", "sex & region"}
    assert "compared_with_supervised" not in report["models"][0]
    assert set(report["models"][1]["compared_with_supervised"]) == {"sex", "region", "sex & region"}
    assert "reference model 'fair'" in report["multiplicity"]["ssl_vs_supervised"]["what"]
    assert (out / folder.HTML_REPORT).is_file() and not (out / folder.REPORT_ERROR_LOG).exists()
    html = (out / folder.HTML_REPORT).read_text()
    assert 'id="pretraining"' not in html and "trained outside Equiscope" in html  # nothing was trained here


def test_predictions_parquet_holds_every_uploaded_model(uploaded_run):
    report, out = uploaded_run
    stored = folder.read_predictions(out)
    assert folder.models_in_columns(stored.columns) == ["fair", "biased", "decided"]
    frame = predictions_frame()
    assert np.allclose(stored[folder.score_column("fair")], frame["fair"])
    assert stored[folder.score_column("decided")].isna().all()
    assert np.array_equal(stored[folder.pred_column("decided")], (frame["decided"] == "yes").astype(int))
    assert report["models"][2]["overall"]["roc_auc"] is None  # decisions only: no scores to rank


def test_the_paired_comparison_is_the_test_row_bootstrap_of_the_two_fixed_models(uploaded_run):
    """One "replicate" per side: exactly core.audit.replicated's paired differences of the two decisions."""
    report, out = uploaded_run
    stored = folder.read_predictions(out)
    groups = stored[["sex", "region"]]
    expected = replicated_paired_differences(stored["y_true"].to_numpy(), [stored["pred__biased"].to_numpy()],
                                             [stored["pred__fair"].to_numpy()], groups, n_boot=50,
                                             confidence=0.95, random_state=0)
    got = report["models"][1]["compared_with_supervised"]["sex"]["demographic_parity_difference"]
    want = expected["sex"]["demographic_parity_difference"]
    assert got["difference"] == pytest.approx(want["difference"]) and got["ci"] == pytest.approx(want["ci"])


def test_a_model_that_favours_one_group_is_found_worse_than_the_fair_reference(uploaded_run):
    """Simulated: the biased score adds 0.3 for men; its selection-rate gap by sex is wider than the
    fair reference's, a verdict that survives Holm; by region (no bias) it is not."""
    report, _ = uploaded_run
    compared = report["models"][1]["compared_with_supervised"]
    assert compared["sex"]["demographic_parity_difference"]["excludes_zero"] is True
    assert compared["sex"]["demographic_parity_difference"]["difference"] > 0.2
    assert compared["region"]["demographic_parity_difference"]["excludes_zero"] is False


def test_the_reference_can_be_chosen_and_must_be_a_model(tmp_path):
    path = tmp_path / "p.csv"
    predictions_frame().to_csv(path, index=False)
    base = dict(data=str(path), target="granted", positive="yes", sensitive=["sex"], scores=["fair", "biased"],
                n_boot=20)
    report = run_uploaded_audit(UploadedConfig(**base, reference="biased"), tmp_path / "a")
    assert report["study"]["reference"] == "biased" and "compared_with_supervised" in report["models"][0]
    with pytest.raises(InputError, match="The reference model 'nope' is not one of the audited models"):
        run_uploaded_audit(UploadedConfig(**base, reference="nope"), tmp_path / "b")


def test_a_training_audit_says_its_kind():
    config = AuditConfig(data="german", target="credit", sensitive=["sex"], positive="good")
    study = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex",), positive_label="good"))
    assert study_summary(study, config)["kind"] == "training"


# ----------------------------------------------------------------------------- the CLI
def test_cli_audits_predictions_and_records_the_run(tmp_path, capsys):
    path = tmp_path / "p.csv"
    predictions_frame().to_csv(path, index=False)
    code = main(["audit", "--predictions", str(path), "--target", "granted", "--positive", "yes", "--sensitive",
                 "sex", "--scores", "fair,biased", "--threshold", "0.55", "--n-boot", "20", "--out",
                 str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")])
    assert code == 0
    report = folder.read_report(tmp_path / "out")
    assert [m["name"] for m in report["models"]] == ["fair", "biased"] and report["study"]["threshold"] == 0.55
    assert "trained once" not in capsys.readouterr().err  # no training: no one-training-run notice
    runs = Workspace(tmp_path / "ws").list_runs()
    assert runs[0]["status"] == "succeeded" and runs[0]["config"]["kind"] == "predictions"


@pytest.mark.parametrize(("arguments", "words"), [
    (["--scores", "fair", "--threshold", "0"], "--threshold must lie between 0 and 1"),
    (["--decisions", "fair"], "neither 0/1 nor labels"),
    ([], "Name the model columns of the predictions table"),
    (["--decisions", "decided", "--threshold", "0.3"], "--threshold goes with --scores"),
])
def test_cli_refuses_bad_predictions_with_exit_2_and_no_output(tmp_path, capsys, arguments, words):
    path = tmp_path / "p.csv"
    predictions_frame().to_csv(path, index=False)
    code = main(["audit", "--predictions", str(path), "--target", "granted", "--sensitive", "sex", *arguments,
                 "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_cli_refuses_a_score_column_outside_zero_one(tmp_path, capsys):
    path = tmp_path / "p.csv"
    predictions_frame().assign(fair=lambda f: f["fair"] * 100).to_csv(path, index=False)
    code = main(["audit", "--predictions", str(path), "--target", "granted", "--sensitive", "sex", "--scores",
                 "fair", "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")])
    assert code == 2 and "The score column 'fair' has values outside [0, 1]" in capsys.readouterr().err


def test_explain_says_a_predictions_run_has_no_model_to_ask(uploaded_run, capsys):
    _, out = uploaded_run
    code = main(["explain", "--run", str(out), "--row", "0"])
    assert code == 2 and "audited uploaded predictions only: there is no model to explain" in capsys.readouterr().err
