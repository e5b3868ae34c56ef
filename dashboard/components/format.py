"""Numbers and lists as a reviewer reads them: rounded, with units, in plain words."""

from __future__ import annotations

from collections.abc import Sequence

from core.data.profile import readable_number


def pct(value: float | None, digits: int = 0) -> str:
    """0.3125 -> '31%' (or '31.2%' with digits=1); None -> '–'."""
    if value is None:
        return "–"
    return f"{100 * value:.{digits}f}%"


def count(value: int) -> str:
    """30527 -> '30,527'."""
    return f"{value:,}"


def number(value: float) -> str:
    """Readable number: 1,490,400 / 38.6 / 0.0123; whole numbers without decimals; NaN -> '–'."""
    return "–" if value != value else readable_number(value)


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
