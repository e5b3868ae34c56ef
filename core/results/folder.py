"""The run folder: the one owner of what an audit run writes and of how it is read back.

    <run>/report.json                      the report (REPORT)
    <run>/predictions.parquet              test rows: row_id, sensitive columns, y_true, score__NAME, pred__NAME
                                           (replicate 0), then score__NAME__rR, pred__NAME__rR per replicate R >= 1
    <run>/validation_predictions.parquet   the same for the validation rows (the threshold what-ifs fit on them)
    <run>/embeddings.parquet               per model with a map: row_id, model, umap_x, umap_y
    <run>/timings.json                     seconds per stage (never in report.json: it would not be reproducible)
    <run>/report.html, report_error.log    the stakeholder report, or why it could not be written
    <run>/models/NAME/, encoder/, checkpoints/, study.json (core.data.study)

The contract is docs/interfaces.md. Writers (core.run.pipeline) and readers (core.results, core.explain,
the dashboard) name files and columns only through this module, and read report.json through
`ReportView` / `ModelView`: each optional part of the report is looked up here, once, and an absent
part reads as {} / [] / None rather than raising.
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.errors import InputError
from core.files import atomic_write
from core.vocabulary import (DECISION_THRESHOLD, INTERSECTION, SUPERVISED, TRAINING_STUDY, is_intersection,
                             split_partition)

REPORT = "report.json"
PREDICTIONS = "predictions.parquet"
VALIDATION_PREDICTIONS = "validation_predictions.parquet"
EMBEDDINGS = "embeddings.parquet"
TIMINGS = "timings.json"
HTML_REPORT = "report.html"
REPORT_ERROR_LOG = "report_error.log"
MODELS = "models"
ENCODER = "encoder"
CHECKPOINTS = "checkpoints"

SCORE_PREFIX = "score__"
PRED_PREFIX = "pred__"
REPLICATE_SUFFIX = "__r"  # score__NAME__r2: replicate 2's column (replicate 0's has no suffix)
_REPLICATE_COLUMN = re.compile(re.escape(REPLICATE_SUFFIX) + r"[1-9][0-9]*$")
EMBEDDING_COLUMNS = ("row_id", "model", "umap_x", "umap_y")


# ----------------------------------------------------------------------------- columns
def _replicate(column: str, replicate: int) -> str:
    return column if replicate == 0 else f"{column}{REPLICATE_SUFFIX}{int(replicate)}"


def score_column(model: str, replicate: int = 0) -> str:
    """The predictions column holding `model`'s probability of the positive label; replicate 0
    (the model shown) has the plain name, replicate r >= 1 the suffix `__r{r}`."""
    return _replicate(SCORE_PREFIX + model, replicate)


def pred_column(model: str, replicate: int = 0) -> str:
    """The predictions column holding `model`'s 0/1 decision (replicates as in `score_column`)."""
    return _replicate(PRED_PREFIX + model, replicate)


def is_replicate_column(column: str) -> bool:
    """True for a column of a training replicate r >= 1 (`score__NAME__r2`), which is no model."""
    return bool(_REPLICATE_COLUMN.search(column))


def models_in_columns(columns: Iterable[str]) -> list[str]:
    """The models that have scores in a predictions frame, in column order (replicate columns
    are the same models trained again, not models of their own)."""
    return [c[len(SCORE_PREFIX):] for c in columns if c.startswith(SCORE_PREFIX) and not is_replicate_column(c)]


def replicate_columns(model: str, columns: Iterable[str]) -> list[tuple[str, str]]:
    """(score, decision) columns of every stored replicate of `model`, replicate 0 first."""
    names = set(columns)
    found, replicate = [], 0
    while score_column(model, replicate) in names:
        found.append((score_column(model, replicate), pred_column(model, replicate)))
        replicate += 1
    return found


