"""The outside-model-file path in real Chromium (issue 16, item 2): upload German credit as a
table and a real .skops file of a scikit-learn pipeline fitted on its raw columns, accept the
type skops does not trust by default by name, start the audit, wait for the background worker,
and read the model on the Fairness page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import skops.io as sio
from playwright.sync_api import Page, expect
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from test_predictions_upload import WAIT_MS, choose, finished_run, no_error_box

from core.data.source import open_source

pytestmark = pytest.mark.e2e
TREE_TYPE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
NUMERIC, CATEGORICAL = ["duration", "credit_amount", "age"], ["status", "credit_history", "sex"]


def vendor_files(folder: Path) -> tuple[Path, Path]:
    """German credit as a CSV, and a gradient-boosting pipeline fitted outside Equiscope on it."""
    german = open_source("german").frame
    table = folder / "applications.csv"
    german.to_csv(table, index=False)
    columns = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), CATEGORICAL)])
    model = make_pipeline(columns, HistGradientBoostingClassifier(max_iter=20, random_state=0))
    model.fit(german[NUMERIC + CATEGORICAL], german["credit"])
    sio.dump(model, folder / "vendor-gbt.skops")
    return table, folder / "vendor-gbt.skops"


def test_a_skops_model_file_is_audited_after_its_types_are_accepted(page: Page, app_url: str,
                                                                     e2e_workspace: Path, tmp_path: Path):
    table, model_file = vendor_files(tmp_path)
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("stMain").get_by_text("I already have a model's predictions").click()
    uploads = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploads.first.set_input_files(table)
    expect(page.get_by_text(re.compile(r"Using applications\.csv: 1,000 rows"))).to_be_visible(timeout=WAIT_MS)
    choose(page, "Outcome (what actually happened)", "credit")
    choose(page, "Positive outcome", "good")
    expect(uploads).to_have_count(2, timeout=WAIT_MS)
    uploads.nth(1).set_input_files(model_file)

    expect(page.get_by_text(re.compile("builds 1 type that skops does not trust by default"))).to_be_visible(
        timeout=WAIT_MS)
    expect(page.get_by_role("button", name=re.compile("Audit these models"))).to_have_count(0)
    page.get_by_test_id("stMultiSelect").filter(has_text="Types I have reviewed and accept").click()
    page.get_by_role("option", name=TREE_TYPE).click()
    page.keyboard.press("Escape")
    expect(page.get_by_text(re.compile(r"vendor-gbt reads 6 columns"))).to_be_visible(timeout=WAIT_MS)
    choose(page, "Bootstrap resamples", "200")
    no_error_box(page)
    page.get_by_role("button", name=re.compile("Audit these models")).click()
    expect(page.get_by_text("The audit is under way")).to_be_visible(timeout=WAIT_MS)

    run = finished_run(e2e_workspace, "Audit of model vendor-gbt.skops")
    assert run["status"] == "succeeded", run.get("error")
    assert run["config"]["kind"] == "outside-model" and run["config"]["trust_types"] == [TREE_TYPE]

    page.get_by_test_id("stMain").get_by_role("link", name="Go to Fairness").click()
    expect(page.get_by_role("heading", name="Fairness", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stMain").get_by_text("vendor-gbt").first).to_be_visible(timeout=WAIT_MS)
    no_error_box(page)
