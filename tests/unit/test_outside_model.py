"""Outside model files (issue 16, item 2): what is refused and why (pickle, unknown formats,
untrusted skops types, missing packages), how a scikit-learn model's columns and classes are
matched with the table, the audit of such a model alone on the study's test rows, and LIME and
attribute flips through its probability function.

skops and onnxruntime are optional; where one is not installed, its test checks the message
that says so (and, where it is, the real file)."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.cli.main import main
from core.data.source import open_source
from core.data.spec import DatasetSpec
from core.data.study import Study
from core.errors import InputError
from core.explain import explain_row, flip_row, load_run
from core.explain import context as explain_context
from core.learning.outside import from_estimator, is_pickle, load_outside_model, positive_column
from core.results import folder
from core.run import pipeline, uploaded
from core.run.config import AuditConfig
from core.run.pipeline import run_audit
from core.run.uploaded import UploadedConfig, run_uploaded_audit

NUMERIC = ["duration", "credit_amount", "age"]
CATEGORICAL = ["status", "credit_history", "sex"]


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    return open_source("german").frame


@pytest.fixture(scope="module")
def vendor_pipeline(german):
    """A vendor's model: fitted outside Equiscope on the table's raw columns (labels good/bad)."""
    columns = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    model = make_pipeline(columns, LogisticRegression(max_iter=500))
    return model.fit(german[NUMERIC + CATEGORICAL], german["credit"])


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("name", ["model.skops", "model.pkl", "model.joblib", "model.onnx"])
def test_a_pickle_is_refused_whatever_its_name(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(InputError, match="is a pickle \\(or joblib\\) file, which Equiscope never loads"):
        load_outside_model(path)


def test_pickle_magic_bytes_are_recognised():
    assert all(is_pickle(pickle.dumps(1, protocol=p)[:4]) for p in (2, 3, 4, 5))
    assert not is_pickle(b"PK\x03\x04") and not is_pickle(b"\x08\x07")


def test_a_file_that_is_no_model_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="neither a skops nor an ONNX model file"):
        load_outside_model(path)
    with pytest.raises(InputError, match="does not exist"):
        load_outside_model(tmp_path / "missing.skops")


def test_a_skops_file_needs_its_types_accepted_by_name(tmp_path, vendor_pipeline):
    path = tmp_path / "vendor.skops"
    if importlib.util.find_spec("skops") is None:
        path.write_bytes(b"PK\x03\x04 not read")
        with pytest.raises(InputError, match="needs the 'skops' package, which is not installed"):
            load_outside_model(path)
        return
    import skops.io as sio

    sio.dump(vendor_pipeline, path)
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        with pytest.raises(InputError, match="not trusted by default"):
            load_outside_model(path)
    model = load_outside_model(path, trust_types=untrusted)
    assert model.name == "vendor" and model.input_columns == NUMERIC + CATEGORICAL


def test_an_onnx_file_needs_onnxruntime_or_is_read_with_it(tmp_path):
    path = tmp_path / "vendor.onnx"
    path.write_bytes(b"\x08\x07 not an onnx graph")
    if importlib.util.find_spec("onnxruntime") is None:
        with pytest.raises(InputError, match="needs the 'onnxruntime' package, which is not installed"):
            load_outside_model(path)
    else:
        with pytest.raises(InputError, match="cannot be read as an ONNX model"):
            load_outside_model(path)


def test_the_cli_refuses_a_pickled_model_with_exit_2(tmp_path, capsys):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(object.__new__(LogisticRegression)))
    code = main(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex", "--model", str(path),
                 "--strategies", "none", "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 2 and "never loads: unpickling runs any code the file contains" in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- columns and classes
def test_a_scikit_learn_model_gives_the_positive_labels_probability(vendor_pipeline, german):
    model = from_estimator(vendor_pipeline, "vendor")
    rows = german.head(20)
    good = model.predict_proba(rows, positive_label="good")
    bad = model.predict_proba(rows, positive_label="bad")
    assert np.allclose(good, vendor_pipeline.predict_proba(rows[NUMERIC + CATEGORICAL])[:, 1])
    assert np.allclose(good + bad, 1.0)


def test_a_missing_input_column_is_named(vendor_pipeline, german):
    model = from_estimator(vendor_pipeline, "vendor")
    with pytest.raises(InputError, match="reads columns the table does not have: age"):
        model.predict_proba(german.drop(columns=["age"]), positive_label="good")


def test_a_model_fitted_without_column_names_is_refused(german):
    fitted = LogisticRegression().fit(german[NUMERIC].to_numpy(), german["credit"])
    with pytest.raises(InputError, match="does not record the columns it was fitted on"):
        from_estimator(fitted, "bare")


def test_classes_are_matched_with_the_positive_label():
    assert positive_column(["bad", "good"], "good", "m") == 1
    assert positive_column([0, 1], "yes", "m") == 1  # fitted on the encoded target
    assert positive_column([1, 2], "2", "m") == 1 and positive_column([1.0, 2.0], "1", "m") == 0
    with pytest.raises(InputError, match="neither is the positive label 'yes'"):
        positive_column(["a", "b"], "yes", "m")


# ----------------------------------------------------------------------------- audited alone, explained
@pytest.fixture(scope="module")
def outside_run(tmp_path_factory, vendor_pipeline):
    """`--model vendor.skops --strategies none` on German credit, the file read by a stand-in
    loader (skops may not be installed): the rest of the path is the product's."""
    folder_ = tmp_path_factory.mktemp("outside")
    model_file = folder_ / "vendor.skops"
    model_file.write_bytes(b"PK\x03\x04 stand-in")
    patch = pytest.MonkeyPatch()
    loader = lambda path, trust_types=(): from_estimator(vendor_pipeline, "vendor")  # noqa: E731
    patch.setattr(uploaded, "load_outside_model", loader)
    patch.setattr(explain_context, "load_outside_model", loader)
    config = UploadedConfig(data="german", target="credit", positive="good", sensitive=["sex", "age"],
                            model=str(model_file), n_boot=30, kind=uploaded.OUTSIDE_MODEL_STUDY)
    report = run_uploaded_audit(config, folder_ / "run")
    yield report, folder_ / "run"
    patch.undo()


