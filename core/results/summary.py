"""The plain-language summary a stakeholder reads first, as structured items.

`summarize(report)` turns a report.json dict into a list of
`{"level": "finding" | "warning" | "info", "topic": ..., "text": ...}` items, in reading
order; the HTML report and the dashboard draw the same list. Rules (docs/report.md):

- The headline is the largest equalized-odds or demographic-parity gap over the single
  sensitive attributes and all models, named with its attribute, model, the two groups at
  the extremes (`gaps[attr]["between"]`) and its interval. Whether those two groups really
  differ is read from the *signed* pair interval (`between[gap]["pair_ci"]`): a max - min
  gap's own interval sits above 0 even when groups do not differ (docs/metrics.md).
- Every SSL model is compared with the supervised baseline on that same gap with the paired
  bootstrap (`compared_with_supervised`): "narrowed" / "widened" only when the interval of
  the difference excludes 0, otherwise "no clear difference".
- A model whose overall selection rate is 0 or 1 (or within `NEAR_DEGENERATE` of it) is
  flagged: its gaps in selection rate are 0 by construction, which is not fairness. So is a
  model whose balanced accuracy is not clearly above chance (interval reaching 0.5).
- Numbers are rounded for reading (rates as percentages with one decimal, gaps with two
  decimals, three when two would show 0.00); exact values stay in report.json. Undefined
  values read "n/a", never 0.
"""

from __future__ import annotations

from typing import Any

from core.results.formatting import ci_includes_zero, ci_label, fmt_ci, fmt_int, fmt_num, fmt_pct, is_number

HEADLINE_GAPS = ("equalized_odds_difference", "demographic_parity_difference")
GAP_WORDS = {
    "equalized_odds_difference": "equalized-odds gap",
    "demographic_parity_difference": "demographic-parity gap",
    "equal_opportunity_difference": "equal-opportunity gap",
    "fpr_difference": "false-positive-rate gap",
    "accuracy_difference": "accuracy gap",
    "worst_group_accuracy": "worst-group accuracy",
    "mean_subgroup_gap": "mean subgroup gap",
}
RATE_WORDS = {"tpr": "true-positive rate", "fpr": "false-positive rate", "selection_rate": "selection rate",
              "accuracy": "accuracy", "fnr": "false-negative rate", "precision": "precision"}
NEAR_DEGENERATE = 0.02  # selection rate within 2 points of 0 or 1: the model barely tells rows apart
UNTRUSTED_EXCLUDED = 0.05  # more undefined bootstrap replicates than this share: interval unreliable
SUPERVISED = "supervised"


# -- report access --------------------------------------------------------------------------
def attributes(report: dict) -> list[str]:
    """The single sensitive attributes, in study order (intersections are the other partitions)."""
    names = (report.get("study") or {}).get("sensitive")
    if names:
        return list(names)
    first = (report.get("models") or [{}])[0]
    return [key for key in (first.get("gaps") or {}) if " & " not in key]


def intersections(report: dict) -> list[str]:
    first = (report.get("models") or [{}])[0]
    return [key for key in (first.get("gaps") or {}) if " & " in key]


def group_row(model: dict, partition: str, group: str | None) -> dict | None:
    for row in (model.get("groups") or {}).get(partition) or []:
        if row.get("group") == group:
            return row
    return None


def positive_label(report: dict) -> str:
    label = (report.get("study") or {}).get("positive_label")
    return f"\u201c{label}\u201d" if label not in (None, "") else "the positive label"


def degeneracy(model: dict) -> str | None:
    """"all" / "none" when the model predicts the positive label for every / no row,
    "nearly all" / "nearly none" within NEAR_DEGENERATE of that, else None."""
    rate = (model.get("overall") or {}).get("selection_rate")
    if not is_number(rate):
        return None
    if rate >= 1:
        return "all"
    if rate <= 0:
        return "none"
    if rate >= 1 - NEAR_DEGENERATE:
        return "nearly all"
    if rate <= NEAR_DEGENERATE:
        return "nearly none"
    return None


