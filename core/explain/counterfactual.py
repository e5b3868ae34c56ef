"""Counterfactuals: would the decision change for the same person in another group?

Attribute flip. A sensitive attribute's column is set to a value standing for another group,
everything else kept, and the model asked again:
- categorical attribute (sex): the group's own value (the commonest raw value among the
  group's training rows, which for a categorical attribute is the group's value itself);
- numeric attribute audited in bins (age "< 27", "27-42", ...): the median raw value of the
  target bin's training rows (a typical member of that bin, inside it by construction);
- the "(missing)" group is never a flip target (being unrecorded is not another group);
- an attribute the models do not read (left out of the features) cannot change a decision by
  itself: its flips are reported as `attribute_is_feature: false` and change nothing.
With `with_proxies=True` each detected proxy of the attribute (`core.data.find_proxies` on
the training rows, Cramér's V >= 0.3) is also set, to its commonest value (categorical) or
median (numeric) among the target group's training rows: "the same person, with what
typically goes with that group". It shows how much of the model's use of a group runs
through correlated features; it is a coarser what-if than the attribute alone.

Flip rate of a model for group g of attribute A, over the test rows:
    share of test rows of g whose decision (probability >= 0.5) changes when A alone is set
    to at least one other group's value,
with the share per target group next to it, and the shares of decisions that turn positive
and negative. Vectorised: one encoded copy of the test rows per target group, shared by all
models.

Attribute flip explained (`explain_flip`): the row and its flipped twin (`flipped_readable`, the
same changes in the readable columns) explained by LIME and/or SHAP with the same seed and
settings, so a reviewer sees which attributions move with the group.

Nearest real counterfactual: the closest test row (Euclidean distance in the model's
embedding space, `model.embed`) that belongs to another group of the attribute; reported per
other group, with whether its decision differs and the raw features in which it differs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.spec import MISSING_GROUP
from core.errors import InputError
from core.explain.agreement import LIME, SHAP, explainers_of
from core.explain.context import THRESHOLD, RunContext, display_value
from core.explain.lime_tabular import NUM_SAMPLES, lime_weights
from core.explain.shap_tabular import shap_values


def check_attribute(ctx: RunContext, attribute: str) -> str:
    if attribute not in ctx.sensitive:
        raise InputError(f"'{attribute}' is not a sensitive attribute of this study",
                         f"Sensitive attributes are: {', '.join(ctx.sensitive)}")
    return attribute


def _typical(values: pd.Series, numeric: bool) -> object:
    """Median of a numeric column, commonest value of a categorical one (NaN if all missing)."""
    if numeric:
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        return float(numbers.median()) if len(numbers) else np.nan
    counts = values.dropna().value_counts()
    return counts.index[0] if len(counts) else np.nan


def _is_numeric(ctx: RunContext, column: str) -> bool:
    return ctx.study.encoder.kinds_.get(column, ctx.study.data.kinds.get(column)) == "numeric"


def flip_values(ctx: RunContext, attribute: str) -> dict[str, object]:
    """For each group of `attribute`: the raw value its column is set to in a flip (docstring)."""
    key = ("flip_values", attribute)
    if key not in ctx._cache:
        groups = ctx.study.data.groups[attribute].iloc[ctx.train_rows]
        column = ctx.study.data.frame[attribute].iloc[ctx.train_rows]
        numeric = _is_numeric(ctx, attribute)
        ctx._cache[key] = {str(g): _typical(column[groups.to_numpy() == g], numeric)
                           for g in _groups(ctx, attribute) if g != MISSING_GROUP}
    return ctx._cache[key]


def _groups(ctx: RunContext, attribute: str) -> list[str]:
    return ctx.group_names(attribute)


def proxies(ctx: RunContext, attribute: str) -> list[dict]:
    """Detected proxies of `attribute` among the model's features, on the training rows."""
    from core.data.proxies import find_proxies

    key = ("proxies", attribute)
    if key not in ctx._cache:
        features = ctx.frame.iloc[ctx.train_rows].drop(columns=[attribute], errors="ignore").reset_index(drop=True)
        groups = ctx.study.data.groups[[attribute]].iloc[ctx.train_rows].reset_index(drop=True)
        ctx._cache[key] = [f.to_dict() for f in find_proxies(features, groups)]
    return ctx._cache[key]


