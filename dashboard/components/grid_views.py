"""Compare page, "Grids": run a study grid (every SSL method x strategy x label fraction) as one
background job, with its expected cost shown before it starts; its live progress; and a finished
grid's cells in Compare: the frontier over all cells, label-fraction curves, the grid's verdicts.

The science is in core.run.grid_config (cost), core.run.grid (the job) and core.run.grid_results
(what is drawn); this module only draws. Drawing it imports no Ray and no torch.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.results.formatting import fmt_ci, fmt_num
from core.results.wording import STRATEGY_LABELS, VERDICT_PLAIN
from core.run.config import AuditConfig
from core.run.grid_config import ALL_METHODS, GridConfig, expected_cost
from core.run.grid_results import grid_curves, grid_frontier, open_grid, verdict_table
from core.vocabulary import GAP_NAMES, HIGHER_IS_BETTER, STRATEGIES
from core.workspace import jobs
from core.workspace.run_progress import run_progress
from core.workspace.store import StudyRecord, Workspace
from dashboard.components import access, result_charts, train_views
from dashboard.components.format import md
from dashboard.components.messages import show_input_error
from dashboard.components.redraw import redraw_page
from dashboard.components.result_words import GAP_CHOICES, partition_label

GRID = "grid"  # the job kind (core.workspace.jobs.JOB_KINDS)
DEFAULTS = {"grid_methods": ["scarf", "vime"], "grid_strategies": ["linear"], "grid_label_pcts": [10, 100],
            "grid_replicates": 1, "grid_epochs": 5, "grid_finetune_epochs": 5}


def grid_section(ws: Workspace, study: StudyRecord) -> None:
    st.header("Grids", divider="gray")
    st.markdown("Which recipe is fairest on this table? A grid answers it for every SSL method, fine-tuning "
                "strategy and share of labels at once: each combination of a method and a share of labels is "
                "one ordinary audit (a *cell*) on the same test rows, and each model is compared with the "
                "ordinary model of its own cell, with the chance of any false verdict kept at 5% over the whole grid.")
    with st.expander("Run a grid", icon=":material/grid_on:"):
        _form(ws, study)
    grids = ws.list_runs(study_id=study["id"], kind=GRID)
    active = [r for r in grids if r["status"] in ("queued", "running")]
    st.fragment(_live, run_every=train_views.POLL_S if active else None)(ws, study["id"])
    finished = [r for r in reversed(grids) if r["status"] in ("succeeded", "cancelled")]
    if finished:
        _results(ws, finished)


def _grid_of(ws: Workspace, study: StudyRecord) -> GridConfig:
    """The grid the form describes, on the study's table and set-up (validated)."""
    state, spec = st.session_state, study["spec"]
    base = AuditConfig(data=train_views.data_location(ws, study), target=spec["target"],
                       sensitive=list(spec["sensitive"]), positive=spec.get("positive_label"),
                       features=spec.get("features"), include_pii=bool(spec.get("include_pii")),
                       min_group_size=int(spec.get("min_group_size") or 30),
                       strategies=list(state["grid_strategies"]), replicates=int(state["grid_replicates"]),
                       epochs=int(state["grid_epochs"]), finetune_epochs=int(state["grid_finetune_epochs"]),
                       encoder=dict(train_views.ENCODER_SIZES["small"]), n_boot=200)
    grid = GridConfig(base=base, methods=list(state["grid_methods"]),
                      label_fractions=[p / 100 for p in sorted(state["grid_label_pcts"])])
    grid.validate()
    return grid


def _form(ws: Workspace, study: StudyRecord) -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, list(value) if isinstance(value, list) else value)
    left, right = st.columns(2)
    left.multiselect("SSL methods", list(ALL_METHODS), key="grid_methods",
                     help="; ".join(train_views.METHOD_WORDS[m] for m in ALL_METHODS))
    left.multiselect("Fine-tuning strategies", list(STRATEGIES), key="grid_strategies",
                     format_func=lambda s: STRATEGY_LABELS.get(s, s),
                     help="Trained in every cell from the cell's encoder, beside the ordinary (supervised) model.")
    right.multiselect("Shares of training rows with labels", train_views.LABEL_PCT_CHOICES, key="grid_label_pcts",
                      format_func=lambda p: f"{p}%")
    right.number_input("Training replicates", min_value=1, max_value=20, step=1, key="grid_replicates",
                       help="Every model of every cell trained this many times, each with its own seed.")
    epochs = st.columns(2)
    epochs[0].number_input("Pretraining epochs", min_value=1, max_value=200, step=1, key="grid_epochs")
    epochs[1].number_input("Fine-tuning epochs", min_value=1, max_value=200, step=1, key="grid_finetune_epochs")
    try:
        grid = _grid_of(ws, study)
    except InputError as error:
        show_input_error(error)
        return
    rows = study["settings"].get("rows") or 1000
    cost = expected_cost(grid, rows, os.cpu_count() or 1)
    st.caption(f"Expected cost: **{cost.cells} cells** ({len(grid.methods)} methods x {len(grid.label_fractions)} "
               f"shares of labels), **{cost.trainings} trainings** (per cell and replicate: one pretraining, "
               f"{len(grid.base.strategies)} fine-tuning{'s' if len(grid.base.strategies) != 1 else ''}, the "
               f"ordinary model and {len(grid.base.baselines)} classical baselines), about **{train_views.rough(cost.seconds)}** on this machine's {cost.parallel} "
               f"cores: about {train_views.rough(cost.cell_seconds)} a cell for {rows:,} rows, one cell per core "
               "at a time (a guide: fine-tuning often stops early).")
    if int(grid.base.replicates) == 1:
        st.caption("One replicate: the verdicts cover one training run only.")
    if st.button("Start the grid", type="primary", key="grid_start", icon=":material/play_arrow:"):
        name = (f"Grid: {len(grid.methods)} methods x {len(grid.base.strategies)} strategies x "
                f"{len(grid.label_fractions)} shares of labels")
        jobs.submit(ws, GRID, name, {"grid": grid.to_dict(), "address": None}, study_id=study["id"],
                    actor=access.reviewer())
        st.rerun()


