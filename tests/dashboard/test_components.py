"""Small pieces the pages rely on: readable numbers, Markdown escaping."""

from __future__ import annotations

from dashboard.components.format import md, number, pct, words


def test_numbers_and_words_read_naturally():
    assert [number(v) for v in (1490400.0, 38.5467, 17.0, 0.012345)] == ["1,490,400", "38.5", "17", "0.0123"]
    assert (pct(0.3125), pct(0.3125, 1), pct(None)) == ("31%", "31.2%", "–")
    assert (words(["sex"]), words(["sex", "race"]), words(["a", "b", "c"])) == ("sex", "sex and race", "a, b and c")


def test_text_from_the_data_cannot_become_markdown():
    assert md("income $ per *year* [link](x) <b>") == r"income \$ per \*year\* \[link\](x) \<b\>"
