"""The trade-off (core.results.tradeoff) on a hand-made report: a finding, a change below the
practical floor, a change whose Holm-adjusted interval includes 0, a flagged model that never
makes a finding, the frontier, and a sweep drawn as a curve."""

from __future__ import annotations

from core.results.tradeoff import mitigation_findings, sweep_curves, tradeoff_points

GAP = "equalized_odds_difference"


def compared(difference, ci, *, excludes_zero, below_floor=False):
    return {"difference": difference, "ci": ci, "p_value": 0.01, "p_adjusted": 0.02, "excludes_zero": excludes_zero,
            "below_floor": below_floor, "practical_floor": 0.01, "family": "variant_vs_base", "n_replicates": [3, 3]}


def model(name, accuracy, gap, *, base=None, params=None, gap_change=None, accuracy_change=None, balanced=0.8):
    entry = {"name": name, "pretraining": None, "strategy": "mitigation" if base else "classical",
             "overall": {"accuracy": accuracy, "balanced_accuracy": balanced, "roc_auc": 0.85, "selection_rate": 0.3},
             "gaps": {"sex": {GAP: gap}}, "replicates": [{}, {}, {}],
             "aggregate": {"overall": {"accuracy": {"mean": accuracy, "ci": [accuracy - 0.01, accuracy + 0.01]}},
                           "gaps": {"sex": {GAP: {"mean": gap, "ci": [gap - 0.02, gap + 0.02]}}}}}
    if base:
        entry |= {"base": base, "mitigation": {"name": name.split("+")[1].split("-eps")[0], "kind": "fairlearn",
                                               "base": base, "params": params or {}},
                  "compared_with_base": {"sex": {GAP: gap_change}},
                  "compared_with_base_metrics": {"overall": {"accuracy": accuracy_change}}}
    return entry


REPORT = {"bootstrap": {"confidence": 0.95}, "study": {"sensitive": ["sex"]}, "models": [
    model("logistic-regression", 0.85, 0.10),
    model("logistic-regression+eg-equalized-odds", 0.842, 0.06, base="logistic-regression", params={"eps": 0.01},
          gap_change=compared(-0.04, [-0.06, -0.02], excludes_zero=True),
          accuracy_change=compared(-0.008, [-0.013, -0.003], excludes_zero=True)),
    model("logistic-regression+eg-equalized-odds-eps0.05", 0.849, 0.095, base="logistic-regression",
          params={"eps": 0.05}, gap_change=compared(-0.005, [-0.008, -0.002], excludes_zero=True, below_floor=True),
          accuracy_change=compared(-0.001, [-0.002, 0.0], excludes_zero=False)),
    model("logistic-regression+correlation-remover", 0.80, 0.09, base="logistic-regression",
          gap_change=compared(-0.01, [-0.05, 0.03], excludes_zero=False),
          accuracy_change=compared(-0.05, [-0.07, -0.03], excludes_zero=True)),
    model("logistic-regression+threshold-optimizer", 0.70, 0.0, base="logistic-regression", balanced=0.5,
          gap_change=compared(-0.10, [-0.12, -0.08], excludes_zero=True),
          accuracy_change=compared(-0.15, [-0.17, -0.13], excludes_zero=True)),
]}


def test_what_each_mitigation_bought_and_cost_in_words():
    found = {f["model"]: f for f in mitigation_findings(REPORT, "sex", GAP)}
    finding = found["logistic-regression+eg-equalized-odds"]
    assert finding["finding"] and finding["fairer"]
    assert ("narrowed the sex equalized-odds gap by 0.04 (95% CI 0.02 to 0.06), for 0.8 accuracy points "
            "(95% CI 0.3 to 1.3)") in finding["sentence"]
    below = found["logistic-regression+eg-equalized-odds-eps0.05"]
    assert not below["finding"] and "less than the practical floor" in below["sentence"]
    assert "no clear change in accuracy" in below["sentence"]
    unclear = found["logistic-regression+correlation-remover"]
    assert not unclear["finding"] and "no clear change to the sex equalized-odds gap" in unclear["sentence"]
    assert "for 5.0 accuracy points" in unclear["sentence"]  # a clear cost is said even when the gap did not move
    flagged = found["logistic-regression+threshold-optimizer"]  # balanced accuracy 0.5: near chance
    assert not flagged["finding"] and "never a finding" in flagged["sentence"]
    assert "logistic-regression" not in found


def test_the_frontier_leaves_out_flagged_models():
    points = tradeoff_points(REPORT, "sex", GAP).set_index("model")
    assert points.loc["logistic-regression+threshold-optimizer", "flagged"]
    assert not points.loc["logistic-regression+threshold-optimizer", "frontier"]  # gap 0, but near chance
    assert points.loc["logistic-regression", "frontier"] and points.loc["logistic-regression+eg-equalized-odds", "frontier"]
    assert not points.loc["logistic-regression+correlation-remover", "frontier"]  # less accurate and less fair
    assert points.loc["logistic-regression", "accuracy_low"] == 0.84
    assert abs(points.loc["logistic-regression", "gap_high"] - 0.12) < 1e-12


def test_a_sweep_is_a_curve_over_its_parameter():
    curves = sweep_curves(REPORT, "sex", GAP)
    assert list(curves["value"]) == [0.01, 0.05] and set(curves["parameter"]) == {"eps"}
    assert curves["curve"].nunique() == 1 and curves["gap"].tolist() == [0.06, 0.095]
    assert sweep_curves({"models": REPORT["models"][:2]}, "sex", GAP).empty
