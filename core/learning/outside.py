"""A model Equiscope did not train, loaded from a file the reviewer trusts: a scikit-learn
model or pipeline saved with skops, or an ONNX model (onnxruntime, CPU).

    load_outside_model(path, trust_types=[...])  ->  OutsideModel
    OutsideModel.predict_proba(raw_rows, positive_label)  ->  probability of the positive label
    OnStudy(model, study, path)  ->  the model as the audit and explanations call Equiscope's own

Safety: a model file is code-shaped data. Pickle (and joblib, torch's default format) runs
whatever the file says on load, so such files are refused, whatever their name, by their magic
bytes. skops lists the types a file would build (`skops.io.get_untrusted_types`); any type
skops does not trust by default is refused unless the reviewer accepts it by name
(`--trust-types a.B,c.D`), so that accepting a type is a reviewed, recorded decision.

The model reads the table's raw columns (it was fitted outside, on the table's own columns):
a scikit-learn model's `feature_names_in_`, an ONNX model's input names (one input per column,
as skl2onnx exports a pipeline with named columns) or its metadata `feature_names` (one 2-D
input). A column the model needs and the table lacks is a clear InputError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from core.data.study import Study
from core.errors import InputError
from core.vocabulary import UPLOADED

SKOPS_SUFFIXES = (".skops",)
ONNX_SUFFIXES = (".onnx",)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".pt", ".pth", ".bin")
_ZIP_MAGIC = b"PK\x03\x04"  # a skops file is a zip archive


@dataclass
class OutsideModel:
    """A loaded outside model: its name (the file's stem), the raw columns it reads, and a
    function of those columns returning one probability column per class (`classes`)."""

    name: str
    input_columns: list[str]
    classes: list[Any]
    probabilities: Callable[[pd.DataFrame], np.ndarray]
    notes: list[str] = field(default_factory=list)

    def predict_proba(self, rows: pd.DataFrame, positive_label: Any) -> np.ndarray:
        """The probability of `positive_label` for each of `rows` (raw table columns)."""
        missing = [c for c in self.input_columns if c not in rows.columns]
        if missing:
            raise InputError(f"The model '{self.name}' reads columns the table does not have: "
                             f"{', '.join(missing[:8])}",
                             f"The table's columns are {', '.join(map(str, list(rows.columns)[:20]))}; audit it on "
                             "the table it was built for, or rename the columns")
        column = positive_column(self.classes, positive_label, self.name)
        try:
            proba = np.asarray(self.probabilities(rows[self.input_columns]), dtype=np.float64)
        except InputError:
            raise
        except Exception as error:  # the reviewer's model failed on these rows: say why, in one line
            raise InputError(f"The model '{self.name}' could not score the table's rows "
                             f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})",
                             "Check that the model was fitted on this table's columns and value types") from None
        if proba.ndim != 2 or proba.shape[0] != len(rows) or proba.shape[1] != len(self.classes):
            raise InputError(f"The model '{self.name}' returned probabilities of shape {proba.shape}",
                             "A binary classifier returns one probability per class and row")
        scores = proba[:, column]
        if not np.isfinite(scores).all() or scores.min() < -1e-9 or scores.max() > 1 + 1e-9:
            raise InputError(f"The model '{self.name}' returned probabilities outside [0, 1]",
                             "Give a classifier whose predict_proba returns probabilities")
        return np.clip(scores, 0.0, 1.0)


def positive_column(classes: Sequence[Any], positive_label: Any, name: str) -> int:
    """The index of the positive label among a classifier's classes: the label itself (as text
    or as a number), else the class 1 of a 0/1 classifier (a model fitted on the encoded target)."""
    if len(classes) != 2:
        raise InputError(f"The model '{name}' has {len(classes)} classes, not two",
                         "Equiscope audits binary decisions; give a binary classifier")
    texts = [str(c).strip() for c in classes]
    wanted = str(positive_label).strip()
    for index, text in enumerate(texts):
        if text == wanted or _same_number(text, wanted):
            return index
    if sorted(texts) in (["0", "1"], ["False", "True"]):
        return texts.index("1") if "1" in texts else texts.index("True")
    raise InputError(f"The model '{name}' predicts the classes {texts[0]!r} and {texts[1]!r}, and neither is the "
                     f"positive label {wanted!r}", "Choose the positive label the model was trained with (--positive)")


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def from_estimator(estimator: Any, name: str) -> OutsideModel:
    """A fitted scikit-learn classifier (or pipeline) as an OutsideModel; it must record the
    columns it was fitted on (`feature_names_in_`, set when fitted on a DataFrame)."""
    columns = getattr(estimator, "feature_names_in_", None)
    if columns is None:
        raise InputError(f"The model '{name}' does not record the columns it was fitted on",
                         "Fit it on a pandas DataFrame with the table's column names, then save it again")
    if not hasattr(estimator, "predict_proba"):
        raise InputError(f"The model '{name}' has no predict_proba", "Give a classifier that returns probabilities")
    return OutsideModel(name=name, input_columns=[str(c) for c in columns], classes=list(estimator.classes_),
                        probabilities=estimator.predict_proba)


def load_outside_model(path: str | Path, trust_types: Sequence[str] = ()) -> OutsideModel:
    """Load a skops or ONNX model file (module docstring); InputError for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"The model file '{path}' does not exist", "Give the path of a .skops or .onnx file")
    head = _refuse_pickle(path)
    if path.suffix.lower() in SKOPS_SUFFIXES or head == _ZIP_MAGIC:
        return _load_skops(path, list(trust_types))
    if path.suffix.lower() in ONNX_SUFFIXES:
        return _load_onnx(path)
    raise InputError(f"'{path.name}' is neither a skops nor an ONNX model file",
                     "Save a scikit-learn model with skops (.skops) or export it to ONNX (.onnx)")


