"""A numeric target in real Chromium (issue 16, item 5): the Data page turns a many-valued wage
into "wage >= threshold" with a comparison and a slider, shows the base rate it gives, and the
saved study keeps the threshold as its positive label."""

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


def wages_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["Female", "Male"], size=n), "education": rng.integers(8, 20, size=n),
                          "wage": np.round(rng.lognormal(2.3, 0.5, size=n), 2)})
    frame.to_csv(path, index=False)
    return path


def test_a_numeric_target_gets_a_threshold_and_its_base_rate(page: Page, app_url: str, e2e_workspace: Path,
                                                              tmp_path: Path):
    wages = pd.read_csv(wages_csv(tmp_path / "wages.csv"))["wage"]
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("stMain").get_by_text("My own file (CSV, Parquet or Excel)").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(tmp_path / "wages.csv")
    expect(page.get_by_text(re.compile(r"Using wages\.csv: 300 rows"))).to_be_visible(timeout=WAIT_MS)

    page.get_by_test_id("stSelectbox").filter(has_text="Target: the outcome").click()
    page.get_by_role("option", name="wage", exact=True).click()
    expect(page.get_by_test_id("stSlider").filter(has_text="Threshold on 'wage'")).to_be_visible(timeout=WAIT_MS)
    # Streamlit's Markdown shows ">=" as "≥"
    caption = page.get_by_text(re.compile(r"Positive: wage (>=|≥) [0-9.]+, [0-9.]+% of the labelled rows"))
    expect(caption).to_be_visible(timeout=WAIT_MS)
    threshold = float(re.search(r"(>=|≥) ([0-9.]+)", caption.inner_text()).group(2))
    assert f"{(wages >= threshold).mean():.1%}" in caption.inner_text()

    page.get_by_role("combobox", name="Positive when").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(4, timeout=WAIT_MS)
    options.nth(3).click()  # ">=", ">", "<=", "<"
    expect(page.get_by_text(f"Positive: wage < {threshold:g}, {(wages < threshold).mean():.1%} of the labelled rows")
           ).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"with the positive outcome \(wage < [0-9.]+\)"))).to_be_visible(
        timeout=WAIT_MS)  # not "wage = wage < ..."

    page.get_by_test_id("stTextInput").filter(has_text="Study name").locator("input").fill("Wages, threshold")
    page.get_by_role("button", name=re.compile("Save study")).click()
    expect(page.get_by_text("Saved study Wages, threshold; it is now the current study")).to_be_visible(
        timeout=WAIT_MS)
    saved = [s for s in Workspace(e2e_workspace).list_studies() if s["name"] == "Wages, threshold"]
    assert saved[0]["spec"]["positive_label"] == f"wage < {threshold:g}"
