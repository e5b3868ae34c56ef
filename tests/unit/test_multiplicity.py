"""Holm's step-down adjustment and the report's families (core.audit.multiplicity)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.audit.multiplicity import apply_families, holm


def test_holm_hand_computed_case():
    # sorted 0.01, 0.02, 0.03, 0.04 with m = 4: 0.04, 0.06, 0.06 (monotone), 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.2, None, 0.01]) == [pytest.approx(0.2), None, pytest.approx(0.02)]
    assert holm([]) == []


def test_holm_is_its_definition():
    """Reject H_(i) at level a iff p_(j) <= a / (m - j + 1) for every j <= i (step-down)."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = list(rng.uniform(0, 0.1, rng.integers(1, 8)))
        adjusted = holm(p)
        order = np.argsort(p, kind="stable")
        m = len(p)
        for alpha in (0.01, 0.05):
            rejected, still = set(), True
            for j, i in enumerate(order):
                still = still and p[i] <= alpha / (m - j)
                if still:
                    rejected.add(int(i))
            assert {i for i in range(m) if adjusted[i] <= alpha} == rejected


def _verdict(p: float, diff: float) -> dict:
    return {"difference": diff, "ci": [diff - 0.01, diff + 0.01], "p_value": p, "excludes_zero": p < 0.05}


def _chance(p: float) -> dict:
    return {"p_value": p, "p_adjusted": p, "family": None, "family_size": None, "differ": p < 0.05}


def report(p_ssl: float = 0.02, p_chance: float = 0.03) -> dict:
    gaps = ("equalized_odds_difference", "demographic_parity_difference", "accuracy_difference")
    parts = ("sex", "race", "sex & race")

    def model(name: str, compared: bool) -> dict:
        entry = {"name": name, "gaps": {p: {"chance": {g: _chance(p_chance) for g in gaps}} for p in parts}}
        if compared:
            entry["compared_with_supervised"] = {p: {g: _verdict(p_ssl, -0.05) for g in gaps} for p in parts}
        return entry

    return {"study": {"sensitive": ["sex", "race"]}, "bootstrap": {"confidence": 0.95},
            "models": [model("scarf+linear", True), model("scarf+full", True), model("supervised", False)]}


def test_families_sizes_and_adjusted_verdicts():
    out = apply_families(report())
    families = out["multiplicity"]
    # headline: 2 SSL models x 2 attributes x 2 headline gaps = 8; the rest 2 x 9 - 8 = 10
    assert families["ssl_vs_supervised"]["size"] == 8
    assert families["ssl_vs_supervised (other gaps and intersections)"]["size"] == 18 - 8
    assert families["groups_differ"]["size"] == 12          # 3 models x 2 attributes x 2 gaps
    assert all(f["method"] == "holm" and f["what"] for f in families.values())
    entry = out["models"][0]["compared_with_supervised"]["sex"]["equalized_odds_difference"]
    assert entry["family"] == "ssl_vs_supervised" and entry["family_size"] == 8
    assert entry["p_adjusted"] == pytest.approx(min(1, 8 * 0.02))
    assert entry["excludes_zero"] is False                  # 0.02 alone would have said "narrowed"
    chance = out["models"][2]["gaps"]["race"]["chance"]["demographic_parity_difference"]
    assert chance["family"] == "groups_differ" and chance["differ"] is False
    strong = apply_families(report(p_ssl=0.001, p_chance=0.001))
    assert strong["models"][1]["compared_with_supervised"]["race"]["demographic_parity_difference"]["excludes_zero"]
    assert strong["models"][1]["gaps"]["sex"]["chance"]["equalized_odds_difference"]["differ"]


def test_entries_without_a_p_value_stay_out_of_families():
    r = report()
    for model, part, gap in itertools.product(r["models"][:2], ("sex",), ("equalized_odds_difference",)):
        model["compared_with_supervised"][part][gap].update(p_value=None, ci=None, excludes_zero=None)
    out = apply_families(r)
    assert out["multiplicity"]["ssl_vs_supervised"]["size"] == 6
    skipped = out["models"][0]["compared_with_supervised"]["sex"]["equalized_odds_difference"]
    assert skipped["excludes_zero"] is None and skipped["family"] is None
