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


def point_mass_frame(n_zero: int = 70) -> pd.DataFrame:
    """A capital-gain-like column: mostly 0, then 12 other values (7 of them frequent), one missing."""
    others = [float(v) for v in (7688, 15024, 2174, 3103, 99999, 594, 1055) for _ in range(5)]
    rare = [11.0, 12.0, 13.0, 14.0, 15.0]  # seen once each: no indicator (min_frequency 5)
    return pd.DataFrame({"gain": [0.0] * n_zero + others + rare + [np.nan],
                         "count": [float(i % 12) for i in range(n_zero + 41)]})


def test_a_point_mass_column_gets_one_indicator_per_frequent_value():
    frame = point_mass_frame()
    encoder = TabularEncoder(numeric=["gain", "count"]).fit(frame)
    # 0 first (the commonest), then the frequent values in order of count, ties by value.
    assert encoder.values_ == {"gain": [0.0, 594.0, 1055.0, 2174.0, 3103.0, 7688.0, 15024.0, 99999.0]}
    block = encoder.column_slices_["gain"]
    assert encoder.feature_names_[block] == ["gain", "gain (missing)", "gain = 0", "gain = 594", "gain = 1055",
                                             "gain = 2174", "gain = 3103", "gain = 7688", "gain = 15024",
                                             "gain = 99999"]
    assert encoder.numeric_features_[block].tolist() == [True] + [False] * 9
    assert set(encoder.feature_to_column_[block].tolist()) == {0}  # SSL views swap the block whole
    X = encoder.transform(pd.DataFrame({"gain": [15024.0, 15024.5, np.nan, 0.0, 12.0], "count": [1.0] * 5}))
    indicators = X[:, block.start + 2:block.stop]
    assert indicators.sum(axis=1).tolist() == [1, 0, 0, 1, 0]  # near a value, missing, rare: no indicator
    assert indicators[0, encoder.values_["gain"].index(15024.0)] == 1 and indicators[3, 0] == 1
    assert X[2, block.start + 1] == 1  # the missing indicator still says missing
    again = TabularEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    np.testing.assert_array_equal(again.transform(frame), encoder.transform(frame))


def test_no_indicators_for_spread_columns_small_counts_or_when_switched_off():
    frame = point_mass_frame()
    assert "count" not in TabularEncoder(numeric=["gain", "count"]).fit(frame).values_  # no value holds half
    few = pd.DataFrame({"juv": [0.0] * 90 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0] * 2})  # 10 values
    assert TabularEncoder(numeric=["juv"]).fit(few).values_ == {}
    eleven = pd.concat([few, pd.DataFrame({"juv": [10.0]})])  # one more distinct value: a point mass
    assert TabularEncoder(numeric=["juv"]).fit(eleven).values_ == {"juv": [0.0]}
    # Under half the rows at 0: not a point mass.
    assert TabularEncoder(numeric=["gain"]).fit(point_mass_frame(n_zero=40)).values_ == {}
    off = TabularEncoder(numeric=["gain"], point_mass_share=None).fit(frame)
    assert off.values_ == {} and off.n_features_out_ == 2


def test_an_encoder_saved_before_value_indicators_encodes_as_it_did():
    frame = point_mass_frame()
    state = TabularEncoder(numeric=["gain"], point_mass_share=None).fit(frame).to_dict()
    del state["values"], state["params"]["point_mass_share"]  # what an earlier version saved
    old = TabularEncoder.from_dict(state)
    assert old.n_features_out_ == 2 and old.transform(frame).shape == (len(frame), 2)


def test_the_bundled_tables_get_indicators_where_docs_say_adult_capital_columns_only():
    """docs/finetuning.md, round 3: Adult's capital gain and loss get 30 value indicators each
    (15,024 and 7,688 among them), and COMPAS and German none, so they encode as before."""
    from core.data import DatasetSpec
    from core.data.source import open_source
    from core.data.study import Study

    specs = {"adult": DatasetSpec(target="income", sensitive=("sex", "race")),
             "compas": DatasetSpec(target="two_year_recid", sensitive=("race", "sex")),
             "german": DatasetSpec(target="credit", positive_label="good", sensitive=("sex", "age"))}
    encoders = {name: Study.create(open_source(name), spec, seed=0).encoder for name, spec in specs.items()}
    adult = encoders["adult"].values_
    assert sorted(adult) == ["capital_gain", "capital_loss"]
    assert [len(values) for values in adult.values()] == [30, 30]
    assert {15024.0, 7688.0} <= set(adult["capital_gain"]) and adult["capital_gain"][0] == 0.0
    assert encoders["compas"].values_ == {} and encoders["german"].values_ == {}
    assert [encoders[name].n_features_out_ for name in specs] == [154, 54, 64]
