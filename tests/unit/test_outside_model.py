"""Outside model files (issue 16, item 2) on real files: a scikit-learn Pipeline saved with
skops.io.dump and audited by the CLI (`--model FILE.skops --strategies none`), its untrusted
types refused unless accepted by name, pickle and joblib refused, the columns and classes matched
with the table, LIME and attribute flips through its probability function (core.explain and
`equiscope explain`), and the model joined with Equiscope's own training.

Every model here is fitted outside Equiscope on German credit's raw columns. The logistic
pipeline uses only types skops trusts by default; the gradient-boosting one needs
`sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor` accepted by name."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.cli.main import main
from core.data.source import open_source
from core.data.spec import DatasetSpec
from core.data.study import Study
from core.errors import InputError
from core.explain import explain_row, flip_row, load_run
from core.learning.outside import from_estimator, is_pickle, load_outside_model, positive_column
from core.results import folder

NUMERIC = ["duration", "credit_amount", "age"]
CATEGORICAL = ["status", "credit_history", "sex"]
TREE_TYPE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    return open_source("german").frame


def _vendor(german: pd.DataFrame, classifier) -> object:
    """A vendor's model: a ColumnTransformer (one-hot + scaling) and a classifier, fitted outside
    Equiscope on the table's raw columns (labels good/bad)."""
    columns = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    return make_pipeline(columns, classifier).fit(german[NUMERIC + CATEGORICAL], german["credit"])


@pytest.fixture(scope="module")
def vendor_pipeline(german):
    return _vendor(german, LogisticRegression(max_iter=500))


@pytest.fixture(scope="module")
def boosted_file(tmp_path_factory, german):
    """A real .skops file of a gradient-boosting pipeline (it needs TREE_TYPE trusted) and the pipeline."""
    pipeline_ = _vendor(german, HistGradientBoostingClassifier(max_iter=30, random_state=0))
    path = tmp_path_factory.mktemp("vendor") / "vendor-gbt.skops"
    sio.dump(pipeline_, path)
    return path, pipeline_


def _german_study() -> Study:
    return Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex", "age"),
                                                           positive_label="good"))


def _audit(model_file, out, *extra: str) -> int:
    return main(["audit", "--data", "german", "--target", "credit", "--positive", "good", "--sensitive", "sex,age",
                 "--model", str(model_file), "--n-boot", "30", "--out", str(out),
                 "--workspace", str(out.parent / "ws"), *extra])