def _rate_gloss(metric: str, positive: str) -> str:
    return {"tpr": f"the share of rows truly {positive} that the model predicts {positive}",
            "fpr": f"the share of rows truly not {positive} that the model predicts {positive}",
            "selection_rate": f"the share of rows the model predicts {positive}"}.get(metric, "")


def quote(group: Any) -> str:
    return f"\u201c{group}\u201d"


def _share(model: dict, report: dict) -> str:
    """"every one of the 200 test rows" / "99.5% of the 200 test rows" / "none of ..."."""
    overall = model.get("overall") or {}
    rate, n = overall.get("selection_rate"), fmt_int(overall.get("n"))
    if rate == 1:
        return f"every one of the {n} test rows"
    if rate == 0:
        return f"none of the {n} test rows"
    return f"{fmt_pct(rate)} of the {n} test rows"


def _group_n(model: dict, partition: str, group: str | None) -> str:
    row = group_row(model, partition, group)
    if row is None or not is_number(row.get("n")):
        return ""
    small = ", a small group" if row.get("small") else ""
    return f" (n = {fmt_int(row['n'])}{small})"


def _item(level: str, topic: str, text: str, **extra: Any) -> dict:
    return {"level": level, "topic": topic, "text": text, **extra}


# -- the summary -------------------------------------------------------------------------------
def largest_gap(report: dict, partitions: list[str] | None = None) -> dict | None:
    """The largest headline gap over `partitions` (default: single attributes) and models:
    {"model", "attribute", "gap", "value"}; first in model, attribute, gap order on a tie."""
    best = None
    for model in report.get("models") or []:
        for partition in partitions if partitions is not None else attributes(report):
            gaps = (model.get("gaps") or {}).get(partition) or {}
            for gap in HEADLINE_GAPS:
                value = gaps.get(gap)
                if is_number(value) and (best is None or value > best["value"]):
                    best = {"model": model, "attribute": partition, "gap": gap, "value": value}
    return best


def _describe_gap(report: dict, found: dict) -> str:
    model, attribute, gap, value = found["model"], found["attribute"], found["gap"], found["value"]
    gaps = model["gaps"][attribute]
    label = ci_label(report)
    text = (f"For {attribute}, the {GAP_WORDS[gap]} of {model['name']} is {fmt_num(value)} "
            f"({label} {fmt_ci((gaps.get('ci') or {}).get(gap))})")
    between = (gaps.get("between") or {}).get(gap) or {}
    high, low, metric = between.get("max_group"), between.get("min_group"), between.get("metric")
    if high is None or low is None or metric is None:
        return text + "."
    positive = positive_label(report)
    gloss = _rate_gloss(metric, positive)
    rate = RATE_WORDS.get(metric, metric)
    text += (f": the {rate} of {attribute} {quote(high)}{_group_n(model, attribute, high)} is "
             f"{fmt_num(value)} higher than that of {quote(low)}{_group_n(model, attribute, low)}.")
    if gloss:
        text += f" (The {rate} is {gloss}.)"
    pair = between.get("pair_ci")
    includes = ci_includes_zero(pair)
    if includes is True:
        text += (f" The {label} of the difference between these two groups, {fmt_ci(pair)}, includes 0: "
                 f"the test data do not show that the two groups differ.")
    elif includes is False:
        text += f" The {label} of the difference between these two groups is {fmt_ci(pair)}."
    return text


