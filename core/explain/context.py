"""An audit run opened for explanations: its study, models, predictions, and the bridge
between the raw, human-readable columns and the matrix the models read.

LIME perturbs rows in a plain float matrix `Z` (one column per original feature column):
numeric columns hold their raw value, categorical columns a label code, i.e. the index of the
value in the fitted encoder's category list for that column (`TabularEncoder.categories_`,
which already holds "(missing)" and "(other)" where training had them). A value the encoder
would send to "(other)" gets that code; a value it has never seen and cannot bucket gets an
extra code "(unseen)", which the encoder turns into an all-zero block, as it does for the
raw value. Missing numerics are shown as missing but given to LIME as the encoder's training
median (LIME cannot sample NaN); explanations note it.

    Z --RawCodec.encode (the fitted TabularEncoder's state)--> X --model--> p
    (RawCodec.to_frame decodes Z to raw columns for display and for the equality test)

Personal-data columns (`PreparedData.withheld_columns`) are never explained or shown; if a
model ever read one, the codec holds it at the explained row's own value.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.data.features import MISSING, OTHER, TabularEncoder
from core.data.profile import negative_label
from core.data.study import STUDY_FILE, Study
from core.learning.classical import ClassicalModel
from core.learning.finetune.classifier import TrainedClassifier
from core.learning.outside import OnStudy, load_outside_model
from core.mitigation.fairlearn_models import MitigatedModel
from core.results import folder
from core.vocabulary import CLASSICAL, MITIGATION, PREDICTIONS_STUDY, UPLOADED

UNSEEN = "(unseen)"
THRESHOLD = 0.5  # the audit's decision threshold: decision = probability >= 0.5


def as_text(series: pd.Series) -> pd.Series:
    """The encoder's view of a categorical value: str(value), missing as "(missing)"."""
    return series.astype(object).where(series.notna(), MISSING).map(str)


def display_value(value: object) -> object:
    """A raw value as JSON: numbers as int/float, missing as None, anything else as text."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else float(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


class RawCodec:
    """Raw feature columns <-> LIME's float matrix <-> the encoded matrix (module docstring)."""

    def __init__(self, encoder: TabularEncoder, withheld: list[str]) -> None:
        self.encoder = encoder
        self.fixed = [c for c in encoder.columns_ if c in set(withheld)]
        self.columns = [c for c in encoder.columns_ if c not in set(withheld)]
        self.is_numeric = np.array([encoder.kinds_[c] == "numeric" for c in self.columns])
        self.vocab: dict[str, np.ndarray] = {}
        for column in self.columns:
            if encoder.kinds_[column] != "numeric":
                categories = list(encoder.categories_[column])
                self.vocab[column] = np.asarray(categories + ([] if OTHER in categories else [UNSEEN]),
                                                dtype=object)

    def to_lime(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw rows -> LIME's matrix (n, len(columns)) float64: numerics (missing -> training
        median), categoricals as codes."""
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, column in enumerate(self.columns):
            if self.is_numeric[j]:
                values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                out[:, j] = np.where(np.isfinite(values), values, self.encoder.medians_[column])
            else:
                vocab = self.vocab[column]
                codes = pd.Categorical(as_text(frame[column]), categories=vocab).codes.astype(np.int64)
                fallback = int(np.flatnonzero(vocab == OTHER)[0]) if OTHER in vocab else len(vocab) - 1
                out[:, j] = np.where(codes >= 0, codes, fallback)
        return out

    def to_frame(self, Z: np.ndarray) -> pd.DataFrame:
        """LIME's matrix -> raw columns (categoricals decoded), one DataFrame, no row loop."""
        columns = {column: (Z[:, j] if self.is_numeric[j] else self.vocab[column][Z[:, j].astype(np.int64)])
                   for j, column in enumerate(self.columns)}
        return pd.DataFrame(columns, copy=False)

    def encode(self, Z: np.ndarray, base_row: np.ndarray | None = None) -> np.ndarray:
        """LIME's matrix -> the model's input with the fitted encoder's state; equal to
        `encoder.transform(to_frame(Z))` (tested), without a round trip through text.

        numeric block:  the encoder's own `encode_numeric_into` (value, missing and value indicators)
        categorical:    one-hot at the label code; the "(unseen)" code gives an all-zero block.
        Withheld columns a model reads (none, normally) are copied from `base_row`, the
        explained row's own encoding."""
        enc = self.encoder
        out = np.zeros((len(Z), enc.n_features_out_), dtype=np.float32)
        if self.fixed:
            if base_row is None:
                raise ValueError("encode() needs the explained row's encoding when columns are withheld")
            for column in self.fixed:
                out[:, enc.column_slices_[column]] = base_row[enc.column_slices_[column]]
        for j, column in enumerate(self.columns):
            if self.is_numeric[j]:
                enc.encode_numeric_into(out, column, Z[:, j].astype(np.float64))
            else:
                start = enc.column_slices_[column].start
                codes = Z[:, j].astype(np.int64)
                rows = np.flatnonzero(codes < len(enc.categories_[column]))
                out[rows, start + codes[rows]] = 1.0
        return out


