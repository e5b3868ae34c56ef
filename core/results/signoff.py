"""The review's outcome: who signed the run off, and the stakeholder report with the review notes.

    sign_off(notes) -> dict | None                           the newest approved note
    stakeholder_html(results, notes, sign_off_note) -> str
    write_review_report(results, out_dir, notes, *, pdf, stamp) -> (html_path, pdf_path | None)

The only module of core.results that writes files (besides the pipeline's report.html): each
build is a new, time-stamped file in the run's reports folder, so every shared version is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.files import atomic_write
from core.results.pdf import html_to_pdf
from core.results.report import render_html
from core.results.folder import RunResults, load_embeddings


def sign_off(notes: Iterable[Mapping]) -> dict | None:
    """The note that records the decision: the newest note with status "approved" (notes as
    `Workspace.list_notes` returns them), or None."""
    approved = [dict(n) for n in notes if n.get("status") == "approved"]
    return max(approved, key=lambda n: (n.get("created_at") or "", n.get("id") or 0)) if approved else None


def stakeholder_html(results: RunResults, notes: list[dict] | None = None, sign_off_note: dict | None = None,
                     **study: Any) -> str:
    """The self-contained stakeholder report of this run (core.results.report), with the review notes and
    the sign-off; the maps are coloured by the first sensitive attribute. `study`: render_html's
    study_name, framing and previous (the model card's title and answers, an earlier audit)."""
    attribute = results.sensitive[0] if results.sensitive else None
    embeddings = load_embeddings(results.run_dir, attribute)
    return render_html(results.report, embeddings=embeddings, notes=notes, sign_off=sign_off_note, **study)


def write_review_report(results: RunResults, out_dir: Path, notes: list[dict] | None = None, *,
                        pdf: bool = False, stamp: str | None = None, **study: Any) -> tuple[Path, Path | None]:
    """Write the stakeholder report with the review notes and sign-off into `out_dir` as
    report-<stamp>.html (and .pdf with `pdf=True` where Chromium is installed; None otherwise)."""
    stamp = stamp or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    html_path = Path(out_dir) / f"report-{stamp}.html"
    atomic_write(html_path, stakeholder_html(results, notes, sign_off(notes or []), **study))
    pdf_path = html_to_pdf(html_path, html_path.with_suffix(".pdf")) if pdf else None
    return html_path, pdf_path