def proxy_values(ctx: RunContext, attribute: str) -> dict[str, dict[str, object]]:
    """For each group: {proxy feature: its typical value among the group's training rows}."""
    key = ("proxy_values", attribute)
    if key not in ctx._cache:
        groups = ctx.study.data.groups[attribute].iloc[ctx.train_rows].to_numpy()
        train = ctx.frame.iloc[ctx.train_rows]
        names = [p["feature"] for p in proxies(ctx, attribute)]
        ctx._cache[key] = {g: {name: _typical(train[name][groups == g], _is_numeric(ctx, name)) for name in names}
                           for g in flip_values(ctx, attribute)}
    return ctx._cache[key]


def _changes(ctx: RunContext, attribute: str, group: str, with_proxies: bool) -> dict[str, object]:
    """Model-input columns a flip to `group` sets, and their values."""
    changes = {}
    if attribute in ctx.model_frame.columns:
        changes[attribute] = flip_values(ctx, attribute)[group]
    if with_proxies:
        changes.update(proxy_values(ctx, attribute)[group])
    return changes


def _flipped(ctx: RunContext, rows: np.ndarray, attribute: str, group: str, with_proxies: bool) -> np.ndarray:
    """The encoded `rows` with the attribute (and proxies) set for `group`.

    The encoder encodes each column on its own, so only the changed columns' blocks are
    rewritten, with the encoding of the new value (exactly `encoder.transform` of the edited
    raw rows, without re-encoding the untouched columns)."""
    X = ctx.study.X[rows].copy()
    changes = _changes(ctx, attribute, group, with_proxies)
    if changes:
        one = ctx.model_frame.iloc[[int(rows[0])]].copy()
        for column, value in changes.items():
            one[column] = _repeat(value, 1, _is_numeric(ctx, column))
        encoded = ctx.study.encoder.transform(one)[0]
        for column in changes:
            block = ctx.study.encoder.column_slices_[column]
            X[:, block] = encoded[block]
    return X


def _repeat(value: object, n: int, numeric: bool) -> np.ndarray:
    """`value` for n rows: float for a numeric feature; else the raw value itself (the encoder
    reads str(value), as it did for the value in training)."""
    if numeric:
        return np.full(n, np.nan if value is None else float(value))
    return np.repeat(np.asarray([value], dtype=object), n)


def flip_row(ctx: RunContext, row_id: int, model_name: str | None = None, *, attributes: list[str] | None = None,
             with_proxies: bool = False) -> list[dict]:
    """The row with each sensitive attribute set to each other group's value: probability and
    decision after. One entry per (attribute, target group)."""
    row = ctx.check_row(row_id)
    model_name = model_name or ctx.default_model
    model = ctx.model(model_name)
    before = float(model.predict_proba(ctx.study.X[[row]])[0])
    out = []
    for attribute in attributes or ctx.sensitive:
        check_attribute(ctx, attribute)
        own = str(ctx.study.data.groups[attribute].iloc[row])
        targets = [g for g in flip_values(ctx, attribute) if g != own]
        if not targets:
            continue
        after = model.predict_proba(np.concatenate([_flipped(ctx, np.array([row]), attribute, g, with_proxies)
                                                    for g in targets]))
        is_feature = attribute in ctx.model_frame.columns
        proxy_names = [p["feature"] for p in proxies(ctx, attribute)] if with_proxies else []
        for group, probability in zip(targets, after):
            entry = {"attribute": attribute, "from": own, "to": group,
                     "value": display_value(flip_values(ctx, attribute)[group]) if is_feature else None,
                     "probability": float(probability), "probability_before": before,
                     "prediction": int(probability >= THRESHOLD), "prediction_before": int(before >= THRESHOLD),
                     "changed": bool((probability >= THRESHOLD) != (before >= THRESHOLD)),
                     "attribute_is_feature": is_feature, "with_proxies": with_proxies}
            if with_proxies:
                entry["proxies"] = {name: display_value(proxy_values(ctx, attribute)[group][name])
                                    for name in proxy_names}
            out.append(entry)
    return out