def _comparison(report: dict, model: dict, attribute: str, gap: str) -> dict | None:
    compared = ((model.get("compared_with_supervised") or {}).get(attribute) or {}).get(gap)
    if not compared:
        return None
    name, words, label = model["name"], GAP_WORDS[gap], ci_label(report)
    a, b, diff, ci = compared.get("model_a"), compared.get("model_b"), compared.get("difference"), compared.get("ci")
    values = f"{fmt_num(a)} for {name} vs {fmt_num(b)} for the supervised baseline"
    if not is_number(diff) or ci_includes_zero(ci) is None:
        return _item("info", "ssl_vs_supervised",
                     f"{name} vs the supervised baseline on the {words} for {attribute}: cannot be compared "
                     f"(the gap is undefined for at least one model; {values}).", model=name)
    verb = None
    if compared.get("excludes_zero", not ci_includes_zero(ci)):
        verb = "narrowed" if diff < 0 else "widened"
        text = (f"{name} {verb} the {words} for {attribute} compared with the supervised baseline: {values}, "
                f"a difference of {fmt_num(diff)} ({label} {fmt_ci(ci)}).")
        level = "finding"
    else:
        text = (f"{name} vs the supervised baseline on the {words} for {attribute}: no clear difference "
                f"({values}; difference {fmt_num(diff)}, {label} {fmt_ci(ci)} includes 0).")
        level = "info"
    n_boot = (report.get("bootstrap") or {}).get("n_boot")
    excluded = compared.get("ci_excluded") or 0
    if is_number(n_boot) and n_boot > 0 and excluded > UNTRUSTED_EXCLUDED * n_boot:
        text += (f" {excluded} of {n_boot} bootstrap resamples left the gap undefined, so treat this "
                 f"interval with caution.")
    kind = degeneracy(model)
    if kind is not None:
        text += (f" Caution: {name} predicts {positive_label(report)} for {_share(model, report)}, so its "
                 f"small gap says little about fair treatment.")
    return _item(level, "ssl_vs_supervised", text, model=name, attribute=attribute, gap=gap,
                 direction=verb)


def _tally(report: dict, comparisons: list[dict], found: dict) -> dict:
    """One line: how many SSL models narrowed / widened the headline gap, how many show no clear difference."""
    directions = [c.get("direction") for c in comparisons]
    narrowed, widened = directions.count("narrowed"), directions.count("widened")
    unclear = len(directions) - narrowed - widened
    text = (f"Against the supervised baseline, on the {GAP_WORDS[found['gap']]} for {found['attribute']}: of "
            f"{len(comparisons)} SSL model{'s' if len(comparisons) != 1 else ''}, {narrowed} narrowed it, "
            f"{widened} widened it and {unclear} show{'s' if unclear == 1 else ''} no clear difference "
            f"(paired bootstrap on the same test rows).")
    by_name = {m.get("name"): m for m in report.get("models") or []}
    trivial = [c["model"] for c in comparisons
               if c.get("direction") == "narrowed" and degeneracy(by_name.get(c["model"], {})) is not None]
    if trivial:
        text += (f" {len(trivial)} of those that narrowed it ({', '.join(trivial)}) predict{'s' if len(trivial) == 1 else ''} "
                 f"the same label for at least {fmt_pct(1 - NEAR_DEGENERATE, 0)} of the rows, which narrows "
                 f"gaps trivially.")
    return _item("finding" if narrowed or widened else "info", "ssl_tally", text, narrowed=narrowed,
                 widened=widened, unclear=unclear)


def _worst_group(report: dict, model: dict) -> dict | None:
    worst = None
    for attribute in attributes(report):
        gaps = (model.get("gaps") or {}).get(attribute) or {}
        value = gaps.get("worst_group_accuracy")
        if is_number(value) and (worst is None or value < worst[1]):
            worst = (attribute, value, gaps)
    if worst is None:
        return None
    attribute, value, gaps = worst
    group = ((gaps.get("between") or {}).get("worst_group_accuracy") or {}).get("min_group")
    row = group_row(model, attribute, group) or {}
    ci = (gaps.get("ci") or {}).get("worst_group_accuracy")
    n = f", n = {fmt_int(row['n'])}" if is_number(row.get("n")) else ""
    small = "; a small group, so very uncertain" if row.get("small") else ""
    overall = (model.get("overall") or {}).get("accuracy")
    text = (f"{model['name']}: accuracy {fmt_pct(overall)} overall; lowest for {attribute} {quote(group)}: "
            f"{fmt_pct(value)} ({ci_label(report)} {fmt_ci(ci, fmt_pct)}{n}{small}).")
    return _item("info", "worst_group", text, model=model["name"], attribute=attribute, group=group, value=value)


