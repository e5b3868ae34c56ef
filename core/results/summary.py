"""The plain-language summary a stakeholder reads first, as structured items.

`summarize(report)` turns a report.json dict into a list of
`{"level": "finding" | "warning" | "info", "topic": ..., "text": ...}` items, in reading
order; the HTML report and the dashboard draw the same list. Rules (docs/report.md):

- The headline is the largest equalized-odds or demographic-parity gap over the single
  sensitive attributes and all models, named with its attribute, model, the two groups at
  the extremes (`gaps[attr]["between"]`) and its interval (a max - min gap's own interval
  sits above 0 even when groups do not differ, docs/metrics.md).
- Whether the groups differ is the permutation test of the gap itself (`gaps[attr]["chance"]`,
  core.audit.gap_test): "a gap this large is / is not expected by chance with G groups"; the
  pair interval stays as a description.
- Every SSL model is compared with the supervised baseline on that same gap
  (`compared_with_supervised`, over the training replicates): "narrowed" / "widened" only
  when `excludes_zero`, decided on the Holm-adjusted p-value of its family
  (core.audit.multiplicity), otherwise "no clear difference". The summary says how many
  comparisons the report's families hold.
- A model that predicts one label for nearly every row, or whose balanced accuracy is near
  chance, is flagged (core.results.quality.model_quality): its gaps are small for the wrong
  reason, so they are never the headline finding, and its comparisons carry a caution. A model
  whose balanced-accuracy interval reaches 0.5 gets the "not clearly better than guessing"
  warning too (but may still headline).
- The practical floor (core.audit.multiplicity.PRACTICAL_FLOOR, 0.01): a gap below it is never the
  headline, and a difference below it is "too small to matter", never "narrowed" / "widened" /
  "the groups differ", whatever its interval (core.results.wording.comparison_verdict).
- Numbers are rounded for reading (rates as percentages with one decimal, gaps with two
  decimals, three when two would show 0.00); exact values stay in report.json. Undefined
  values read "n/a", never 0.
"""

from __future__ import annotations

from typing import Any

from core.audit.multiplicity import PRACTICAL_FLOOR, clears_floor
from core.results.formatting import ci_includes_zero, ci_label, fmt_ci, fmt_int, fmt_num, fmt_pct, is_number
from core.results.folder import ModelView, ReportView, section
from core.results.quality import CHANCE_FLAGS, ONE_LABEL_SHARE, guessing_text, versus_classical
from core.results.quality import quality_of as quality
from core.results.wording import comparison_verdict
from core.vocabulary import GAP_NAMES, HEADLINE_GAPS, METRIC_NAMES

UNTRUSTED_EXCLUDED = 0.05  # more undefined bootstrap replicates than this share: interval unreliable


# -- words ----------------------------------------------------------------------------------
def gap_words(gap: str) -> str:
    """A gap's name inside a sentence ("the equalized-odds gap of ...")."""
    return GAP_NAMES[gap].lower()


def rate_words(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric).lower()


def positive_label(view: ReportView) -> str:
    label = view.positive_label
    return f"\u201c{label}\u201d" if label not in (None, "") else "the positive label"


def _rate_gloss(metric: str, positive: str) -> str:
    return {"tpr": f"the share of rows truly {positive} that the model predicts {positive}",
            "fpr": f"the share of rows truly not {positive} that the model predicts {positive}",
            "selection_rate": f"the share of rows the model predicts {positive}"}.get(metric, "")


def quote(group: Any) -> str:
    return f"\u201c{group}\u201d"


def _group_n(model: ModelView, partition: str, group: str | None) -> str:
    row = model.group(partition, group)
    if row is None or not is_number(row.get("n")):
        return ""
    small = ", a small group" if row.get("small") else ""
    return f" (n = {fmt_int(row['n'])}{small})"


def _item(level: str, topic: str, text: str, **extra: Any) -> dict:
    return {"level": level, "topic": topic, "text": text, **extra}


ONE_RUN_NOTICE = ("Each model was trained once: every verdict here covers one training run only, and training "
                  "again with another seed may change it. An audit with 5 replicates (the Full run, or "
                  "`equiscope audit --replicates 5`) gives verdicts that cover training randomness too.")


def replicates_notice(view: ReportView) -> dict:
    """How many trainings the verdicts cover: a warning when one (ONE_RUN_NOTICE), else a note."""
    if view.one_training_run:
        return _item("warning", "replicates", ONE_RUN_NOTICE, replicates=1)
    return _item("info", "replicates", f"Each model was trained {view.replicates} times with different seeds: the "
                                       "verdicts cover training randomness as well as the test rows; the numbers "
                                       "shown per group are the first training's.", replicates=view.replicates)


