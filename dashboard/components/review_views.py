"""Review & report page: review notes (an audit trail: never edited or deleted), the sign-off, the
summary of a run, and the stakeholder report built with the notes.

Notes live in the workspace store; built reports in `<workspace>/reports/<run_id>/`, one file
per build, so both survive a refresh and show who said what, when, and what was shared.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import InputError
from core.results import signoff
from core.results.model_card import measure_of
from core.results.pdf import find_browser
from core.results.summary import summarize
from core.results.folder import RunResults
from core.workspace.store import NOTE_STATUSES, RunRecord, StudyRecord, Workspace
from dashboard.components import runs
from dashboard.components.format import md
from dashboard.components.messages import show_input_error
from dashboard.components.state import keep_option

STUDY_SCOPE = "__study__"
STATUS_ICONS = {"draft": ":material/edit_note:", "changes requested": ":material/change_circle:",
                "approved": ":material/verified:"}
LEVEL_ICONS = {"finding": ":material/insights:", "warning": ":material/warning:", "info": ":material/info:"}


def _save_note(ws: Workspace, study_id: str) -> None:
    """Form callback: store the note, clear the text (kept: author), remember what happened."""
    state = st.session_state
    scope = state.get("review_scope")
    try:
        ws.add_note(study_id, state.get("review_body") or "", state.get("review_author") or "",
                    status=state.get("review_status") or "draft",
                    run_id=None if scope in (None, STUDY_SCOPE) else scope)
    except InputError as error:
        state["_review_problem"] = error
        return
    state["review_body"] = ""
    state["review_status"] = "draft"  # an approval is a deliberate choice each time, never a leftover
    state["_review_saved"] = True


def note_form(ws: Workspace, study: StudyRecord, all_runs: list[RunRecord]) -> None:
    scopes = {STUDY_SCOPE: "The whole study"} | {r["id"]: f"Run: {runs.run_label(r)}" for r in reversed(all_runs)}
    state = st.session_state
    keep_option("review_scope", scopes, STUDY_SCOPE)
    state.setdefault("review_status", "draft")
    with st.form("review_note", border=True):
        left, right = st.columns(2)
        left.text_input("Your name", key="review_author", max_chars=120, placeholder="e.g. A. Reviewer")
        right.selectbox("Status", list(NOTE_STATUSES), key="review_status",
                        help="approved by a named reviewer is the sign-off.")
        st.selectbox("About", list(scopes), format_func=scopes.get, key="review_scope")
        st.text_area("Note", key="review_body", max_chars=5000, height=120,
                     placeholder="What you checked, what you found, what must change before approval.")
        st.form_submit_button("Save note", type="primary", icon=":material/save:", on_click=_save_note,
                              args=(ws, study["id"]))
    problem = state.pop("_review_problem", None)
    if problem is not None:
        show_input_error(problem)
    if state.pop("_review_saved", False):
        st.success("Note saved. Saved notes cannot be edited or deleted: add a new note to correct one.",
                   icon=":material/check_circle:")


def sign_off_box(notes: list[dict], all_runs: list[RunRecord]) -> None:
    names = {r["id"]: r["name"] for r in all_runs}
    approved = signoff.sign_off(notes)
    if approved is None:
        st.info("Not signed off yet. A note with status **approved** and the reviewer's name is the sign-off.",
                icon=":material/pending:")
        return
    scope = f"run {md(names.get(approved['run_id'], approved['run_id']))}" if approved.get("run_id") else "the study"
    st.success(f"Signed off by **{md(approved['author'])}** on {_when(approved['created_at'])} ({scope}).",
               icon=":material/verified:")
    later = [n for n in notes if n["status"] == "changes requested" and n["id"] > approved["id"]]
    if later:
        st.warning(f"Changes were requested after this sign-off, by {md(later[-1]['author'])} on "
                   f"{_when(later[-1]['created_at'])}.", icon=":material/warning:")


def _when(created_at: str) -> str:
    return created_at[:16].replace("T", " ") + " UTC"


def notes_list(notes: list[dict], all_runs: list[RunRecord]) -> None:
    """Every note, newest first; read-only."""
    if not notes:
        st.caption("No notes yet.")
        return
    names = {r["id"]: r["name"] for r in all_runs}
    for note in reversed(notes):
        scope = f"run *{md(names.get(note['run_id'], note['run_id']))}*" if note.get("run_id") else "the study"
        with st.container(border=True):
            st.markdown(f"**{md(note['status'])}** · {md(note['author'])} · {_when(note['created_at'])} · "
                        f"about {scope}")
            st.markdown(md(note["body"]))


def summary(res: RunResults) -> None:
    """The report's plain-language summary (core.results.summary.summarize), as the stakeholder reads it."""
    items = summarize(res.report)
    lines = [f"**{md(i['text'])}**" if i.get("topic") == "largest_gap" else md(i["text"])
             for i in items if i["level"] != "warning"]
    if lines:
        st.markdown("\n".join(f"- {line}" for line in lines))
    warnings = [md(i["text"]) for i in items if i["level"] == "warning"]
    if warnings:
        st.warning("**Read with care**\n\n" + "\n".join(f"- {line}" for line in warnings),
                   icon=LEVEL_ICONS["warning"])


