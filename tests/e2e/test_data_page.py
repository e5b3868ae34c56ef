"""The Data page in real Chromium: the start-up study, an upload, the set-up, a saved study."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from core.workspace.store import Workspace

pytestmark = pytest.mark.e2e
WAIT_MS = 60_000


def test_chromium_is_installed(missing_browser):
    """Its own test, so that a machine without the browser reports a failure saying how to
    install it (the browser fixtures fail the same way)."""
    assert missing_browser is None, missing_browser


def loans_csv(path: Path, n: int = 400, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.45, 0.55])
    frame = pd.DataFrame({
        "sex": sex,
        "years_employed": rng.integers(0, 40, size=n),
        "region": rng.choice(["North", "South", "East", "West"], size=n),
        "income_k": np.round(rng.gamma(4.0, 12.0, size=n), 1),
        "email": [f"applicant{i}@example.org" for i in range(n)],
        "approved": np.where(rng.random(n) < np.where(sex == "Male", 0.6, 0.4), "yes", "no"),
    })
    frame.to_csv(path, index=False)
    return path


def scroll_to(page: Page, heading: str) -> None:
    """Scroll Streamlit's main container so that `heading` is at the top of the screen."""
    page.get_by_role("heading", name=heading).evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox whose label starts with `label`."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_app_opens_on_adult_with_a_study_ready(page: Page, app_url: str, screenshots: Path):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=WAIT_MS)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Adult (Census Income): income by sex and race")).to_be_visible()
    expect(page.get_by_text("This set-up is saved as the current study")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    page.screenshot(path=screenshots / "data.png")
    scroll_to(page, "3. Groups and base rates")
    page.screenshot(path=screenshots / "data-groups.png")


def test_upload_choose_target_and_sensitive_attribute_then_save(page: Page, app_url: str, e2e_workspace: Path,
                                                                screenshots: Path, tmp_path: Path):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    sidebar = page.get_by_test_id("stSidebar")
    page.get_by_test_id("stMain").get_by_text("My own file (CSV, Parquet or Excel)").click()
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    expect(page.get_by_text("at most 200 MB")).to_be_visible(timeout=WAIT_MS)
    uploader.set_input_files(loans_csv(tmp_path / "loans.csv"))
    expect(page.get_by_text(re.compile(r"Using loans\.csv: 400 rows"))).to_be_visible(timeout=WAIT_MS)

    choose(page, "Target: the outcome", "approved")
    choose(page, "Positive label", "yes")
    sensitive = page.get_by_test_id("stMultiSelect").filter(has_text="Sensitive attributes")
    sensitive.get_by_role("button", name=re.compile("Clear all", re.I)).click()
    expect(page.get_by_text("No sensitive attribute chosen")).to_be_visible(timeout=WAIT_MS)
    sensitive.click()
    page.get_by_role("option", name="sex", exact=True).click()
    page.keyboard.press("Escape")

    expect(page.get_by_text("Withheld from the model, reports and exports: email")).to_be_visible(timeout=WAIT_MS)
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart).to_have_count(1, timeout=WAIT_MS)
    expect(chart.get_by_text("Female").first).to_be_visible()
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)

    page.get_by_test_id("stTextInput").filter(has_text="Study name").locator("input").fill("Loans, upload test")
    page.get_by_role("button", name=re.compile("Save study")).click()
    expect(page.get_by_text("Saved study Loans, upload test; it is now the current study")).to_be_visible(
        timeout=WAIT_MS)
    expect(sidebar.get_by_text("Loans, upload test")).to_be_visible()
    scroll_to(page, "2. What to audit")
    page.screenshot(path=screenshots / "data-upload.png")

    saved = [s for s in Workspace(e2e_workspace).list_studies() if s["name"] == "Loans, upload test"]
    assert len(saved) == 1
    assert saved[0]["spec"]["target"] == "approved" and saved[0]["spec"]["sensitive"] == ["sex"]
    assert "email" not in saved[0]["spec"]["features"]
    assert (e2e_workspace / saved[0]["settings"]["stored_path"]).is_file()
