"""Issue 17, items 6 and 10 on the Data, Embeddings and Explain pages: no jargon where a reviewer reads
first (code names, Cramér's V, R², "mean |LIME weight|"), the table's own word for the negative outcome
("no", not "not yes"), the proxies toggles say "no proxies found" instead of doing nothing, the
personal-data column says "none found", and years read without thousands separators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from apphelpers import errors, upload

import explain_artifact
from core.results.tables import outcome_names
from dashboard.components import explain_views
from test_explain_page import open_explain, page_text

JARGON = ("Cramér", "R²", "|LIME weight|", "mean |weight|", "BatchNorm", "scarf+linear (", "(SSL model)")


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    return explain_artifact.build(tmp_path_factory.mktemp("plain-words-run"))


def _help_texts(app) -> str:
    return " ".join(str(getattr(w.proto, "help", "")) for w in list(app.selectbox) + list(app.toggle))


def test_explain_reads_in_plain_words_with_the_tables_negative_label(make_app, workspace, artifact):
    app, _ = open_explain(make_app, workspace, artifact)
    shown = page_text(app) + " ".join(t.label for t in app.toggle)
    for word in JARGON:
        assert word not in shown, word
    assert app.selectbox(key="explain_model").format_func("scarf+linear") == "Pretrained (SCARF), output layer only"
    assert "scarf+linear" in _help_texts(app)  # the code name stays on hover
    decisions = {m.label: m.value for m in app.metric}
    assert decisions["Decision"] in ("yes", "no") and decisions["True outcome"] in ("yes", "no")
    assert "no" in app.selectbox(key="explain_filter_outcome").options
    assert "not yes" not in shown
    flips = next(d.value for d in app.dataframe if "Decision after" in d.value.columns)
    assert set(flips["Decision after"]) <= {"yes", "no"}


def test_without_proxies_the_toggles_are_off_and_say_so(make_app, workspace, artifact):
    app, _ = open_explain(make_app, workspace, artifact)  # the synthetic table's columns are independent
    toggles = {t.key: t for t in app.toggle}
    assert toggles["explain_with_proxies"].disabled and toggles["explain_rates_proxies"].disabled
    notes = [c.value for c in app.caption if c.value.startswith("No proxies found")]
    assert len(notes) == 2


def test_with_proxies_the_toggles_work(make_app, workspace, artifact, monkeypatch):
    monkeypatch.setattr(explain_views, "proxies_found", lambda ctx: True)
    app, _ = open_explain(make_app, workspace, artifact)
    assert not app.toggle(key="explain_rates_proxies").disabled
    app.toggle(key="explain_rates_proxies").set_value(True).run()
    assert not app.exception and "(and its proxies)" in page_text(app)
    assert not any(c.value.startswith("No proxies found") for c in app.caption)


def test_an_old_report_without_a_negative_label_still_reads():
    assert outcome_names({"study": {"positive_label": "yes"}, "models": []}) == ("yes", "not yes")
    assert outcome_names({"study": {"positive_label": "yes", "negative_label": "no"}, "models": []}) == ("yes", "no")


def test_data_page_years_personal_data_and_proxies_in_plain_words(make_app):
    rng = np.random.default_rng(0)
    n = 300
    sex = rng.choice(["Female", "Male"], size=n)
    frame = pd.DataFrame({"year": rng.integers(1997, 2003, size=n), "sex": sex,
                          "income": rng.integers(900, 40000, size=n),
                          "approved": np.where(rng.random(n) < 0.5, "yes", "no")})
    app = make_app(data_source="upload")
    app.run()
    upload(app, "people.csv", frame.to_csv(index=False).encode())
    assert not app.exception, app.exception
    assert not errors(app), errors(app)
    profile = app.dataframe[0].value.set_index("Column")
    assert profile.loc["year", "Values"].startswith("1997 to 2002, mean 1999") or \
        profile.loc["year", "Values"].startswith("1997 to 2002, mean 2000")
    assert "," in profile.loc["income", "Values"].split(" to ")[0]  # amounts keep their separators
    assert set(profile["Personal data"]) == {"none found"}
    shown = " ".join([m.value for m in app.markdown] + [s.value for s in app.success])
    assert "Cramér" not in shown
    assert any(s.value.startswith("No proxies found") for s in app.success)