# -- the summary -------------------------------------------------------------------------------
def largest_gap(view: ReportView, partitions: list[str] | None = None) -> dict | None:
    """The largest headline gap over `partitions` (default: single attributes) and the models not
    flagged by `quality` (a model no better than chance is never the headline):
    {"model" (a ModelView), "attribute", "gap", "value"}; first in model, attribute, gap order on a tie."""
    best = None
    for model in view.models:
        if quality(view, model)["flag"] in CHANCE_FLAGS:  # below-baseline models still tell people apart
            continue
        for partition in partitions if partitions is not None else view.sensitive:
            gaps = model.gaps(partition)
            for gap in HEADLINE_GAPS:
                value = gaps.get(gap)
                if is_number(value) and (best is None or value > best["value"]):
                    best = {"model": model, "attribute": partition, "gap": gap, "value": value}
    return best


def _describe_gap(view: ReportView, found: dict) -> str:
    model, attribute, gap, value = found["model"], found["attribute"], found["gap"], found["value"]
    label = ci_label(view.confidence)
    text = (f"For {attribute}, the {gap_words(gap)} of {model.name} is {fmt_num(value)} "
            f"({label} {fmt_ci(model.gap_ci(attribute, gap))})")
    between = model.between(attribute, gap)
    high, low, metric = between.get("max_group"), between.get("min_group"), between.get("metric")
    if high is None or low is None or metric is None:
        return text + "."
    positive = positive_label(view)
    gloss = _rate_gloss(metric, positive)
    rate = rate_words(metric)
    text += (f": the {rate} of {attribute} {quote(high)}{_group_n(model, attribute, high)} is "
             f"{fmt_num(value)} higher than that of {quote(low)}{_group_n(model, attribute, low)}.")
    if gloss:
        text += f" (The {rate} is {gloss}.)"
    pair = between.get("pair_ci")
    if pair:  # a description only: the pair was chosen because it is the most extreme
        text += f" The {label} of the difference between these two groups is {fmt_ci(pair)}."
    return text + _chance_words(model, attribute, gap)


def _adjusted(entry: dict) -> str:
    """"p = 0.012, Holm-adjusted within the 8 comparisons of its family: 0.096" (or "")."""
    p, adjusted, size = entry.get("p_value"), entry.get("p_adjusted"), entry.get("family_size")
    if not is_number(p):
        return ""
    if not is_number(adjusted) or not is_number(size):
        return f"p = {fmt_p(p)}"
    return f"p = {fmt_p(p)}, Holm-adjusted within the {fmt_int(size)} comparisons of its family: {fmt_p(adjusted)}"


def fmt_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else fmt_num(p, 3)


def _chance_words(model: ModelView, attribute: str, gap: str) -> str:
    """"the groups differ" from the permutation test of the gap itself (core.audit.gap_test),
    decided on its family's Holm-adjusted p-value (core.audit.multiplicity)."""
    chance = section(model.gaps(attribute).get("chance") or {}, gap)
    if chance.get("differ") is None:
        return ""
    n_groups = len(model.groups(attribute))
    if chance.get("below_floor") or clears_floor(model.gaps(attribute).get(gap)) is False:
        return (f" The gap is below the practical floor of {fmt_num(PRACTICAL_FLOOR)}: too small to matter, "
                f"whatever the test says.")
    expected = "is not" if chance["differ"] else "is"
    verdict = "the groups differ" if chance["differ"] else "the test data do not show that the groups differ"
    return (f" A gap this large {expected} expected by chance with {n_groups} groups of these sizes "
            f"(permutation test, {_adjusted(chance)}): {verdict}.")


