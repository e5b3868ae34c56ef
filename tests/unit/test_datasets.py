"""The bundled datasets in assets/ and the module that lists and loads them.

Expected counts come from the raw files in ../shared/datasets (not available on users'
machines, so not read here): Adult 45,222 rows after dropping '?'; COMPAS 6,172 after
ProPublica's filters (1,175 women, 2,809 recidivists, as in their notebook); German 1,000 rows
whose status_sex codes count A91 50, A92 310, A93 548, A94 92, A95 0.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest

from core.data.datasets import BUNDLED_DIR, DatasetCard, list_datasets, load_bundled, load_card
from core.errors import InputError

NAMES = ["adult", "compas", "german"]


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return {name: load_bundled(name) for name in NAMES}


def test_list_datasets_sorted_cards():
    cards = list_datasets()
    assert [c.name for c in cards] == NAMES
    assert all(isinstance(c, DatasetCard) for c in cards)


@pytest.mark.parametrize("name, rows", [("adult", 45_222), ("compas", 6_172), ("german", 1_000)])
def test_row_counts(tables, name, rows):
    assert len(tables[name]) == rows
    assert load_card(name).rows == rows


@pytest.mark.parametrize(
    "name, target, positive, favourable",
    [
        ("adult", "income", ">50K", ">50K"),
        ("compas", "two_year_recid", 1, 0),
        ("german", "credit", "good", "good"),
    ],
)
def test_targets_binary_with_positive_label(tables, name, target, positive, favourable):
    card = load_card(name)
    assert (card.target, card.positive_label, card.favourable_outcome) == (
        target, positive, favourable,
    )
    values = set(tables[name][target].dropna().unique())
    assert len(values) == 2
    assert positive in values and favourable in values
    assert tables[name][target].notna().all()


def test_cards_columns_match_tables_and_name_target_and_sensitive(tables):
    for name in NAMES:
        card = load_card(name)
        df = tables[name]
        assert list(card.columns) == list(df.columns)
        assert card.target in df.columns
        assert card.sensitive and all(col in df.columns for col in card.sensitive)
        assert card.known_issues and card.transformations
        assert card.licence and card.citation and card.url.startswith("https://")


def test_cards_sha256_match_files():
    for card in list_datasets():
        assert hashlib.sha256(card.path.read_bytes()).hexdigest() == card.sha256


def test_column_types_are_plain_strings_or_int64(tables):
    for df in tables.values():
        for col in df.columns:
            dtype = df[col].dtype
            assert dtype == "int64" or pd.api.types.is_string_dtype(dtype), (col, dtype)
            assert not isinstance(dtype, pd.CategoricalDtype)


def test_adult_clean_values(tables):
    df = tables["adult"]
    assert list(df.columns) == [
        "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
        "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
        "hours_per_week", "native_country", "income",
    ]
    strings = df.select_dtypes(exclude="int64")
    assert not strings.isin(["?"]).any().any()
    assert not strings.apply(lambda c: c.str.startswith(" ").any()).any()
    assert set(df["income"]) == {"<=50K", ">50K"}
    assert load_card("adult").sensitive == ("sex", "race")
    assert "age" in df.columns and "split" not in df.columns


FORBIDDEN_COMPAS = [
    "id", "name", "first", "last", "dob", "c_case_number", "r_case_number", "vr_case_number",
    "compas_screening_date", "screening_date", "v_screening_date", "c_jail_in", "c_jail_out",
    "c_offense_date", "c_arrest_date", "r_offense_date", "r_jail_in", "r_jail_out",
    "vr_offense_date", "in_custody", "out_custody", "is_recid", "r_charge_degree",
    "r_charge_desc", "r_days_from_arrest", "violent_recid", "is_violent_recid",
    "vr_charge_degree", "vr_charge_desc", "event", "start", "end", "decile_score.1",
    "priors_count.1",
]
DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")


def test_compas_has_no_identifiers_dates_or_outcome_leaks(tables):
    df = tables["compas"]
    assert not set(FORBIDDEN_COMPAS) & set(df.columns)
    assert not [c for c in df.columns if c.startswith(("r_", "vr_"))]
    for col in df.columns:
        assert not pd.api.types.is_datetime64_any_dtype(df[col]), col
        if df[col].dtype != "int64":
            values = df[col].dropna()
            assert not values.str.contains(DATE_LIKE).any(), col
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
            assert parsed.isna().all(), col


def test_compas_columns_and_propublica_counts(tables):
    df = tables["compas"]
    assert list(df.columns) == [
        "sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
        "priors_count", "c_charge_degree", "c_charge_desc", "decile_score", "score_text",
        "length_of_stay_days", "two_year_recid",
    ]
    assert df["sex"].value_counts().to_dict() == {"Male": 4997, "Female": 1175}
    assert int(df["two_year_recid"].sum()) == 2809
    assert set(df["c_charge_degree"]) == {"F", "M"}
    assert "N/A" not in set(df["score_text"])
    assert (df["length_of_stay_days"] >= 0).all()
    assert load_card("compas").sensitive == ("race", "sex", "age_cat")


def test_german_readable_values_and_sex(tables):
    df = tables["german"]
    assert "status_sex" not in df.columns
    strings = df.select_dtypes(exclude="int64")
    code = re.compile(r"^A\d+$")
    assert not strings.apply(lambda c: c.str.match(code).any()).any()
    assert not strings.apply(lambda c: c.str.endswith(" ").any()).any()
    # A92 (310) + A95 (0) are female; A91 (50) + A93 (548) + A94 (92) are male.
    assert df["sex"].value_counts().to_dict() == {"male": 690, "female": 310}
    assert df["personal_status"].value_counts().to_dict() == {
        "single": 548, "divorced/separated/married": 310, "married/widowed": 92,
        "divorced/separated": 50,
    }
    assert df["credit"].value_counts().to_dict() == {"good": 700, "bad": 300}
    assert df["age"].dtype == "int64"
    card = load_card("german")
    assert card.sensitive == ("sex", "age")
    assert card.cost_matrix["good_predicted_for_bad"] == 5
    assert card.cost_matrix["bad_predicted_for_good"] == 1


def test_unknown_name_raises_input_error_listing_known_names():
    with pytest.raises(InputError) as err:
        load_bundled("adutl")
    assert "adutl" in err.value.message
    assert all(name in err.value.hint for name in NAMES)
    with pytest.raises(InputError):
        load_card("../assets/adult")


def test_name_is_case_insensitive():
    assert load_card(" Adult ").name == "adult"


def test_bundled_dir_is_inside_the_source_tree():
    assert BUNDLED_DIR.name == "assets"
    assert (BUNDLED_DIR.parent / "core" / "data" / "datasets.py").is_file()


def test_compas_raw_fixture_keeps_the_published_layout():
    raw = pd.read_csv(BUNDLED_DIR.parent / "tests" / "fixtures" / "compas_raw_sample.csv")
    assert raw.shape == (300, 53)
    assert {"name", "first", "last", "dob", "age", "race"} <= set(raw.columns)
