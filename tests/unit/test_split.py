"""The study split: deterministic, stratified by label x group, label fraction, unlabelled pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.split import Split, make_split
from core.errors import InputError


def labels_and_groups(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.3, 0.7])
    race = rng.choice(["a", "b", "c"], size=n, p=[0.7, 0.2, 0.1])
    y = (rng.random(n) < np.where(sex == "F", 0.2, 0.4)).astype(float)
    y[rng.random(n) < 0.05] = np.nan
    return y, pd.DataFrame({"sex": sex, "race": race})


def test_same_seed_same_split_and_other_seed_other_split():
    y, groups = labels_and_groups()
    first, second = make_split(y, groups, seed=3), make_split(y, groups, seed=3)
    other = make_split(y, groups, seed=4)
    for part in ("train", "validation", "test", "unlabelled", "labelled_train"):
        assert np.array_equal(getattr(first, part), getattr(second, part))
    assert not np.array_equal(first.test, other.test)


def test_parts_are_disjoint_and_cover_every_row():
    y, groups = labels_and_groups()
    split = make_split(y, groups)
    parts = [split.train, split.validation, split.test, split.unlabelled]
    assert sum(len(p) for p in parts) == len(y)
    assert len(np.unique(np.concatenate(parts))) == len(y)
    assert np.isnan(y[split.unlabelled]).all() and not np.isnan(y[split.test]).any()
    assert set(split.pretrain) == set(split.train) | set(split.unlabelled)
    assert not set(split.pretrain) & (set(split.test) | set(split.validation))


def test_each_label_by_group_stratum_keeps_its_share_in_test():
    y, groups = labels_and_groups()
    split = make_split(y, groups, test_size=0.2)
    labelled = ~np.isnan(y)
    strata = pd.Series(y.astype(str)) + groups["sex"] + groups["race"]
    overall = strata[labelled].value_counts(normalize=True)
    in_test = strata.iloc[split.test].value_counts(normalize=True)
    assert (overall - in_test).abs().max() < 0.005
    assert abs(len(split.test) / labelled.sum() - 0.2) < 0.005


def test_label_fraction_is_a_stratified_subsample_of_train():
    y, groups = labels_and_groups()
    split = make_split(y, groups, label_fraction=0.1)
    assert set(split.labelled_train) <= set(split.train)
    assert abs(len(split.labelled_train) / len(split.train) - 0.1) < 0.01
    rate_all = np.nanmean(y[split.train])
    rate_sub = np.nanmean(y[split.labelled_train])
    assert abs(rate_all - rate_sub) < 0.02
    assert set(groups.iloc[split.labelled_train]["race"]) == {"a", "b", "c"}


def test_a_group_of_one_stays_in_training():
    y, groups = labels_and_groups(500)
    groups.loc[7, "race"] = "solo"
    y[7] = 1.0
    split = make_split(y, groups)
    assert 7 in split.train


@pytest.mark.parametrize("kwargs, fragment", [
    ({"label_fraction": 0.0}, "outside (0, 1]"), ({"label_fraction": 1.5}, "outside (0, 1]"),
    ({"test_size": 0.7, "validation_size": 0.4}, "sum to less than 1"),
])
def test_bad_split_settings(kwargs, fragment):
    y, groups = labels_and_groups(300)
    with pytest.raises(InputError) as caught:
        make_split(y, groups, **kwargs)
    assert fragment in str(caught.value)


def test_round_trip_through_dict():
    y, groups = labels_and_groups(400)
    split = make_split(y, groups, label_fraction=0.5, seed=9)
    again = Split.from_dict(split.to_dict())
    assert np.array_equal(again.labelled_train, split.labelled_train) and again.seed == 9


def test_changing_the_label_fraction_keeps_the_same_partition():
    y, groups = labels_and_groups()
    full = make_split(y, groups, seed=5)
    few = make_split(y, groups, seed=5, label_fraction=0.05)
    for part in ("train", "validation", "test", "unlabelled"):
        assert np.array_equal(getattr(full, part), getattr(few, part))
    assert len(few.labelled_train) < len(full.labelled_train)