def _error_lines(stderr: str) -> list[str]:
    """The CLI's error lines (the progress bar shares stderr)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


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


def test_a_skops_file_is_read_with_its_columns_and_classes(tmp_path, vendor_pipeline, german):
    path = tmp_path / "vendor.skops"
    sio.dump(vendor_pipeline, path)
    assert sio.get_untrusted_types(file=path) == []  # a logistic pipeline: every type trusted by default
    model = load_outside_model(path)
    assert model.name == "vendor" and model.input_columns == NUMERIC + CATEGORICAL
    assert model.classes == ["bad", "good"]
    assert np.allclose(model.predict_proba(german.head(50), "good"),
                       vendor_pipeline.predict_proba(german.head(50)[NUMERIC + CATEGORICAL])[:, 1])


def test_untrusted_skops_types_are_refused_until_accepted_by_name(boosted_file):
    path, _ = boosted_file
    assert sio.get_untrusted_types(file=path) == [TREE_TYPE]
    with pytest.raises(InputError, match=f"not trusted by default: {TREE_TYPE}"):
        load_outside_model(path)
    with pytest.raises(InputError, match="not trusted by default"):
        load_outside_model(path, trust_types=["sklearn.ensemble.HistGradientBoostingClassifier"])
    assert load_outside_model(path, trust_types=[TREE_TYPE]).name == "vendor-gbt"


def test_a_damaged_skops_file_is_refused(tmp_path):
    path = tmp_path / "vendor.skops"
    path.write_bytes(b"PK\x03\x04 not a whole archive")
    with pytest.raises(InputError, match="cannot be read as a skops file"):
        load_outside_model(path)


def test_a_file_that_is_no_onnx_graph_is_refused(tmp_path):
    path = tmp_path / "vendor.onnx"
    path.write_bytes(b"\x08\x07 not an onnx graph")
    with pytest.raises(InputError, match="cannot be read as an ONNX model"):
        load_outside_model(path)


@pytest.mark.parametrize("compress", [0, 3])
def test_a_joblib_file_is_refused_by_the_cli_with_exit_2(tmp_path, capsys, vendor_pipeline, compress):
    """joblib's plain files are pickles (refused by their bytes), its compressed ones are refused
    by their name; neither is ever unpickled."""
    path = tmp_path / "vendor.joblib"
    joblib.dump(vendor_pipeline, path, compress=compress)
    assert _audit(path, tmp_path / "out", "--strategies", "none") == 2
    error, = _error_lines(capsys.readouterr().err)
    assert "is a pickle (or joblib) file, which Equiscope never loads" in error
    assert not (tmp_path / "out").exists()


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
def outside_run(tmp_path_factory, boosted_file):
    """`equiscope audit --model vendor-gbt.skops --strategies none --trust-types TREE_TYPE` on German."""
    path, _ = boosted_file
    run = tmp_path_factory.mktemp("outside") / "run"
    assert _audit(path, run, "--strategies", "none", "--trust-types", TREE_TYPE) == 0
    return json.loads((run / folder.REPORT).read_text()), run


def test_without_the_trust_flag_the_cli_lists_the_untrusted_types_and_exits_2(tmp_path, capsys, boosted_file):
    path, _ = boosted_file
    assert _audit(path, tmp_path / "out", "--strategies", "none") == 2
    error, = _error_lines(capsys.readouterr().err)  # one line, the types named
    assert f"not trusted by default: {TREE_TYPE}" in error
    assert f"--trust-types {TREE_TYPE}" in error and not (tmp_path / "out").exists()


def test_an_outside_model_alone_is_audited_on_the_studys_test_rows(outside_run, german, boosted_file):
    report, run = outside_run
    _, pipeline_ = boosted_file
    study = _german_study()
    entry, = report["models"]
    assert (entry["name"], entry["pretraining"], entry["strategy"]) == ("vendor-gbt", None, "uploaded")
    assert report["study"]["kind"] == "outside-model" and report["study"]["model_file"] == "vendor-gbt.skops"
    assert report["config"]["trust_types"] == [TREE_TYPE]
    stored = folder.read_predictions(run)
    assert np.array_equal(stored["row_id"], study.split.test)
    expected = pipeline_.predict_proba(german.iloc[study.split.test][NUMERIC + CATEGORICAL])[:, 1]
    assert np.allclose(stored["score__vendor-gbt"], expected, atol=1e-12)
    validation = pd.read_parquet(run / folder.VALIDATION_PREDICTIONS)
    assert np.array_equal(validation["row_id"], study.split.validation)
    assert (folder.model_dir(run, "vendor-gbt") / "vendor-gbt.skops").is_file()


def test_lime_and_attribute_flips_ask_the_outside_model(outside_run, german, boosted_file):
    _, run = outside_run
    _, pipeline_ = boosted_file
    ctx = load_run(run)
    row = int(ctx.test_rows[0])
    explanation = explain_row(ctx, row, "vendor-gbt", num_samples=1000, repeats=1)
    expected = pipeline_.predict_proba(german.iloc[[row]][NUMERIC + CATEGORICAL])[0, 1]
    assert explanation.probability == pytest.approx(expected, abs=1e-9)
    # weights are sorted by size; the model reads six columns, so the strongest are among them
    assert {w.feature for w in explanation.weights[:3]} <= set(NUMERIC + CATEGORICAL)
    # a column the model does not read has no effect on it: LIME gives it (near) no weight
    unread = [w for w in explanation.weights if w.feature not in NUMERIC + CATEGORICAL]
    assert max(abs(w.weight) for w in unread) < 0.2 * abs(explanation.weights[0].weight)
    flips = flip_row(ctx, row, "vendor-gbt", attributes=["sex"])
    other = german.iloc[[row]].assign(sex=flips[0]["to"])
    assert flips[0]["probability"] == pytest.approx(pipeline_.predict_proba(other[NUMERIC + CATEGORICAL])[0, 1],
                                                    abs=1e-9)


def test_equiscope_explain_reopens_the_kept_skops_file(outside_run, german, boosted_file, capsys):
    """The run keeps a copy of the file and the accepted types, so explain needs no flag."""
    _, run = outside_run
    _, pipeline_ = boosted_file
    row = int(folder.read_predictions(run)["row_id"].iloc[1])
    capsys.readouterr()
    assert main(["explain", "--run", str(run), "--row", str(row), "--num-samples", "300", "--repeats", "1"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["model"] == "vendor-gbt"
    assert answer["probability"] == pytest.approx(
        pipeline_.predict_proba(german.iloc[[row]][NUMERIC + CATEGORICAL])[0, 1], abs=1e-9)
    sex = next(f for f in answer["flip"] if f["attribute"] == "sex")
    other = german.iloc[[row]].assign(sex=sex["to"])
    assert sex["probability"] == pytest.approx(pipeline_.predict_proba(other[NUMERIC + CATEGORICAL])[0, 1], abs=1e-9)


def test_an_outside_model_joins_the_trained_models_on_the_same_rows(tmp_path, vendor_pipeline, german):
    """`--model vendor.skops --strategies linear --replicates 1`: the file sits beside the models
    Equiscope trains, on the same test rows, compared with the supervised baseline."""
    model_file = tmp_path / "vendor.skops"
    sio.dump(vendor_pipeline, model_file)
    run = tmp_path / "run"
    assert _audit(model_file, run, "--strategies", "linear", "--baselines", "none", "--epochs", "1",
                  "--finetune-epochs", "2", "--replicates", "1", "--no-umap") == 0
    report = json.loads((run / folder.REPORT).read_text())
    names = [m["name"] for m in report["models"]]
    assert names[-1] == "vendor" and "supervised" in names and len(names) >= 3
    assert report["study"]["kind"] == "training"
    vendor = report["models"][-1]
    assert (vendor["pretraining"], vendor["strategy"]) == (None, "uploaded") and "representation" not in vendor
    assert set(vendor["compared_with_supervised"]["sex"]) >= {"equalized_odds_difference"}
    stored = folder.read_predictions(run)
    assert np.array_equal(stored["row_id"], _german_study().split.test)
    expected = vendor_pipeline.predict_proba(german.iloc[stored["row_id"]][NUMERIC + CATEGORICAL])[:, 1]
    assert np.allclose(stored["score__vendor"], expected, atol=1e-12)
    assert all(f"score__{name}" in stored for name in names)  # every model scored on the same rows
    assert (folder.model_dir(run, "vendor") / "vendor.skops").is_file()


def test_an_outside_model_may_not_take_a_trained_models_name(tmp_path, capsys):
    path = tmp_path / "supervised.onnx"
    path.write_bytes(b"\x08\x07")
    code = main(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex", "--model", str(path),
                 "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")])
    assert code == 2 and "would be named 'supervised', like a model Equiscope trains" in capsys.readouterr().err
