"""The stakeholder report: the plain-language summary, the self-contained HTML, the PDF fallback.

Small hand-built report dicts (the report.json contract, docs/metrics.md) instead of audits,
so every number the summary should say is known.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from core.results import figures, palette, pdf
from core.results.report import render_html, write_html_report
from core.results.folder import load_embeddings
from core.results.formatting import fmt_num, fmt_pct
from core.results.summary import summarize


def _group(name: str, n: int, *, acc=0.8, tpr=0.7, fpr=0.2, sel=0.5, small=False, attribute="sex") -> dict:
    def ci(v):
        return None if v is None else [max(v - 0.1, 0.0), min(v + 0.1, 1.0)]

    return {"group": name, "values": {attribute: name}, "n": n, "small": small, "n_positive": n // 2,
            "n_negative": n - n // 2, "accuracy": acc, "balanced_accuracy": acc, "tpr": tpr, "fpr": fpr,
            "fnr": None if tpr is None else 1 - tpr, "precision": 0.7, "selection_rate": sel, "roc_auc": 0.8,
            "calibration_error": 0.05,
            "ci": {"accuracy": ci(acc), "tpr": ci(tpr), "fpr": ci(fpr), "selection_rate": ci(sel)}}


def _gaps(eo, dp, *, eo_metric="fpr", high="Female", low="Male", eo_ci=None, pair_ci=(0.02, 0.2),
          worst=0.7, worst_group="Female", small=()) -> dict:
    return {"demographic_parity_difference": dp, "equalized_odds_difference": eo,
            "equal_opportunity_difference": eo, "accuracy_difference": 0.05, "worst_group_accuracy": worst,
            "mean_subgroup_gap": 0.02, "fpr_difference": eo, "min_disparate_impact_ratio": 0.9,
            "four_fifths_flag": False,
            "between": {"equalized_odds_difference": {"metric": eo_metric, "max_group": high, "min_group": low,
                                                      "pair_ci": list(pair_ci), "pair_ci_excluded": 0},
                        "demographic_parity_difference": {"metric": "selection_rate", "max_group": high,
                                                          "min_group": low, "pair_ci": list(pair_ci),
                                                          "pair_ci_excluded": 0},
                        "worst_group_accuracy": {"metric": "accuracy", "min_group": worst_group}},
            "excluded_groups": {"tpr": [], "fpr": []}, "small_groups": list(small),
            "ci": {"equalized_odds_difference": list(eo_ci) if eo_ci else None if eo is None else [eo / 2, eo * 1.5],
                   "demographic_parity_difference": None if dp is None else [dp / 2, dp * 1.5],
                   "worst_group_accuracy": [worst - 0.1, worst + 0.05]}}


def _comparison(a, b, ci) -> dict:
    return {"equalized_odds_difference": {"model_a": a, "model_b": b, "difference": a - b, "ci": list(ci),
                                          "excludes_zero": ci[0] > 0 or ci[1] < 0, "ci_excluded": 0},
            "demographic_parity_difference": {"model_a": 0.05, "model_b": 0.06, "difference": -0.01,
                                              "ci": [-0.05, 0.03], "excludes_zero": False, "ci_excluded": 0}}


def _model(name: str, *, eo=0.05, dp=0.04, sel=0.5, compared_ci=None, sup_eo=0.10, eo_ci=None,
           high="Female", low="Male", race_tpr=0.6) -> dict:
    pretraining = None if name == "supervised" else "scarf"
    model = {
        "name": name, "pretraining": pretraining, "strategy": name.split("+")[-1], "n_trainable_params": 1234,
        "overall": {"n": 200, "accuracy": 0.75, "balanced_accuracy": 0.7, "roc_auc": 0.8, "tpr": 0.7, "fpr": 0.2,
                    "selection_rate": sel, "calibration_error": 0.04,
                    "ci": {"accuracy": [0.7, 0.8], "balanced_accuracy": [0.65, 0.75], "roc_auc": [0.75, 0.85],
                           "selection_rate": [max(sel - 0.05, 0), min(sel + 0.05, 1)]}},
        "groups": {"sex": [_group("Female", 80), _group("Male", 120)],
                   "race": [_group("A", 150, attribute="race"),
                            _group("B", 30, attribute="race"),
                            _group("C", 20, small=True, tpr=None, attribute="race")]},
        "gaps": {"sex": _gaps(eo, dp, eo_ci=eo_ci, high=high, low=low),
                 "race": _gaps(0.03, 0.02, eo_metric="tpr", high="A", low="B", worst=0.65, worst_group="C",
                               small=["C"])},
        "representation": {"leakage": {"sex": {"balanced_accuracy": 0.7, "chance": 0.5, "std": 0.02,
                                                "raw_features_balanced_accuracy": 0.9}}},
    }
    if name != "supervised":
        model["compared_with_supervised"] = {"sex": _comparison(eo, sup_eo, compared_ci or (-0.1, 0.05))}
    return model


def make_report(**overrides) -> dict:
    report = {
        "equiscope_version": "0.1.0",
        "study": {"dataset": "loans.csv", "dataset_sha256": "ab" * 32, "target": "credit", "positive_label": "good",
                  "sensitive": ["sex", "race"], "n_train": 600, "n_test": 200, "n_validation": 100,
                  "n_pretrain": 600, "label_fraction": 1.0, "seed": 0},
        "models": [_model("scarf+linear", eo=0.04), _model("scarf+full", eo=0.12, eo_ci=(0.05, 0.19)),
                   _model("supervised", eo=0.10)],
        "pretraining": {"method": "scarf", "epochs_completed": 2, "best_epoch": 2, "best_val_loss": 4.5,
                        "initial_val_loss": 4.6, "stopped_early": False,
                        "collapse": {"embedding_std": 0.3, "relative_std": 0.7, "threshold": 0.05, "collapsed": False},
                        "history": [{"epoch": 1, "val_loss": 4.55}, {"epoch": 2, "val_loss": 4.5}]},
        "bootstrap": {"method": "percentile", "n_boot": 200, "confidence": 0.95, "resampling": "within groups"},
        "withheld_columns": [], "notes": [], "warnings": [],
        "config": {"data": "loans.csv", "target": "credit", "sensitive": ["sex", "race"], "seed": 0,
                   "n_boot": 200, "min_group_size": 30},
        "versions": {"equiscope": "0.1.0", "torch": "2.13.0"},
    }
    report.update(overrides)
    return report


def texts(items: list[dict], topic: str) -> list[str]:
    return [item["text"] for item in items if item.get("topic") == topic]


# -- summary ---------------------------------------------------------------------------------------
def test_summary_leads_with_the_largest_gap_its_groups_and_interval():
    items = summarize(make_report())
    first = items[0]
    assert first["level"] == "finding" and first["topic"] == "largest_gap"
    assert (first["model"], first["attribute"], first["gap"]) == ("scarf+full", "sex", "equalized_odds_difference")
    assert first["text"].startswith("For sex, the equalized-odds gap of scarf+full is 0.12 (95% CI 0.05 to 0.19): "
                                    "the false-positive rate of sex \u201cFemale\u201d (n = 80) is 0.12 higher "
                                    "than that of \u201cMale\u201d (n = 120).")
    assert "0.02 to 0.20" in first["text"]  # the signed pair interval


def test_largest_gap_can_be_demographic_parity_on_another_attribute():
    report = make_report()
    report["models"][0]["gaps"]["race"] = _gaps(0.03, 0.3, high="B", low="A")
    first = summarize(report)[0]
    assert (first["model"], first["attribute"], first["gap"]) == ("scarf+linear", "race",
                                                                  "demographic_parity_difference")
    assert "selection rate of race \u201cB\u201d (n = 30) is 0.30 higher than that of \u201cA\u201d (n = 150)" \
        in first["text"]


def test_summary_says_whether_the_gap_is_larger_than_chance():
    """"the groups differ" follows the permutation test of the gap (its family's adjusted p),
    not the extreme pair's interval, which stays as a description (issue 14, item 5)."""
    report = make_report()
    report["models"][1]["gaps"]["sex"]["between"]["equalized_odds_difference"]["pair_ci"] = [0.03, 0.2]
    chance = {"p_value": 0.02, "p_adjusted": 0.12, "family": "groups_differ", "family_size": 6, "differ": False}
    report["models"][1]["gaps"]["sex"]["chance"] = {"equalized_odds_difference": chance}
    text = summarize(report)[0]["text"]
    assert "difference between these two groups is 0.03 to 0.20" in text
    assert ("A gap this large is expected by chance with 2 groups of these sizes (permutation test, p = 0.020, "
            "Holm-adjusted within the 6 comparisons of its family: 0.120): the test data do not show that the "
            "groups differ.") in text
    chance.update(p_adjusted=0.001, differ=True)
    assert "A gap this large is not expected by chance" in summarize(report)[0]["text"]


@pytest.mark.parametrize("ci, verdict", [((-0.08, 0.04), "no clear difference"),
                                         ((-0.2, -0.01), "narrowed"), ((0.01, 0.2), "widened")])
def test_ssl_vs_supervised_uses_the_paired_interval(ci, verdict):
    report = make_report()
    sup_eo = 0.12 - 0.05 if verdict == "widened" else 0.12 + 0.05 if verdict == "narrowed" else 0.12
    report["models"][1]["compared_with_supervised"]["sex"] = _comparison(0.12, sup_eo, ci)
    item = next(i for i in summarize(report) if i["topic"] == "ssl_vs_supervised" and i["model"] == "scarf+full")
    assert verdict in item["text"]
    others = {"no clear difference", "narrowed", "widened"} - {verdict}
    assert not any(f" {word} " in item["text"] for word in others)
    if verdict == "no clear difference":
        assert item["level"] == "info" and item["direction"] is None and "includes 0" in item["text"]
    else:
        assert item["level"] == "finding" and item["direction"] == verdict
        assert f"{verdict} the equalized-odds gap for sex compared with the supervised baseline" in item["text"]
    tally = next(i for i in summarize(report) if i["topic"] == "ssl_tally")
    assert (tally["narrowed"], tally["widened"]) == (int(verdict == "narrowed"), int(verdict == "widened"))


@pytest.mark.parametrize("rate, words", [(1.0, "every one of the 200 test rows"), (0.0, "none of the 200 test rows"),
                                         (0.99, "99.0% of the 200 test rows")])
def test_a_model_predicting_one_label_is_flagged(rate, words):
    report = make_report()
    report["models"][0]["overall"]["selection_rate"] = rate
    report["models"][0]["gaps"]["sex"]["demographic_parity_difference"] = 0.0
    warnings = texts(summarize(report), "degenerate_model")
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Pretrained (SCARF), output layer only predicts \u201cgood\u201d for {words}")
    if rate in (0.0, 1.0):
        assert "not fairness in any useful sense" in warnings[0]
    comparison = next(i for i in summarize(report) if i.get("model") == "scarf+linear"
                      and i["topic"] == "ssl_vs_supervised")
    assert "Caution" in comparison["text"]


def test_ordinary_models_are_not_flagged():
    items = summarize(make_report())
    assert texts(items, "degenerate_model") == [] and texts(items, "chance_model") == []


def test_a_model_no_better_than_chance_is_flagged():
    report = make_report()
    report["models"][1]["overall"].update(balanced_accuracy=0.52)
    report["models"][1]["overall"]["ci"]["balanced_accuracy"] = [0.46, 0.58]
    assert texts(summarize(report), "chance_model") == [
        "Pretrained (SCARF), all layers retrained is not clearly better than guessing: balanced accuracy 0.52 "
        "(95% CI 0.46 to 0.58), where "
        "0.50 is chance, so its gaps say little about fair treatment."]


def test_worst_group_per_model_small_groups_and_withheld_columns():
    report = make_report(withheld_columns=["name", "email"],
                         notes=["'zip' is a strong proxy for race (Cram\u00e9r's V 0.61)."])
    items = summarize(report)
    worst = texts(items, "worst_group")
    assert len(worst) == 3
    assert worst[0] == ("scarf+linear: accuracy 75.0% overall; lowest for race \u201cC\u201d: 65.0% "
                        "(95% CI 55.0% to 70.0%, n = 20; a small group, so very uncertain).")
    small = texts(items, "small_groups")
    assert small == ["1 of 3 groups of race have fewer than 30 test rows: \u201cC\u201d (n = 20). Their rates, "
                     "and any gap that involves them, are very uncertain."]
    withheld = next(i for i in items if i["topic"] == "withheld_columns")
    assert withheld["level"] == "warning" and "name, email" in withheld["text"]
    assert texts(items, "proxy") == ["'zip' is a strong proxy for race (Cram\u00e9r's V 0.61)."]


def test_collapse_is_a_warning():
    report = make_report()
    report["pretraining"]["collapse"].update(collapsed=True, embedding_std=0.01)
    (text,) = texts(summarize(report), "collapse")
    assert "0.010" in text and "0.050" in text


def test_rounding_for_reading():
    assert fmt_num(0.1234) == "0.12" and fmt_num(0.004) == "0.004" and fmt_num(-0.26) == "\u22120.26"
    assert fmt_num(1e-17) == "0.00" and fmt_num(-1e-17) == "0.00"
    assert fmt_num(None) == fmt_num(float("nan")) == fmt_pct(None) == "n/a"
    assert fmt_pct(0.6041) == "60.4%"


# -- HTML --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def html() -> str:
    return render_html(make_report(), embeddings=None, notes=None, sign_off=None)


def test_html_inlines_plotly_once_and_requests_nothing(html):
    plotly_js = get_plotlyjs()
    assert html.count(plotly_js) == 1
    assert len(re.findall(r"plotly\.js v\d", html)) == 1
    rest = html.replace(plotly_js, "")
    for pattern in (r'src\s*=\s*["\']?\s*(https?:)?//', r'href\s*=\s*["\']?\s*(https?:)?//',
                    r"@import", r"url\(\s*['\"]?\s*(https?:)?//", r"<link\b", r"<script[^>]*\bsrc=",
                    r"<img\b", r"<iframe\b"):
        assert not re.search(pattern, rest, flags=re.I), pattern
    assert "Plotly.newPlot" in rest


def test_html_sections_in_order(html):
    ids = ["summary", "review", "models", "gaps", "groups", "representation", "pretraining", "provenance"]
    positions = [html.index(f'<section id="{i}">') for i in ids]
    assert positions == sorted(positions)
    assert html.index("For sex, the equalized-odds gap of scarf+full is 0.12") < positions[1]
    assert "not signed off" in html


def test_undefined_metrics_render_as_na_never_zero():
    report = make_report()
    report["models"][2]["gaps"]["race"]["equalized_odds_difference"] = None
    report["models"][2]["gaps"]["race"]["ci"]["equalized_odds_difference"] = None
    page = render_html(report, embeddings=None, notes=None, sign_off=None)
    race_tpr = page[page.index("<h3>race"):]
    race_tpr = race_tpr[race_tpr.index("<th>True-positive rate</th>"):]
    row_c = race_tpr[race_tpr.index("<td>C"):race_tpr.index("</tr>", race_tpr.index("<td>C"))]
    cells = re.findall(r'<td class="num( na)?" title="([^"]*)">([^<]*)', row_c)
    assert [c[2] for c in cells] == ["n/a"] * 3  # one per model
    assert all(c[0] == " na" and c[1] == "undefined: no truly positive rows in this group" for c in cells)
    assert ">0.0%" not in row_c and ">0.00" not in row_c
    gaps_race = page[page.index('<h3 id="gaps-2">race'):]
    supervised_row = gaps_race[gaps_race.index("</span>supervised</td>"):]
    first_cell = re.search(r'<td class="num( na)?"[^>]*>([^<]*)', supervised_row)
    assert first_cell.group(1) == " na" and first_cell.group(2) == "n/a"


def test_user_text_is_escaped():
    report = make_report(withheld_columns=["<img src=x onerror=alert(1)>"])
    report["models"][0]["groups"]["sex"][0]["group"] = "<b>F</b>"
    notes = [{"author": "<i>Eve</i>", "status": "changes requested", "created_at": "2025-01-02T03:04:05+00:00",
              "body": "Looks wrong <script>alert('x')</script> & needs work"}]
    sign_off = {"author": "Bob", "status": "approved", "time": "2025-01-03", "text": "<script>evil()</script>"}
    embeddings = pd.DataFrame({"row_id": [1, 2, 3, 1, 2, 3], "model": ["supervised"] * 3 + ["scarf+full"] * 3,
                               "umap_x": np.arange(6.0), "umap_y": np.arange(6.0),
                               "sex": ["</script><script>alert(2)</script>", "Male", "Male"] * 2})
    page = render_html(report, embeddings=embeddings, notes=notes, sign_off=sign_off)
    assert "<script>alert" not in page and "<script>evil" not in page and "<i>Eve</i>" not in page
    assert "<img src=x" not in page and "<b>F</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; needs work" in page
    assert "&lt;i&gt;Eve&lt;/i&gt;" in page and "&lt;script&gt;evil()&lt;/script&gt;" in page
    assert "approved</span> by Bob" in page
    # three <script> elements: plotly.js, one per figure (gap charts, UMAP, leakage, loss), print helper
    n_figures = page.count("Plotly.newPlot(")
    assert len(re.findall(r"<script\b", page)) == 1 + n_figures + 1


def test_withheld_columns_are_listed_by_name():
    page = render_html(make_report(withheld_columns=["full_name", "email"]), embeddings=None, notes=None,
                       sign_off=None)
    provenance = page[page.index('<section id="provenance">'):]
    assert "<th>Withheld as personal data</th><td>full_name, email</td>" in provenance


def test_each_model_keeps_one_colour_everywhere():
    page = render_html(make_report(), embeddings=None, notes=None, sign_off=None)
    colours = palette.model_colours(["scarf+linear", "scarf+full", "supervised"])
    assert len(set(colours.values())) == 3
    for name, colour in colours.items():
        assert f'background: {colour}"></span>{name}' in page
    assert page.count('"color":["#0072B2","#E69F00","#4D4D4D"]') >= 2  # the bars of the gap charts


def test_umap_maps_are_subsampled_to_the_same_rows(tmp_path):
    n = 6000
    rng = np.random.default_rng(1)
    embeddings = pd.concat([pd.DataFrame({"row_id": np.arange(n), "model": model, "umap_x": rng.normal(size=n),
                                          "umap_y": rng.normal(size=n), "sex": rng.choice(["Female", "Male"], n)})
                            for model in ("scarf+full", "supervised")])
    shown, total = figures.subsample_embeddings(embeddings, 5000, seed=0)
    assert total == n and len(shown) == 10_000
    by_model = shown.groupby("model")["row_id"].apply(frozenset)
    assert by_model["scarf+full"] == by_model["supervised"]
    page = render_html(make_report(), embeddings=embeddings, notes=None, sign_off=None)
    assert "each map shows the same random 5,000 of the 6,000 test rows" in page
    assert "row_id" not in page


def test_write_html_report_reads_the_run_folder(tmp_path):
    report = make_report()
    embeddings = pd.DataFrame({"row_id": [5, 6, 7] * 2, "model": ["supervised"] * 3 + ["scarf+full"] * 3,
                               "umap_x": np.arange(6, dtype=np.float32), "umap_y": np.arange(6, dtype=np.float32)})
    embeddings.to_parquet(tmp_path / "embeddings.parquet", index=False)
    pd.DataFrame({"row_id": [5, 6, 7], "sex": ["Female", "Male", "Female"], "race": ["A", "B", "C"],
                  "y_true": [1, 0, 1]}).to_parquet(tmp_path / "predictions.parquet", index=False)
    loaded = load_embeddings(tmp_path, "sex")
    assert list(loaded.columns) == ["row_id", "model", "umap_x", "umap_y", "sex"]
    path = write_html_report(report, tmp_path, notes=[{"author": "Ann", "status": "draft", "body": "ok"}])
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert 'id="umap"' in page and "coloured by sex" in page and "Ann" in page
    assert not list(tmp_path.glob(".report.html.*"))  # no temporary file left behind


def test_a_sparse_report_still_renders():
    """The pipeline calls the renderer after every audit: missing optional parts must not break it."""
    sparse = {"study": {"dataset": "x", "sensitive": ["sex"]},
              "models": [{"name": "supervised", "overall": {"accuracy": 0.5}, "gaps": {}, "groups": {}}]}
    page = render_html(sparse, embeddings=None, notes=None, sign_off=None)
    assert "Fairness audit: x" in page and "No equalized-odds or demographic-parity gap could be computed" in page


def test_html_to_pdf_without_a_browser_returns_none(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf, "find_browser", lambda: None)
    html_path = tmp_path / "report.html"
    html_path.write_text("<html></html>")
    assert pdf.html_to_pdf(html_path, tmp_path / "report.pdf") is None
    assert not (tmp_path / "report.pdf").exists()


def test_summary_does_not_change_the_report():
    report = make_report()
    before = copy.deepcopy(report)
    summarize(report)
    render_html(report, embeddings=None, notes=None, sign_off=None)
    assert report == before
