"""What to audit in a table: the target, its positive label, the sensitive attributes, the
features — and the check that the table can support that audit.

`prepare(frame, spec)` validates a `DatasetSpec` against a table and returns `PreparedData`:
the binary label (1 = positive, 0 = negative, NaN = unlabelled), the sensitive attributes as
text groups, the feature columns with their kinds, and the notes and warnings a reviewer
should read. Every problem a user can fix raises `InputError` with the fix.

Decisions (docs/decisions.md):
- Sensitive attributes are features too, unless the spec lists features without them or
  asks for `unaware` training: published SSL-fairness benchmarks train on them, and the
  attribute-flip counterfactual needs a model that can see them. Unaware training ("fairness
  through unawareness") keeps them out of the features whatever the feature list says, so
  the leakage probes can tell what the representation carries beyond what it was given.
- A numeric sensitive attribute with more than `MAX_GROUPS_NUMERIC` distinct values (age) is
  audited in bins: the spec's `bins` if given, otherwise quartiles with whole-number edges.
  The numeric column itself stays a feature.
- Missing sensitive values form their own group, "(missing)".
- Rows whose target is missing stay, as unlabelled rows for pretraining only.
- Without a positive label: values 1 / true / yes are positive; any other two-valued target
  takes its less frequent value as positive, and a note says so.
- A positive label such as ">= 10" (also ">", "<=", "<") is a threshold on a numeric target:
  the positive rows are those at or above 10, and the label shown reads "wage >= 10". A
  numeric target with more than `MAX_TARGET_VALUES` distinct values needs such a threshold:
  one value against all others (a wage of exactly 10.0) is almost never the question (issue 16).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.data.kinds import FEATURE_KINDS, infer_kind, infer_kinds
from core.data.pii import PiiFinding, normalise_name, pii_of
from core.errors import InputError

if TYPE_CHECKING:
    from core.data.columns import ColumnTable

MISSING_GROUP = "(missing)"
MAX_GROUPS_NUMERIC = 8
MIN_LABELLED_PER_CLASS = 10
#: A numeric target with more distinct values than this needs a threshold (`--positive '>=10'`).
MAX_TARGET_VALUES = 10
_POSITIVE_WORDS = {"1", "1.0", "true", "yes", "y", "t"}


@dataclass(frozen=True)
class DatasetSpec:
    """The reviewer's choices for one table.

    `features=None` means every usable column except the target (identifiers, dates, free
    text, constant and empty columns, and personal data are left out). `bins` maps a numeric
    sensitive attribute to its bin edges. `include_pii` lets flagged personal-data columns
    into features and reports. `unaware` keeps every sensitive attribute out of the features
    (the models never see them; the audit still groups rows by them).
    """

    target: str
    sensitive: tuple[str, ...]
    positive_label: str | None = None
    features: tuple[str, ...] | None = None
    bins: dict[str, tuple[float, ...]] = field(default_factory=dict)
    include_pii: bool = False
    min_group_size: int = 30
    unaware: bool = False

    def to_dict(self) -> dict:
        return {"target": self.target, "sensitive": list(self.sensitive),
                "positive_label": self.positive_label,
                "features": None if self.features is None else list(self.features),
                "bins": {k: list(v) for k, v in self.bins.items()},
                "include_pii": self.include_pii, "min_group_size": self.min_group_size,
                "unaware": self.unaware}

    @classmethod
    def from_dict(cls, data: dict) -> DatasetSpec:
        return cls(target=data["target"], sensitive=tuple(data["sensitive"]),
                   positive_label=data.get("positive_label"),
                   features=None if data.get("features") is None else tuple(data["features"]),
                   bins={k: tuple(v) for k, v in (data.get("bins") or {}).items()},
                   include_pii=bool(data.get("include_pii", False)),
                   min_group_size=int(data.get("min_group_size", 30)),
                   unaware=bool(data.get("unaware", False)))  # studies stored before it: aware


@dataclass
class PreparedData:
    """A validated table, ready to split and encode.

    `frame` holds the original rows (index 0..n-1); `y` is 1.0 / 0.0 / NaN per row;
    `groups` has one text column per sensitive attribute (binned where numeric);
    `features` are the columns the models see, `kinds` the kind of every column.
    """

    spec: DatasetSpec
    frame: pd.DataFrame
    y: np.ndarray
    groups: pd.DataFrame
    features: list[str]
    kinds: dict[str, str]
    pii: list[PiiFinding]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    group_order: dict[str, list[str]] = field(default_factory=dict)

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.y)

    @property
    def withheld_columns(self) -> list[str]:
        """Personal-data columns kept out of features, reports and exports."""
        return [] if self.spec.include_pii else [finding.column for finding in self.pii]


_SENSITIVE_NAMES = ("sex", "gender", "race", "ethnicity", "ethnic_group", "ethnic_origin", "colour", "color",
                    "skin_colour", "skin_color", "age", "age_cat", "age_group", "religion", "religious_belief",
                    "nationality", "citizen", "citizenship", "native_country", "country_of_birth", "disability",
                    "disabled", "handicap", "marital_status", "maritalstatus", "marital", "married",
                    "sexual_orientation", "pregnancy", "pregnant", "foreign_worker")
#: Yes/no columns named after a group ("afam": African American or not) are sensitive too.
_GROUP_NAMES = ("afam", "african_american", "black", "white", "nonwhite", "non_white", "hispanic", "latino",
                "latina", "asian", "native", "indigenous", "minority", "female", "male", "woman", "women", "man",
                "men", "immigrant", "foreign", "foreigner", "muslim", "christian", "jewish", "hindu", "catholic",
                "single", "widowed", "divorced", "senior", "elderly", "young")


def _sensitive_rank(frame: pd.DataFrame, column) -> int | None:
    """The rank of a sensitive-looking column in `_SENSITIVE_NAMES` (group names after them), or None."""
    name = normalise_name(column)
    if name in _SENSITIVE_NAMES:
        return _SENSITIVE_NAMES.index(name)
    if name in _GROUP_NAMES and frame[column].nunique() == 2:
        return len(_SENSITIVE_NAMES) + _GROUP_NAMES.index(name)
    return None


def suggest_sensitive(frame: pd.DataFrame) -> list[str]:
    """Columns whose names match attributes commonly protected by anti-discrimination law.

    A suggestion for a reviewer to confirm, never a decision: the names are `_SENSITIVE_NAMES`
    (sex, race, colour, ethnicity, religion, nationality, disability, marital status, ...) and,
    for two-valued columns, `_GROUP_NAMES` (afam, black, hispanic, female, ...), matched after
    lower-casing and turning separators into underscores; in the order of those lists.
    """
    ranked = [(rank, index, c) for index, c in enumerate(frame.columns)
              if (rank := _sensitive_rank(frame, c)) is not None]
    return [c for _, _, c in sorted(ranked)]


#: Names an outcome column often has, in order of preference.
_TARGET_NAMES = ("target", "label", "outcome", "y", "class", "decision", "result", "response", "approved",
                 "approval", "accepted", "granted", "released", "hired", "admitted", "default", "defaulted",
                 "churn", "survived", "recid", "two_year_recid", "is_recid", "income", "credit", "card")


def suggest_target(frame: pd.DataFrame, kinds: dict[str, str] | None = None,
                   personal: Sequence[str] = ()) -> str:
    """A first guess of the outcome column, for the reviewer to confirm.

    Never an identifier, a date, free text, a constant, a personal-data column (`personal`) or a
    sensitive-looking one (`suggest_sensitive`), unless nothing else is left: a sensitive
    attribute proposed as the target (an arrests table's `citizen`) turns the audit inside
    out. Among the others: the first named like an outcome (`_TARGET_NAMES`, if it has at most
    MAX_TARGET_VALUES values); else the last two-valued column (tables put the outcome last
    more often than first); else the last column with at most MAX_TARGET_VALUES values; else
    the last column left.
    """
    kinds = infer_kinds(frame) if kinds is None else kinds
    columns = list(frame.columns)
    excluded = set(suggest_sensitive(frame)) | set(personal)
    allowed = [c for c in columns if c not in excluded and kinds.get(c) in FEATURE_KINDS]
    if not allowed:
        return str(columns[-1])
    few_valued = [c for c in allowed if frame[c].nunique() <= MAX_TARGET_VALUES]
    named = sorted((_TARGET_NAMES.index(normalise_name(c)), i) for i, c in enumerate(few_valued)
                   if normalise_name(c) in _TARGET_NAMES)
    if named:
        return str(few_valued[named[0][1]])
    two_valued = [c for c in allowed if kinds.get(c) == "boolean"]
    return str((two_valued or few_valued or allowed)[-1])


def prepare(frame: pd.DataFrame | ColumnTable, spec: DatasetSpec) -> PreparedData:
    """Validate `spec` against `frame` and build the audit's inputs (see the module docstring).

    `frame` may be a table read one column at a time (core.data.columns.ParquetColumns): every
    step here looks at one column at a time, and the result's frame then holds the columns that
    are not features (the features are encoded from the file: core.data.study.Study.create_mapped)."""
    if isinstance(frame, pd.DataFrame):
        frame = frame.reset_index(drop=True)
    columns = [str(c) for c in frame.columns]
    _require_column(spec.target, columns, "target")
    if not spec.sensitive:
        raise InputError("No sensitive attribute chosen",
                         "Name at least one column (such as sex or race) whose groups the audit compares")
    for attribute in spec.sensitive:
        _require_column(attribute, columns, "sensitive attribute")
        if attribute == spec.target:
            raise InputError(f"'{attribute}' is both the target and a sensitive attribute",
                             "Choose a sensitive attribute other than the target")
    if len(set(spec.sensitive)) != len(spec.sensitive):
        raise InputError("A sensitive attribute is listed twice", "List each sensitive attribute once")

    notes: list[str] = []
    warnings: list[str] = []
    y, positive_label = _binary_target(frame[spec.target], spec.positive_label, spec.target, notes)
    spec = replace(spec, positive_label=positive_label)
    groups = pd.DataFrame({attribute: _groups_of(frame[attribute], attribute, spec.bins.get(attribute), notes)
                           for attribute in spec.sensitive})
    for attribute in spec.sensitive:
        _check_groups(groups[attribute], attribute, spec.min_group_size, warnings)
    group_order = {attribute: _group_order(frame[attribute], groups[attribute]) for attribute in spec.sensitive}

    kinds, pii = {}, []
    for column in frame.columns:  # one pass, one column at a time
        series = frame[column]
        kinds[column] = infer_kind(series)
        finding = pii_of(column, series) if column != spec.target else None
        if finding is not None:
            pii.append(finding)
    features = _choose_features(frame, spec, kinds, pii, notes)
    if not isinstance(frame, pd.DataFrame):
        frame = frame.read(exclude=features)
    return PreparedData(spec=spec, frame=frame, y=y, groups=groups, features=features, kinds=kinds,
                        pii=pii, notes=notes, warnings=warnings, group_order=group_order)


def _require_column(name: str, columns: list[str], role: str) -> None:
    if name in columns:
        return
    close = difflib.get_close_matches(name, columns, n=1)
    hint = f"Did you mean '{close[0]}'?" if close else f"Columns are: {', '.join(columns[:30])}"
    raise InputError(f"The {role} column '{name}' is not in the table", hint)


def _binary_target(series: pd.Series, positive_label: str | None, target: str,
                   notes: list[str]) -> tuple[np.ndarray, str]:
    """Map the target to 1 (positive) / 0 / NaN (missing); return it and the positive label."""
    labelled = series.dropna()
    values = labelled.astype(str).str.strip()
    if values.empty:
        raise InputError(f"The target '{target}' has no values", "Choose a target column that is filled in")
    threshold = parse_threshold(positive_label, target)
    if threshold is not None:
        y, positive_value = _thresholded_target(series, threshold, target)
        return _checked_labels(y, positive_value, target, notes)
    if is_many_valued_numeric(series):
        suggested = suggest_threshold(series)
        raise InputError(f"The target '{target}' is numeric with {series.nunique()} distinct values: one value "
                         "against all others is rarely the question",
                         f"Give a threshold, e.g. --positive '{suggested}' (its median) to audit "
                         f"'{target} {suggested}' against the rest")
    counts = values.value_counts()
    if positive_label is not None:
        positive_label = str(positive_label).strip()
        matches = [v for v in counts.index if v == positive_label or _same_number(v, positive_label)]
        if not matches:
            shown = ", ".join(f"'{v}'" for v in counts.index[:10])
            raise InputError(f"The positive label '{positive_label}' does not occur in '{target}'",
                             f"Its values are {shown}")
        positive_value = matches[0]
        if len(counts) > 2:
            notes.append(f"Target '{target}' has {len(counts)} values; '{positive_value}' is positive and "
                         "every other value negative.")
    else:
        if len(counts) > 2:
            shown = ", ".join(f"'{v}'" for v in counts.index[:8])
            raise InputError(f"The target '{target}' has {len(counts)} values ({shown}), not two",
                             "Give a positive label (--positive) to audit that value against all others")
        if len(counts) == 2:
            words = [v for v in counts.index if v.lower() in _POSITIVE_WORDS]
            positive_value = words[0] if len(words) == 1 else counts.index[-1]
            if len(words) != 1:
                notes.append(f"No positive label given; '{positive_value}', the less frequent value of "
                             f"'{target}', is taken as positive.")
        else:
            positive_value = counts.index[0]
    if len(counts) < 2:
        raise InputError(f"The target '{target}' has one class only ('{counts.index[0]}')",
                         "A fairness audit needs both outcomes; choose another target or add rows of the other class")
    y = np.full(len(series), np.nan)
    y[labelled.index.to_numpy()] = (values == positive_value).to_numpy(dtype=float)
    return _checked_labels(y, positive_value, target, notes)


def _checked_labels(y: np.ndarray, positive_value: str, target: str, notes: list[str]) -> tuple[np.ndarray, str]:
    """Both classes with enough labelled rows; a note on the unlabelled ones."""
    if np.nanmin(y) == np.nanmax(y):
        raise InputError(f"The target '{target}' has one class only ('{positive_value}' is "
                         f"{'true' if np.nanmax(y) == 1 else 'false'} for every labelled row)",
                         "A fairness audit needs both outcomes; choose another threshold or target")
    n_positive, n_negative = int(np.nansum(y)), int(np.sum(y == 0))
    if min(n_positive, n_negative) < MIN_LABELLED_PER_CLASS:
        raise InputError(
            f"The target '{target}' has {n_positive} positive and {n_negative} negative labelled rows",
            f"Train/validation/test splits need at least {MIN_LABELLED_PER_CLASS} of each class")
    n_missing = int(np.isnan(y).sum())
    if n_missing:
        notes.append(f"{n_missing} rows have no '{target}'; they are used, unlabelled, for pretraining only.")
    return y, positive_value


_THRESHOLD = re.compile(r"^\s*(?:(?P<target>.*?)\s*)?(?P<operator>>=|<=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_COMPARE = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}


@dataclass(frozen=True)
class TargetThreshold:
    """A numeric target made binary: positive where `target OPERATOR value` holds."""

    operator: str
    value: float

    def label(self, target: str) -> str:
        """The positive label as reports show it: "wage >= 10"."""
        return f"{target} {self.operator} {_format_number(self.value)}"

    def positive(self, values: np.ndarray) -> np.ndarray:
        """1.0 where the comparison holds, 0.0 elsewhere (NaN stays NaN)."""
        values = np.asarray(values, dtype=np.float64)
        return np.where(np.isnan(values), np.nan, _COMPARE[self.operator](values, self.value).astype(float))


def parse_threshold(positive_label: str | None, target: str | None = None) -> TargetThreshold | None:
    """">=10", "> 2.5", "wage < 12" -> TargetThreshold; None when the label is not a threshold.

    The target's own name may lead (the label a prepared spec stores: "wage >= 10"), so a
    study saved with a threshold prepares the same rows again.
    """
    if positive_label is None:
        return None
    match = _THRESHOLD.match(str(positive_label))
    if match is None or (match["target"] and match["target"] != target):
        return None
    return TargetThreshold(match["operator"], float(match["value"]))


def positive_outcome(target: str, positive_label: str | None) -> str:
    """The positive outcome in words: "income = >50K", or the threshold label itself ("wage >= 10")."""
    if parse_threshold(positive_label, target) is not None and str(positive_label).startswith(str(target)):
        return str(positive_label)
    return f"{target} = {positive_label}"


def is_many_valued_numeric(series: pd.Series) -> bool:
    """A numeric target with more than MAX_TARGET_VALUES distinct values: it needs a threshold."""
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return bool(numeric and series.nunique() > MAX_TARGET_VALUES)


def suggest_threshold(series: pd.Series) -> str:
    """">= MEDIAN" of a numeric target (rounded to 3 significant digits): a first guess that splits
    the labelled rows in two halves of about equal size."""
    return f">= {float(f'{float(series.dropna().median()):.3g}'):g}"


def threshold_base_rate(series: pd.Series, positive_label: str, target: str | None = None) -> float | None:
    """The share of labelled rows a threshold label makes positive (None if it is not one)."""
    threshold = parse_threshold(positive_label, target)
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy()
    if threshold is None or not len(values):
        return None
    return float(np.mean(threshold.positive(values)))


def _thresholded_target(series: pd.Series, threshold: TargetThreshold, target: str) -> tuple[np.ndarray, str]:
    numeric = pd.to_numeric(series, errors="coerce")
    if (numeric.isna() & series.notna()).any() or pd.api.types.is_bool_dtype(series):
        example = series[numeric.isna() & series.notna()].astype(str).head(1).tolist()
        raise InputError(f"The threshold '{threshold.label(target)}' needs a numeric target, but '{target}' "
                         f"holds values such as '{example[0] if example else series.iloc[0]}'",
                         "Give one of its values as the positive label instead, e.g. --positive yes")
    return threshold.positive(numeric.to_numpy()), threshold.label(target)


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _groups_of(series: pd.Series, attribute: str, bins: tuple[float, ...] | None,
               notes: list[str]) -> pd.Series:
    """The group label of each row for one sensitive attribute, as text."""
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric and (bins is not None or series.nunique() > MAX_GROUPS_NUMERIC):
        edges = _checked_edges(bins, attribute) if bins is not None else _quartile_edges(series)
        labels = _bin_labels(edges)
        binned = pd.cut(series, bins=[-np.inf, *edges, np.inf], labels=labels, right=False)
        notes.append(f"Sensitive attribute '{attribute}' is numeric; audited in bins {', '.join(labels)}.")
        groups = binned.astype(object)
    elif numeric:
        groups = series.map(lambda v: _format_number(v) if pd.notna(v) else None)
    else:
        groups = series.map(lambda v: str(v).strip() if pd.notna(v) else None)
    return groups.where(groups.notna(), MISSING_GROUP).astype(str)


def _group_order(raw: pd.Series, groups: pd.Series) -> list[str]:
    """Groups in the order a reader expects: numeric attributes (and their bins) by value,
    others largest first; "(missing)" last."""
    numeric = pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw)
    present = groups[groups != MISSING_GROUP]
    if numeric:
        order = list(pd.to_numeric(raw[present.index]).groupby(present).median().sort_values().index)
    else:
        counts = present.value_counts()
        order = sorted(counts.index, key=lambda group: (-counts[group], group))
    return order + ([MISSING_GROUP] if (groups == MISSING_GROUP).any() else [])


def _checked_edges(bins: tuple, attribute: str) -> list[float]:
    """The reviewer's bin edges as floats; InputError unless finite and strictly increasing."""
    try:
        edges = [float(edge) for edge in bins]
    except (TypeError, ValueError):
        edges = []
    if not edges or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        shown = ", ".join(str(edge) for edge in list(bins)[:10]) or "none"
        raise InputError(f"The bin edges of '{attribute}' must be finite numbers in increasing order "
                         f"(got {shown})", "Give edges such as 25, 45, 65")
    return edges


def _quartile_edges(series: pd.Series) -> list[float]:
    edges = sorted({float(np.round(q)) for q in series.quantile([0.25, 0.5, 0.75]).dropna()})
    return edges or [float(series.median())]


def _bin_labels(edges: list[float]) -> list[str]:
    shown = [_format_number(e) for e in edges]
    labels = [f"< {shown[0]}"]
    labels += [f"{lo} to < {hi}" for lo, hi in zip(shown[:-1], shown[1:])]
    labels.append(f">= {shown[-1]}")
    return labels


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _check_groups(groups: pd.Series, attribute: str, min_group_size: int, warnings: list[str]) -> None:
    counts = groups.value_counts()
    if len(counts) < 2:
        raise InputError(f"The sensitive attribute '{attribute}' has one group only ('{counts.index[0]}')",
                         "A fairness audit compares groups; choose an attribute with at least two values")
    for group, size in counts.items():
        if size < min_group_size:
            warnings.append(f"Group '{group}' of '{attribute}' has only {size} rows (fewer than "
                            f"{min_group_size}); its metrics will be very uncertain.")


def _choose_features(frame: pd.DataFrame, spec: DatasetSpec, kinds: dict[str, str],
                     pii: list[PiiFinding], notes: list[str]) -> list[str]:
    flagged = {finding.column: finding for finding in pii}
    if spec.features is not None:
        for column in spec.features:
            _require_column(column, list(frame.columns), "feature")
        if spec.target in spec.features:
            raise InputError(f"The target '{spec.target}' is also listed as a feature",
                             "Remove it from the features")
        candidates = list(spec.features)
    else:
        candidates = [c for c in frame.columns if c != spec.target]

    features = []
    for column in candidates:
        kind = kinds[column]
        if spec.unaware and column in spec.sensitive:
            notes.append(f"'{column}' left out of features: unaware training (sensitive attributes are not "
                         "model inputs).")
        elif column in flagged and not spec.include_pii:
            notes.append(f"'{column}' left out: personal data ({flagged[column].reason}).")
        elif kind in ("empty", "constant"):
            notes.append(f"'{column}' dropped: {'every value is missing' if kind == 'empty' else 'it has one value'}.")
        elif kind not in FEATURE_KINDS:
            notes.append(f"'{column}' left out of features: it looks like {_KIND_WORDS[kind]}.")
        else:
            features.append(column)
    if not features:
        raise InputError("No usable feature columns remain",
                         "The table needs at least one numeric or categorical column besides the target")
    return features


_KIND_WORDS = {"datetime": "dates", "text": "free text", "id": "an identifier"}
