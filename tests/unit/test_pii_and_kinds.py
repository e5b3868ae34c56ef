"""Column kinds, the personal-data scan (on the raw COMPAS layout) and the proxy scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.kinds import infer_kind
from core.data.loading import read_table
from core.data.pii import scan_pii
from core.data.proxies import cramers_v, find_proxies

RAW_COMPAS = Path(__file__).resolve().parents[1] / "fixtures" / "compas_raw_sample.csv"


def test_raw_compas_flags_names_and_birth_dates_but_not_age_or_race():
    frame = read_table(RAW_COMPAS).frame
    flagged = {f.column: f.kind for f in scan_pii(frame)}
    assert {"name", "first", "last", "dob"} <= set(flagged)
    assert flagged["name"] == flagged["first"] == flagged["last"] == "person_name"
    assert flagged["dob"] == "date_of_birth"
    for column in ("age", "race", "sex", "age_cat", "priors_count", "c_jail_in", "screening_date"):
        assert column not in flagged, column


def test_content_detection_works_when_names_give_nothing_away():
    frame = read_table(RAW_COMPAS).frame[["name", "dob", "age"]]
    frame.columns = ["col_a", "col_b", "col_c"]
    flagged = {f.column: f.kind for f in scan_pii(frame)}
    assert flagged == {"col_a": "person_name", "col_b": "date_of_birth"}


def test_email_phone_national_id_and_free_text_by_content():
    n = 60
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "contact": [f"user{i}@example.org" for i in range(n)],
        "reach": [f"+44 20 7946 {1000 + i}" for i in range(n)],
        "code": [f"{rng.integers(100, 999)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}" for _ in range(n)],
        "comment": [f"customer {i} said the service was slow and asked for a call back" for i in range(n)],
        "score": rng.normal(size=n),
        "grade": rng.choice(["a", "b", "c"], size=n),
    })
    flagged = {f.column: f.kind for f in scan_pii(frame)}
    assert flagged == {"contact": "email", "reach": "phone", "code": "national_id", "comment": "free_text"}


def test_kinds():
    n = 100
    assert infer_kind(pd.Series(np.arange(n), name="row_id")) == "id"
    assert infer_kind(pd.Series(np.random.default_rng(0).normal(size=n))) == "numeric"
    assert infer_kind(pd.Series(["x", "y"] * 50)) == "boolean"
    assert infer_kind(pd.Series(["a", "b", "c"] * 40)) == "categorical"
    assert infer_kind(pd.Series(["2020-01-%02d" % (i % 28 + 1) for i in range(n)])) == "datetime"
    assert infer_kind(pd.Series([None] * n, dtype=object)) == "empty"
    assert infer_kind(pd.Series([7] * n)) == "constant"
    assert infer_kind(pd.Series([f"CASE{i:05d}" for i in range(n)])) == "id"


def test_cramers_v_bounds_and_planted_proxy():
    rng = np.random.default_rng(1)
    sex = pd.Series(rng.choice(["F", "M"], size=2000))
    copy = sex.map({"F": "wife", "M": "husband"})
    noise = pd.Series(rng.choice(["p", "q", "r"], size=2000))
    assert cramers_v(sex, copy) == 1.0
    assert cramers_v(sex, noise) < 0.1
    numeric_proxy = pd.Series(np.where(sex == "F", 1.0, 5.0) + rng.normal(scale=0.5, size=2000))
    findings = find_proxies(pd.DataFrame({"role": copy, "noise": noise, "height": numeric_proxy}),
                            pd.DataFrame({"sex": sex}))
    assert [f.feature for f in findings] == ["role", "height"]
    assert findings[0].strength == "strong" and 0 < findings[0].mutual_information <= 1
