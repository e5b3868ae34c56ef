"""Large uploads on the Data page (issue 22): progress while the file is read and profiled, and a
rerun that reads and profiles nothing again (both kept once per content, sha256)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from apphelpers import people_csv, upload

from core.data import loading
from dashboard.components import data_setup, data_source, tables


def counting(monkeypatch, module, name: str, calls: list) -> None:
    """Replace module.name by a wrapper that records each call's progress callback's reports."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        reports = calls.append([]) or calls[-1]
        listener = kwargs.get("progress")
        kwargs["progress"] = lambda fraction, message: (reports.append(message),
                                                       listener and listener(fraction, message))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_an_upload_shows_its_reading_and_profiling_progress(make_app, monkeypatch):
    monkeypatch.setattr(loading, "CSV_CHUNK_ROWS", 100)
    monkeypatch.setattr(data_source, "SHOW_AFTER_S", 0.0)  # a small file is read at once: show its progress anyway
    reads, profiles = [], []
    counting(monkeypatch, tables, "read_table", reads)
    counting(monkeypatch, tables, "profile_columns", profiles)
    app = make_app(data_source="upload")
    app.run()
    upload(app, "loans.csv", people_csv(450, seed=2201))
    assert not app.exception
    assert [m for m in reads[0] if "rows so far" in m] == [f"Reading 'loans.csv': {n} rows so far"
                                                           for n in (100, 200, 300, 400, 450)]
    assert profiles[0][0] == "Profiling column 1 of 7: 'applicant'" and len(profiles[0]) == 7
    labels = [box.label for box in app.status]
    assert labels[0].startswith("Read 450 rows × 7 columns in ") and labels[0].endswith(" s")
    assert labels[1].startswith("Profiled 7 columns of 450 rows in ")
    assert [bar.value for bar in app.progress] == [100, 100]  # AppTest reads the bar in per cent
    assert "CSV or Excel at most 200 MB, Parquet at most 500 MB" in app.get("file_uploader")[0].proto.label


def test_a_small_upload_read_at_once_shows_no_progress_box(make_app):
    app = make_app(data_source="upload")
    app.run()
    upload(app, "small.csv", people_csv(200, seed=2204))
    assert not app.exception and not app.status and "200 rows" in app.caption[0].value


def test_a_rerun_does_not_read_profile_or_scan_the_target_again(make_app, monkeypatch):
    reads, profiles, targets = [], [], []
    counting(monkeypatch, tables, "read_table", reads)
    counting(monkeypatch, tables, "profile_columns", profiles)
    original_values = data_setup.target_values
    monkeypatch.setattr(data_setup, "target_values", lambda series: targets.append(1) or original_values(series))
    app = make_app(data_source="upload")
    app.run()
    upload(app, "loans.csv", people_csv(300, seed=2202))
    assert (len(reads), len(profiles), len(targets)) == (1, 1, 1)
    app.run()
    app.multiselect(key="sensitive_attributes").set_value(["sex", "region"]).run()
    app.text_input(key="study_name").input("Loans").run()
    assert not app.exception
    assert (len(reads), len(profiles), len(targets)) == (1, 1, 1)
    assert not app.status  # nothing to report: no progress box is drawn (nor after a quick first read)
    app.selectbox(key="target_column").set_value("region").run()  # a new target is scanned once
    assert len(targets) == 2 and len(profiles) == 1
    assert data_source.limits_in_words() in app.get("file_uploader")[0].proto.label


def test_a_predictions_table_is_checked_once_per_choice_not_on_every_rerun(make_app, monkeypatch):
    """The 'I already have a model's predictions' path validated the whole table on each rerun."""
    from dashboard.components import predictions_setup

    checks = []
    original = predictions_setup.read_predictions
    monkeypatch.setattr(predictions_setup, "read_predictions", lambda *a, **k: checks.append(1) or original(*a, **k))
    rng = np.random.default_rng(2203)
    frame = pd.DataFrame({"repaid": rng.choice(["yes", "no"], 300), "sex": rng.choice(["F", "M"], 300),
                          "vendor_score": rng.random(300)})
    app = make_app(data_source="predictions")
    app.run()
    app.file_uploader(key="upload_file").upload("scores.csv", frame.to_csv(index=False).encode(), "text/csv").run()
    app.selectbox(key="pred_target").set_value("repaid").run()
    app.selectbox(key="pred_positive").set_value("yes").run()
    before = len(checks)
    assert before >= 1 and not app.exception
    app.run()
    app.run()
    assert len(checks) == before
    app.slider(key="pred_threshold").set_value(0.6).run()  # a new choice is checked, once
    assert len(checks) == before + 1 and any("1 model" in m.value for m in app.markdown)