def model_dir(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / MODELS / name


def partition_labels(frame: pd.DataFrame, partition: str) -> np.ndarray:
    """Each row's group in `partition`: the attribute's value, or the values joined with the
    intersection separator in the key's attribute order (the audit's naming)."""
    attributes = split_partition(partition)
    missing = [a for a in attributes if a not in frame.columns]
    if missing:
        raise InputError(f"The predictions have no column '{missing[0]}'", "Choose another attribute")
    labels = frame[attributes[0]].astype(str)
    for attribute in attributes[1:]:
        labels = labels + INTERSECTION + frame[attribute].astype(str)
    return labels.to_numpy(dtype=object)


# ----------------------------------------------------------------------------- writing
def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def decisions(scores: np.ndarray) -> np.ndarray:
    """The audit's 0/1 decisions: positive when the probability reaches DECISION_THRESHOLD."""
    return (scores >= DECISION_THRESHOLD).astype(np.int64)


def drawn_decisions(scores: np.ndarray, seed: int, replicate: int, model: str) -> np.ndarray:
    """A randomized classifier's 0/1 decisions: row i is positive with probability scores[i],

        decision_i = 1[u_i < scores_i],  u ~ Uniform(0, 1) from SeedSequence([seed, replicate, crc32(model)])

    so the same audit draws the same decisions. fairlearn's ExponentiatedGradient and
    ThresholdOptimizer decide this way (their `predict` draws with a random_state): their
    constraint holds for the drawn decisions, and a threshold at 0.5 on their probability of a
    positive decision would undo it (on Adult it kept an equalized-odds gap of 0.165 where the
    randomized rule had 0.016)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(replicate), zlib.crc32(model.encode())]))
    return (rng.random(len(scores)) < np.asarray(scores, dtype=np.float64)).astype(np.int64)


def write_predictions(path: Path, row_ids: np.ndarray, groups: pd.DataFrame, y: np.ndarray,
                      scores: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray] | None = None,
                      replicates: Mapping[str, Sequence[np.ndarray]] | None = None) -> None:
    """The predictions contract: row_id, each sensitive column, y_true, then score__NAME and
    pred__NAME per model (`preds` default: `decisions(score)`), then for each model the scores
    and decisions of its replicates r >= 1 (`replicates[NAME]`: their scores, replicate 1 first)."""
    columns: dict[str, Any] = {"row_id": row_ids.astype(np.int64)}
    columns.update({attribute: groups[attribute].astype(str).to_numpy() for attribute in groups.columns})
    columns["y_true"] = y.astype(np.int64)
    for name, score in scores.items():
        columns[score_column(name)] = score.astype(np.float64)
        columns[pred_column(name)] = (preds[name] if preds is not None else decisions(score)).astype(np.int64)
    for name, later in (replicates or {}).items():
        for replicate, score in enumerate(later, start=1):
            columns[score_column(name, replicate)] = score.astype(np.float64)
            columns[pred_column(name, replicate)] = decisions(score)
    atomic_write(path, parquet_bytes(pd.DataFrame(columns)))


def embedding_frame(row_ids: np.ndarray, model: str, coords: np.ndarray) -> pd.DataFrame:
    """One model's rows of embeddings.parquet (float32 coordinates)."""
    return pd.DataFrame({"row_id": row_ids, "model": model, "umap_x": coords[:, 0].astype(np.float32),
                         "umap_y": coords[:, 1].astype(np.float32)})


def write_embeddings(run_dir: Path, frames: Sequence[pd.DataFrame]) -> None:
    """embeddings.parquet from the models' `embedding_frame`s; nothing when no model has a map."""
    if frames:
        atomic_write(Path(run_dir) / EMBEDDINGS, parquet_bytes(pd.concat(frames, ignore_index=True)))


def write_report(run_dir: Path, report: Mapping) -> None:
    atomic_write(Path(run_dir) / REPORT, json.dumps(report, indent=2, sort_keys=False))


def write_timings(run_dir: Path, timings: Mapping[str, Any]) -> None:
    """Stage seconds (rounded to ms), and beside them the training's "work" record (what each
    task computed: core.run.training), which the benchmark turns into an arithmetic floor."""
    atomic_write(Path(run_dir) / TIMINGS, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                                      for k, v in timings.items()}, indent=2))


# ----------------------------------------------------------------------------- reading
def read_report(run_dir: Path) -> dict:
    """report.json as a dict (FileNotFoundError / ValueError / OSError as they come)."""
    return json.loads((Path(run_dir) / REPORT).read_text(encoding="utf-8"))


def read_predictions(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(run_dir) / PREDICTIONS)


def _optional_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    return pd.read_parquet(path, columns=columns) if path.is_file() else None


def read_timings(run_dir: Path) -> dict:
    path = Path(run_dir) / TIMINGS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load_embeddings(run_dir: Path, attribute: str | None) -> pd.DataFrame | None:
    """embeddings.parquet of a run joined with the group label of `attribute` from predictions.parquet."""
    frame = _optional_parquet(Path(run_dir) / EMBEDDINGS, list(EMBEDDING_COLUMNS))
    if frame is None:
        return None
    predictions = Path(run_dir) / PREDICTIONS
    if attribute and predictions.is_file():
        if attribute in pq.read_schema(predictions).names:
            labels = pd.read_parquet(predictions, columns=["row_id", attribute])
            frame = frame.merge(labels.drop_duplicates("row_id"), on="row_id", how="left")
            frame[attribute] = frame[attribute].astype(str)
    return frame


