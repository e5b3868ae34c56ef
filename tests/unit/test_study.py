"""A study saves to JSON and reloads to exactly the same rows, encoder and split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import DatasetSpec, open_source
from core.errors import InputError
from core.data.study import Study


def write_table(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], size=n),
                  "c": rng.choice(["p", "q", "r"], size=n), "y": rng.choice([0, 1], size=n)}).to_csv(path, index=False)


def test_encoder_is_fitted_on_pretraining_rows_only(tmp_path):
    write_table(tmp_path / "t.csv")
    study = Study.create(open_source(tmp_path / "t.csv"), DatasetSpec("y", ("g",)))
    rows = study.split.pretrain
    assert study.encoder.means_["x"] == pytest.approx(study.data.frame["x"].iloc[rows].mean())
    assert study.encoder.means_["x"] != pytest.approx(study.data.frame["x"].mean())


def test_save_and_load_round_trip(tmp_path):
    write_table(tmp_path / "t.csv")
    study = Study.create(open_source(tmp_path / "t.csv"), DatasetSpec("y", ("g",)), label_fraction=0.5, seed=3)
    study.save(tmp_path)
    again = Study.load(tmp_path)
    assert np.array_equal(again.X, study.X)
    assert np.array_equal(again.split.labelled_train, study.split.labelled_train)
    assert again.spec == study.spec


def test_changed_data_is_refused(tmp_path):
    write_table(tmp_path / "t.csv")
    Study.create(open_source(tmp_path / "t.csv"), DatasetSpec("y", ("g",))).save(tmp_path)
    write_table(tmp_path / "t.csv", seed=1)
    with pytest.raises(InputError, match="changed since the study was made"):
        Study.load(tmp_path)


def test_with_label_fraction_keeps_test_rows():
    study = Study.create(open_source("german"), DatasetSpec("credit", ("sex",), "good"))
    few = study.with_label_fraction(0.1)
    assert np.array_equal(few.split.test, study.split.test)
    assert len(few.split.labelled_train) == pytest.approx(0.1 * len(study.split.train), abs=6)