@dataclass
class RunContext:
    """One audit run's folder, opened once: study, models (loaded on first use), predictions."""

    run_dir: Path
    study: Study
    report: dict
    predictions: pd.DataFrame  # indexed by row_id
    codec: RawCodec
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _models: dict = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def view(self) -> folder.ReportView:
        return folder.ReportView(self.report)

    @property
    def model_names(self) -> list[str]:
        return self.view.model_names

    @property
    def default_model(self) -> str:
        """The first self-supervised model in report.json (else the first model)."""
        ssl = [m.name for m in self.view.models if m.pretraining]
        names = ssl or self.model_names
        if not names:
            raise InputError(f"The run in '{self.run_dir}' has no models", "Run the audit again")
        return names[0]

    @property
    def sensitive(self) -> list[str]:
        return list(self.study.spec.sensitive)

    def group_names(self, attribute: str) -> list[str]:
        """Groups of a sensitive attribute in the report's order (natural: age bins by age),
        else largest first; groups the report does not list come last."""
        present = self.study.data.groups[attribute].astype(str)
        by_size = [str(g) for g in present.value_counts().index]
        for model in self.view.models:
            listed = [str(g["group"]) for g in model.groups(attribute)]
            if listed:
                return [g for g in listed if g in set(by_size)] + [g for g in by_size if g not in set(listed)]
        return by_size

    @property
    def positive_label(self) -> str:
        return str(self.study.spec.positive_label)

    @property
    def negative_label(self) -> str:
        """The other outcome in the table's own word ("No", not "not Yes"): the report's, else (a report
        written before the key) read from the study's own target column."""
        if self.view.study.get("negative_label"):
            return self.view.negative_label
        return negative_label(self.study.data.frame[self.study.spec.target], self.study.spec.positive_label)

    @property
    def withheld(self) -> list[str]:
        return list(self.study.data.withheld_columns)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """Every row's explained feature columns (raw values; personal data left out)."""
        return self.study.data.frame[self.codec.columns]

    @cached_property
    def test_rows(self) -> np.ndarray:
        return np.asarray(self.study.split.test, dtype=np.int64)

    @cached_property
    def train_rows(self) -> np.ndarray:
        return np.asarray(self.study.split.train, dtype=np.int64)

    def model(self, name: str | None = None):
        """The TrainedClassifier called `name` (default: `default_model`)."""
        name = name or self.default_model
        if name not in self.model_names:
            raise InputError(f"No model '{name}' in run '{self.run_dir}'",
                             f"Models are: {', '.join(self.model_names)}")
        with self.lock:
            if name not in self._models:
                self._models[name] = self._load_model(name)
            return self._models[name]

    def _load_model(self, name: str):
        """A trained model from its folder; an outside model from the copy of its file the audit
        kept in the same folder (core.run.uploaded), with the types its reviewer accepted."""
        directory = folder.model_dir(self.run_dir, name)
        if self.view.model(name).strategy == CLASSICAL:
            return ClassicalModel.load(directory)
        if self.view.model(name).strategy == MITIGATION:  # a fairlearn mitigation (core.mitigation)
            return MitigatedModel.load(directory)
        if self.view.model(name).strategy != UPLOADED:
            return TrainedClassifier.load(directory)
        files = sorted(directory.glob("*")) if directory.is_dir() else []
        if not files:
            raise InputError(f"The model '{name}' was audited from its predictions only: there is no model to ask",
                             "Explanations need the model itself; audit its model file (skops or ONNX) instead")
        trusted = list(self.view.config.get("trust_types") or [])
        return OnStudy(load_outside_model(files[0], trust_types=trusted), self.study)

    def check_row(self, row_id: int) -> int:
        """`row_id` as an int if it is a row of the study's table, else InputError."""
        n = len(self.study.data.frame)
        try:
            row = int(row_id)
        except (TypeError, ValueError):
            raise InputError(f"Row '{row_id}' is not a row number", f"Give a row id from 0 to {n - 1}") from None
        if not 0 <= row < n or str(row_id).strip() not in (str(row), f"{row}.0"):
            raise InputError(f"Row {row_id} is not in the study's table ({n:,} rows)",
                             f"Give a row id from 0 to {n - 1}; test rows are listed in {folder.PREDICTIONS}")
        return row

    def split_of(self, row: int) -> str:
        split = self.study.split
        for name in ("test", "validation", "train", "unlabelled"):
            if row in set(getattr(split, name).tolist()):
                return name
        return "unused"

    @cached_property
    def model_frame(self) -> pd.DataFrame:
        """Every row's model input columns (raw values; includes any withheld column a model
        reads, for encoding only: never shown)."""
        return self.study.data.frame[self.study.encoder.columns_]

    @cached_property
    def lime_matrix(self) -> np.ndarray:
        """Every row in LIME's matrix form (`RawCodec.to_lime`), computed once per run."""
        return self.codec.to_lime(self.frame)

    def probabilities(self, model_name: str, rows: np.ndarray) -> np.ndarray:
        """The model's probability of the positive label for rows of the table (cached per model)."""
        key = ("proba", model_name)
        if key not in self._cache:
            self._cache[key] = self.model(model_name).predict_proba(self.study.X)
        return self._cache[key][rows]

    def embeddings(self, model_name: str) -> np.ndarray:
        """The model's embedding of every row of the table (cached per model)."""
        key = ("embed", model_name)
        if key not in self._cache:
            embedded = self.model(model_name).embed(self.study.X)
            # A model without a representation (a classical baseline): nearest in the encoded features.
            self._cache[key] = np.asarray(self.study.X, dtype=np.float32) if embedded is None else embedded
        return self._cache[key]