@dataclass(frozen=True)
class RunResults:
    """A finished run's artifacts. Treat as read-only: the dashboard shares one copy."""

    run_dir: Path
    report: dict
    predictions: pd.DataFrame
    validation: pd.DataFrame | None
    embeddings: pd.DataFrame | None
    timings: dict

    @property
    def view(self) -> ReportView:
        return ReportView(self.report)

    @property
    def models(self) -> list[str]:
        return self.view.model_names

    @property
    def sensitive(self) -> list[str]:
        return self.view.sensitive

    @property
    def partitions(self) -> list[str]:
        return self.view.partitions

    def model(self, name: str) -> dict:
        return dict(self.view.model(name).entry)


def load_results(run_dir: Path | str) -> RunResults:
    """Read a run's artifacts; InputError if the run has no readable report (not finished, or removed)."""
    run_dir = Path(run_dir)
    try:
        report = read_report(run_dir)
        predictions = read_predictions(run_dir)
    except FileNotFoundError as error:
        raise InputError(f"The run folder '{run_dir}' has no {Path(error.filename).name}",
                         "Choose a run that finished, or run the audit again") from None
    except (ValueError, OSError) as error:
        raise InputError(f"The results in '{run_dir}' cannot be read ({error})",
                         "Run the audit again") from None
    return RunResults(run_dir=run_dir, report=report, predictions=predictions,
                      validation=_optional_parquet(run_dir / VALIDATION_PREDICTIONS),
                      embeddings=_optional_parquet(run_dir / EMBEDDINGS), timings=read_timings(run_dir))


# ----------------------------------------------------------------------------- report.json, typed
def section(mapping: Mapping | None, key: str) -> dict:
    """`mapping[key]` when it is there and not empty, else {}: the one place an optional part
    of report.json is looked up."""
    return (mapping or {}).get(key) or {}


def listed(mapping: Mapping | None, key: str) -> list:
    return list((mapping or {}).get(key) or [])