def _degenerate(report: dict, model: dict) -> dict | None:
    kind = degeneracy(model)
    if kind is None:
        return None
    overall = model.get("overall") or {}
    positive = positive_label(report)
    balanced = fmt_num(overall.get("balanced_accuracy"))
    text = (f"{model['name']} predicts {positive} for {_share(model, report)} (balanced accuracy {balanced}; "
            f"0.50 is chance).")
    if kind in ("all", "none"):
        text += (" Its selection-rate gaps are 0 by construction: it treats everyone alike because it tells "
                 "no one apart. That is not fairness in any useful sense; do not choose it for its small gaps.")
    else:
        text += (f" Gaps close to 0 are then expected whatever the groups (it is within "
                 f"{fmt_pct(NEAR_DEGENERATE, 0)} of predicting the same label for everyone), so they say "
                 f"little about fair treatment.")
    return _item("warning", "degenerate_model", text, model=model["name"])


def _chance_level(report: dict, model: dict) -> dict | None:
    """A model (not already flagged as one-label) whose balanced accuracy is not clearly above 0.5."""
    if degeneracy(model) is not None:
        return None
    overall = model.get("overall") or {}
    value, ci = overall.get("balanced_accuracy"), (overall.get("ci") or {}).get("balanced_accuracy")
    if not is_number(value):
        return None
    lower = ci[0] if ci and len(ci) == 2 and is_number(ci[0]) else value
    if lower > 0.5:
        return None
    interval = f" ({ci_label(report)} {fmt_ci(ci)})" if ci else ""
    return _item("warning", "chance_model",
                 f"{model['name']} is not clearly better than guessing: balanced accuracy {fmt_num(value)}{interval}, "
                 f"where 0.50 is chance, so its gaps say little about fair treatment.",
                 model=model["name"])


def _intersection_finding(report: dict) -> dict | None:
    keys = intersections(report)
    found = largest_gap(report, keys) if keys else None
    if found is None:
        return None
    described = _describe_gap(report, found)
    text = "Across intersections of attributes, f" + described[1:] if described.startswith("For") else described
    between = found["model"]["gaps"][found["attribute"]].get("between", {}).get(found["gap"], {})
    smalls = [g for g in (between.get("max_group"), between.get("min_group"))
              if (group_row(found["model"], found["attribute"], g) or {}).get("small")]
    if smalls:
        text += (f" {' and '.join(map(quote, smalls))} {'has' if len(smalls) == 1 else 'have'} fewer than "
                 f"{_min_group_size(report)} test rows, so this gap is very uncertain.")
    return _item("finding", "largest_intersection_gap", text, model=found["model"]["name"],
                 attribute=found["attribute"], gap=found["gap"], value=found["value"])


def _min_group_size(report: dict) -> int:
    size = (report.get("config") or {}).get("min_group_size")
    return int(size) if is_number(size) else 30


def _small_groups(report: dict) -> list[dict]:
    items = []
    first = (report.get("models") or [None])[0]
    if first is None:
        return items
    for partition in attributes(report) + intersections(report):
        small = ((first.get("gaps") or {}).get(partition) or {}).get("small_groups") or []
        if not small:
            continue
        total = len((first.get("groups") or {}).get(partition) or [])
        sizes = []
        for group in small[:6]:
            row = group_row(first, partition, group) or {}
            sizes.append(f"{quote(group)} (n = {fmt_int(row.get('n'))})")
        more = f" and {len(small) - 6} more" if len(small) > 6 else ""
        of = f" of {total}" if total else ""
        items.append(_item("warning", "small_groups",
                           f"{len(small)}{of} groups of {partition} have fewer than {_min_group_size(report)} "
                           f"test rows: {', '.join(sizes)}{more}. Their rates, and any gap that involves them, "
                           f"are very uncertain.", attribute=partition, groups=list(small)))
    return items


