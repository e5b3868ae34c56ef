"""Small pieces the pages rely on: readable numbers (core's formatters), words, Markdown escaping."""

from __future__ import annotations

from core.data.profile import readable_number
from core.results.formatting import fmt_pct
from dashboard.components.format import md, words
from dashboard.components.result_words import compact


def test_numbers_and_words_read_naturally():
    assert [readable_number(v) for v in (1490400.0, 38.5467, 17.0, 0.012345)] == ["1,490,400", "38.5", "17",
                                                                                    "0.0123"]
    # An undefined rate reads "n/a" on every page, as in the report (it read "–" on the Data page).
    assert (fmt_pct(0.3125, 0), fmt_pct(0.3125), fmt_pct(None)) == ("31%", "31.2%", "n/a")
    assert (compact(0.571, 0.428, 0.715), compact(0.5, None, None), compact(float("nan"), 0, 1)) == (
        "57.1% (42.8–71.5)", "50.0%", "n/a")
    assert (words(["sex"]), words(["sex", "race"]), words(["a", "b", "c"])) == ("sex", "sex and race", "a, b and c")


def test_text_from_the_data_cannot_become_markdown():
    assert md("income $ per *year* [link](x) <b>") == r"income \$ per \*year\* \[link\](x) \<b\>"
