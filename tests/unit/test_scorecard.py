"""The meeting view (issue 17): the scorecard, plain words, the practical floor, the measure choice,
the model card and the comparison of two audits, on small hand-built report dicts (test_report's)."""

from __future__ import annotations

import copy
import re

from test_report import make_report

from core.audit.multiplicity import PRACTICAL_FLOOR, apply_families
from core.results.compare import audit_changes
from core.results.measure_choice import choose_measure
from core.results.model_card import model_card, study_title
from core.results.report import render_html
from core.results.scorecard import scorecard
from core.results.summary import summarize
from core.results.wording import comparison_verdict, favoured, gap_sentence, model_label


def _row(card: dict, name: str) -> dict:
    return next(r for r in card["rows"] if r["name"] == name)


# -- the practical floor ------------------------------------------------------------------------
def _tiny_but_significant() -> dict:
    """scarf+linear's equalized-odds gap differs from the baseline's by 0.002 with a p-value of 1e-6."""
    report = make_report()
    entry = report["models"][0]["compared_with_supervised"]["sex"]["equalized_odds_difference"]
    entry.update(model_a=0.102, model_b=0.100, difference=0.002, ci=[0.001, 0.003], p_value=1e-6)
    return report


def test_a_clear_difference_below_the_floor_is_recorded_and_never_called_narrowed_or_widened():
    report = apply_families(_tiny_but_significant())
    entry = report["models"][0]["compared_with_supervised"]["sex"]["equalized_odds_difference"]
    assert entry["excludes_zero"] is True  # the test itself is untouched
    assert entry["below_floor"] is True and entry["practical_floor"] == PRACTICAL_FLOOR
    assert comparison_verdict(entry) == "too small to matter"
    line = next(i["text"] for i in summarize(report) if i.get("model") == "scarf+linear"
                and i.get("topic") == "ssl_vs_supervised")
    assert "too small to matter" in line and "widened" not in line
    assert _row(scorecard(report), "scarf+linear")["verdicts"]["sex"]["verdict"] == "too small to matter"


def test_the_floor_applies_to_old_reports_without_the_recorded_field():
    entry = {"difference": -0.004, "ci": [-0.006, -0.002], "excludes_zero": True}
    assert comparison_verdict(entry) == "too small to matter"
    assert comparison_verdict({**entry, "difference": -0.04, "ci": [-0.06, -0.02]}) == "narrowed"
    assert comparison_verdict({**entry, "excludes_zero": False}) == "no clear difference"


def test_gaps_below_the_floor_are_never_the_headline():
    report = make_report()
    for model in report["models"]:
        for attribute in ("sex", "race"):
            gaps = model["gaps"][attribute]
            gaps["equalized_odds_difference"] = gaps["demographic_parity_difference"] = 0.004
    headline = next(i for i in summarize(report) if i["topic"] == "largest_gap")
    assert headline["level"] == "info" and "practical floor" in headline["text"]
    card = scorecard(report)
    assert card["headline"] is None and "No model shows" in card["answers"][0]
    assert _row(card, "supervised")["gaps"]["sex"]["trivial"] is True


def test_when_every_model_is_flagged_the_scorecard_says_none_can_be_judged():
    """Tried on a violent-recidivism table (11% positives): every model predicted "no" for every
    row, and the first answer read "no group is treated clearly worse". Such models tell no one
    apart; the answer must say that nothing can be judged, not that the groups are treated alike."""
    report = make_report()
    for model in report["models"]:
        model["overall"].update(selection_rate=0.0, balanced_accuracy=0.5)
    card = scorecard(report)
    assert all(row["flag"] is not None for row in card["rows"])
    assert card["answers"][0].startswith("No model can be judged") and "treated clearly worse" not in card["answers"][0]


def _pretraining_line(card: dict) -> str:
    return next(line for line in card["answers"] if line.startswith("Pretraining against the ordinary model"))


def test_pretraining_is_credited_only_for_pretrained_models_that_tell_people_apart():
    """Seen in the walk (German, Quick run): "fairer in 2" came from a fine-tuned model that gave
    one label to nearly everyone, and the pairs counted the classical baselines, which were not
    pretrained. Neither may count; a flagged ordinary model leaves nothing to judge."""
    report = make_report()
    full = next(m for m in report["models"] if m["name"] == "scarf+full")
    full["overall"]["selection_rate"] = 0.995  # one label for nearly everyone
    full["compared_with_supervised"]["sex"]["equalized_odds_difference"].update(
        model_a=0.04, model_b=0.10, difference=-0.06, ci=[-0.09, -0.03], p_value=1e-4)
    classical = copy.deepcopy(next(m for m in report["models"] if m["name"] == "scarf+linear"))
    classical.update(name="logistic-regression", pretraining=None, strategy="classical")
    report["models"].append(classical)
    report = apply_families(report)
    assert comparison_verdict(full["compared_with_supervised"]["sex"]["equalized_odds_difference"]) == "narrowed"
    card = scorecard(report)
    # The audit's verdict says "narrowed"; the table cell must not say "fairer" for it either.
    assert _row(card, "scarf+full")["verdicts"]["sex"] == {
        "verdict": None, "text": "not judged: no better than chance", "difference": None, "ci_text": "",
        "p_adjusted": None}
    assert _row(card, "scarf+linear")["verdicts"]["sex"]["verdict"] is not None
    line = _pretraining_line(card)
    assert "over 2 pretrained-model and attribute pairs" in line and "1 pretrained model left out" in line
    assert "fairer in 0" in line
    assert any(a.startswith("No better than chance, or one label") and "all layers retrained" in a
               for a in card["answers"])

    supervised = next(m for m in report["models"] if m["name"] == "supervised")
    supervised["overall"].update(selection_rate=0.0, balanced_accuracy=0.5)
    card = scorecard(report)
    assert "not judged, because the ordinary model is no better than chance" in _pretraining_line(card)
    assert _row(card, "scarf+linear")["verdicts"]["sex"]["text"] == "not judged: the ordinary model is no better than chance"