def _leakage(report: dict) -> list[dict]:
    items = []
    models = report.get("models") or []
    for attribute in attributes(report):
        probes = [(m["name"], ((m.get("representation") or {}).get("leakage") or {}).get(attribute) or {})
                  for m in models]
        values = [(name, p.get("balanced_accuracy")) for name, p in probes if is_number(p.get("balanced_accuracy"))]
        if not values:
            continue
        reference = next(p for _, p in probes if p)
        low, high = min(values, key=lambda v: v[1]), max(values, key=lambda v: v[1])
        spread = (f"{fmt_num(low[1])} ({low[0]}) to {fmt_num(high[1])} ({high[0]})" if low[0] != high[0]
                  else f"{fmt_num(high[1])} ({high[0]})")
        items.append(_item("info", "leakage",
                           f"A linear probe guesses {attribute} from the models' representations with balanced "
                           f"accuracy {spread}; chance is {fmt_num(reference.get('chance'))} and the same probe "
                           f"on the raw features scores "
                           f"{fmt_num(reference.get('raw_features_balanced_accuracy'))}.", attribute=attribute))
    return items


def _collapse(report: dict) -> dict | None:
    collapse = (report.get("pretraining") or {}).get("collapse") or {}
    if not collapse.get("collapsed"):
        return None
    return _item("warning", "collapse",
                 f"The pretrained encoder collapsed: the spread of its embeddings (standard deviation "
                 f"{fmt_num(collapse.get('embedding_std'), 3)}) is below the threshold "
                 f"{fmt_num(collapse.get('threshold'), 3)}, so it maps rows to nearly the same point. The SSL "
                 f"models built on it carry little information; their comparison with the supervised baseline "
                 f"is not a fair test of pretraining.")


def _proxies(report: dict) -> list[dict]:
    items = []
    for finding in report.get("proxies") or []:
        if isinstance(finding, dict) and finding.get("strength") == "strong":
            items.append(_item("warning", "proxy",
                               f"'{finding.get('feature')}' is a strong proxy for {finding.get('attribute')} "
                               f"(Cram\u00e9r's V {fmt_num(finding.get('cramers_v'))}): a model can use it to "
                               f"treat groups differently even without the attribute itself."))
    for note in report.get("notes") or []:
        if isinstance(note, str) and "prox" in note.lower():
            items.append(_item("warning", "proxy", note))
    return items


def summarize(report: dict) -> list[dict]:
    """The summary items of a report.json dict, in reading order (see the module docstring)."""
    items: list[dict] = []
    models = report.get("models") or []
    found = largest_gap(report)
    if found is None:
        items.append(_item("info", "largest_gap", "No equalized-odds or demographic-parity gap could be computed "
                                                  "(each needs two groups with the rate defined)."))
    else:
        items.append(_item("finding", "largest_gap", _describe_gap(report, found), model=found["model"]["name"],
                           attribute=found["attribute"], gap=found["gap"], value=found["value"]))
        comparisons = [c for c in (_comparison(report, m, found["attribute"], found["gap"])
                                   for m in models if m.get("name") != SUPERVISED) if c is not None]
        if comparisons:
            items.append(_tally(report, comparisons, found))
        items += comparisons
    items += [item for item in (_degenerate(report, m) for m in models) if item is not None]
    items += [item for item in (_chance_level(report, m) for m in models) if item is not None]
    items += [item for item in (_worst_group(report, m) for m in models) if item is not None]
    intersection = _intersection_finding(report)
    if intersection is not None:
        items.append(intersection)
    items += _leakage(report)
    items += _small_groups(report)
    collapse = _collapse(report)
    if collapse is not None:
        items.append(collapse)
    withheld = report.get("withheld_columns") or []
    if withheld:
        items.append(_item("warning", "withheld_columns",
                           f"{len(withheld)} column{'s' if len(withheld) != 1 else ''} withheld as personal data "
                           f"(used by no model and shown nowhere in this report): {', '.join(map(str, withheld))}. "
                           f"Other features may still carry the same information.", columns=list(withheld)))
    items += _proxies(report)
    items += [_item("warning", "data", str(w)) for w in report.get("warnings") or []]
    return items
