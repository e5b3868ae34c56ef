"""The predictions-only path in real Chromium (issue 16, item 1): upload a table of two
models' scores, map its columns on the Data page, start the audit, wait for the background
worker, and read the uploaded models on the Fairness page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from core.workspace.store import Workspace

pytestmark = pytest.mark.e2e
WAIT_MS = 60_000
RUN_S = 240


def scores_csv(path: Path, n: int = 400, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n)
    repaid = rng.random(n) < 0.5
    vendor = np.clip(0.3 * repaid + 0.6 * rng.random(n) + 0.1 * (sex == "Male"), 0, 1)
    inhouse = np.clip(0.4 * repaid + 0.6 * rng.random(n), 0, 1)
    pd.DataFrame({"sex": sex, "repaid": np.where(repaid, "yes", "no"), "vendor_score": np.round(vendor, 4),
                  "inhouse_score": np.round(inhouse, 4)}).to_csv(path, index=False)
    return path


def choose(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def no_error_box(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def finished_run(workspace: Path, name: str) -> dict:
    """The predictions audit's run once the worker has finished it (fails after RUN_S seconds)."""
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        runs = [r for r in Workspace(workspace).list_runs(kind="audit") if r["name"] == name]
        if runs and runs[0]["status"] not in ("queued", "running"):
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"the run '{name}' did not finish in {RUN_S} s")


def test_uploaded_predictions_are_audited_and_shown_on_the_fairness_page(page: Page, app_url: str,
                                                                        e2e_workspace: Path, tmp_path: Path):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("stMain").get_by_text("I already have a model's predictions").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        scores_csv(tmp_path / "scores.csv"))
    expect(page.get_by_text(re.compile(r"Using scores\.csv: 400 rows"))).to_be_visible(timeout=WAIT_MS)
    choose(page, "Outcome (what actually happened)", "repaid")
    choose(page, "Positive outcome", "yes")
    expect(page.get_by_text(re.compile(r"400 rows with an outcome .* 2 models"))).to_be_visible(timeout=WAIT_MS)
    choose(page, "Bootstrap resamples", "200")
    no_error_box(page)
    page.get_by_role("button", name=re.compile("Audit these models")).click()
    expect(page.get_by_text("The audit is under way")).to_be_visible(timeout=WAIT_MS)

    run = finished_run(e2e_workspace, "Audit of 2 uploaded models")
    assert run["status"] == "succeeded", run.get("error")
    assert run["config"]["kind"] == "predictions" and run["config"]["scores"] == ["vendor_score", "inhouse_score"]

    page.get_by_test_id("stMain").get_by_role("link", name="Go to Fairness").click()
    expect(page.get_by_role("heading", name="Fairness", exact=True)).to_be_visible(timeout=WAIT_MS)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("vendor_score").first).to_be_visible(timeout=WAIT_MS)
    expect(main.get_by_text("inhouse_score").first).to_be_attached()
    no_error_box(page)
