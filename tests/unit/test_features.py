"""TabularEncoder: fitted on training rows only; imputes, scales, buckets, survives unseen values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from core.data.features import TabularEncoder


def frames():
    train = pd.DataFrame({"age": [20.0, 30.0, np.nan, 50.0, 40.0, 30.0] * 5,
                          "job": ["a", "a", "b", "b", "c", None] * 5,
                          "rare": ["x"] * 29 + ["y"]})
    test = pd.DataFrame({"age": [1000.0, np.nan], "job": ["zzz", "a"], "rare": ["never-seen", "x"]})
    return train, test


def test_statistics_come_from_training_rows_only():
    train, test = frames()
    encoder = TabularEncoder(numeric=["age"], categorical=["job", "rare"]).fit(train)
    before = json.dumps(encoder.to_dict(), sort_keys=True)
    encoder.transform(pd.concat([test] * 50))  # transforming other rows learns nothing
    assert json.dumps(encoder.to_dict(), sort_keys=True) == before
    finite = train["age"].dropna()
    assert encoder.means_["age"] == finite.mean() and encoder.medians_["age"] == finite.median()
    X = encoder.transform(train)
    age = X[:, encoder.column_slices_["age"].start]
    assert abs(age[train["age"].notna().to_numpy()].mean()) < 0.2


def test_layout_names_and_groups():
    train, _ = frames()
    encoder = TabularEncoder(numeric=["age"], categorical=["job", "rare"], min_frequency=2).fit(train)
    assert encoder.feature_names_ == ["age", "age (missing)", "job = a", "job = b", "job = c", "job = (missing)",
                                      "rare = x", "rare = (other)"]
    assert encoder.feature_to_column_.tolist() == [0, 0, 1, 1, 1, 1, 2, 2]
    assert encoder.numeric_features_.tolist() == [True] + [False] * 7


def test_unseen_and_missing_values_at_transform_time():
    train, test = frames()
    encoder = TabularEncoder(numeric=["age"], categorical=["job", "rare"], min_frequency=2).fit(train)
    X = encoder.transform(test)
    assert X.dtype == np.float32 and np.isfinite(X).all()
    job = X[:, encoder.column_slices_["job"]]
    assert job[0].sum() == 0 and job[1].tolist() == [1, 0, 0, 0]  # unseen 'zzz' -> all zero (no other bucket)
    rare = X[:, encoder.column_slices_["rare"]]
    assert rare[0].tolist() == [0, 1]  # unseen -> (other) bucket, which exists
    assert X[0, 0] == 10.0  # 1000 is clipped at 10 standard deviations
    assert X[1, 1] == 1.0  # missing indicator


def test_inverse_transform_recovers_readable_values():
    train, _ = frames()
    encoder = TabularEncoder(numeric=["age"], categorical=["job"], min_frequency=2).fit(train)
    back = encoder.inverse_transform(encoder.transform(train.iloc[:6]))
    assert np.allclose(back["age"].to_numpy()[[0, 1, 3]], [20, 30, 50])
    assert np.isnan(back["age"][2])
    assert back["job"].tolist()[:5] == ["a", "a", "b", "b", "c"]


def test_state_round_trips_as_json():
    train, test = frames()
    encoder = TabularEncoder(numeric=["age"], categorical=["job", "rare"]).fit(train)
    again = TabularEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert np.array_equal(again.transform(test), encoder.transform(test))
    assert again.feature_names_ == encoder.feature_names_


def test_extreme_values_do_not_overflow():
    train = pd.DataFrame({"v": [1e308, -1e308, 0.0, 5.0]})
    X = TabularEncoder(numeric=["v"]).fit_transform(train)
    assert np.isfinite(X).all()