def _refuse_pickle(path: Path) -> bytes:
    """The file's first bytes; InputError for a pickle (by its bytes, whatever its name) or a
    file named as a pickle or joblib file (a compressed joblib file has no pickle bytes)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if is_pickle(head) or path.suffix.lower() in _PICKLE_SUFFIXES:
        raise InputError(f"'{path.name}' is a pickle (or joblib) file, which Equiscope never loads: unpickling runs "
                         "any code the file contains",
                         "Save the model with skops (skops.io.dump) or export it to ONNX")
    return head


def is_pickle(head: bytes) -> bool:
    """Pickle protocols 2-5 start with the PROTO opcode 0x80 and the protocol number."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def skops_untrusted_types(path: str | Path) -> list[str]:
    """The types a skops file would build that skops does not trust by default (read from the
    archive's schema, nothing loaded): what a reviewer must accept by name. InputError for a
    file that is no skops archive."""
    path = Path(path)
    _refuse_pickle(path)
    try:
        import skops.io as sio  # optional, as in _load_skops
    except ImportError:
        raise InputError("Reading a skops model needs the 'skops' package, which is not installed",
                         "Install it (pip install skops), or export the model to ONNX") from None
    try:
        return [str(t) for t in sio.get_untrusted_types(file=path)]
    except Exception as error:  # not a skops archive, or a damaged one
        raise InputError(f"'{path.name}' cannot be read as a skops file ({error})",
                         "Save the model again with skops.io.dump") from None


def _load_skops(path: Path, trust_types: list[str]) -> OutsideModel:
    # Imported here: skops is optional, and only a skops file needs it.
    try:
        import skops.io as sio
    except ImportError:
        raise InputError("Reading a skops model needs the 'skops' package, which is not installed",
                         "Install it (pip install skops), or export the model to ONNX") from None
    untrusted = skops_untrusted_types(path)
    refused = [t for t in untrusted if t not in set(trust_types)]
    if refused:
        raise InputError(f"The model file '{path.name}' uses types that are not trusted by default: "
                         f"{', '.join(refused)}",
                         f"Check them, then accept them by name with --trust-types {','.join(refused)}")
    estimator = sio.load(path, trusted=untrusted)
    return from_estimator(estimator, path.stem)


def _load_onnx(path: Path) -> OutsideModel:
    # Imported here: onnxruntime is optional, and only an ONNX file needs it.
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("Reading an ONNX model needs the 'onnxruntime' package, which is not installed",
                         "Install it (pip install onnxruntime), or save a scikit-learn model with skops") from None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise InputError(f"'{path.name}' cannot be read as an ONNX model ({str(error).splitlines()[0][:200]})",
                         "Export the model to ONNX again") from None
    inputs = session.get_inputs()
    metadata = session.get_modelmeta().custom_metadata_map
    if len(inputs) == 1 and "feature_names" in metadata:
        columns = [c.strip() for c in metadata["feature_names"].split(",") if c.strip()]
        width, dtype = _width(inputs[0]), _numpy_type(inputs[0].type)
        if width is not None and width != len(columns):
            raise InputError(f"The ONNX model '{path.stem}' takes {width} values per row, but its metadata "
                             f"'feature_names' names {len(columns)} columns ({', '.join(columns[:8])})",
                             "Export it again with 'feature_names' listing its input's columns in order")

        def feed(rows: pd.DataFrame) -> dict:
            return {inputs[0].name: rows[columns].to_numpy(dtype=dtype)}
    elif len(inputs) > 1 or _width(inputs[0]) == 1:
        wide = [f"'{i.name}' ({_width(i)} values)" for i in inputs if _width(i) not in (1, None)]
        if wide:
            raise InputError(f"The ONNX model '{path.stem}' has several inputs, and not one value per row in "
                             f"{', '.join(wide[:8])}, so they cannot be matched with the table's columns",
                             "Export it with one input of shape (rows, 1) per column, named after the column")
        columns = [i.name for i in inputs]
        kinds = {i.name: i.type for i in inputs}

        def feed(rows: pd.DataFrame) -> dict:
            return {c: _onnx_column(rows[c], kinds[c]) for c in columns}
    else:
        width = _width(inputs[0]) or "unknown"
        raise InputError(f"The ONNX model '{path.stem}' takes one unnamed input of width {width}, so its columns "
                         "cannot be matched with the table's",
                         "Export it with one input per column (named after the columns), or set its metadata "
                         "'feature_names' to the columns in order")
    classes = [c.strip() for c in metadata.get("classes", "0,1").split(",")]
    output = _probability_output(session)

    def probabilities(rows: pd.DataFrame) -> np.ndarray:
        result = session.run([output], feed(rows))[0]
        if isinstance(result, list):  # skl2onnx's ZipMap: one {class: probability} per row
            return np.asarray([[row[key] for key in sorted(row)] for row in result], dtype=np.float64)
        result = np.asarray(result, dtype=np.float64)
        if result.ndim == 1 or (result.ndim == 2 and result.shape[1] == 1):
            # one probability per row (a Sigmoid output): that of the second class, as scikit-learn orders them
            positive = result.reshape(-1)
            return np.column_stack([1.0 - positive, positive])
        return result

    notes = [] if "classes" in metadata else [f"The ONNX model '{path.stem}' names no classes; its second "
                                              "probability column is read as the positive label's."]
    return OutsideModel(name=path.stem, input_columns=columns, classes=classes, probabilities=probabilities,
                        notes=notes)


