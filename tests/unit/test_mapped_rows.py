"""core.data.mapped: the encoded matrix written chunk by chunk equals the encoder's own output,
and a worker task handed `Mapped` rows (alone or as a dataclass field) gets exactly those rows,
while what travels to the worker is a path and a row list, not the rows."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from core.data.features import TabularEncoder
from core.data.mapped import Mapped, open_mapped, resolve, write_array, write_encoded, write_rows
from core.run.parallel import Workers


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, n)
    income[rng.random(n) < 0.1] = np.nan  # a missing-value indicator column too
    return pd.DataFrame({"income": income, "age": rng.integers(18, 90, n).astype(float),
                         "job": rng.choice(["clerk", "nurse", "driver", "chef"], n)})


def test_the_chunked_matrix_equals_the_encoders_transform(tmp_path):
    train, later = table(500, 0), table(103, 1)
    later.loc[[3, 50], "job"] = "astronaut"  # unseen at fit time
    encoder = TabularEncoder(numeric=["income", "age"], categorical=["job"]).fit(train)
    mapped = write_encoded(encoder, later, tmp_path / "encoded.npy", chunk_rows=7)  # 103 = 14 x 7 + 5
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(np.asarray(mapped), encoder.transform(later))
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, then renamed


def test_a_write_that_fails_half_way_leaves_no_file_behind(tmp_path):
    """An audit killed or failing while encoding must not leave a half-written matrix that a
    later read would take for the whole one, nor the temporary file."""
    train = table(200, 0)
    encoder = TabularEncoder(numeric=["income", "age"], categorical=["job"]).fit(train)

    class FailsOnThirdChunk:
        n_features_out_, calls = encoder.n_features_out_, 0

        def transform(self, frame: pd.DataFrame) -> np.ndarray:
            self.calls += 1
            if self.calls == 3:
                raise MemoryError("out of memory in the third chunk")
            return encoder.transform(frame)

    failing = FailsOnThirdChunk()
    with pytest.raises(MemoryError):
        write_encoded(failing, train, tmp_path / "encoded.npy", chunk_rows=64)
    assert failing.calls == 3 and list(tmp_path.iterdir()) == []


@dataclass
class Inputs:
    name: str
    embedding: np.ndarray | Mapped
    other: np.ndarray | Mapped | None


def take_rows(rows: np.ndarray, inputs: Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """What a task sees: writeable arrays in place of the handles."""
    return np.array(rows), np.array(inputs.embedding), inputs.other, bool(rows.flags.writeable
                                                                           and inputs.embedding.flags.writeable)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_given_handles_receives_those_rows(tmp_path, workers):
    X = np.random.default_rng(0).normal(size=(2_000, 12)).astype(np.float32)
    E = np.random.default_rng(1).normal(size=(2_000, 4)).astype(np.float32)
    rows = np.array([5, 1_999, 0, 5, 731])
    handle, embedding = write_rows(X, rows, tmp_path / "rows.npy"), write_array(tmp_path / "E.npy", E)
    with Workers(workers) as pool:
        got_rows, got_embedding, other, writeable = pool.gather(
            [pool.submit(take_rows, handle, Inputs("m", embedding, None))])[0]
    np.testing.assert_array_equal(got_rows, X[rows])
    np.testing.assert_array_equal(got_embedding, E)
    assert other is None and writeable


def test_a_handle_travels_as_a_path_not_as_the_rows(tmp_path):
    X = np.zeros((20_000, 50), dtype=np.float32)
    handle = write_array(tmp_path / "X.npy", X)
    assert len(pickle.dumps(handle)) < 500 < len(pickle.dumps(X)) / 1_000
    assert open_mapped(handle.path).shape == (20_000, 50)


def test_resolve_leaves_everything_else_as_it_is():
    array = np.ones(3)
    inputs = Inputs("m", array, None)
    assert resolve(array) is array and resolve(inputs) is inputs and resolve("text") == "text"


def test_rows_saved_apart_read_as_a_private_memory_map(tmp_path):
    """A whole-file handle is what a training task gets (Study.rows): a memory map of the file,
    whose writes stay in the task's process, and the file keeps the rows asked for."""
    X = np.random.default_rng(2).normal(size=(1_000, 6)).astype(np.float32)
    rows = np.random.default_rng(3).permutation(1_000)[:333]
    handle = write_rows(X, rows, tmp_path / "rows.npy", chunk_rows=50)
    view = handle.read()
    assert isinstance(view.base, np.memmap) and view.flags.writeable
    np.testing.assert_array_equal(view, X[rows])
    view[0] = 99.0  # copy-on-write: the file is unchanged
    np.testing.assert_array_equal(open_mapped(handle.path)[0], X[rows[0]])


def test_a_mapped_study_hands_out_one_file_per_row_set(tmp_path):
    from core.data.source import open_source
    from core.data.spec import DatasetSpec
    from core.data.study import Study

    study = Study.create(open_source("german"), DatasetSpec(target="credit", positive_label="good", sensitive=("sex",)))
    in_memory = study.X.copy()
    study.map_to_disk(tmp_path)
    np.testing.assert_array_equal(np.asarray(study.X), in_memory)
    first, again = study.rows(study.split.test), study.rows(study.split.test)
    assert first.path == again.path and len(list(tmp_path.glob("rows-*.npy"))) == 1
    np.testing.assert_array_equal(first.read(), in_memory[study.split.test])
    assert study.rows(study.split.validation).path != first.path
    relabelled = study.with_label_fraction(0.5)
    assert relabelled.matrix_path == study.matrix_path
    np.testing.assert_array_equal(relabelled.rows(relabelled.split.labelled_train).read(),
                                  in_memory[relabelled.split.labelled_train])


def test_once_mapped_the_table_in_memory_keeps_only_what_is_not_encoded(tmp_path):
    """The matrix stands in for the feature columns: the study's table keeps the target, the
    columns that are not features and the columns asked for; the caller's own DataSource is
    left whole (a dashboard may hold it)."""
    from core.data.source import open_source
    from core.data.spec import DatasetSpec
    from core.data.study import Study

    source = open_source("german")
    columns = list(source.frame.columns)
    study = Study.create(source, DatasetSpec(target="credit", positive_label="good", sensitive=("sex", "age")))
    features = set(study.data.features)
    assert {"duration", "purpose"} <= features
    study.map_to_disk(tmp_path, keep_columns=["purpose"])
    kept = set(study.data.frame.columns)
    assert "credit" in kept and kept & features == {"purpose"}
    assert study.source.frame is study.data.frame and len(study.data.frame) == len(source.frame)
    assert list(source.frame.columns) == columns  # the caller's table is untouched
    whole = Study.create(source, DatasetSpec(target="credit", positive_label="good", sensitive=("sex",)))
    (tmp_path / "outside").mkdir()
    whole.map_to_disk(tmp_path / "outside", keep_columns=None)  # an outside model reads every raw column
    assert list(whole.data.frame.columns) == columns
