"""Explanations on a synthetic run whose models are known exactly (tests/explain_artifact.py):
LIME finds the one feature a model reads, flip rates are 0 for a model blind to the attribute,
the stability flag separates noisy from clear explanations, personal data never shows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import explain_artifact
from core.errors import InputError
from core.explain import (compare_models, explain_row, flip_rates, flip_row, load_run, nearest_counterfactuals,
                          subgroup_importance)
from core.explain.counterfactual import flip_values, proxies
from core.explain.lime_tabular import stability, top_features
from core.explain.subgroup import RESULT_FILE, subgroup_job

SAMPLES = 1500


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return explain_artifact.build(tmp_path_factory.mktemp("explain-run"))


@pytest.fixture(scope="module")
def ctx(run_dir):
    return load_run(run_dir)


def _row(ctx, **conditions) -> int:
    """The first test row matching conditions on raw columns (callables or values)."""
    frame = ctx.frame.iloc[ctx.test_rows]
    mask = np.ones(len(frame), dtype=bool)
    for column, condition in conditions.items():
        mask &= condition(frame[column]) if callable(condition) else (frame[column] == condition).to_numpy()
    return int(ctx.test_rows[np.flatnonzero(mask)[0]])


def test_codec_encodes_exactly_like_the_fitted_encoder(ctx):
    rng = np.random.default_rng(0)
    Z = ctx.lime_matrix[rng.choice(len(ctx.lime_matrix), 50)]
    Z[:5, ctx.codec.columns.index("signal")] = np.nan  # missing numerics
    region = ctx.codec.columns.index("region")
    Z[5:10, region] = len(ctx.codec.vocab["region"]) - 1  # the last code ("(unseen)" or "(other)")
    expected = ctx.study.encoder.transform(ctx.codec.to_frame(Z))
    np.testing.assert_array_equal(ctx.codec.encode(Z, ctx.study.X[0]), expected)
    # the raw rows round-trip through LIME's matrix to the study's own encoding
    np.testing.assert_array_equal(ctx.codec.encode(ctx.lime_matrix), ctx.study.X)


def test_lime_ranks_the_only_feature_a_model_reads_first(ctx):
    row = _row(ctx, signal=lambda s: (s > 1.0).to_numpy())
    explanation = explain_row(ctx, row, "scarf+linear", num_samples=SAMPLES, repeats=3)
    weights = explanation.weights
    assert weights[0].feature == "signal" and weights[0].weight > 0  # a high signal pushes towards "yes"
    assert abs(weights[0].weight) > 10 * max(abs(w.weight) for w in weights[1:])
    assert weights[0].value == ctx.frame["signal"].iloc[row]
    assert "signal" in weights[0].condition
    assert explanation.prediction == 1 and explanation.probability > 0.95 and explanation.label == "yes"
    assert explanation.stability.unstable is False and explanation.stability.top_features == ["signal"]
    assert 0 < explanation.local_fit_r2 <= 1 and explanation.split == "test"


def test_the_model_that_uses_sex_gets_a_sex_weight_and_the_blind_one_none(ctx):
    row = _row(ctx, sex="Female", signal=lambda s: s.abs().to_numpy() < 0.3)
    table = compare_models(ctx, row, ["scarf+linear", "supervised"], num_samples=SAMPLES)
    by_feature = {r["feature"]: r for r in table["table"]}
    assert by_feature["sex"]["value"] == "Female"
    assert by_feature["sex"]["weights"]["supervised"] > 0.1  # being Female raises the score
    assert abs(by_feature["sex"]["weights"]["scarf+linear"]) < 0.02
    assert by_feature["sex"]["difference"] == pytest.approx(by_feature["sex"]["weights"]["scarf+linear"]
                                                            - by_feature["sex"]["weights"]["supervised"])
    assert [m["model"] for m in table["models"]] == ["scarf+linear", "supervised"]


def test_same_seed_same_weights_whatever_ran_before(ctx):
    row = int(ctx.test_rows[3])
    first = explain_row(ctx, row, "scarf+mixed", num_samples=500, seed=7, repeats=1)
    explain_row(ctx, int(ctx.test_rows[4]), "supervised", num_samples=300, seed=1, repeats=1)
    again = explain_row(ctx, row, "scarf+mixed", num_samples=500, seed=7, repeats=1)
    assert [w.weight for w in first.weights] == [w.weight for w in again.weights]
    other = explain_row(ctx, row, "scarf+mixed", num_samples=500, seed=8, repeats=1)
    assert [w.weight for w in first.weights] != [w.weight for w in other.weights]


def test_stability_flag_fires_for_noisy_weights_not_for_a_clear_model(ctx):
    row = _row(ctx, signal=lambda s: (s > 1.0).to_numpy())
    clear = explain_row(ctx, row, "scarf+linear", num_samples=SAMPLES, repeats=5)
    assert not clear.stability.unstable and clear.stability.agreement == 1.0
    noisy = explain_row(ctx, row, "scarf+mixed", num_samples=12, repeats=5)
    assert noisy.stability.unstable and noisy.stability.sometimes_top
    assert noisy.stability.max_std > 2 * clear.stability.max_std
    assert noisy.stability.seeds == [0, 1, 2, 3, 4]


def test_top_features_ignore_noise_level_weights():
    assert top_features(np.array([0.5, 0.01, -0.02, 0.3])) == frozenset({0, 3})
    assert top_features(np.zeros(3)) == frozenset()
    runs = np.array([[0.5, 0.01, 0.3], [0.5, 0.04, 0.31], [0.5, 0.02, 0.02]])
    result = stability(runs, ["a", "b", "c"], [0, 1, 2])
    assert result.unstable and result.always_top == ["a"] and result.sometimes_top == ["c"]
    assert result.agreement == pytest.approx(2 / 3)


def test_personal_data_never_appears(ctx, run_dir):
    assert ctx.withheld == ["email"]
    row = int(ctx.test_rows[0])
    text = json.dumps([explain_row(ctx, row, num_samples=200, repeats=2).to_dict(),
                       flip_row(ctx, row, with_proxies=True),
                       nearest_counterfactuals(ctx, row, "sex")])
    assert "email" not in text and "example.org" not in text
    assert "email" not in ctx.frame.columns


def test_flip_rate_is_zero_for_a_blind_model_and_high_for_one_that_uses_the_attribute(ctx):
    rates = flip_rates(ctx, ["scarf+linear", "supervised"], attributes=["sex"])
    by = {(r["model"], r["group"]): r for r in rates["rates"]}
    assert {g for _, g in by} == {"Female", "Male"}
    assert by["scarf+linear", "Female"]["flip_rate"] == 0 and by["scarf+linear", "Male"]["flip_rate"] == 0
    assert by["supervised", "Female"]["flip_rate"] > 0.2 and by["supervised", "Male"]["flip_rate"] > 0.2
    # the model favours women: flipping a man to Female only ever turns a decision positive
    assert by["supervised", "Male"]["to_negative"] == 0 and by["supervised", "Male"]["to_positive"] > 0
    assert by["supervised", "Female"]["to_positive"] == 0
    # the rate is the share of the group's test rows whose decision changes, recomputed by hand
    test = ctx.test_rows
    male = test[ctx.study.data.groups["sex"].to_numpy()[test] == "Male"]
    frame = ctx.model_frame.iloc[male].copy()
    frame["sex"] = "Female"
    model = ctx.model("supervised")
    after = model.predict_proba(ctx.study.encoder.transform(frame)) >= 0.5
    changed = after != (model.predict_proba(ctx.study.X[male]) >= 0.5)
    assert by["supervised", "Male"]["flip_rate"] == pytest.approx(changed.mean())
    assert rates["n_test"] == len(test)


def test_binned_age_flips_to_the_median_of_each_other_bin(ctx):
    values = flip_values(ctx, "age")
    groups = ctx.study.data.groups["age"].to_numpy()
    ages = ctx.study.data.frame["age"].to_numpy()
    train = ctx.train_rows
    assert set(values) == set(groups[train])
    for group, value in values.items():
        assert value == np.median(ages[train][groups[train] == group])
    row = _row(ctx, age=lambda a: (a < 30).to_numpy())
    flips = [f for f in flip_row(ctx, row, "scarf+mixed") if f["attribute"] == "age"]
    assert len(flips) == len(values) - 1 and all(f["from"] != f["to"] for f in flips)
    # the mixed model reads age (0.5 z): an older value raises the probability
    assert all(f["probability"] > f["probability_before"] for f in flips)
    rates = {r["group"]: r["flip_rate"] for r in flip_rates(ctx, ["scarf+linear"], attributes=["age"])["rates"]}
    assert set(rates.values()) == {0.0}


def test_flip_with_proxies_sets_each_proxy_to_the_target_groups_typical_value(ctx):
    assert proxies(ctx, "sex") == []  # region and signal are independent of sex here
    ctx._cache[("proxies", "sex")] = [{"attribute": "sex", "feature": "region", "cramers_v": 0.9,
                                       "mutual_information": 0.5, "strength": "strong"}]
    ctx._cache.pop(("proxy_values", "sex"), None)
    try:
        row = _row(ctx, sex="Male", region=lambda r: (r != "North").to_numpy())
        flips = flip_row(ctx, row, "scarf+mixed", attributes=["sex"], with_proxies=True)
        train = ctx.frame.iloc[ctx.train_rows]
        women = ctx.study.data.groups["sex"].to_numpy()[ctx.train_rows] == "Female"
        expected = train["region"][women].value_counts().index[0]
        assert flips[0]["proxies"] == {"region": expected} and flips[0]["with_proxies"]
    finally:
        ctx._cache.pop(("proxies", "sex"))
        ctx._cache.pop(("proxy_values", "sex"))


def test_nearest_real_counterfactual_is_the_closest_row_of_the_other_group(ctx):
    row = _row(ctx, sex="Female")
    [nearest] = nearest_counterfactuals(ctx, row, "sex", "supervised")
    assert nearest["group"] == "Male" and nearest["from"] == "Female"
    embedding = ctx.embeddings("supervised")
    test = ctx.test_rows
    men = test[ctx.study.data.groups["sex"].to_numpy()[test] == "Male"]
    distances = np.linalg.norm(embedding[men] - embedding[row], axis=1)
    assert nearest["row_id"] == int(men[np.argmin(distances)])
    assert nearest["distance"] == pytest.approx(distances.min(), rel=1e-5)
    decision = ctx.probabilities("supervised", np.array([row]))[0] >= 0.5
    assert nearest["decision_differs"] == bool(decision != (nearest["probability"] >= 0.5))
    assert {"feature": "sex", "value": "Female", "counterfactual_value": "Male"} in nearest["differences"]


def test_subgroup_aggregate_with_intervals_differences_and_progress(ctx):
    calls = []
    result = subgroup_importance(ctx, "sex", "supervised", rows_per_group=8, num_samples=400, n_boot=200,
                                 on_progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 16) and calls[-1] == (16, 16) and len(calls) == 17
    groups = {g["group"]: g for g in result["groups"]}
    assert set(groups) == {"Female", "Male"} and all(g["n_rows"] == 8 for g in groups.values())
    for group in groups.values():
        top = group["importance"][0]
        assert top["feature"] in ("signal", "sex")
        assert top["ci"][0] <= top["mean_abs_weight"] <= top["ci"][1]
        assert {i["feature"] for i in group["importance"][:2]} == {"signal", "sex"}
        noise = next(i for i in group["importance"] if i["feature"] == "noise")
        assert noise["mean_abs_weight"] < 0.05
    difference = next(d for d in result["differences"] if d["feature"] == "signal")
    means = {g: next(i["mean_abs_weight"] for i in groups[g]["importance"] if i["feature"] == "signal")
             for g in groups}
    assert difference["difference"] == pytest.approx(means[difference["group_a"]] - means[difference["group_b"]])
    assert difference["ci"][0] <= difference["difference"] <= difference["ci"][1]
    again = subgroup_importance(ctx, "sex", "supervised", rows_per_group=8, num_samples=400, n_boot=200)
    assert again["groups"] == result["groups"]  # seeded


def test_subgroup_job_writes_its_result_and_reports_progress(ctx, run_dir, tmp_path):
    events = []

    class Context:
        config = {"run_dir": str(run_dir), "attribute": "sex", "model": "scarf+linear", "rows_per_group": 3,
                  "num_samples": 200}
        workspace = None

        def __init__(self):
            self.run_dir = tmp_path

        def report(self, event):
            events.append(event)

        def should_stop(self):
            return False

    metrics = subgroup_job(Context())
    assert metrics == {"attribute": "sex", "model": "scarf+linear", "rows": 6}
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved["attribute"] == "sex" and len(saved["groups"]) == 2
    assert events[0]["fraction"] == 0 and events[-1]["fraction"] == 1.0 and events[-1]["total_steps"] == 6


def test_bad_input_is_an_input_error(ctx, tmp_path):
    with pytest.raises(InputError, match="not in the study's table"):
        explain_row(ctx, 10_000)
    with pytest.raises(InputError, match="not a row number"):
        explain_row(ctx, "seven")
    with pytest.raises(InputError, match="No model 'nope'.*Models are: scarf\\+linear"):
        explain_row(ctx, 0, "nope")
    with pytest.raises(InputError, match="'region' is not a sensitive attribute"):
        flip_rates(ctx, attributes=["region"])
    with pytest.raises(InputError, match="does not exist"):
        load_run(tmp_path / "missing")
    with pytest.raises(InputError, match="not a finished audit run"):
        load_run(tmp_path)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "predictions.parquet")
    (tmp_path / "report.json").write_text("{not json")
    (tmp_path / "study.json").write_text("{}")
    with pytest.raises(InputError, match="report.json .* cannot be read"):
        load_run(tmp_path)


def test_codec_encodes_a_point_mass_column_with_its_value_indicators():
    """LIME's samples of a capital-gain-like column reach the model with the same indicators the
    encoder gives the raw value (core.data.features: point-mass columns)."""
    from core.data.features import TabularEncoder
    from core.explain.context import RawCodec

    gain = [0.0] * 60 + [float(v) for v in (7688, 15024, 2174) for _ in range(6)] + [float(v) for v in range(1, 11)]
    frame = pd.DataFrame({"gain": gain, "job": ["a", "b"] * (len(gain) // 2)})
    encoder = TabularEncoder(numeric=["gain"], categorical=["job"]).fit(frame)
    assert encoder.values_ == {"gain": [0.0, 2174.0, 7688.0, 15024.0]}
    codec = RawCodec(encoder, withheld=[])
    Z = codec.to_lime(frame)
    Z[:3, 0] = [15024.0, 15024.25, np.nan]
    np.testing.assert_array_equal(codec.encode(Z), encoder.transform(codec.to_frame(Z)))
    assert codec.encode(Z)[0, encoder.column_slices_["gain"]].tolist() == [pytest.approx(
        (15024.0 - encoder.means_["gain"]) / encoder.stds_["gain"]), 0, 0, 0, 1]
