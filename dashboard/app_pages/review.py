"""Review & report: notes, sign-off and the stakeholder report."""

from dashboard.components import placeholder

placeholder.render(
    "Review & report",
    "Record the review and share it: notes on the study and its runs, a status for each (draft, changes "
    "requested, approved), and a self-contained report for people who do not use Equiscope.",
    ["notes with author, status and time, kept in the workspace as an audit trail",
     "a download of the stakeholder report (HTML, and PDF where a browser is installed)"],
    first="train and audit a model on the Train page; the report describes its results.",
    first_page="app_pages/train.py", first_label="Go to Train")