def reports_dir(ws: Workspace, run_id: str) -> Path:
    return ws.root / "reports" / run_id


def report_section(ws: Workspace, study: StudyRecord, run: RunRecord, res: RunResults,
                   notes: list[dict]) -> None:
    """Build the stakeholder report with the notes; offer the built files for download."""
    relevant = [n for n in notes if n.get("run_id") in (None, run["id"])]
    has_browser = find_browser() is not None
    st.markdown("The report is one self-contained HTML file (it opens offline, in any browser). Its first page is "
                "the five-minute read: the scorecard and a model card (intended use, factors, metrics, data, "
                "analyses, ethical considerations, caveats); every model's numbers with intervals, the charts, and "
                f"the review notes and sign-off of this run and of the study ({len(relevant)} "
                f"note{'s' if len(relevant) != 1 else ''} now) follow as the appendix.")
    st.session_state.setdefault("review_pdf", False)
    pdf = st.checkbox("Also make a PDF", key="review_pdf", disabled=not has_browser,
                      help=None if has_browser else "A PDF needs Chromium on the server; it is not installed.")
    framing = _model_card_inputs(ws, study)
    previous = _previous_audit(ws, study, run)
    if st.button("Build the report", type="primary", key="review_build", icon=":material/description:"):
        with st.spinner("Building the report…"):
            try:
                signoff.write_review_report(res, reports_dir(ws, run["id"]), relevant, pdf=pdf and has_browser,
                                            study_name=study["name"], framing=framing, previous=previous)
            except (InputError, RuntimeError, OSError) as error:
                st.error(f"The report could not be built: {md(error)}", icon=":material/error:")
    built = sorted(reports_dir(ws, run["id"]).glob("report-*.html"), reverse=True)
    if not built:
        st.caption("No report built for this run yet.")
        return
    latest = built[0]
    stamp = latest.stem.removeprefix("report-")
    newest_note = max((n["created_at"] for n in relevant), default="")
    built_at = _stamp_iso(stamp)
    st.markdown(f"Latest report: built {_when(built_at)}.")
    if newest_note > built_at:
        st.warning("Notes were added after this report was built: build it again to include them.",
                   icon=":material/warning:")
    cells = st.columns(2)
    with cells[0]:
        st.download_button("Download the report (HTML)", data=_reader(latest), file_name=f"equiscope-{run['id']}.html",
                           mime="text/html", key="download_report_html", icon=":material/download:",
                           on_click="ignore")
    pdf_path = latest.with_suffix(".pdf")
    if pdf_path.is_file():
        with cells[1]:
            st.download_button("Download the report (PDF)", data=_reader(pdf_path),
                               file_name=f"equiscope-{run['id']}.pdf", mime="application/pdf",
                               key="download_report_pdf", icon=":material/picture_as_pdf:", on_click="ignore")
    if len(built) > 1:
        st.caption(f"{len(built)} reports were built for this run; every version is kept in `{md(latest.parent)}`.")


def _model_card_inputs(ws: Workspace, study: StudyRecord) -> dict:
    """The model card's intended use, written once per study and kept with its framing; the headline
    measure and its reason (chosen on the Fairness page) shown where the reviewer signs off."""
    framing = dict(study.get("framing") or {})
    choice = measure_of(framing, framing.get("outcome_effect"))
    st.markdown(f"**Headline measure of this study: {choice['measure_name']}.** {choice['rationale']} "
                "(Change it on the Fairness page.)")
    intended = st.text_area("Intended use (the model card's first line)", value=framing.get("intended_use") or "",
                            key="review_intended_use", max_chars=2000,
                            placeholder="Who uses the model, for which decision, and what it must not be used for.")
    if intended != (framing.get("intended_use") or ""):
        framing["intended_use"] = intended
        ws.set_study_framing(study["id"], framing)
    return framing


def _previous_audit(ws: Workspace, study: StudyRecord, run: RunRecord) -> tuple[str, dict] | None:
    """An earlier finished audit of the same study, to say in the report what changed (None: no comparison)."""
    earlier = [r for r in runs.finished_runs(ws, study["id"]) if r["id"] != run["id"]]
    if not earlier:
        return None
    by_id = {r["id"]: r for r in earlier}
    chosen = st.selectbox("Compare with an earlier audit of this study", [None, *by_id], key="review_previous",
                          format_func=lambda r: "no comparison" if r is None else by_id[r]["name"])
    if chosen is None:
        return None
    try:
        return by_id[chosen]["name"], runs.results(ws, chosen).report
    except InputError as error:
        show_input_error(error)
        return None


def _reader(path: Path):
    return lambda: path.read_bytes()


def _stamp_iso(stamp: str) -> str:
    """'20250131-140203' -> '2025-01-31T14:02:03+00:00' (the store's time format)."""
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}+00:00"