def _int_or(value: Any, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


@dataclass(frozen=True)
class ModelView:
    """One entry of report.json's `models`, with its optional parts as {} / [] / None."""

    entry: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.entry.get("name")

    @property
    def pretraining(self) -> str | None:
        return self.entry.get("pretraining")

    @property
    def strategy(self) -> str | None:
        return self.entry.get("strategy")

    @property
    def n_trainable_params(self) -> int | None:
        return self.entry.get("n_trainable_params")

    @property
    def is_supervised(self) -> bool:
        return self.name == SUPERVISED

    @property
    def overall(self) -> dict:
        return section(self.entry, "overall")

    @property
    def overall_ci(self) -> dict:
        return section(self.overall, "ci")

    @property
    def group_partitions(self) -> list[str]:
        return list(section(self.entry, "groups"))

    @property
    def gap_partitions(self) -> list[str]:
        return list(section(self.entry, "gaps"))

    def groups(self, partition: str) -> list[dict]:
        """The group rows of `partition` in the report's (natural) order; [] when absent."""
        return listed(section(self.entry, "groups"), partition)

    def group(self, partition: str, group: str | None) -> dict | None:
        return next((row for row in self.groups(partition) if row.get("group") == group), None)

    def gaps(self, partition: str) -> dict:
        return section(section(self.entry, "gaps"), partition)

    def gap_ci(self, partition: str, gap: str) -> list | None:
        return section(self.gaps(partition), "ci").get(gap)

    def between(self, partition: str, gap: str) -> dict:
        """Which two groups a gap lies between (`max_group`, `min_group`, `metric`, `pair_ci`)."""
        return section(section(self.gaps(partition), "between"), gap)

    @property
    def replicates(self) -> list[dict]:
        """Each training replicate's `seed`, `overall` and `gaps` (replicate 0 first); [] in runs
        made before replicates."""
        return listed(self.entry, "replicates")

    @property
    def aggregate(self) -> dict:
        """Over the replicates: `overall[metric]` and `gaps[partition][gap]`, each with mean,
        sd, min, max (and the gaps' interval `ci`); {} in runs made before replicates."""
        return section(self.entry, "aggregate")

    def compared(self, partition: str, gap: str) -> dict | None:
        """The paired comparison of this model's gap with the supervised baseline's, or None."""
        return section(section(self.entry, "compared_with_supervised"), partition).get(gap)

    @property
    def representation(self) -> dict:
        return section(self.entry, "representation")

    @property
    def leakage(self) -> dict:
        """Attribute -> the linear probe's reading of it from the representation."""
        return section(self.representation, "leakage")

    def probe(self, attribute: str) -> dict:
        return section(self.leakage, attribute)

    def representation_of(self, key: str, attribute: str) -> dict:
        """A per-attribute representation measure (`cka_with_supervised`, `knn_accuracy`)."""
        return section(section(self.representation, key), attribute)


@dataclass(frozen=True)
class ReportView:
    """report.json read the same way everywhere: the pages, the stakeholder report, the summary."""

    report: Mapping[str, Any]

    @cached_property
    def models(self) -> list[ModelView]:
        return [ModelView(entry) for entry in listed(self.report, "models")]

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def first_model(self) -> ModelView | None:
        return self.models[0] if self.models else None

    def model(self, name: str) -> ModelView:
        for model in self.models:
            if model.name == name:
                return model
        raise InputError(f"No model '{name}' in this run", f"Models: {', '.join(self.model_names)}")

    @property
    def ssl_models(self) -> list[ModelView]:
        return [m for m in self.models if not m.is_supervised]

    @property
    def study(self) -> dict:
        return section(self.report, "study")

    @property
    def config(self) -> dict:
        return section(self.report, "config")

    @property
    def bootstrap(self) -> dict:
        return section(self.report, "bootstrap")

    @property
    def pretraining(self) -> dict:
        return section(self.report, "pretraining")

    @property
    def versions(self) -> dict:
        return section(self.report, "versions")

    @property
    def withheld_columns(self) -> list:
        return listed(self.report, "withheld_columns")

    @property
    def notes(self) -> list:
        return listed(self.report, "notes")

    @property
    def warnings(self) -> list:
        return listed(self.report, "warnings")

    @property
    def proxies(self) -> list:
        return listed(self.report, "proxies")

    @property
    def sensitive(self) -> list[str]:
        """The single sensitive attributes in study order (from the first model's gaps when the
        study does not list them)."""
        names = self.study.get("sensitive")
        if names:
            return list(names)
        first = self.first_model
        return [key for key in (first.gap_partitions if first else []) if not is_intersection(key)]

    @property
    def intersections(self) -> list[str]:
        first = self.first_model
        return [key for key in (first.gap_partitions if first else []) if is_intersection(key)]

    @property
    def partitions(self) -> list[str]:
        """Partition keys in report order: each attribute, then the intersections."""
        first = self.first_model
        return first.group_partitions if first else list(self.study.get("sensitive") or [])

    @property
    def replicates(self) -> int:
        """Independent trainings of every model; runs made before replicates had one."""
        return max(1, _int_or(self.report.get("replicates"), 1))

    @property
    def one_training_run(self) -> bool:
        """True when each model was trained once: its verdicts do not cover training randomness
        (a re-run with another seed may change them). Never for uploaded models: none was trained."""
        return self.replicates == 1 and self.trained

    @property
    def kind(self) -> str:
        """What was audited: TRAINING_STUDY (models Equiscope trained; also runs made before the
        key), PREDICTIONS_STUDY (uploaded predictions) or "outside-model" (a model file alone)."""
        return self.study.get("kind") or TRAINING_STUDY

    @property
    def trained(self) -> bool:
        """True when Equiscope trained the run's models (representations, pretraining, replicates)."""
        return self.kind == TRAINING_STUDY

    @property
    def positive_label(self) -> Any:
        return self.study.get("positive_label")

    @property
    def negative_label(self) -> str:
        """The table's word for the other outcome ("No"); reports written before the key: "not <positive>"."""
        return str(self.study.get("negative_label") or f"not {self.positive_label}")

    @property
    def label_fraction(self) -> float:
        return float(self.study.get("label_fraction", self.config.get("label_fraction", 1.0)))

    @property
    def seed(self) -> int:
        return _int_or(self.config.get("seed"), 0)

    @property
    def min_group_size(self) -> int:
        return _int_or(self.config.get("min_group_size"), 30)

    def n_boot(self, default: int = 0) -> int:
        return _int_or(self.bootstrap.get("n_boot"), default)

    @property
    def confidence(self) -> float | None:
        """The intervals' confidence level (the bootstrap's, else the config's)."""
        return self.bootstrap.get("confidence") or self.config.get("confidence")