def _probability_output(session) -> str:
    """The output holding class probabilities: skl2onnx names it "probabilities" or
    "output_probability"; otherwise the last output."""
    names = [o.name for o in session.get_outputs()]
    for wanted in ("probabilities", "output_probability"):
        if wanted in names:
            return wanted
    return names[-1]


def _width(node) -> int | None:
    """The number of values per row of an ONNX input (its last dimension), None where symbolic."""
    shape = list(node.shape or [])
    return shape[-1] if len(shape) >= 2 and isinstance(shape[-1], int) else None


def _numpy_type(onnx_type: str) -> type:
    """The numpy element type of an ONNX tensor type such as 'tensor(float)'."""
    if "string" in onnx_type:
        return object
    return {"tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32}.get(onnx_type,
                                                                                                    np.float32)


def _onnx_column(series: pd.Series, onnx_type: str) -> np.ndarray:
    """One raw column as an ONNX input of shape (n, 1) and the input's element type."""
    dtype = _numpy_type(onnx_type)
    if dtype is object:
        return series.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return series.to_numpy(dtype=dtype).reshape(-1, 1)


class OnStudy:
    """An outside model placed on a study, called as the audit and the explanations call
    Equiscope's own models: `predict_proba` on the study's encoded matrix, `embed` (None: it has
    no representation), `save` (a copy of its file), and the facts of a model entry.

    A row of the study's table is answered from its raw values, exactly as the model reads it
    (the rows are matched by their encoding; a test row, a validation row). A row that is not in
    the table (LIME's perturbations, attribute flips) is decoded to raw columns by the fitted
    encoder's inverse first (numbers back to numbers where the table had numbers): exact but for
    a numeric value clipped at CLIP standard deviations or a rare category the encoder pools."""

    pretraining = None
    strategy = UPLOADED
    n_trainable_params = None
    calibration = None

    def __init__(self, model: OutsideModel, study: Study, path: str | Path | None = None) -> None:
        self.model, self.path = model, None if path is None else Path(path)
        self.name = model.name
        self.encoder = study.encoder
        self.positive_label = study.spec.positive_label
        frame = study.data.frame
        self.numeric = [c for c in model.input_columns if c in frame and pd.api.types.is_numeric_dtype(frame[c])]
        self.decodable = all(c in self.encoder.columns_ for c in model.input_columns)
        scores = model.predict_proba(frame, positive_label=self.positive_label)  # InputError for missing columns
        X = np.ascontiguousarray(study.X)
        self._known = {X[i].tobytes(): float(scores[i]) for i in range(len(X) - 1, -1, -1)}  # first row wins

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        known = [self._known.get(row.tobytes()) for row in X]
        missing = [i for i, score in enumerate(known) if score is None]
        if missing:
            if not self.decodable:
                unreadable = [c for c in self.model.input_columns if c not in self.encoder.columns_]
                raise InputError(f"The model '{self.name}' reads columns the explanations cannot vary: "
                                 f"{', '.join(unreadable[:8])}",
                                 "These columns are not among the study's features (personal data, identifiers); "
                                 "explain a model that reads the study's features only")
            rows = self.encoder.inverse_transform(X[missing])
            for column in self.numeric:  # a numeric column the encoder kept as categories comes back as text
                rows[column] = pd.to_numeric(rows[column], errors="coerce")
            for i, score in zip(missing, self.model.predict_proba(rows, positive_label=self.positive_label)):
                known[i] = float(score)
        return np.asarray(known, dtype=np.float64)

    def embed(self, X: np.ndarray) -> None:
        """No representation: the audit's representation parts do not apply."""
        return None

    def save(self, folder: str | Path) -> Path:
        """A copy of the model file in `folder` (the run's models/NAME/), for Explain to reopen."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.path is not None:
            (folder / self.path.name).write_bytes(self.path.read_bytes())
        return folder
