"""Models no better than chance (core.results.quality): the rule, its sentence, and where it shows.

The report dicts are test_report's hand-built ones, so every number the flag reads is known.
"""

from __future__ import annotations

import pytest
from test_report import _model, make_report, texts

from core.results.formatting import fmt_num
from core.results.quality import flagged_models, model_quality, versus_classical
from core.results.report import render_html
from core.results.summary import summarize


def entry(selection_rate=0.5, balanced_accuracy=0.7, ci=None, name="m") -> dict:
    return {"name": name, "overall": {"n": 200, "selection_rate": selection_rate,
                                      "balanced_accuracy": balanced_accuracy,
                                      "ci": {"balanced_accuracy": ci}}}


@pytest.mark.parametrize("rate, balanced, flag", [
    (0.98, 0.7, "one-label"), (0.02, 0.7, "one-label"), (1.0, 0.5, "one-label"), (0.0, 0.5, "one-label"),
    (0.979, 0.7, None), (0.021, 0.7, None),
    (0.5, 0.52, "near-chance"), (0.5, 0.5, "near-chance"), (0.5, 0.3, "near-chance"), (0.5, 0.5201, None),
    (None, None, None),
])
def test_the_rule_one_label_for_98_percent_or_balanced_accuracy_within_0_02_of_chance(rate, balanced, flag):
    quality = model_quality(entry(rate, balanced))
    assert quality["flag"] == flag
    assert bool(quality["text"]) == bool(quality["badge"]) == (flag is not None)


def test_the_sentences_say_what_the_model_does():
    one = model_quality(entry(0.99, 0.51, name="scarf+linear"), positive_label="good")
    assert one["text"].startswith("scarf+linear predicts \u201cgood\u201d for 99.0% of the 200 test rows "
                                  "(balanced accuracy 0.51; 0.50 is chance).")
    assert one["badge"] == "predicts one label for 99.0% of rows"
    assert "not fairness in any useful sense" in model_quality(entry(1.0, 0.5))["text"]
    assert model_quality(entry(1.0, 0.5))["badge"] == "predicts one label for every row"
    near = model_quality(entry(0.4, 0.51, ci=[0.47, 0.55], name="supervised"), confidence=0.95)
    assert near["text"] == ("Ordinary model (no pretraining) is not clearly better than guessing: balanced accuracy 0.51 (95% CI 0.47 to "
                            "0.55), where 0.50 is chance, so its gaps say little about fair treatment.")
    assert near["badge"] == "is no better than chance (balanced accuracy 0.51)"


def _near_chance(report: dict, index: int) -> dict:
    report["models"][index]["overall"].update(balanced_accuracy=0.51)
    report["models"][index]["overall"]["ci"]["balanced_accuracy"] = [0.45, 0.57]
    return report


def test_flagged_models_of_a_report():
    report = _near_chance(make_report(), 1)
    report["models"][2]["overall"]["selection_rate"] = 1.0
    flagged = flagged_models(report)
    assert [(f["model"], f["flag"]) for f in flagged] == [("scarf+full", "near-chance"), ("supervised", "one-label")]
    assert flagged_models(report, ["scarf+linear", "supervised"])[0]["model"] == "supervised"
    assert flagged_models(make_report()) == []


def test_a_near_chance_model_is_never_the_headline():
    # scarf+full has the largest equalized-odds gap (0.12); flagged, the headline passes to the baseline's 0.10
    assert summarize(make_report())[0]["model"] == "scarf+full"
    items = summarize(_near_chance(make_report(), 1))
    headline = items[0]
    assert headline["topic"] == "largest_gap" and headline["model"] == "supervised"
    assert "Left out of this headline as no better than chance: scarf+full" in headline["text"]
    # plain labels, not code names (issue 17, item 6)
    assert texts(items, "chance_model")[0].startswith("Pretrained (SCARF), all layers retrained is not clearly better")
    comparison = next(i for i in items if i["topic"] == "ssl_vs_supervised" and i["model"] == "scarf+full")
    assert "Caution: scarf+full is no better than chance (balanced accuracy 0.51)" in comparison["text"]
    worst = next(i for i in items if i["topic"] == "worst_group" and i["model"] == "scarf+full")
    assert worst["text"].endswith("Caution: scarf+full is no better than chance (balanced accuracy 0.51).")


def test_when_every_model_is_flagged_no_gap_is_a_headline():
    report = make_report()
    for index in range(3):
        _near_chance(report, index)
    headline = summarize(report)[0]
    assert headline["topic"] == "largest_gap" and headline["level"] == "info"
    assert headline["text"].startswith("No gap is a headline finding: every model predicts one label or is no "
                                       "better than chance (scarf+linear, scarf+full, supervised)")


