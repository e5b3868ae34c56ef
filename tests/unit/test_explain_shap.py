"""SHAP beside LIME on the synthetic run whose models are known exactly (tests/explain_artifact.py):
efficiency (base value + values = the model's probability), a fixed seed gives the same values, a
feature the model does not read gets exactly 0, per-group averages in their own Holm family, and
the attribute flip explained by both."""

from __future__ import annotations

import numpy as np
import pytest

import explain_artifact
from core.errors import InputError
from core.explain import explain_flip, explain_row_shap, load_run, subgroup_importance
from core.explain.counterfactual import flipped_attributions
from core.explain.shap_tabular import BACKGROUND_ROWS, background, shap_values


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return load_run(explain_artifact.build(tmp_path_factory.mktemp("explain-shap")))


def _rows(ctx, n: int = 4) -> list[int]:
    return [int(r) for r in ctx.test_rows[:n]]


@pytest.mark.parametrize("model", ["scarf+mixed", "supervised"])
def test_values_and_base_value_sum_to_the_models_probability(ctx, model):
    for row in _rows(ctx):
        explanation = explain_row_shap(ctx, row, model, seed=0)
        total = explanation.base_value + sum(v.value for v in explanation.values)
        assert total == pytest.approx(explanation.probability, abs=1e-5)
        # the base value is the model's mean probability over the background rows
        mean = ctx.model(model).predict_proba(ctx.codec.encode(background(ctx))).mean()
        assert explanation.base_value == pytest.approx(float(mean), abs=1e-6)


def test_background_is_training_rows_only(ctx):
    rows = background(ctx)
    assert len(rows) == min(BACKGROUND_ROWS, len(ctx.train_rows))
    train = {tuple(r) for r in ctx.lime_matrix[ctx.train_rows]}
    assert all(tuple(r) in train for r in rows)


def test_same_seed_same_values_whatever_ran_before_and_numpy_state_untouched(ctx):
    row = _rows(ctx)[1]
    first = shap_values(ctx, "scarf+mixed", row, seed=7)["values"]
    shap_values(ctx, "scarf+mixed", row, seed=8)
    np.random.seed(123)
    expected_draw = np.random.random()
    np.random.seed(123)
    again = shap_values(ctx, "scarf+mixed", row, seed=7)["values"]
    assert np.random.random() == expected_draw  # the caller's global stream is put back
    np.testing.assert_array_equal(first, again)


def test_only_the_feature_the_model_reads_gets_a_value(ctx):
    explanation = explain_row_shap(ctx, _rows(ctx)[0], "scarf+linear", seed=0)
    assert explanation.values[0].feature == "signal" and explanation.values[0].value != 0
    assert all(v.value == 0.0 for v in explanation.values[1:])
    assert {v.feature for v in explanation.values} == {"sex", "age", "region", "signal", "noise"}  # no email


def test_bad_settings_raise_input_error(ctx):
    with pytest.raises(InputError, match="max_evals 5 is too small"):
        explain_row_shap(ctx, _rows(ctx)[0], "scarf+linear", max_evals=5)
    with pytest.raises(InputError, match="Unknown explainer 'shapp'"):
        subgroup_importance(ctx, "sex", "scarf+linear", explainer="shapp")


def test_subgroup_mean_abs_shap_has_intervals_and_its_own_holm_family(ctx):
    result = subgroup_importance(ctx, "sex", "scarf+linear", rows_per_group=8, n_boot=50, explainer="shap")
    assert result["explainer"] == "shap"
    for group in result["groups"]:
        by = {i["feature"]: i for i in group["importance"]}
        assert group["importance"][0]["feature"] == "signal" and by["signal"]["mean_abs_weight"] > 0
        assert by["noise"]["mean_abs_weight"] == 0.0 and by["noise"]["ci"] == [0.0, 0.0]
        low, high = by["signal"]["ci"]
        assert low <= by["signal"]["mean_abs_weight"] <= high
    tested = [d for d in result["differences"] if d["p_value"] is not None]
    assert tested and {d["family"] for d in tested} == {"shap_group_differences"}
    assert {d["family_size"] for d in tested} == {len(tested)}
    assert all(d["p_adjusted"] >= d["p_value"] for d in tested)


def test_flip_explained_by_both_moves_only_with_what_the_model_reads(ctx):
    row = _rows(ctx)[0]
    own = str(ctx.study.data.groups["sex"].iloc[row])
    other = "Male" if own == "Female" else "Female"
    blind = explain_flip(ctx, row, "scarf+linear", "sex", other, explainer="both", num_samples=500)
    by = {e["feature"]: e for e in blind["table"]}
    assert by["sex"]["value"] == own and by["sex"]["flipped_value"] == other
    assert blind["probability"] == pytest.approx(blind["probability_before"])
    assert by["signal"]["shap_flipped"] == pytest.approx(by["signal"]["shap_original"])
    assert by["sex"]["shap_original"] == 0.0 and by["sex"]["shap_flipped"] == 0.0
    uses_sex = explain_flip(ctx, row, "supervised", "sex", other, explainer="shap")
    sex = next(e for e in uses_sex["table"] if e["feature"] == "sex")
    # logit +4 for Female: the Female version's SHAP value for sex is positive, the Male one's negative
    female, male = (sex["shap_original"], sex["shap_flipped"]) if own == "Female" else (sex["shap_flipped"],
                                                                                        sex["shap_original"])
    assert female > 0 > male
    assert sex["lime_original"] is None and "weights" not in uses_sex["flipped"]
    flipped = uses_sex["flipped"]["shap"]
    assert flipped["base_value"] + sum(v["value"] for v in flipped["values"]) == pytest.approx(
        uses_sex["probability"], abs=1e-5)
    only = flipped_attributions(ctx, row, "supervised", "sex", other, explainer="shap")
    assert only["shap"] == flipped
    with pytest.raises(InputError, match="is not a group of 'sex'"):
        explain_flip(ctx, row, "supervised", "sex", "Robot")
