"""DatasetSpec validation: every bad choice named in the foundation issue gets a specific message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.spec import (DatasetSpec, parse_threshold, positive_outcome, prepare, suggest_sensitive, suggest_target,
                             suggest_threshold, threshold_base_rate)
from core.errors import InputError


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 80, size=n),
        "sex": rng.choice(["Female", "Male"], size=n),
        "race": rng.choice(["A", "B", "C"], size=n, p=[0.6, 0.3, 0.1]),
        "job": rng.choice(["clerk", "nurse", "driver", "chef"], size=n),
        "hours": rng.normal(40, 5, size=n),
        "empty": [None] * n,
        "same": ["x"] * n,
        "income": rng.choice(["high", "low"], size=n),
    })


def test_a_good_spec_prepares_labels_groups_and_features():
    data = prepare(table(), DatasetSpec("income", ("sex", "race"), positive_label="high"))
    assert set(np.unique(data.y)) == {0.0, 1.0}
    assert (data.y == 1).sum() == (table()["income"] == "high").sum()
    assert list(data.groups.columns) == ["sex", "race"]
    assert data.features == ["age", "sex", "race", "job", "hours"]
    assert any("'empty' dropped" in n for n in data.notes) and any("'same' dropped" in n for n in data.notes)


@pytest.mark.parametrize("spec, fragment", [
    (DatasetSpec("incme", ("sex",)), "Did you mean 'income'?"),
    (DatasetSpec("income", ("gender",)), "sensitive attribute column 'gender' is not in the table"),
    (DatasetSpec("income", ()), "No sensitive attribute chosen"),
    (DatasetSpec("income", ("income",)), "both the target and a sensitive attribute"),
    (DatasetSpec("income", ("sex", "sex")), "listed twice"),
    (DatasetSpec("income", ("sex",), positive_label="rich"), "'rich' does not occur"),
    (DatasetSpec("job", ("sex",)), "has 4 values"),
    (DatasetSpec("income", ("sex",), features=("income",)), "also listed as a feature"),
])
def test_bad_specs_raise_specific_messages(spec, fragment):
    with pytest.raises(InputError) as caught:
        prepare(table(), spec)
    assert fragment in str(caught.value)


def test_one_class_target_and_one_group_attribute_are_refused():
    frame = table()
    frame["income"] = "low"
    with pytest.raises(InputError, match="one class only"):
        prepare(frame, DatasetSpec("income", ("sex",)))
    frame = table()
    frame["country"] = "NL"
    with pytest.raises(InputError, match="one group only"):
        prepare(frame, DatasetSpec("income", ("country",)))


def test_too_few_labelled_rows_per_class_is_refused():
    frame = table(40)
    frame.loc[frame.index[:35], "income"] = "low"
    frame.loc[frame.index[35:], "income"] = "high"
    with pytest.raises(InputError, match="at least 10 of each class"):
        prepare(frame, DatasetSpec("income", ("sex",), positive_label="high"))


def test_small_groups_warn_and_a_group_of_one_still_prepares():
    frame = table()
    frame.loc[0, "race"] = "Z"
    data = prepare(frame, DatasetSpec("income", ("race",), positive_label="high"))
    assert any("'Z'" in w and "only 1 rows" in w for w in data.warnings)
    assert any("'C'" in w for w in data.warnings)  # about 20 rows < 30


def test_multivalue_target_with_positive_label_is_binarised_with_a_note():
    data = prepare(table(), DatasetSpec("job", ("sex",), positive_label="nurse"))
    assert data.y.sum() == (table()["job"] == "nurse").sum()
    assert any("every other value negative" in n for n in data.notes)


def test_positive_label_defaults():
    frame = table()
    frame["flag"] = np.where(frame["income"] == "high", 1, 0)
    data = prepare(frame, DatasetSpec("flag", ("sex",)))
    assert data.spec.positive_label == "1" and not any("No positive label" in n for n in data.notes)
    data = prepare(table(), DatasetSpec("income", ("sex",)))
    assert any("No positive label given" in n for n in data.notes)


def test_missing_targets_become_unlabelled_rows_and_missing_groups_a_group():
    frame = table()
    frame.loc[:9, "income"] = None
    frame.loc[10:14, "sex"] = None
    data = prepare(frame, DatasetSpec("income", ("sex",), positive_label="high"))
    assert np.isnan(data.y[:10]).all() and (~data.labelled).sum() == 10
    assert (data.groups["sex"] == "(missing)").sum() == 5


def test_numeric_sensitive_attribute_is_binned():
    data = prepare(table(), DatasetSpec("income", ("age",), positive_label="high"))
    groups = set(data.groups["age"])
    assert 3 <= len(groups) <= 5 and any(g.startswith("<") for g in groups)
    custom = prepare(table(), DatasetSpec("income", ("age",), positive_label="high", bins={"age": (25.0,)}))
    assert set(custom.groups["age"]) == {"< 25", ">= 25"}
    assert "age" in custom.features


def test_pii_is_excluded_unless_opted_in():
    frame = table()
    frame["email"] = [f"p{i}@mail.com" for i in range(len(frame))]
    data = prepare(frame, DatasetSpec("income", ("sex",), positive_label="high"))
    assert "email" not in data.features and data.withheld_columns == ["email"]
    opted = prepare(frame, DatasetSpec("income", ("sex",), positive_label="high", include_pii=True,
                                       features=("age", "email")))
    assert opted.withheld_columns == []


def test_spec_round_trips_through_dict():
    spec = DatasetSpec("income", ("sex", "race"), "high", ("age",), {"age": (30.0,)}, True, 20)
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    unaware = DatasetSpec("income", ("sex",), unaware=True)
    assert DatasetSpec.from_dict(unaware.to_dict()) == unaware
    stored_before = {k: v for k, v in spec.to_dict().items() if k != "unaware"}
    assert DatasetSpec.from_dict(stored_before).unaware is False  # studies stored before it were aware


def test_unaware_training_keeps_every_sensitive_attribute_out_of_the_features():
    data = prepare(table(), DatasetSpec("income", ("sex", "age"), positive_label="high", unaware=True))
    assert data.features == ["race", "job", "hours"]  # age, the numeric one audited in bins, is out too
    assert list(data.groups.columns) == ["sex", "age"]  # the audit still compares their groups
    assert any("'sex' left out of features: unaware training" in n for n in data.notes)
    listed = prepare(table(), DatasetSpec("income", ("sex",), positive_label="high", features=("sex", "job"),
                                          unaware=True))
    assert listed.features == ["job"]  # even when the feature list names it


def test_an_unaware_audit_runs_and_its_encoder_has_none_of_the_attributes(tmp_path):
    from core.data.source import open_source  # here: the audit's imports (torch) only for this test
    from core.data.study import Study
    from core.run.config import AuditConfig
    from core.run.pipeline import run_audit

    # from_dict: the replicate count is set to 1 where the config has one (one training run is enough here).
    config = AuditConfig.from_dict(dict(
        data="german", target="credit", sensitive=["sex", "age"], positive="good", epochs=1, finetune_epochs=2,
        n_boot=20, strategies=["linear"], umap=False, workers=1, unaware=True, replicates=1, baselines=[],
        encoder={"hidden_dim": 16, "depth": 2, "embed_dim": 8}))
    study = Study.create(open_source("german"), config.spec(), seed=0)
    assert not {"sex", "age"} & set(study.encoder.columns_)
    assert not [name for name in study.encoder.feature_names_ if name.startswith(("sex", "age"))]
    report = run_audit(config, tmp_path)
    assert report["config"]["unaware"] is True
    assert not {"sex", "age"} & set(report["study"]["features"])
    assert report["study"]["n_encoded_features"] == study.encoder.n_features_out_
    for model in report["models"]:
        for attribute in ("sex", "age"):
            probe = model["representation"]["leakage"][attribute]
            assert probe["raw_features_without_attribute_n_dropped"] == 0  # nothing of its own to drop
            assert probe["raw_features_without_attribute_balanced_accuracy"] == probe["raw_features_balanced_accuracy"]
            assert probe["interval"] is not None and probe["readable"] in (True, False)


def test_suggest_sensitive():
    frame = pd.DataFrame(columns=["Gender", "zip", "Race", "age", "income"])
    assert suggest_sensitive(frame) == ["Gender", "Race", "age"]


def test_groups_come_in_natural_order():
    frame = table()
    frame.loc[:5, "race"] = None
    data = prepare(frame, DatasetSpec("income", ("age", "race"), positive_label="high"))
    ages = data.group_order["age"]
    assert ages[0].startswith("<") and ages[-1].startswith(">=")
    assert data.group_order["race"][:3] == ["A", "B", "C"] and data.group_order["race"][-1] == "(missing)"


def wages(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A table with a 200-odd-valued hourly wage, the shape of issue 16's wage table."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"sex": rng.choice(["Female", "Male"], size=n),
                         "education": rng.integers(8, 20, size=n),
                         "wage": np.round(rng.lognormal(2.3, 0.5, size=n), 2)})


@pytest.mark.parametrize("positive, expected", [(">=10", np.greater_equal), ("> 10", np.greater),
                                                 ("<=10", np.less_equal), ("< 10", np.less),
                                                 ("wage >= 10", np.greater_equal)])
def test_a_threshold_turns_a_numeric_target_into_two_classes(positive, expected):
    frame = wages()
    data = prepare(frame, DatasetSpec("wage", ("sex",), positive_label=positive))
    assert np.array_equal(data.y, expected(frame["wage"], 10).astype(float))
    assert data.spec.positive_label == f"wage {positive.split()[-2] if ' ' in positive else positive[:-2]} 10"
    again = prepare(frame, data.spec)  # a saved study prepares the same rows from the stored label
    assert np.array_equal(again.y, data.y) and again.spec.positive_label == data.spec.positive_label


def test_a_many_valued_numeric_target_without_threshold_is_refused_with_its_median():
    frame = wages()
    for positive in (None, str(frame["wage"].iloc[0])):  # one wage against all others is refused too
        with pytest.raises(InputError) as caught:
            prepare(frame, DatasetSpec("wage", ("sex",), positive_label=positive))
        assert f"numeric with {frame['wage'].nunique()} distinct values" in caught.value.message
        assert f"--positive '{suggest_threshold(frame['wage'])}' (its median)" in caught.value.hint
    median = parse_threshold(suggest_threshold(frame["wage"])).value
    assert abs(median - frame["wage"].median()) < 0.01 * frame["wage"].median()
    small = frame.assign(education=frame["education"] % 3)  # 3 values: a plain positive label still works
    assert prepare(small, DatasetSpec("education", ("sex",), positive_label="1")).spec.positive_label == "1"


def test_bad_thresholds_get_specific_messages():
    frame = wages().assign(grade=lambda f: np.where(f["wage"] > 10, "high", "low"))
    with pytest.raises(InputError, match="needs a numeric target"):
        prepare(frame, DatasetSpec("grade", ("sex",), positive_label=">= 10"))
    with pytest.raises(InputError, match="one class only"):
        prepare(frame, DatasetSpec("wage", ("sex",), positive_label=">= 10000"))
    assert parse_threshold("income >= 10", "wage") is None and parse_threshold("yes") is None


def test_threshold_base_rate_is_the_share_of_labelled_rows_made_positive():
    series = pd.Series([1.0, 5.0, 10.0, 20.0, np.nan])
    assert threshold_base_rate(series, ">= 10") == 0.5
    assert threshold_base_rate(series, "< 5") == 0.25
    assert threshold_base_rate(series, "yes") is None


def test_suggest_sensitive_knows_colour_religion_marital_status_and_group_columns():
    frame = pd.DataFrame({"colour": ["Black", "White"] * 5, "religion": list("abcdeabcde"),
                          "Marital Status": ["single", "married"] * 5, "afam": ["yes", "no"] * 5,
                          "female": [0, 1] * 5, "black": list(range(10)), "hours": range(10)})
    assert suggest_sensitive(frame) == ["colour", "religion", "Marital Status", "afam", "female"]


def arrests(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """The shape of the public arrests table (carData::Arrests) of issue 16."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n), "released": rng.choice(["Yes", "No"], size=n, p=[0.8, 0.2]),
                         "colour": rng.choice(["Black", "White"], size=n), "year": rng.integers(1997, 2003, size=n),
                         "age": rng.integers(12, 66, size=n), "sex": rng.choice(["Male", "Female"], size=n),
                         "employed": rng.choice(["Yes", "No"], size=n), "citizen": rng.choice(["Yes", "No"], size=n),
                         "checks": rng.integers(0, 7, size=n)})


def test_suggest_target_is_never_an_identifier_or_a_sensitive_column():
    frame = arrests()
    assert suggest_target(frame) == "released"
    assert suggest_target(frame.drop(columns="released")) == "employed"  # the last two-valued one left
    assert suggest_target(frame[["id", "citizen", "sex", "checks"]]) == "checks"
    assert suggest_target(frame[["id", "age"]].assign(y=np.arange(len(frame)) % 2)) == "y"
    frame = frame.assign(outcome=frame["employed"], email=frame["employed"])
    assert suggest_target(frame, personal=["email"]) == "outcome"  # named like an outcome, first
    assert suggest_target(frame[["released", "email"]], personal=["released", "email"]) == "email"  # nothing left


def test_the_positive_outcome_reads_the_threshold_once():
    assert positive_outcome("wage", "wage >= 10") == "wage >= 10"
    assert positive_outcome("income", ">50K") == "income = >50K"
