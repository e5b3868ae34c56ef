"""The fairness cost of privacy (core.results.privacy_cost), read from report.json: a private
model planted to be worse for one group is said to cost that group, an identical pair costs
nothing, and every verdict follows the Holm-adjusted entries and the practical floor."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.audit.multiplicity import apply_families
from core.audit.replicated import replicated_gaps, replicated_overall, replicated_paired_differences, \
    replicated_paired_rates
from core.results.privacy_cost import FELL, epsilon_curve, privacy_costs, strongest_guarantee_sentences

N, R = 4000, 5


def planted(seed: int = 0):
    """Test rows, groups a / b, a base right on 85% of each group in every replicate, and a private
    model right as often in group a but wrong on an extra 15% of group b's rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    groups = pd.DataFrame({"sex": np.where(rng.random(N) < 0.5, "a", "b")})
    def model(extra_b: float) -> list[np.ndarray]:
        runs = []
        for _ in range(R):
            wrong = rng.random(N) < np.where(groups["sex"] == "b", 0.15 + extra_b, 0.15)
            runs.append(np.where(wrong, 1 - y, y))
        return runs
    return y, groups, model(0.0), model(0.15)


def entry(name: str, y, groups, preds, base_preds=None, epsilon=None, base=None) -> dict:
    options = dict(n_boot=200, random_state=0)
    gaps = replicated_gaps(y, preds, groups, **options)
    out = {"name": name, "pretraining": None, "strategy": "supervised",
           "aggregate": {"overall": replicated_overall(y, preds, **options), "gaps": gaps}}
    if base_preds is not None:
        out |= {"base": base, "privacy": {"epsilon": epsilon * 0.99, "delta": 1e-3, "target_epsilon": epsilon},
                "compared_with_base": replicated_paired_differences(y, preds, base_preds, groups, **options),
                "compared_with_base_metrics": replicated_paired_rates(y, preds, base_preds, groups, **options)}
    return out


def report(models: list[dict]) -> dict:
    return apply_families({"study": {"sensitive": ["sex"]}, "bootstrap": {"confidence": 0.95}, "models": models})


def test_a_private_model_worse_for_one_group_is_said_to_cost_that_group():
    y, groups, base, private = planted()
    done = report([entry("supervised", y, groups, base),
                   entry("supervised+dp-eps1", y, groups, private, base, 1.0, "supervised"),
                   entry("supervised+dp-eps8", y, groups, base, base, 8.0, "supervised")])
    strongest, weakest = privacy_costs(done)
    assert strongest["groups"]["sex"]["b"]["verdict"] == FELL
    assert 0.10 < -strongest["groups"]["sex"]["b"]["difference"] < 0.20  # 15 points planted
    assert strongest["groups"]["sex"]["a"]["verdict"] != FELL
    assert strongest["groups"]["sex"]["b"]["family"] == "variant_vs_base (accuracy)"  # Holm-adjusted
    assert strongest["worst_group"]["sex"]["verdict"] == FELL
    words = " ".join(strongest_guarantee_sentences(done))
    assert "With the strongest guarantee (epsilon 1), accuracy for sex = b fell by 0.1" in words
    assert "epsilon 8" not in words
    # The identical pair: nothing fell or rose anywhere.
    verdicts = [weakest["overall"]["verdict"], weakest["worst_group"]["sex"]["verdict"],
                *(e["verdict"] for e in weakest["groups"]["sex"].values())]
    assert verdicts and all(v == "no clear change" for v in verdicts)
    assert not any(" fell " in s or " rose " in s for s in weakest["sentences"])
    # The curve: strongest first, the base last, worst-group accuracy lower at epsilon 1.
    (curve,) = epsilon_curve(done)
    assert [p["epsilon"] for p in curve["points"]] == [1.0, 8.0, None]
    worst = [p["worst_group_accuracy"]["sex"]["mean"] for p in curve["points"]]
    assert worst[0] < worst[1] - 0.1 and abs(worst[1] - worst[2]) < 1e-12


def test_a_difference_below_the_floor_is_no_change_that_matters():
    y, groups, base, _ = planted(1)
    nudged = [np.where((np.arange(N) % 200 == 0) & (p == y), 1 - y, p) for p in base]  # 0.5% more errors
    done = report([entry("supervised", y, groups, base),
                   entry("supervised+dp-eps3", y, groups, nudged, base, 3.0, "supervised")])
    (cost,) = privacy_costs(done)
    # The same rows nudged in every replicate: a clear difference, but below the floor.
    assert cost["overall"]["excludes_zero"] and cost["overall"]["below_floor"]
    assert cost["overall"]["verdict"] == "no change that matters"
    assert "accuracy: no change that matters" in cost["sentences"][0]


def test_a_private_model_with_one_label_for_everyone_is_flagged_and_never_a_finding():
    y, groups, base, _ = planted(2)
    majority = [np.ones(N, dtype=int) for _ in range(R)]  # what DP on a small table can give
    done = report([entry("supervised", y, groups, base),
                   entry("supervised+dp-eps1", y, groups, majority, base, 1.0, "supervised")])
    for model, preds in zip(done["models"], (base[0], majority[0])):  # the point values the flag reads
        model["overall"] = {"accuracy": float((preds == y).mean()), "balanced_accuracy": 0.5 if model is
                            done["models"][1] else 0.85, "roc_auc": 0.5 if model is done["models"][1] else 0.85,
                            "selection_rate": float(preds.mean())}
    (cost,) = privacy_costs(done)
    assert cost["flag"] and cost["overall"]["verdict"] == FELL  # the statistics still say it fell...
    (sentence,) = cost["sentences"]  # ...but the words say it is flagged, and claim nothing
    assert "is flagged, so its changes are not findings" in sentence and " fell " not in sentence
