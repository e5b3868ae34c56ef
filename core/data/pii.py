"""Find columns that hold personal data, by their name and by their content.

A flagged column is left out of features, reports and exports unless the reviewer opts in.
Detectors (each reports why it fired):

- by name: person names (name, first, last, surname, ...), e-mail, phone, date of birth,
  national identifiers (ssn, passport, national_id, ...), street address, IP address;
- by content, on a sample of the column's non-missing values:
  - e-mail addresses: at least half the values match `local@domain.tld`;
  - phone numbers: at least half are 7-15 digits written with phone punctuation (+, spaces,
    dashes, brackets), in a text column;
  - national-id-like numbers: at least half match a US SSN (`ddd-dd-dddd`) or a long digit
    code with separators (e.g. `dd.dd.dd-ddd.dd`);
  - dates of birth: a date column whose dates all lie at least 10 years in the past, after
    1900, with the middle half of them spread over at least 8 years (event dates cluster);
  - person names: at least 80% of values are one to four alphabetic words, more than half
    of them distinct, and at least 20 distinct values;
  - free text: long, mostly distinct values with spaces (kind `text`), which may contain
    anything.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import pandas as pd

from core.data.kinds import SAMPLE_SIZE, infer_kind

PII_KINDS = ("person_name", "email", "phone", "date_of_birth", "national_id", "address",
             "ip_address", "free_text")


@dataclass(frozen=True)
class PiiFinding:
    """One column flagged as personal data: its kind and the evidence."""

    column: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"column": self.column, "kind": self.kind, "reason": self.reason}


_NAME_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("date_of_birth", re.compile(r"^(dob|d_o_b|birth_?date|date_?of_?birth|birthday|born(_on)?)$")),
    ("person_name", re.compile(r"^((full|first|last|given|family|middle|sur|maiden|user)_?name|name|"
                               r"first|last|surname|forename|fname|lname|patient|client_name)$")),
    ("email", re.compile(r"^(e_?mail(_?address)?|mail)$")),
    ("phone", re.compile(r"^(phone|telephone_number|tel|mobile|cell|phone_?(number|no)|fax)$")),
    ("national_id", re.compile(r"^(ssn|social_security(_number)?|national_?id|nin|passport(_?(no|number))?|"
                               r"tax_?id|driver_?licen[cs]e|licen[cs]e_number|insurance_number|nhs_number)$")),
    ("address", re.compile(r"^((street|home|postal|mailing)_?address|address|street|zip_?code|postcode|"
                           r"post_code)$")),
    ("ip_address", re.compile(r"^(ip|ip_?address)$")),
]

_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_LONG_ID = re.compile(r"^\d{2,6}([ .-]\d{2,6}){2,}$")
_PERSON_NAME = re.compile(r"^[A-Za-zÀ-ÿ'’.-]+( [A-Za-zÀ-ÿ'’.-]+){0,3}$")


def normalise_name(column: str) -> str:
    """Lower-case a column name and turn separators into underscores (`First Name` -> `first_name`)."""
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", str(column)).lower()
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def scan_pii(frame: pd.DataFrame) -> list[PiiFinding]:
    """Flag each column that holds personal data; a column appears at most once."""
    findings = [pii_of(column, frame[column]) for column in frame.columns]
    return [finding for finding in findings if finding is not None]


def pii_of(column: str, series: pd.Series) -> PiiFinding | None:
    """Whether one column holds personal data, by its name, else by its values (None if neither)."""
    return _by_name(column) or _by_content(column, series)


def _by_name(column: str) -> PiiFinding | None:
    normalised = normalise_name(column)
    for kind, pattern in _NAME_RULES:
        if pattern.match(normalised):
            return PiiFinding(column, kind, f"the column name '{column}' suggests {kind.replace('_', ' ')}")
    return None


def _by_content(column: str, series: pd.Series) -> PiiFinding | None:
    values = series.dropna()
    if values.empty:
        return None
    if pd.api.types.is_datetime64_any_dtype(series):
        return _dates_of_birth(column, values)
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    text = values.astype(str).str.strip()
    if len(text) > SAMPLE_SIZE:
        text = text.sample(SAMPLE_SIZE, random_state=0)
    share = lambda pattern: float(text.str.match(pattern).mean())  # noqa: E731
    kind = infer_kind(series)
    if kind == "datetime":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, errors="coerce", format="mixed").dropna()
        return _dates_of_birth(column, parsed)
    if share(_EMAIL) >= 0.5:
        return PiiFinding(column, "email", f"{share(_EMAIL):.0%} of values look like e-mail addresses")
    if share(_SSN) >= 0.5 or share(_LONG_ID) >= 0.5:
        rate = max(share(_SSN), share(_LONG_ID))
        return PiiFinding(column, "national_id", f"{rate:.0%} of values look like national identity numbers")
    digits = text.str.count(r"\d")
    phone_rate = float((text.str.match(_PHONE) & digits.between(7, 15)).mean())
    if phone_rate >= 0.5:
        return PiiFinding(column, "phone", f"{phone_rate:.0%} of values look like phone numbers")
    if kind == "text":
        return PiiFinding(column, "free_text", "free text may contain personal details")
    name_rate = share(_PERSON_NAME)
    n_distinct = text.nunique()
    if name_rate >= 0.8 and n_distinct >= 20 and n_distinct / len(text) > 0.5 and text.str.contains(" ").mean() > 0.5:
        return PiiFinding(column, "person_name", f"{name_rate:.0%} of values look like person names")
    return None


def _dates_of_birth(column: str, dates: pd.Series) -> PiiFinding | None:
    """Birth dates are all well in the past and, unlike event dates, spread over decades."""
    if dates.empty:
        return None
    years = pd.to_datetime(dates).dt.year
    newest_allowed = pd.Timestamp.now().year - 10
    interquartile_years = years.quantile(0.75) - years.quantile(0.25)
    if years.max() <= newest_allowed and years.min() >= 1900 and interquartile_years >= 8:
        return PiiFinding(column, "date_of_birth",
                          f"dates from {years.min()} to {years.max()}, the middle half spread over "
                          f"{interquartile_years:.0f} years, look like dates of birth")
    return None