def test_a_below_baseline_model_may_lead_with_its_flag_said_as_in_the_summary():
    """The walk's German run: the scorecard led with another model than the summary's largest gap,
    because it left out below-baseline models, which the summary keeps (core.results.quality).
    Both now lead with the same gap; the scorecard says the model is the weaker one."""
    report = make_report()
    classical = copy.deepcopy(next(m for m in report["models"] if m["name"] == "scarf+linear"))
    classical.update(name="logistic-regression", pretraining=None, strategy="classical")
    classical["overall"]["roc_auc"] = 0.9  # every other model (0.8) is below it by more than 0.02
    report["models"].append(classical)
    card = scorecard(report)
    assert _row(card, "scarf+full")["flag"] == "below-baseline"
    assert card["headline"]["model"] == "scarf+full"
    assert "Caution:" in card["answers"][0] and "below Logistic regression in AUC" in card["answers"][0]
    largest = next(i for i in summarize(report) if i["topic"] == "largest_gap")
    assert largest.get("model") == "scarf+full" or "scarf+full" in largest["text"]


# -- plain words and who is favoured ---------------------------------------------------------------
def test_models_get_plain_labels_with_the_code_name_on_hover():
    assert model_label({"name": "scarf+bn-affine", "pretraining": "scarf", "strategy": "bn-affine"}) == \
        "Pretrained (SCARF), output layer and normalisation layers"
    assert model_label({"name": "supervised", "pretraining": None, "strategy": "supervised"}).startswith("Ordinary")
    assert model_label({"name": "logistic-regression", "strategy": "classical"}) == "Logistic regression"
    row = _row(scorecard(make_report()), "scarf+full")
    assert row["title"] == "code name: scarf+full"
    assert not re.search(r"scarf\+|BatchNorm|Cram", row["label"])


def test_who_is_favoured_depends_on_whether_the_outcome_helps_or_harms():
    assert favoured("fpr", "White", "Black", "helps") == "\u201cWhite\u201d is favoured"
    assert favoured("fpr", "White", "Black", "harms") == "\u201cBlack\u201d is favoured"
    assert favoured("fnr", "A", "B", "helps") == "\u201cB\u201d is favoured"  # A's deserving people are missed
    assert favoured("accuracy", "A", "B", "helps") == ""
    assert favoured("fpr", "A", "B", None) == ""
    text = gap_sentence("fpr", "White", "Black", 0.3, 0.1, "released", "helps")
    assert text == ("People in group \u201cWhite\u201d who truly were not \u201creleased\u201d were still predicted "
                    "\u201creleased\u201d more often than in group \u201cBlack\u201d (30.0% vs 10.0%): "
                    "\u201cWhite\u201d is favoured.")


def test_the_scorecard_reads_the_outcome_effect_from_the_audit_config_and_the_page_overrides_it():
    report = make_report()
    report["config"]["outcome_effect"] = "harms"
    cell = _row(scorecard(report), "scarf+full")["gaps"]["sex"]
    assert cell["sentence"].endswith("\u201cMale\u201d is favoured.")  # Female wrongly given a harm more often
    cell = _row(scorecard(report, outcome_effect="helps"), "scarf+full")["gaps"]["sex"]
    assert cell["sentence"].endswith("\u201cFemale\u201d is favoured.")


# -- the scorecard -------------------------------------------------------------------------------
def test_one_row_per_model_with_one_interval_per_gap_and_the_audits_verdict():
    report = make_report()
    full = report["models"][1]["compared_with_supervised"]["sex"]["equalized_odds_difference"]
    full.update(ci=[0.01, 0.03], difference=0.02, excludes_zero=True)
    card = scorecard(report)
    assert [r["name"] for r in card["rows"]] == ["scarf+linear", "scarf+full", "supervised"]
    row = _row(card, "scarf+full")
    assert row["gaps"]["sex"]["text"] == "0.12" and row["gaps"]["sex"]["ci_text"] == "0.05 to 0.19"
    assert row["verdicts"]["sex"]["verdict"] == "widened"  # read from the report, not recomputed
    assert row["verdicts"]["sex"]["text"] == "less fair than the ordinary model"
    assert _row(card, "supervised")["verdicts"]["sex"]["verdict"] == "baseline"
    assert row["worst"]["attribute"] == "race" and row["worst"]["group"] == "C"
    assert card["headline"]["model"] == "scarf+full"


