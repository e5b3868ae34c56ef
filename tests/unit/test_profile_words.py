"""The table's own words (issue 17, item 10): year columns read "1997 to 2002", never "1,997 to 2,002";
the negative outcome is the table's word ("No"), recorded in report.json's study, not "not Yes"."""

import pandas as pd

from core.data import DatasetSpec, open_source
from core.data.profile import looks_like_years, negative_label, profile_columns, readable_number
from core.data.study import Study
from core.run.assemble import study_summary
from core.run.config import AuditConfig


def _summary(frame: pd.DataFrame, column: str) -> str:
    return next(r["summary"] for r in profile_columns(frame, pii_columns={}) if r["column"] == column)


def test_a_year_column_has_no_thousands_separators():
    frame = pd.DataFrame({"year": [1997, 1998, 2002, 2000, None], "income": [1200.0, 30500.0, 2000.0, 1500.0, 900.0]})
    assert _summary(frame, "year") == "1997 to 2002, mean 1999"
    assert "," not in _summary(frame, "year").split(", mean")[0]


def test_counts_and_amounts_keep_their_separators():
    frame = pd.DataFrame({"income": [1200.0, 30500.0, 2000.0, 1500.0], "amount": [1500, 1998, 2001.5, 2050]})
    assert _summary(frame, "income") == "1,200 to 30,500, mean 8,800"
    assert _summary(frame, "amount").startswith("1,500 to 2,050")  # 2001.5 is no year: the column is amounts
    assert readable_number(13492.0) == "13,492" and readable_number(1999.0, grouping=False) == "1999"


def test_what_counts_as_years():
    assert looks_like_years(pd.Series([1850, 2099]))
    assert not looks_like_years(pd.Series([1997, 2002.5]))
    assert not looks_like_years(pd.Series([1200, 2002]))  # 1200 is out of range: a count
    assert not looks_like_years(pd.Series([None], dtype=float))


def test_the_negative_label_is_the_tables_own_word():
    assert negative_label(pd.Series(["Yes", "No", None, "Yes"], name="approved"), "Yes") == "No"
    assert negative_label(pd.Series([1.0, 0.0, 1.0], name="recid"), "1") == "0"
    assert negative_label(pd.Series(["a", "b", "c"], name="grade"), "a") == "not a"  # every other value
    assert negative_label(pd.Series([8.0, 12.0, 15.0], name="wage"), "wage >= 10") == "not wage >= 10"


def test_report_study_records_the_negative_label():
    study = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex",), positive_label="good"),
                         seed=0)
    summary = study_summary(study, AuditConfig(data="german", target="credit", sensitive=["sex"]))
    assert (summary["positive_label"], summary["negative_label"]) == ("good", "bad")
