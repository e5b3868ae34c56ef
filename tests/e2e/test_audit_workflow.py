"""The reviewer's workflow in real Chromium, after the Data page: upload a small CSV and save its
study, start a short run on the Train page, wait for the background worker, then see the UMAP
maps, the scorecard and the fairness table, the explanations, the comparison, write a review note
and download the report. Every request the browser makes on the way is recorded: none may go to a
host outside the loopback range (nothing leaves the machine, issue 17; the tab icon once came from
a Google font server). This walk replaced a separate one that loaded each page by its address.

Screenshots of each page go to docs/screenshots/<page>.png."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from core.workspace.store import Workspace

pytestmark = pytest.mark.e2e
WAIT_MS = 60_000
RUN_MS = 240_000


def credit_csv(path: Path, n: int = 400, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.45, 0.55])
    income = np.round(rng.gamma(4.0, 12.0, size=n), 1)
    pd.DataFrame({
        "sex": sex, "age_band": rng.choice(["18-30", "31-50", "51+"], size=n),
        "income_k": income, "years_employed": rng.integers(0, 40, size=n),
        "region": rng.choice(["North", "South", "East"], size=n),
        "repaid": np.where(rng.random(n) < 0.3 + 0.006 * income + np.where(sex == "Male", 0.1, 0), "yes", "no"),
    }).to_csv(path, index=False)
    return path


def outside_loopback(url: str) -> bool:
    """True for a request to another machine: any host but localhost and 127.0.0.0/8 or ::1 (data:
    and blob: addresses have no host and stay in the browser)."""
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
        return False
    host = parsed.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def test_outside_loopback_tells_the_machine_from_the_world():
    assert not outside_loopback("http://127.0.0.1:8501/_stcore/health")
    assert not outside_loopback("http://127.8.0.1/x") and not outside_loopback("http://[::1]:80/")
    assert not outside_loopback("data:image/png;base64,AAAA") and not outside_loopback("http://localhost:1/")
    assert outside_loopback("https://fonts.gstatic.com/s/materialsymbols.svg")
    assert outside_loopback("http://192.168.1.5:8501/") and outside_loopback("http://10.0.0.1/")


def open_expander(page: Page, label: str) -> None:
    """Open a section that sits one click below the scorecard."""
    page.get_by_test_id("stExpander").filter(has_text=label).locator("summary").first.click()
    page.wait_for_timeout(500)


def open_page(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=WAIT_MS)


def no_error_box(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def choose(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def set_number(page: Page, label: str, value: int) -> None:
    field = page.get_by_test_id("stNumberInput").filter(has_text=label).locator("input")
    field.fill(str(value))
    field.press("Enter")
    page.wait_for_timeout(500)


def test_short_run_then_results_review_and_report(page: Page, app_url: str, e2e_workspace: Path,
                                                  screenshots: Path, tmp_path: Path):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("stMain").get_by_text("My own file (CSV, Parquet or Excel)").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(credit_csv(tmp_path / "credit.csv"))
    expect(page.get_by_text(re.compile(r"Using credit\.csv: 400 rows"))).to_be_visible(timeout=WAIT_MS)
    choose(page, "Target: the outcome", "repaid")
    choose(page, "Positive label", "yes")
    sensitive = page.get_by_test_id("stMultiSelect").filter(has_text="Sensitive attributes")
    sensitive.get_by_role("button", name=re.compile("Clear all", re.I)).click()
    sensitive.click()
    page.get_by_role("option", name="sex", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_test_id("stTextInput").filter(has_text="Study name").locator("input").fill("Credit, workflow test")
    page.get_by_role("button", name=re.compile("Save study")).click()
    expect(page.get_by_text("Saved study Credit, workflow test")).to_be_visible(timeout=WAIT_MS)

    # Train: the smallest settings, Start, follow the progress until the run finishes.
    open_page(page, "Train")
    expect(page.get_by_text("Expected time")).to_be_visible(timeout=WAIT_MS)
    set_number(page, "Pretraining epochs", 2)
    set_number(page, "Fine-tuning epochs", 2)
    page.get_by_role("button", name=re.compile("^Start")).click()
    expect(page.get_by_text(re.compile(r"is (running|waiting in the queue)")).first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("button", name=re.compile("Cancel this run"))).to_be_visible()
    # the live loss curve, drawn from the worker's progress events while the run goes on
    expect(page.get_by_test_id("stPlotlyChart")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("heading", name="2. Progress").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    page.screenshot(path=screenshots / "train-progress.png")
    # A refresh starts a new session: the study (from the address) and the run (from the store) are still there.
    page.reload()
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stSidebar").get_by_text("Credit, workflow test").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(re.compile(r"is running|Latest finished run")).first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Latest finished run")).to_be_visible(timeout=RUN_MS)
    no_error_box(page)
    page.screenshot(path=screenshots / "train.png")
    study = next(s for s in Workspace(e2e_workspace).list_studies() if s["name"] == "Credit, workflow test")
    runs = Workspace(e2e_workspace).list_runs(study_id=study["id"])
    assert [r["status"] for r in runs] == ["succeeded"] and runs[0]["config"]["epochs"] == 2

    # Fairness: from the link the finished run offers.
    page.get_by_test_id("stMain").get_by_role("link", name="Fairness").click()
    expect(page.get_by_role("heading", name="Fairness", exact=True)).to_be_visible(timeout=WAIT_MS)
    # the scorecard first: plain labels, the code name on hover
    expect(page.locator("table.equiscope-scorecard")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("table.equiscope-scorecard td[title='code name: supervised']")).to_have_count(1)
    page.get_by_text("helps the person", exact=False).first.click()  # the outcome "repaid = yes" helps
    expect(page.locator("table.equiscope-scorecard").get_by_text(re.compile("is favoured")).first).to_be_visible(
        timeout=WAIT_MS)
    no_error_box(page)
    page.mouse.move(5, 5)
    page.screenshot(path=screenshots / "fairness.png")
    open_expander(page, "1. Gaps between groups, per model")
    open_expander(page, "2. Per-group numbers")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Against the supervised baseline").first).to_be_visible()
    no_error_box(page)
    open_expander(page, "3. What if each group")
    page.get_by_text("Fair thresholds in one click").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.get_by_text("Fair thresholds in one click").click()
    page.get_by_role("button", name="Demographic parity").click()
    expect(page.get_by_text(re.compile("fitted on the validation rows"))).to_be_visible(timeout=WAIT_MS)
    no_error_box(page)
    page.mouse.move(5, 5)  # no tooltip in the picture
    page.get_by_text("Fair thresholds in one click").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)
    page.screenshot(path=screenshots / "fairness-whatif.png")

    open_page(page, "Explain")
    page.wait_for_timeout(1500)
    no_error_box(page)

    open_page(page, "Embeddings")
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2, timeout=WAIT_MS)
    expect(page.get_by_text("Leakage").first).to_be_visible()
    no_error_box(page)
    page.wait_for_timeout(1000)  # WebGL paints after the chart element appears
    page.screenshot(path=screenshots / "embeddings.png")

    open_page(page, "Compare")
    expect(page.locator("table.equiscope-scorecard")).to_be_visible(timeout=WAIT_MS)
    open_expander(page, "1. Accuracy and fairness")
    open_expander(page, "2. Every model, every run")
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2, timeout=WAIT_MS)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    no_error_box(page)
    page.wait_for_timeout(800)
    page.screenshot(path=screenshots / "compare.png")

    open_page(page, "Review & report")
    form = page.get_by_test_id("stForm")
    form.get_by_test_id("stTextInput").locator("input").fill("Dana Reviewer")
    form.get_by_test_id("stTextArea").locator("textarea").fill("Gap between the sexes checked; sign-off for the pilot.")
    form.get_by_test_id("stSelectbox").filter(has_text="Status").click()
    page.get_by_role("option", name="approved", exact=True).click()
    form.get_by_role("button", name=re.compile("Save note")).click()
    expect(page.get_by_text("Signed off by Dana Reviewer")).to_be_visible(timeout=WAIT_MS)
    note = "Gap between the sexes checked; sign-off for the pilot."
    expect(page.get_by_role("paragraph").filter(has_text=note)).to_be_visible()  # in the list of notes
    expect(form.get_by_test_id("stTextArea").locator("textarea")).to_have_value("", timeout=WAIT_MS)  # box cleared
    no_error_box(page)
    page.get_by_role("heading", name="Review & report", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)
    page.screenshot(path=screenshots / "review.png")
    page.get_by_role("button", name=re.compile("Build the report")).click()
    download_button = page.get_by_role("button", name=re.compile(r"Download the report \(HTML\)"))
    expect(download_button).to_be_visible(timeout=WAIT_MS)
    no_error_box(page)
    page.screenshot(path=screenshots / "review-report.png")
    with page.expect_download(timeout=WAIT_MS) as download:
        download_button.click()
    saved = tmp_path / "report.html"
    download.value.save_as(saved)
    html = saved.read_text(encoding="utf-8")
    assert "Gap between the sexes checked; sign-off for the pilot." in html and "Dana Reviewer" in html
    assert "<html" in html.lower() and "Plotly" in html
    assert 'id="scorecard"' in html and 'id="model-card"' in html
    assert "<title>Fairness audit: Credit, workflow test</title>" in html
    assert len(requested) > 50, requested  # the walk really loaded every page's assets
    assert sorted({url for url in requested if outside_loopback(url)}) == []
