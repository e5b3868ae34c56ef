"""Multiplicity: every verdict of a report belongs to a named family and is decided on its
Holm-adjusted p-value within that family.

A report makes dozens of verdicts (models x attributes x gaps); at an unadjusted 5% each, some
are "found" by chance alone. Holm's step-down adjustment keeps the chance of any false
verdict in a family at most 5% (family-wise error rate), whatever the dependence between the
tests, and is uniformly more powerful than Bonferroni. The families (docs/metrics.md):

    ssl_vs_supervised     every SSL model x sensitive attribute x headline gap: the paired
                          comparisons the summary's "narrowed" / "widened" words rest on
    groups_differ         every model x sensitive attribute x headline gap: the permutation
                          tests (core.audit.gap_test) behind "the groups differ"
    ... (other gaps and intersections)   the same comparisons for every other gap and for
                          the intersections, shown in the dashboard's tables: a family of
                          their own, so that the many secondary tests do not dilute the
                          headline ones (and are themselves adjusted)

Unadjusted intervals stay in the report as descriptions; `excludes_zero` (comparisons) and
`differ` (gap tests) follow the adjusted p-value. The per-group LIME differences of
core.explain.subgroup form one family per explanation run (they are not in report.json).

The practical-significance floor (PRACTICAL_FLOOR, issue 17): a difference of rates smaller than
0.01 (one percentage point) is never called "narrowed", "widened", "the groups differ" or a
headline, whatever its p-value: with thousands of test rows a 0.002 difference can be
"significant" and still mean nothing for anyone. `apply_families` records the floor and
`below_floor` in every verdict entry it touches; `clears_floor` is the one rule readers apply.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from core.vocabulary import HEADLINE_GAPS

#: Differences of rates (and gaps) below this are never a finding, whatever their interval says.
PRACTICAL_FLOOR = 0.01
OTHER = " (other gaps and intersections)"
ACCURACY_COST = "variant_vs_base (accuracy)"
FAMILIES = {
    "ssl_vs_supervised": "every SSL model vs the supervised baseline, per sensitive attribute and headline gap "
                         "(paired comparison of the gaps)",
    "ssl_vs_supervised" + OTHER: "every SSL model vs the supervised baseline on the other gaps and on the "
                                 "intersections of attributes",
    "variant_vs_base": "every mitigated, private or federated model vs the model it changes, per sensitive "
                       "attribute and headline gap (paired comparison of the gaps over replicates and test rows)",
    "variant_vs_base" + OTHER: "every mitigated, private or federated model vs the model it changes, on the "
                               "other gaps and on the intersections of attributes",
    ACCURACY_COST: "every mitigated, private or federated model vs the model it changes: accuracy and balanced "
                   "accuracy, overall and in every group of every attribute (paired, over replicates and test rows)",
    "groups_differ": "is the gap larger than chance: every model, per sensitive attribute and headline gap "
                     "(permutation test of the group labels)",
    "groups_differ" + OTHER: "is the gap larger than chance: every model, on the other gaps and on the "
                             "intersections of attributes",
}


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input's order (None stays None, and is not
    counted in the family). With the m p-values sorted, p_(1) <= ... <= p_(m):

        adjusted_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))

    so H_(i) is rejected at level a iff p_(j) <= a / (m - j + 1) for every j <= i."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    order = sorted(present, key=lambda i: p_values[i])
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def clears_floor(size: float | None, floor: float = PRACTICAL_FLOOR) -> bool | None:
    """|size| >= floor: large enough to matter (None when the size is unknown)."""
    if size is None or not isinstance(size, (int, float)) or size != size:
        return None
    return abs(float(size)) >= floor


def _verdict_entries(report: dict) -> Iterator[tuple[str, dict, str, float | None]]:
    """(family, entry, kind, size) for every verdict entry of the report; kind is "compared" for a
    paired comparison (decides `excludes_zero`), "chance" for a gap test (decides `differ`);
    size is what the practical floor is applied to (the difference, or the gap itself)."""
    attributes = set((report.get("study") or {}).get("sensitive") or [])
    for model in report.get("models") or []:
        for partition, gaps in (model.get("compared_with_supervised") or {}).items():
            for gap, entry in gaps.items():
                if isinstance(entry, dict) and "p_value" in entry:
                    headline = partition in attributes and gap in HEADLINE_GAPS
                    yield "ssl_vs_supervised" + ("" if headline else OTHER), entry, "compared", \
                        entry.get("difference")
        for partition, gaps in (model.get("compared_with_base") or {}).items():
            for gap, entry in gaps.items():
                if isinstance(entry, dict) and "p_value" in entry:
                    headline = partition in attributes and gap in HEADLINE_GAPS
                    yield "variant_vs_base" + ("" if headline else OTHER), entry, "compared", entry.get("difference")
        costs = model.get("compared_with_base_metrics") or {}
        scopes = [costs.get("overall") or {}] + [rates for groups in (costs.get("groups") or {}).values()
                                                  for rates in groups.values()]
        for rates in scopes:
            for entry in rates.values():
                if isinstance(entry, dict) and "p_value" in entry:
                    yield ACCURACY_COST, entry, "compared", entry.get("difference")
        for partition, gaps in (model.get("gaps") or {}).items():
            for gap, entry in ((gaps or {}).get("chance") or {}).items():
                headline = partition in attributes and gap in HEADLINE_GAPS
                yield "groups_differ" + ("" if headline else OTHER), entry, "chance", (gaps or {}).get(gap)


def apply_families(report: dict) -> dict:
    """Holm-adjust every verdict entry within its family, in place, and list the families.

    Each entry gains `p_adjusted`, `family` and `family_size`; a comparison's `excludes_zero`
    and a gap test's `differ` become ``p_adjusted < 1 - confidence`` (None without a p-value,
    which also keeps the entry out of its family). ``report["multiplicity"]`` is
    ``{family: {"size", "method": "holm", "alpha", "what"}}`` for every non-empty family.
    Every entry also gets `practical_floor` and `below_floor` (its difference, or its gap, is
    smaller than PRACTICAL_FLOOR): the readers' words then say "too small to matter" instead of
    "narrowed" / "the groups differ" (the statistical decision itself stays as computed).
    Returns the report.
    """
    alpha = 1 - float((report.get("bootstrap") or {}).get("confidence", 0.95))
    members: dict[str, list[tuple[dict, str]]] = {}
    for family, entry, kind, size in _verdict_entries(report):
        members.setdefault(family, []).append((entry, kind))
        cleared = clears_floor(size)
        entry.update(practical_floor=PRACTICAL_FLOOR, below_floor=None if cleared is None else not cleared)
    listed: dict[str, Any] = {}
    for family, entries in members.items():
        adjusted = holm([entry.get("p_value") for entry, _ in entries])
        size = sum(p is not None for p in adjusted)
        for (entry, kind), p in zip(entries, adjusted):
            decided = None if p is None else bool(p < alpha)
            entry.update(p_adjusted=None if p is None else float(p), family=None if p is None else family,
                         family_size=None if p is None else size)
            entry["excludes_zero" if kind == "compared" else "differ"] = decided
        if size:
            listed[family] = {"size": size, "method": "holm", "alpha": float(np.round(alpha, 10)),
                              "what": FAMILIES[family]}
    report["multiplicity"] = listed
    return report