def test_the_report_flags_the_model_in_every_table_that_shows_its_numbers():
    badge = "is no better than chance (balanced accuracy 0.51)"
    assert badge not in render_html(make_report())
    html = render_html(_near_chance(make_report(), 1))
    # the models table, one gap table per partition (sex, race) and one header per per-group table (2 x 4)
    assert html.count(f'<span class="badge warn">{badge}</span>') >= 1 + 2 + 8
    assert "the group with the highest selection rate among groups of at least 30 test rows" in html


def with_baselines(lr_auc: float = 0.83, hgb_auc: float = 0.85) -> dict:
    """make_report's three models (ROC AUC 0.80 each) plus the two classical baselines."""
    report = make_report()
    for name, auc, eo in (("logistic-regression", lr_auc, 0.07), ("gradient-boosting", hgb_auc, 0.09)):
        baseline = _model(name, eo=eo)
        baseline.update(pretraining=None, strategy="classical")
        baseline.pop("representation")
        baseline["overall"].update(roc_auc=auc, accuracy=0.8)
        report["models"].append(baseline)
    return report


@pytest.mark.parametrize("auc, flag", [(0.829, "below-baseline"), (0.831, None), (0.85, None), (0.78, "below-baseline")])
def test_a_model_more_than_0_02_below_the_best_classical_auc_is_flagged(auc, flag):
    baseline = {"name": "gradient-boosting", "strategy": "classical", "overall": {"roc_auc": 0.85}}
    model = entry(name="scarf+full") | {"overall": {**entry()["overall"], "roc_auc": auc}, "pretraining": "scarf",
                                         "strategy": "full"}
    quality = model_quality(model, baseline=baseline)
    assert quality["flag"] == flag
    if flag:
        assert quality["badge"] == f"is {fmt_num(0.85 - auc)} below Gradient boosting in AUC"  # plain labels
        assert quality["text"].startswith(f"Pretrained (SCARF), all layers retrained has a test AUC of {fmt_num(auc)}, ")
    assert model_quality(baseline, baseline=baseline)["flag"] is None  # never the baseline itself
    chance = model | {"overall": {**model["overall"], "balanced_accuracy": 0.5}}
    assert model_quality(chance, baseline=baseline)["flag"] == "near-chance"  # the chance flags come first


def test_the_best_classical_baseline_flags_every_weaker_model_of_a_report():
    report = with_baselines()
    flagged = flagged_models(report)
    # 0.80 is 0.05 below gradient-boosting's 0.85; logistic-regression's 0.83 is within 0.02 of it
    assert [(f["model"], f["flag"]) for f in flagged] == [("scarf+linear", "below-baseline"),
                                                         ("scarf+full", "below-baseline"),
                                                         ("supervised", "below-baseline")]
    assert flagged_models(with_baselines(lr_auc=0.81, hgb_auc=0.815)) == []
    assert f'<span class="badge warn">is {fmt_num(0.05)} below Gradient boosting in AUC</span>' in \
        render_html(report)


def test_versus_classical_compares_the_ssl_models_with_the_best_baseline():
    report = with_baselines()
    report["models"][1]["overall"].update(roc_auc=0.84, accuracy=0.79)
    versus = versus_classical(report)
    assert (versus["baseline"], versus["roc_auc"], versus["accuracy"]) == ("gradient-boosting", 0.85, 0.8)
    assert [row["model"] for row in versus["models"]] == ["scarf+full", "scarf+linear"]  # best AUC first
    best = versus["models"][0]
    assert best["auc_difference"] == pytest.approx(-0.01) and best["accuracy_difference"] == pytest.approx(-0.01)
    assert best["gaps"]["sex"]["equalized_odds_difference"] == {"model": 0.12, "baseline": 0.09,
                                                                "difference": pytest.approx(0.03)}
    assert versus["text"] == ("The best pretrained model, Pretrained (SCARF), all layers retrained, reaches AUC 0.84 "
                              "and accuracy 79.0%, against 0.85 and 80.0% for gradient boosting, the best classical "
                              "baseline; its gap in errors in either direction by sex is 0.12 against the baseline's "
                              "0.09.")  # plain words only: no code names (issue 17, item 6)
    assert versus_classical(make_report()) is None  # no baseline in the run


def test_the_summary_says_it_and_keeps_a_below_baseline_model_in_the_headline():
    items = summarize(with_baselines())
    assert items[0]["topic"] == "largest_gap" and items[0]["model"] == "scarf+full"
    assert "Left out of this headline" not in items[0]["text"]
    assert texts(items, "versus_classical")[0].startswith("The best pretrained model, Pretrained (SCARF), output layer only")
