"""The stakeholder report in real Chromium: opened from file:// it makes no network request
and draws every chart; printed by `html_to_pdf` it is a PDF.

The report comes from a tiny real audit (German credit, two strategies + the supervised
baseline, 1 pretraining and 1 fine-tuning epoch, 50 resamples) run once per session; the
pipeline writes report.html itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from core.results.pdf import html_to_pdf

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def audit_dir(tmp_path_factory) -> Path:
    from core.run.pipeline import AuditConfig, run_audit

    out = tmp_path_factory.mktemp("report-audit")
    run_audit(AuditConfig(data="german", target="credit", sensitive=["sex", "age"], positive="good",
                          strategies=["linear", "full"], epochs=1, finetune_epochs=1, n_boot=50, replicates=1),
              out)
    return out


def open_offline(page: Page, html: Path) -> list[str]:
    """Open `html` with every request that is not for a local file counted and refused."""
    outside: list[str] = []

    def route(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.goto(html.as_uri())
    return outside


def test_report_opens_offline_and_draws_every_chart(page: Page, audit_dir: Path, screenshots: Path):
    html = audit_dir / "report.html"
    assert html.is_file(), "the pipeline did not write report.html"
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    outside = open_offline(page, html)
    page.get_by_role("heading", name="Fairness audit: german").wait_for()
    charts = page.locator(".js-plotly-plot")
    # one gap chart per attribute and intersection, the UMAP maps, leakage, the loss curve
    charts.nth(5).wait_for()
    assert charts.count() == 6
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 12")
    bars = page.locator('[id="gap-0"] .bars .point path')
    n_models = len(json.loads((audit_dir / "report.json").read_text())["models"])  # MLPs + classical baselines
    assert bars.count() == 2 * n_models  # every model x 2 panels (a bar of height 0 is still a path)
    assert page.locator('[id="umap"] .scatterlayer .point').count() > 0
    assert page.locator("#summary li.finding").count() >= 1
    assert outside == [] and errors == []
    assert page.locator("#scorecard").is_visible() and page.locator("#model-card").is_visible()
    page.screenshot(path=str(screenshots / "report.png"))
    page.locator("#gaps").screenshot(path=str(screenshots / "report-gaps.png"))


def test_html_to_pdf_prints_the_report(audit_dir: Path, tmp_path: Path):
    pdf = html_to_pdf(audit_dir / "report.html", tmp_path / "report.pdf")
    assert pdf == tmp_path / "report.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 5  # a multi-page document