def test_the_best_baseline_is_the_classical_model_with_the_highest_auc_else_the_supervised_one():
    report = make_report()
    assert scorecard(report)["baseline"] == "supervised"
    for name, auc in (("logistic-regression", 0.84), ("gradient-boosting", 0.86)):
        model = copy.deepcopy(report["models"][2])
        model.update(name=name, strategy="classical", pretraining=None)
        model["overall"]["roc_auc"] = auc
        report["models"].append(model)
    card = scorecard(report)
    assert card["baseline"] == "gradient-boosting" and card["baseline_label"] == "Gradient boosting"
    assert _row(card, "scarf+linear")["auc_vs_baseline_text"] == "\u22120.06"


def test_a_small_group_that_drives_a_gap_says_so():
    report = make_report()
    between = report["models"][1]["gaps"]["race"]["between"]["equalized_odds_difference"]
    between.update(max_group="A", min_group="C")
    cell = _row(scorecard(report), "scarf+full")["gaps"]["race"]
    assert "\u201cC\u201d has only 20 test rows" in cell["small"]


# -- the measure choice -------------------------------------------------------------------------
def test_the_fairness_tree_picks_the_headline_measure():
    assert choose_measure()["measure"] == "equalized_odds_difference"
    assert choose_measure("harms")["measure"] == "fpr_difference"
    assert choose_measure("helps")["measure"] == "equal_opportunity_difference"
    assert choose_measure("helps", "given")["measure"] == "fpr_difference"  # the explicit answer wins
    scarce = choose_measure("helps", "alike", scarce=True)
    assert scarce["measure"] == "equalized_odds_difference"
    assert scarce["also"] == ["demographic_parity_difference"] and "scarce" in scarce["rationale"]


# -- the model card and the report ---------------------------------------------------------------
def test_the_title_is_the_studys_name_never_the_internal_file_name():
    report = make_report()
    report["study"]["dataset"] = "c6982b28e80bf1ac-arrests.csv"
    assert study_title(report) == "arrests"
    assert study_title(report, "Arrests 2024") == "Arrests 2024"
    html = render_html(report, study_name="Arrests 2024")
    assert "<title>Fairness audit: Arrests 2024</title>" in html
    assert "c6982b28e80bf1ac" not in html.split("<body>")[1].split('id="provenance"')[0]


def test_the_report_opens_with_the_scorecard_and_the_model_card_and_keeps_the_rest_as_appendix():
    report = make_report()
    notes = [{"author": "ana", "status": "draft", "body": "Check the small group C."}]
    html = render_html(report, study_name="Loans", framing={"outcome_effect": "helps", "intended_use": "Triage."},
                       notes=notes)
    body = html.split("<body>")[1]
    assert body.index('id="scorecard"') < body.index('id="model-card"') < body.index('class="appendix"') \
        < body.index('id="summary"')
    card = body[body.index('id="model-card"'):body.index('class="appendix"')]
    for title in ("Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
                  "Quantitative analyses", "Ethical considerations", "Caveats"):
        assert title in card
    assert "Triage." in card and "Check the small group C." in card
    assert "Equal-opportunity gap" in card  # the outcome helps: who is missed leads (measure choice)
    scores = body[body.index('id="scorecard"'):body.index('id="model-card"')]
    assert 'title="code name: scarf+linear"' in scores and ">scarf+linear<" not in scores


def test_model_card_says_when_no_column_was_withheld_and_when_nothing_was_stated():
    sections = {s["key"]: s["lines"] for s in model_card(make_report())["sections"]}
    assert any("none found" in line for line in sections["training_data"])
    assert any("Not stated yet" in line for line in sections["intended_use"])


def test_two_audits_of_a_study_say_what_changed_with_intervals():
    earlier, later = make_report(), make_report()
    later["models"][1]["gaps"]["sex"]["equalized_odds_difference"] = 0.20
    rows = audit_changes(earlier, later)
    row = next(r for r in rows if r["model"] == "scarf+full" and r["attribute"] == "sex")
    assert row["before"] == 0.12 and row["after"] == 0.20 and abs(row["change"] - 0.08) < 1e-12
    assert row["before_ci"] == [0.05, 0.19]
    html = render_html(later, previous=("the May audit", earlier))
    assert "What changed since the May audit" in html


def test_progress_messages_read_in_plain_words():
    """The engine's live messages name models by code ("scarf+gradual: epoch 15/20"); the Train
    page shows them with plain labels (issue 17, item 6), other words untouched."""
    from core.results.wording import plain_names

    assert plain_names("scarf+gradual: epoch 15/20") == "Pretrained (SCARF), all layers, step by step: epoch 15/20"
    assert plain_names("Fine-tuned supervised") == "Fine-tuned Ordinary model (no pretraining)"
    assert plain_names("Auditing 8 models") == "Auditing 8 models"