def flip_rates(ctx: RunContext, model_names: list[str] | None = None, *, attributes: list[str] | None = None,
               with_proxies: bool = False) -> dict:
    """Counterfactual flip rate per model, attribute and group over the test rows (docstring).

    Returns {"with_proxies", "n_test", "rates": [{"model", "attribute", "group", "n",
    "flip_rate", "to_positive", "to_negative", "by_target": {group: rate},
    "mean_abs_change"}]} where to_positive / to_negative are the shares of the group's rows
    whose decision turns positive / negative under at least one flip, and mean_abs_change is the
    mean over rows and targets of |probability after - before|."""
    model_names = model_names or ctx.model_names
    for name in model_names:
        ctx.model(name)
    rows = ctx.test_rows
    before = {name: ctx.probabilities(name, rows) for name in model_names}
    result = []
    for attribute in attributes or ctx.sensitive:
        check_attribute(ctx, attribute)
        own = ctx.study.data.groups[attribute].to_numpy()[rows].astype(str)
        targets = list(flip_values(ctx, attribute))
        after = {}
        for target in targets:  # encode once per target group, shared by the models
            X = _flipped(ctx, rows, attribute, target, with_proxies)
            for name in model_names:
                after[name, target] = ctx.model(name).predict_proba(X)
        for name in model_names:
            decided = before[name] >= THRESHOLD
            changed = np.zeros((len(targets), len(rows)), dtype=bool)
            delta = np.full((len(targets), len(rows)), np.nan)
            for t, target in enumerate(targets):
                applies = own != target
                new = after[name, target] >= THRESHOLD
                changed[t] = applies & (new != decided)
                delta[t] = np.where(applies, np.abs(after[name, target] - before[name]), np.nan)
            any_change = changed.any(axis=0)
            for group in _groups(ctx, attribute):
                members = own == group
                n = int(members.sum())
                if n == 0:
                    continue
                by_target = {target: float(changed[t, members].mean()) for t, target in enumerate(targets)
                             if target != group}
                result.append({
                    "model": name, "attribute": attribute, "group": group, "n": n,
                    "flip_rate": float(any_change[members].mean()),
                    "to_positive": float((any_change & ~decided)[members].mean()),
                    "to_negative": float((any_change & decided)[members].mean()),
                    "by_target": by_target,
                    "mean_abs_change": float(np.nanmean(delta[:, members])) if by_target else 0.0})
    return {"with_proxies": with_proxies, "n_test": int(len(rows)), "rates": result}


def nearest_counterfactuals(ctx: RunContext, row_id: int, attribute: str, model_name: str | None = None) -> list[dict]:
    """Per other group of `attribute`: the closest test row of that group in the model's
    embedding space, its decision, and the features in which it differs from the row."""
    row = ctx.check_row(row_id)
    check_attribute(ctx, attribute)
    model_name = model_name or ctx.default_model
    embedding = ctx.embeddings(model_name)
    groups = ctx.study.data.groups[attribute].to_numpy().astype(str)
    own = groups[row]
    candidates = ctx.test_rows[ctx.test_rows != row]
    distances = np.sqrt(((embedding[candidates] - embedding[row]) ** 2).sum(axis=1, dtype=np.float64))
    probability = float(ctx.probabilities(model_name, np.array([row]))[0])
    raw = ctx.frame
    out = []
    for group in _groups(ctx, attribute):
        if group == own:
            continue
        mask = groups[candidates] == group
        if not mask.any():
            continue
        best = int(np.argmin(np.where(mask, distances, np.inf)))
        other = int(candidates[best])
        other_probability = float(ctx.probabilities(model_name, np.array([other]))[0])
        differences = [{"feature": c, "value": display_value(raw[c].iloc[row]),
                        "counterfactual_value": display_value(raw[c].iloc[other])}
                       for c in raw.columns if not _same(raw[c].iloc[row], raw[c].iloc[other])]
        out.append({"attribute": attribute, "from": own, "group": group, "row_id": other,
                    "distance": float(distances[best]), "probability": other_probability,
                    "prediction": int(other_probability >= THRESHOLD),
                    "decision_differs": bool((other_probability >= THRESHOLD) != (probability >= THRESHOLD)),
                    "y_true": _label(ctx, other), "differences": differences})
    return sorted(out, key=lambda entry: entry["distance"])


def _same(a: object, b: object) -> bool:
    a, b = display_value(a), display_value(b)
    return a == b


def _label(ctx: RunContext, row: int) -> int | None:
    y = ctx.study.data.y[row]
    return None if np.isnan(y) else int(y)


def flipped_readable(ctx: RunContext, row: int, attribute: str, group: str, with_proxies: bool = False) -> np.ndarray:
    """Row `row` in LIME's matrix form with the attribute (and proxies) set for `group`: the
    readable twin of `_flipped`, the person LIME and SHAP explain after the flip."""
    frame = ctx.frame.iloc[[row]].copy()
    for column, value in _changes(ctx, attribute, group, with_proxies).items():
        if column in frame.columns:  # a withheld column is never explained
            frame[column] = _repeat(value, 1, _is_numeric(ctx, column))
    return ctx.codec.to_lime(frame)[0]