def _comparison(view: ReportView, model: ModelView, attribute: str, gap: str) -> dict | None:
    compared = model.compared(attribute, gap)
    if not compared:
        return None
    name, words, label = model.name, gap_words(gap), ci_label(view.confidence)
    a, b, diff, ci = compared.get("model_a"), compared.get("model_b"), compared.get("difference"), compared.get("ci")
    values = f"{fmt_num(a)} for {name} vs {fmt_num(b)} for the supervised baseline"
    if not is_number(diff) or ci_includes_zero(ci) is None:
        return _item("info", "ssl_vs_supervised",
                     f"{name} vs the supervised baseline on the {words} for {attribute}: cannot be compared "
                     f"(the gap is undefined for at least one model; {values}).", model=name)
    verb = None
    verdict = comparison_verdict(compared)
    if verdict == "too small to matter":
        text = (f"{name} vs the supervised baseline on the {words} for {attribute}: a difference of {fmt_num(diff)} "
                f"({values}), below the practical floor of {fmt_num(PRACTICAL_FLOOR)}, so too small to matter "
                f"whatever its interval ({label} {fmt_ci(ci)}).")
        level = "info"
    elif verdict in ("narrowed", "widened"):
        verb = "narrowed" if diff < 0 else "widened"
        text = (f"{name} {verb} the {words} for {attribute} compared with the supervised baseline: {values}, "
                f"a difference of {fmt_num(diff)} ({label} {fmt_ci(ci)}; {_adjusted(compared)}).")
        level = "finding"
    else:
        text = (f"{name} vs the supervised baseline on the {words} for {attribute}: no clear difference "
                f"({values}; difference {fmt_num(diff)}, {label} {fmt_ci(ci)}"
                f"{'; ' + _adjusted(compared) if _adjusted(compared) else ' includes 0'}).")
        level = "info"
    n_boot = view.bootstrap.get("n_boot")
    excluded = compared.get("ci_excluded") or 0
    if is_number(n_boot) and n_boot > 0 and excluded > UNTRUSTED_EXCLUDED * n_boot:
        text += (f" {excluded} of {n_boot} bootstrap resamples left the gap undefined, so treat this "
                 f"interval with caution.")
    flag = quality(view, model)
    if flag["flag"] is not None:
        text += f" Caution: {name} {flag['badge']}, so its small gap says little about fair treatment."
    return _item(level, "ssl_vs_supervised", text, model=name, attribute=attribute, gap=gap,
                 direction=verb)


def _multiplicity(view: ReportView) -> dict | None:
    """How many comparisons the report's verdicts make, and how they are adjusted."""
    families = section(view.report, "multiplicity")
    if not families:
        return None
    total = sum(f.get("size", 0) for f in families.values())
    listed = "; ".join(f"{name}: {fmt_int(f.get('size'))}" for name, f in families.items())
    return _item("info", "multiplicity",
                 f"This report makes {fmt_int(total)} comparisons in {len(families)} families ({listed}). Every "
                 f"verdict (narrowed, widened, the groups differ) is decided on p-values Holm-adjusted within its "
                 f"family, so the chance of any false verdict in a family is at most "
                 f"{fmt_pct(1 - view.confidence, 0)}; the {ci_label(view.confidence)}s shown are unadjusted "
                 f"descriptions.", comparisons=total)


def _tally(view: ReportView, comparisons: list[dict], found: dict) -> dict:
    """One line: how many SSL models narrowed / widened the headline gap, how many show no clear difference."""
    directions = [c.get("direction") for c in comparisons]
    narrowed, widened = directions.count("narrowed"), directions.count("widened")
    unclear = len(directions) - narrowed - widened
    text = (f"Against the supervised baseline, on the {gap_words(found['gap'])} for {found['attribute']}: of "
            f"{len(comparisons)} SSL model{'s' if len(comparisons) != 1 else ''}, {narrowed} narrowed it, "
            f"{widened} widened it and {unclear} show{'s' if unclear == 1 else ''} no clear difference "
            f"(paired bootstrap on the same test rows).")
    by_name = {m.name: m for m in view.models}
    trivial = [c["model"] for c in comparisons if c.get("direction") == "narrowed"
               and quality(view, by_name.get(c["model"], ModelView({})))["flag"] == "one-label"]
    if trivial:
        text += (f" {len(trivial)} of those that narrowed it ({', '.join(trivial)}) predict{'s' if len(trivial) == 1 else ''} "
                 f"the same label for at least {fmt_pct(ONE_LABEL_SHARE, 0)} of the rows, which narrows "
                 f"gaps trivially.")
    return _item("finding" if narrowed or widened else "info", "ssl_tally", text, narrowed=narrowed,
                 widened=widened, unclear=unclear)


def _worst_group(view: ReportView, model: ModelView) -> dict | None:
    worst = None
    for attribute in view.sensitive:
        value = model.gaps(attribute).get("worst_group_accuracy")
        if is_number(value) and (worst is None or value < worst[1]):
            worst = (attribute, value)
    if worst is None:
        return None
    attribute, value = worst
    group = model.between(attribute, "worst_group_accuracy").get("min_group")
    row = model.group(attribute, group) or {}
    ci = model.gap_ci(attribute, "worst_group_accuracy")
    n = f", n = {fmt_int(row['n'])}" if is_number(row.get("n")) else ""
    small = "; a small group, so very uncertain" if row.get("small") else ""
    overall = model.overall.get("accuracy")
    text = (f"{model.name}: accuracy {fmt_pct(overall)} overall; lowest for {attribute} {quote(group)}: "
            f"{fmt_pct(value)} ({ci_label(view.confidence)} {fmt_ci(ci, fmt_pct)}{n}{small}).")
    flag = quality(view, model)
    if flag["flag"] is not None:
        text += f" Caution: {model.name} {flag['badge']}."
    return _item("info", "worst_group", text, model=model.name, attribute=attribute, group=group, value=value)