def _live(ws: Workspace, study_id: str) -> None:
    active = [r for r in ws.list_runs(study_id=study_id, kind=GRID) if r["status"] in ("queued", "running")]
    ids = tuple(r["id"] for r in active)
    seen = st.session_state.get("_grid_active")
    st.session_state["_grid_active"] = ids
    if seen is not None and seen != ids:
        redraw_page()  # a grid started or ended: its results below change
    for run in active:
        progress = run_progress(run)
        with st.container(border=True):
            if run["status"] == "queued":
                st.markdown(f"**{md(run['name'])}** is waiting in the queue.")
            else:
                st.markdown(f"**{md(run['name'])}** is running.")
                st.progress(progress["fraction"] or 0.0, text=md(progress["message"] or "Starting"))
            train_views._cancel_button(ws, run)


@st.cache_data(show_spinner="Loading the grid's cells…", max_entries=8)
def _open(root: str, run_id: str, finished_at: str | None) -> tuple[dict, list]:
    return open_grid(Workspace(root).run_dir(run_id))


def _results(ws: Workspace, finished: list) -> None:
    by_id = {r["id"]: r for r in finished}
    run_id = (st.selectbox("Grid", list(by_id), format_func=lambda r: by_id[r]["name"], key="grid_run")
              if len(finished) > 1 else finished[0]["id"])
    try:
        grid, cells = _open(str(ws.root), run_id, by_id[run_id].get("finished_at"))
    except InputError as error:
        show_input_error(error)
        return
    counts = grid["counts"]
    st.markdown(f"**{md(by_id[run_id]['name'])}**: {counts['succeeded']} of {grid['n_cells']} cells finished"
                + "".join(f", {counts[s]} {s}" for s in ("failed", "cancelled") if counts[s]) + ".")
    for row in {r["cell"]: r for r in grid["cells"] if r["status"] == "failed"}.values():
        st.error(f"Cell {md(row['cell'])} failed: {md(row['error'] or 'no reason was recorded')}",
                 icon=":material/error:")
    if not cells:
        return
    partitions = list(cells[0][1]["study"]["sensitive"])
    left, right = st.columns(2)
    attribute = left.selectbox("Groups", partitions, key="grid_attribute", format_func=partition_label)
    gap = right.selectbox("Gap", GAP_CHOICES, format_func=GAP_NAMES.get, key="grid_gap")
    frame = grid_frontier(cells, attribute, gap)
    st.subheader("The best trade-offs over every cell")
    st.markdown("One marker per model and share of labels (one colour per recipe; the ordinary model once per "
                "share, since it does not depend on the SSL method). Diamonds are the best trade-offs of the grid.")
    st.plotly_chart(result_charts.pareto_chart(frame, "gap", f"{GAP_NAMES[gap].lower()} ({attribute})", "pareto_gap",
                                               lower_is_better=gap not in HIGHER_IS_BETTER),
                    key="grid_pareto", config=result_charts.PLOTLY_CONFIG)
    if len(grid["config"]["label_fractions"]) > 1:
        st.subheader("Across shares of labels")
        curves = grid_curves(cells, attribute, gap)
        st.plotly_chart(result_charts.fraction_chart(curves, GAP_NAMES[gap], by_group=False), key="grid_fractions",
                        config=result_charts.PLOTLY_CONFIG)
        st.caption("One line per model; each point is one cell's audit. Error bars: 95% intervals.")
    st.subheader("Verdicts against the ordinary model")
    _verdicts(grid, attribute)


def _verdicts(grid: dict, attribute: str) -> None:
    table = verdict_table(grid, attribute)
    verdicts = grid.get("verdicts") or {}
    if table.empty:
        st.info("No comparison with the ordinary model could be made in the finished cells.", icon=":material/info:")
        return
    shown = pd.DataFrame({
        "Method": table["method"], "Strategy": [STRATEGY_LABELS.get(s, s) for s in table["strategy"]],
        "Labels": [f"{100 * f:g}%" for f in table["label_fraction"]], "Gap": table["gap"].map(GAP_NAMES.get),
        "Gap minus ordinary model": table["difference"].map(fmt_num), "95% interval": table["ci"].map(fmt_ci),
        "p (Holm, whole grid)": table["p_adjusted"].map(fmt_num),
        "Verdict": [VERDICT_PLAIN.get(v, "not comparable") for v in table["verdict"]]})
    st.dataframe(shown, hide_index=True, width="stretch")
    st.caption(f"Family: {md(verdicts.get('family', ''))}; {verdicts.get('size', 0)} comparisons Holm-adjusted "
               f"together (every attribute and both headline gaps). A difference below "
               f"{fmt_num(verdicts.get('practical_floor'))} is never called a change.")
