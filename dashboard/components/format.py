"""Text for the pages: lists in plain words, Markdown bullets, and data made safe for Markdown.

Numbers are written by core.results.formatting (fmt_pct, fmt_num, fmt_int, fmt_ci), the same
in the dashboard, the report and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence


def words(items: Sequence[str], conjunction: str = "and") -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    items = [str(item) for item in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def bullets(lines: Sequence[str]) -> str:
    """Markdown bullet list."""
    return "\n".join(f"- {line}" for line in lines)


_MARKDOWN_SPECIAL = str.maketrans({ch: f"\\{ch}" for ch in "\\`*_[]$<>#~|"})


def md(text: object) -> str:
    """Text from the data (a file or column name, a value) made safe to put in Markdown:
    characters that Streamlit would read as emphasis, links, HTML or LaTeX are escaped."""
    return str(text).translate(_MARKDOWN_SPECIAL)