def _degenerate(view: ReportView, model: ModelView) -> dict | None:
    flag = quality(view, model)
    if flag["flag"] != "one-label":
        return None
    return _item("warning", "degenerate_model", flag["text"], model=model.name)


def _chance_level(view: ReportView, model: ModelView) -> dict | None:
    """A model (not already flagged as one-label) near chance, or whose balanced accuracy is not
    clearly above 0.5 (its interval reaches it)."""
    flag = quality(view, model)["flag"]
    if flag == "one-label":
        return None
    value, ci = model.overall.get("balanced_accuracy"), model.overall_ci.get("balanced_accuracy")
    if not is_number(value):
        return None
    lower = ci[0] if ci and len(ci) == 2 and is_number(ci[0]) else value
    if flag is None and lower > 0.5:
        return None
    return _item("warning", "chance_model", guessing_text(model.entry, view.confidence), model=model.name)


def _intersection_finding(view: ReportView) -> dict | None:
    keys = view.intersections
    found = largest_gap(view, keys) if keys else None
    if found is None:
        return None
    model = found["model"]
    described = _describe_gap(view, found)
    text = "Across intersections of attributes, f" + described[1:] if described.startswith("For") else described
    between = model.between(found["attribute"], found["gap"])
    smalls = [g for g in (between.get("max_group"), between.get("min_group"))
              if (model.group(found["attribute"], g) or {}).get("small")]
    if smalls:
        text += (f" {' and '.join(map(quote, smalls))} {'has' if len(smalls) == 1 else 'have'} fewer than "
                 f"{view.min_group_size} test rows, so this gap is very uncertain.")
    return _item("finding", "largest_intersection_gap", text, model=model.name,
                 attribute=found["attribute"], gap=found["gap"], value=found["value"])


def _small_groups(view: ReportView) -> list[dict]:
    items = []
    first = view.first_model
    if first is None:
        return items
    for partition in view.sensitive + view.intersections:
        small = first.gaps(partition).get("small_groups") or []
        if not small:
            continue
        total = len(first.groups(partition))
        sizes = []
        for group in small[:6]:
            row = first.group(partition, group) or {}
            sizes.append(f"{quote(group)} (n = {fmt_int(row.get('n'))})")
        more = f" and {len(small) - 6} more" if len(small) > 6 else ""
        of = f" of {total}" if total else ""
        items.append(_item("warning", "small_groups",
                           f"{len(small)}{of} groups of {partition} have fewer than {view.min_group_size} "
                           f"test rows: {', '.join(sizes)}{more}. Their rates, and any gap that involves them, "
                           f"are very uncertain.", attribute=partition, groups=list(small)))
    return items


def _leakage(view: ReportView) -> list[dict]:
    """Per attribute: how many representations a linear probe can read it from (its fold
    interval above chance), beside the raw features with and without the attribute's own columns."""
    items = []
    for attribute in view.sensitive:
        probes = [(m.name, m.probe(attribute)) for m in view.models]
        values = [(name, p.get("balanced_accuracy")) for name, p in probes if is_number(p.get("balanced_accuracy"))]
        if not values:
            continue
        reference = next(p for _, p in probes if p)
        low, high = min(values, key=lambda v: v[1]), max(values, key=lambda v: v[1])
        spread = (f"{fmt_num(low[1])} ({low[0]}) to {fmt_num(high[1])} ({high[0]})" if low[0] != high[0]
                  else f"{fmt_num(high[1])} ({high[0]})")
        verdicts = [p.get("readable") for _, p in probes if is_number(p.get("balanced_accuracy"))]
        readable = (f"A linear probe can read {attribute} from {sum(bool(v) for v in verdicts)} of {len(verdicts)} "
                    f"models' representations (its 95% interval over 5 folds above chance)"
                    if all(v is not None for v in verdicts) else f"A linear probe guesses {attribute} from the "
                                                                  "models' representations")
        without = reference.get("raw_features_without_attribute_balanced_accuracy")
        proxies = ("" if not reference.get("raw_features_without_attribute_n_dropped") or not is_number(without) else
                   f"; without {attribute}'s own columns, the other raw features (its proxies) score "
                   f"{fmt_num(without)} ({fmt_ci(reference.get('raw_features_without_attribute_interval'))}), so a "
                   f"linear probe {'can' if reference.get('raw_features_without_attribute_readable') else 'cannot'} "
                   f"read it from them")
        items.append(_item("info", "leakage",
                           f"{readable}, with balanced accuracy {spread}; chance is {fmt_num(reference.get('chance'))} "
                           f"and the same probe on the raw features scores "
                           f"{fmt_num(reference.get('raw_features_balanced_accuracy'))}{proxies}.",
                           attribute=attribute))
    return items