def _attributions(ctx: RunContext, model_name: str, row: int, z: np.ndarray, names: tuple[str, ...],
                  num_samples: int, seed: int) -> dict:
    """{"lime": weights (columns,), "shap": {"values", "base_value", "output"}} of the readable row `z`."""
    out: dict = {}
    if LIME in names:
        out[LIME] = lime_weights(ctx, model_name, row, num_samples, seed, z=z)["weights"]
    if SHAP in names:
        out[SHAP] = shap_values(ctx, model_name, row, seed, z=z)
    return out


def flipped_attributions(ctx: RunContext, row_id: int, model_name: str | None, attribute: str, to: str, *,
                         explainer: str = "both", with_proxies: bool = False, num_samples: int = NUM_SAMPLES,
                         seed: int = 0) -> dict:
    """The flipped row only, explained: {"weights": [{"feature", "weight"}] (LIME, if it ran),
    "shap": {"values": [{"feature", "value"}], "base_value"} (if SHAP ran)}."""
    row = ctx.check_row(row_id)
    names = explainers_of(explainer)
    _check_target(ctx, attribute, to)
    model_name = model_name or ctx.default_model
    ctx.model(model_name)
    found = _attributions(ctx, model_name, row, flipped_readable(ctx, row, attribute, to, with_proxies), names,
                          num_samples, seed)
    return _as_lists(ctx, found)


def _check_target(ctx: RunContext, attribute: str, to: str) -> None:
    check_attribute(ctx, attribute)
    if to not in flip_values(ctx, attribute):
        raise InputError(f"'{to}' is not a group of '{attribute}' to flip to",
                         f"Groups are: {', '.join(flip_values(ctx, attribute))}")


def _as_lists(ctx: RunContext, found: dict) -> dict:
    columns = ctx.codec.columns
    out: dict = {}
    if LIME in found:
        out["weights"] = [{"feature": c, "weight": float(w)} for c, w in zip(columns, found[LIME])]
    if SHAP in found:
        out["shap"] = {"values": [{"feature": c, "value": float(v)} for c, v in zip(columns, found[SHAP]["values"])],
                       "base_value": found[SHAP]["base_value"]}
    return out


def explain_flip(ctx: RunContext, row_id: int, model_name: str | None, attribute: str, to: str, *,
                 explainer: str = "both", with_proxies: bool = False, num_samples: int = NUM_SAMPLES,
                 seed: int = 0) -> dict:
    """The row and its flip to group `to` of `attribute`, explained by LIME and/or SHAP (same seed,
    same settings), per feature side by side.

    Returns {"attribute", "from", "to", "explainers", "with_proxies", "probability_before",
    "probability", "original": {"weights"?, "shap"?}, "flipped": {...} (as `flipped_attributions`),
    "table": [{"feature", "value", "flipped_value", "lime_original", "lime_flipped",
    "shap_original", "shap_flipped"}]} (None where an explainer did not run), rows ordered by
    the largest change of any explainer's attribution."""
    row = ctx.check_row(row_id)
    names = explainers_of(explainer)
    _check_target(ctx, attribute, to)
    model_name = model_name or ctx.default_model
    model = ctx.model(model_name)
    original, flipped = ctx.lime_matrix[row], flipped_readable(ctx, row, attribute, to, with_proxies)
    sides = {"original": _attributions(ctx, model_name, row, original, names, num_samples, seed),
             "flipped": _attributions(ctx, model_name, row, flipped, names, num_samples, seed)}
    after = ctx.codec.to_frame(flipped[None, :])
    table = []
    for j, column in enumerate(ctx.codec.columns):
        entry = {"feature": column, "value": display_value(ctx.frame[column].iloc[row]),
                 "flipped_value": display_value(after[column].iloc[0]) if column in _changes(
                     ctx, attribute, to, with_proxies) else display_value(ctx.frame[column].iloc[row])}
        for name in (LIME, SHAP):
            for side, found in sides.items():
                value = found.get(name)
                value = None if value is None else (value["values"] if name == SHAP else value)[j]
                entry[f"{name}_{side}"] = None if value is None else float(value)
        table.append(entry)
    table.sort(key=lambda e: -max(abs(e[f"{n}_flipped"] - e[f"{n}_original"]) for n in names))
    return {"attribute": attribute, "from": str(ctx.study.data.groups[attribute].iloc[row]), "to": to,
            "explainers": list(names), "with_proxies": with_proxies,
            "probability_before": float(model.predict_proba(ctx.study.X[[row]])[0]),
            "probability": float(model.predict_proba(_flipped(ctx, np.array([row]), attribute, to, with_proxies))[0]),
            "original": _as_lists(ctx, sides["original"]), "flipped": _as_lists(ctx, sides["flipped"]),
            "table": table}
