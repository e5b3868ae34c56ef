"""Outside ONNX model files (issue 16, item 2) on real graphs built with the `onnx` package's
helper API: a logistic model (MatMul + Add + Sigmoid, one probability per row) over German
credit's numeric columns, fed either as one float tensor whose columns the metadata
`feature_names` names, or as one (rows, 1) input per column named after it. Audited by the CLI
(`--model FILE.onnx --strategies none`); inputs that do not match the table exit 2 with a
message that names what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from core.cli.main import main
from core.data.source import open_source
from core.data.spec import DatasetSpec
from core.data.study import Study
from core.errors import InputError
from core.learning.outside import load_outside_model
from core.results import folder

COLUMNS = ["duration", "credit_amount", "age"]
WEIGHTS = np.array([-0.04, -0.0001, 0.02], dtype=np.float32)
BIAS = np.float32(1.2)


def _logistic(X: np.ndarray) -> np.ndarray:
    """What the graph computes: sigmoid(X w + b), the probability of 'good'."""
    return 1.0 / (1.0 + np.exp(-(X.astype(np.float64) @ WEIGHTS.astype(np.float64) + float(BIAS))))


def _save(path: Path, inputs: list, nodes: list, metadata: dict[str, str]) -> Path:
    nodes = nodes + [helper.make_node("MatMul", ["X", "W"], ["z0"]), helper.make_node("Add", ["z0", "B"], ["z"]),
                     helper.make_node("Sigmoid", ["z"], ["probabilities"])]
    graph = helper.make_graph(nodes, "vendor-logistic", inputs,
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 1])],
                              initializer=[numpy_helper.from_array(WEIGHTS.reshape(-1, 1), "W"),
                                           numpy_helper.from_array(np.array([BIAS]), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # read by any onnxruntime of the last years
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def one_tensor_model(path: Path, width: int = 3, names: list[str] = COLUMNS) -> Path:
    """One float input of `width` values per row; `feature_names` names its columns."""
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])
    metadata = {"classes": "bad,good"} | ({"feature_names": ",".join(names)} if names else {})
    return _save(path, [X], [], metadata)


def per_column_model(path: Path, names: list[str] = COLUMNS) -> Path:
    """One (rows, 1) float input per column, named after it, concatenated in the graph."""
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]) for name in names]
    return _save(path, inputs, [helper.make_node("Concat", names, ["X"], axis=1)], {"classes": "bad,good"})


def _audit(model_file: Path, out: Path) -> int:
    return main(["audit", "--data", "german", "--target", "credit", "--positive", "good", "--sensitive", "sex,age",
                 "--model", str(model_file), "--strategies", "none", "--n-boot", "30", "--out", str(out),
                 "--workspace", str(out.parent / "ws")])


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("build", [one_tensor_model, per_column_model])
def test_an_onnx_model_is_audited_on_the_studys_test_rows(tmp_path, build):
    path = build(tmp_path / "vendor-logit.onnx")
    run = tmp_path / "run"
    assert _audit(path, run) == 0
    report = json.loads((run / folder.REPORT).read_text())
    entry, = report["models"]
    assert (entry["name"], entry["pretraining"], entry["strategy"]) == ("vendor-logit", None, "uploaded")
    assert report["study"]["model_file"] == "vendor-logit.onnx"
    german = open_source("german").frame
    study = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex", "age"),
                                                            positive_label="good"))
    stored = folder.read_predictions(run)
    assert np.array_equal(stored["row_id"], study.split.test)
    expected = _logistic(german.iloc[study.split.test][COLUMNS].to_numpy())
    assert np.allclose(stored["score__vendor-logit"], expected, atol=1e-6)  # float32 in the graph
    assert 0.05 < expected.std()  # the scores vary: a constant would pass the equality trivially


def test_one_probability_per_row_is_the_second_class(tmp_path):
    model = load_outside_model(one_tensor_model(tmp_path / "m.onnx"))
    rows = open_source("german").frame.head(40)
    good, bad = model.predict_proba(rows, "good"), model.predict_proba(rows, "bad")
    assert np.allclose(good, _logistic(rows[COLUMNS].to_numpy()), atol=1e-6) and np.allclose(good + bad, 1.0)


def test_an_input_named_after_no_column_of_the_table_exits_2(tmp_path, capsys):
    path = per_column_model(tmp_path / "vendor.onnx", names=["months", "credit_amount", "age"])
    assert _audit(path, tmp_path / "out") == 2
    error, = _error_lines(capsys.readouterr().err)
    assert "The model 'vendor' reads columns the table does not have: months" in error
    assert not (tmp_path / "out").exists()


def test_an_input_wider_than_its_named_columns_exits_2(tmp_path, capsys):
    path = one_tensor_model(tmp_path / "vendor.onnx", width=3, names=["duration", "age"])
    assert _audit(path, tmp_path / "out") == 2
    error, = _error_lines(capsys.readouterr().err)
    assert "takes 3 values per row, but its metadata 'feature_names' names 2 columns (duration, age)" in error


def test_one_unnamed_wide_input_cannot_be_matched(tmp_path):
    with pytest.raises(InputError, match="takes one unnamed input of width 3, so its columns cannot be matched"):
        load_outside_model(one_tensor_model(tmp_path / "vendor.onnx", names=[]))


def test_an_input_of_several_values_among_named_inputs_is_refused(tmp_path):
    inputs = [helper.make_tensor_value_info("duration", TensorProto.FLOAT, [None, 1]),
              helper.make_tensor_value_info("amounts", TensorProto.FLOAT, [None, 2])]
    path = _save(tmp_path / "vendor.onnx", inputs, [helper.make_node("Concat", ["duration", "amounts"], ["X"], axis=1)],
                 {"classes": "bad,good"})
    with pytest.raises(InputError, match="not one value per row in 'amounts' \\(2 values\\)"):
        load_outside_model(path)
