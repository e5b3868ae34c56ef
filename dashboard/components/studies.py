"""Studies in the workspace: save the Data page's set-up, and the study a first visit opens on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from core.data import DatasetSpec, PreparedData
from core.errors import InputError
from core.workspace.store import StudyRecord, Workspace
from core.workspace.uploads import safe_file_name, save_upload
from dashboard.components import state, tables
from dashboard.components.format import words

#: Set by the Data page on a run where its set-up is not the current study, read (and cleared) by the
#: sidebar: the sidebar then says that the study it names stays current until the new set-up is saved.
UNSAVED_SETUP = "_unsaved_setup"


def saved_spec(data: PreparedData) -> DatasetSpec:
    """The spec as a study records it: the validated one (positive label resolved) with the
    features `prepare` actually kept, so a study says exactly what the models will see."""
    return replace(data.spec, features=tuple(data.features))


def default_name(table: tables.Table, spec: DatasetSpec) -> str:
    title = table.card.title if table.card else table.name
    return f"{title}: {spec.target} by {words(list(spec.sensitive))}"


def save_study(ws: Workspace, table: tables.Table, data: PreparedData, name: str,
               upload: dict | None) -> tuple[str, bool]:
    """Record the study (copying an upload into the workspace); return (id, newly created).

    An identical study (same table and set-up) is reused rather than saved twice.
    """
    spec = saved_spec(data).to_dict()
    settings: dict = {"source": table.source, "file_format": table.file_format, "rows": int(len(table.frame))}
    dataset = table.name
    if table.source == "upload":
        dataset = safe_file_name(table.name)  # the browser's file name is untrusted text
        if upload is None or upload.get("sha256") != table.sha256:
            raise InputError("The uploaded file is no longer available", "Upload it again, then save the study")
        path = save_upload(ws.root, upload["data"], upload["name"], max_bytes=tables.UPLOAD_LIMIT_BYTES)
        settings.update(stored_path=path.relative_to(ws.root).as_posix(), file_name=path.name)
    return ws.find_or_create_study(name, dataset, table.sha256, spec, settings)


def stored_upload(ws: Workspace, study: StudyRecord) -> dict | None:
    """An uploaded study's file, read back from the workspace (None if it is gone)."""
    relative = study["settings"].get("stored_path")
    if not relative:
        return None
    path = (ws.root / relative).resolve()
    if ws.root not in path.parents or not path.is_file():
        return None
    data = path.read_bytes()
    original = study["settings"].get("file_name", path.name).split("-", 1)[-1]
    return {"name": original, "data": data, "sha256": tables.sha256_of(data), "file_id": f"study:{study['id']}"}


@st.cache_resource(show_spinner="Setting up a first study…")
def ensure_bundled_study(root: str, dataset: str) -> str:
    """Make sure the workspace has a study of bundled `dataset`; create one with the card's
    target, positive label and sensitive attributes if not. Cached: once per server process
    and workspace, so reviewers opening the app together do not each create one."""
    ws = Workspace(root, recover=False)
    for study in ws.list_studies():
        if study["dataset"] == dataset and study["settings"].get("source") == "bundled":
            return study["id"]
    table = tables.bundled_table(dataset)
    card = table.card
    spec = DatasetSpec(target=card.target, sensitive=tuple(card.sensitive), positive_label=str(card.positive_label))
    data = tables.prepared(table.sha256, tables.spec_key(spec), table.frame)
    return save_study(ws, table, data, default_name(table, data.spec), None)[0]


def choose_startup_study(ws: Workspace) -> str | None:
    """At a session's first run: select the study to open on; return a problem to show, if any.

    With a start-up dataset (`equiscope serve --dataset adult`): its newest study, created
    from the card if there is none. Otherwise the workspace's newest study, if any.
    """
    if state.CURRENT_STUDY in st.session_state:
        return None
    dataset, problem = state.startup_dataset(), None
    if dataset:
        try:
            ensure_bundled_study(str(ws.root), dataset)
        except InputError as error:
            problem = f"Could not open the start-up dataset: {error}"
    studies = ws.list_studies()
    matching = [s for s in studies if s["dataset"] == dataset] or studies
    state.set_current_study(matching[0]["id"] if matching else None)
    return problem


def describe(study: StudyRecord) -> dict[str, str]:
    """A study's set-up in words, for the sidebar."""
    spec = study["spec"]
    source = study["settings"].get("source")
    return {"name": study["name"],
            "dataset": study["dataset"] + (" (uploaded)" if source == "upload" else ""),
            "outcome": f"{spec['target']} = {spec['positive_label']}",
            "sensitive": words(spec["sensitive"]),
            "features": str(len(spec["features"] or [])),
            "file": Path(study["settings"].get("stored_path", "")).name}