def load_run(run_dir: str | Path) -> RunContext:
    """Open a finished audit run folder (InputError if it is missing or incomplete)."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise InputError(f"Run folder '{run_dir}' does not exist",
                         "Give the --out folder of 'equiscope audit' (or a dashboard run's folder)")
    if (run_dir / folder.REPORT).is_file() and not (run_dir / STUDY_FILE).exists():
        _refuse_predictions_only(run_dir)
    missing = [name for name in (STUDY_FILE, folder.REPORT, folder.PREDICTIONS) if not (run_dir / name).exists()]
    if missing:
        raise InputError(f"'{run_dir}' is not a finished audit run ({', '.join(missing)} missing)",
                         "Give the --out folder of a finished 'equiscope audit'")
    try:
        report = folder.read_report(run_dir)
    except (OSError, ValueError) as error:
        raise InputError(f"{folder.REPORT} in '{run_dir}' cannot be read ({error})", "Run the audit again") from None
    study = Study.load(run_dir)
    predictions = folder.read_predictions(run_dir).set_index("row_id", drop=False)
    codec = RawCodec(study.encoder, study.data.withheld_columns)
    return RunContext(run_dir=run_dir, study=study, report=report, predictions=predictions, codec=codec)


def _refuse_predictions_only(run_dir: Path) -> None:
    """A run of uploaded predictions has no model to ask: say so rather than "not finished"."""
    try:
        kind = folder.ReportView(folder.read_report(run_dir)).kind
    except (OSError, ValueError):
        return
    if kind == PREDICTIONS_STUDY:
        raise InputError(f"The run in '{run_dir}' audited uploaded predictions only: there is no model to explain",
                         "Explanations need the model itself; audit its model file (--model, skops or ONNX)")