def _collapse(view: ReportView) -> dict | None:
    collapse = section(view.pretraining, "collapse")
    if not collapse.get("collapsed"):
        return None
    return _item("warning", "collapse",
                 f"The pretrained encoder collapsed: the spread of its embeddings (standard deviation "
                 f"{fmt_num(collapse.get('embedding_std'), 3)}) is below the threshold "
                 f"{fmt_num(collapse.get('threshold'), 3)}, so it maps rows to nearly the same point. The SSL "
                 f"models built on it carry little information; their comparison with the supervised baseline "
                 f"is not a fair test of pretraining.")


def _proxies(view: ReportView) -> list[dict]:
    items = []
    for finding in view.proxies:
        if isinstance(finding, dict) and finding.get("strength") == "strong":
            items.append(_item("warning", "proxy",
                               f"'{finding.get('feature')}' is a strong proxy for {finding.get('attribute')} "
                               f"(association {fmt_num(finding.get('cramers_v'))} on a scale of 0 to 1): a model can use it to "
                               f"treat groups differently even without the attribute itself."))
    for note in view.notes:
        if isinstance(note, str) and "prox" in note.lower():
            items.append(_item("warning", "proxy", note))
    return items


def summarize(report: dict) -> list[dict]:
    """The summary items of a report.json dict, in reading order (see the module docstring)."""
    view = ReportView(report)
    items: list[dict] = []
    found = largest_gap(view)
    left_out = [m.name for m in view.models if quality(view, m)["flag"] in CHANCE_FLAGS]
    aside = (f" Left out of this headline as no better than chance: {', '.join(left_out)} (see the warnings)."
             if left_out else "")
    if found is None and left_out and len(left_out) == len(view.models):
        items.append(_item("info", "largest_gap", f"No gap is a headline finding: every model predicts one label "
                                                  f"or is no better than chance ({', '.join(left_out)}), so their "
                                                  f"gaps say little about fair treatment (see the warnings)."))
    elif found is None:
        items.append(_item("info", "largest_gap", "No equalized-odds or demographic-parity gap could be computed "
                                                  "(each needs two groups with the rate defined)."))
    elif clears_floor(found["value"]) is False:
        items.append(_item("info", "largest_gap", f"No gap reaches the practical floor of {fmt_num(PRACTICAL_FLOOR)}: "
                                                  f"the largest, {fmt_num(found['value'])}, is too small to matter.{aside}",
                           value=found["value"]))
    else:
        items.append(_item("finding", "largest_gap", _describe_gap(view, found) + aside, model=found["model"].name,
                           attribute=found["attribute"], gap=found["gap"], value=found["value"]))
        comparisons = [c for c in (_comparison(view, m, found["attribute"], found["gap"]) for m in view.ssl_models)
                       if c is not None]
        if comparisons:
            items.append(_tally(view, comparisons, found))
        items += comparisons
    versus = versus_classical(report)  # the SSL models against the best classical baseline (issue 16)
    if versus is not None:
        items.append(_item("info", "versus_classical", versus["text"], model=versus["models"][0]["model"],
                           baseline=versus["baseline"]))
    counted = _multiplicity(view)
    if counted is not None:
        items.append(counted)
    items.append(replicates_notice(view))
    items += [item for item in (_degenerate(view, m) for m in view.models) if item is not None]
    items += [item for item in (_chance_level(view, m) for m in view.models) if item is not None]
    items += [item for item in (_worst_group(view, m) for m in view.models) if item is not None]
    intersection = _intersection_finding(view)
    if intersection is not None:
        items.append(intersection)
    items += _leakage(view)
    items += _small_groups(view)
    collapse = _collapse(view)
    if collapse is not None:
        items.append(collapse)
    withheld = view.withheld_columns
    if withheld:
        items.append(_item("warning", "withheld_columns",
                           f"{len(withheld)} column{'s' if len(withheld) != 1 else ''} withheld as personal data "
                           f"(used by no model and shown nowhere in this report): {', '.join(map(str, withheld))}. "
                           f"Other features may still carry the same information.", columns=list(withheld)))
    items += _proxies(view)
    items += [_item("warning", "data", str(w)) for w in view.warnings]
    return items