def test_an_outside_model_alone_is_audited_on_the_studys_test_rows(outside_run, german, vendor_pipeline):
    report, run = outside_run
    study = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex", "age"),
                                                            positive_label="good"))
    entry, = report["models"]
    assert (entry["name"], entry["pretraining"], entry["strategy"]) == ("vendor", None, "uploaded")
    assert report["study"]["kind"] == "outside-model" and report["study"]["model_file"] == "vendor.skops"
    stored = folder.read_predictions(run)
    assert np.array_equal(stored["row_id"], study.split.test)
    expected = vendor_pipeline.predict_proba(german.iloc[study.split.test][NUMERIC + CATEGORICAL])[:, 1]
    assert np.allclose(stored["score__vendor"], expected)
    validation = pd.read_parquet(run / folder.VALIDATION_PREDICTIONS)
    assert np.array_equal(validation["row_id"], study.split.validation)
    assert (folder.model_dir(run, "vendor") / "vendor.skops").is_file()


def test_lime_and_attribute_flips_ask_the_outside_model(outside_run, german, vendor_pipeline):
    _, run = outside_run
    ctx = load_run(run)
    row = int(ctx.test_rows[0])
    explanation = explain_row(ctx, row, "vendor", num_samples=1000, repeats=1)
    expected = vendor_pipeline.predict_proba(german.iloc[[row]][NUMERIC + CATEGORICAL])[0, 1]
    assert explanation.probability == pytest.approx(expected, abs=1e-6)
    # weights are sorted by size; the model reads six columns, so the strongest are among them
    assert {w.feature for w in explanation.weights[:3]} <= set(NUMERIC + CATEGORICAL)
    flips = flip_row(ctx, row, "vendor", attributes=["sex"])
    other = german.iloc[[row]].assign(sex=flips[0]["to"])
    assert flips[0]["probability"] == pytest.approx(vendor_pipeline.predict_proba(other[NUMERIC + CATEGORICAL])[0, 1],
                                                    abs=1e-6)


def test_an_outside_model_joins_the_trained_models_on_the_same_rows(tmp_path, vendor_pipeline, german, monkeypatch):
    """Beside every replicate (it is fixed: its replicates are equal) and compared with the
    supervised baseline over them, answered on the test rows' raw values."""
    monkeypatch.setattr(pipeline, "load_outside_model", lambda path, trust_types=(): from_estimator(vendor_pipeline,
                                                                                                  "vendor"))
    model_file = tmp_path / "vendor.skops"
    model_file.write_bytes(b"PK\x03\x04 stand-in")
    config = AuditConfig(data="german", target="credit", positive="good", sensitive=["sex"], epochs=1,
                         finetune_epochs=2, n_boot=30, strategies=["linear"], baselines=[], umap=False, workers=1,
                         encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8}, replicates=2, model=str(model_file))
    report = run_audit(config, tmp_path / "run")
    names = [m["name"] for m in report["models"]]
    assert names[-1] == "vendor" and "supervised" in names and report["study"]["kind"] == "training"
    vendor = report["models"][-1]
    assert (vendor["pretraining"], vendor["strategy"]) == (None, "uploaded") and "representation" not in vendor
    assert set(vendor["compared_with_supervised"]["sex"]) >= {"equalized_odds_difference"}
    assert vendor["aggregate"]["overall"]["accuracy"]["sd"] == 0.0  # the same fixed model in both replicates
    stored = folder.read_predictions(tmp_path / "run")
    expected = vendor_pipeline.predict_proba(german.iloc[stored["row_id"]][NUMERIC + CATEGORICAL])[:, 1]
    assert np.allclose(stored["score__vendor"], expected) and np.allclose(stored["score__vendor__r1"], expected)
    assert (folder.model_dir(tmp_path / "run", "vendor") / "vendor.skops").is_file()


def test_an_outside_model_may_not_take_a_trained_models_name(tmp_path, capsys):
    path = tmp_path / "supervised.onnx"
    path.write_bytes(b"\x08\x07")
    code = main(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex", "--model", str(path),
                 "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")])
    assert code == 2 and "would be named 'supervised', like a model Equiscope trains" in capsys.readouterr().err
