"""Numbers as a reviewer reads them, the same in the dashboard, the report and the CLI.

Rates are percentages (one decimal by default), gaps and differences have two decimals (three
when two would show 0.00), counts have thousands separators, negative numbers use the minus
sign (U+2212), and an undefined value reads "n/a", never 0 and never a dash. Exact values stay
in report.json and the downloads.
"""

from __future__ import annotations

import math
from typing import Any

from core.vocabulary import NOT_AVAILABLE

MINUS = "\u2212"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_num(value: Any, digits: int = 2) -> str:
    """A gap or difference for reading: 2 decimals, 3 when 2 would hide a non-zero value."""
    if not is_number(value):
        return NOT_AVAILABLE
    if abs(value) < 1e-12:  # floating-point noise of a difference of equal values
        value = 0.0
    if value != 0 and abs(value) < 0.5 * 10 ** -digits:
        digits += 1
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", MINUS)


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A rate in [0, 1] as a percentage."""
    if not is_number(value):
        return NOT_AVAILABLE
    return f"{100 * value:.{digits}f}%".replace("-", MINUS)


def fmt_int(value: Any) -> str:
    return f"{int(value):,}" if is_number(value) else NOT_AVAILABLE


def fmt_ci(ci: Any, fmt=fmt_num) -> str:
    """"a to b", or "n/a" when there is no interval."""
    if not ci or len(ci) != 2 or not all(is_number(v) for v in ci):
        return NOT_AVAILABLE
    return f"{fmt(ci[0])} to {fmt(ci[1])}"


def ci_label(confidence: Any) -> str:
    """"95% CI" for a confidence of 0.95 (ReportView.confidence), plain "CI" when it is unknown."""
    return f"{round(100 * confidence):d}% CI" if is_number(confidence) else "CI"


def ci_includes_zero(ci: Any) -> bool | None:
    if not ci or len(ci) != 2 or not all(is_number(v) for v in ci):
        return None
    return ci[0] <= 0 <= ci[1]
