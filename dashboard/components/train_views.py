"""Train page: the run settings (with a quick and a full preset), Start, live progress, the runs list.

Everything the page shows about runs comes from the workspace store, never from
session_state, so a browser refresh or a second reviewer sees the same queue and progress.
The settings widgets keep their values across pages (their keys are in `state.KEPT_KEYS`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.run.config import AuditConfig  # not core.run.pipeline: drawing the page must not import torch
from core.run.study_kind import outside_model_of
from core.results.wording import STRATEGY_LABELS, plain_names
from core.vocabulary import NOT_AVAILABLE, STRATEGIES
from core.workspace import jobs
from core.workspace.run_progress import loss_curves, queue_position, run_progress
from core.workspace.store import RunRecord, StudyRecord, Workspace
from dashboard.components import access, federated_views, mitigation_views, privacy_views, result_charts, runs
from dashboard.components.format import md
from dashboard.components.messages import show_input_error
from dashboard.components.redraw import redraw_page

ENCODER_SIZES = {"small": {"hidden_dim": 128, "depth": 2, "embed_dim": 64},
                 "default": {"hidden_dim": 256, "depth": 3, "embed_dim": 128},
                 "large": {"hidden_dim": 512, "depth": 4, "embed_dim": 256}}
_AUDIT_DEFAULTS = {name: spec.default for name, spec in AuditConfig.__dataclass_fields__.items()}
PRESETS = {
    "quick": {"train_method": "scarf", "train_size": "small", "train_epochs": 5, "train_finetune_epochs": 5,
              "train_label_pct": 100, "train_strategies": ["linear", "bn-stats", "full"], "train_n_boot": 200,
              "train_replicates": 1},
    # The full preset is `equiscope audit`'s defaults (AuditConfig), so the two give the same run.
    "full": {"train_method": _AUDIT_DEFAULTS["method"], "train_size": "default",
             "train_epochs": _AUDIT_DEFAULTS["epochs"], "train_finetune_epochs": _AUDIT_DEFAULTS["finetune_epochs"],
             "train_label_pct": 100, "train_strategies": list(STRATEGIES), "train_n_boot": _AUDIT_DEFAULTS["n_boot"],
             "train_replicates": _AUDIT_DEFAULTS["replicates"]},
}
PRESET_WORDS = {"quick": "Quick run", "full": "Full run", "custom": "Custom"}
PRESET_HELP = {
    "quick": (f"A short run to see the workflow: a {PRESETS['quick']['train_size']} encoder, "
              f"{PRESETS['quick']['train_epochs']} + {PRESETS['quick']['train_finetune_epochs']} epochs, "
              f"{len(PRESETS['quick']['train_strategies'])} strategies, each model trained once: its verdicts "
              "cover one training run only."),
    "full": (f"The settings for a careful audit, the same as `equiscope audit`'s defaults: every model trained "
             f"{PRESETS['full']['train_replicates']} times, so its verdicts survive a re-run.")}
# Wall time of each preset (the page's own settings through core.run.pipeline.run_audit), measured on
# this project's 2-core server while other work shared it (load 2-6; a laptop is usually faster), as
# (rows, seconds) through three bundled tables, followed linearly between and beyond them. A straight
# base + per-row line through German and Adult put COMPAS's quick run at 36 s (measured 22-34 s) and its
# full run at 59 s (measured 167-179 s): it made Quick look almost as slow as Full on mid-sized tables.
# German (1,000 rows): quick 14-16 s, full 33-43 s; COMPAS (6,172): quick 22-34 s, full 167-179 s;
# Adult (45,222): quick 67 s, full 240 s (issue 15: the replicates train side by side on the two cores).
# Quick trains less than Full in every respect (small encoder, 5 + 5 epochs, 3 strategies, 1 replicate
# vs 10 + 20, 5 strategies, 5 replicates), but on a small table
# most of a quick run is the audit itself (intervals, 2-D maps, probes, classical baselines: 10-12 s of
# German's 15 s), which every preset pays; a server's first run also compiles the maps' code (German
# quick 40 s instead of 15 s), which is how a first Quick run can take longer than a later Full one.
PRESET_SECONDS = {"quick": ((1000, 15.0), (6172, 28.0), (45222, 67.0)),
                  "full": ((1000, 38.0), (6172, 173.0), (45222, 240.0))}
SMALL_TABLE_ROWS = 2000  # below this, most of a quick run is the audit every preset pays
MEASURED = ("measured: German credit, 1,000 rows, quick 15 s and full 40 s; COMPAS, 6,172 rows, quick 30 s "
            "and full 3 min; Adult, 45,222 rows, quick 1 min and full 4 min")
# The objectives of core.learning.ssl, in its registry order (a test checks they agree): listed here
# so that drawing the page does not import torch (2 s on a server's first visit to Train).
METHOD_WORDS = {"scarf": "SCARF: contrast each row with a copy whose columns are partly swapped with other rows",
                "vime": "VIME: rebuild masked values and guess which were masked",
                "dae": "Denoising autoencoder: rebuild the row from a corrupted copy",
                "simclr": "SimCLR: contrast two corrupted copies of each row",
                "byol": "BYOL: predict one view's representation from another's (no negatives)",
                "simsiam": "SimSiam: like BYOL without the moving-average network",
                "vicreg": "VICReg: keep views close while keeping the representation spread out",
                "barlow": "Barlow Twins: make the views' features agree and decorrelate",
                "swav": "SwAV: assign views to the same learned clusters",
                "moco": "MoCo: contrast each row with a queue of earlier rows, seen by a slowly moving copy",
                "vae": "Variational autoencoder: squeeze each row into a small random code that rebuilds it",
                "deepcluster": "DeepCluster: group the rows into clusters, then learn to tell the clusters apart"}
# Plain words first (core.results.wording's labels, as on the result pages); the code names (bn-stats, ...)
# are in the picker's help, as the downloads and `equiscope audit --strategies` use them.
STRATEGY_WORDS = {"linear": "output layer only: train a final layer on the frozen pretrained encoder",
                  "bn-stats": "output layer and normalisation statistics: re-measure the encoder's normalisation "
                              "on the labelled rows, then train a final layer",
                  "bn-affine": "output layer and normalisation layers: train the encoder's normalisation scales "
                               "and shifts and a final layer",
                  "gradual": "all layers, step by step: unfreeze the encoder layer by layer",
                  "full": "all layers retrained: fine-tune the whole encoder"}
POLL_S = 1.0
N_BOOT_CHOICES = [100, 200, 500, 1000, 2000]
LABEL_PCT_CHOICES = [1, 2, 5, 10, 20, 25, 50, 75, 100]


def _apply_preset(preset: str) -> None:
    for key, value in PRESETS[preset].items():
        st.session_state[key] = list(value) if isinstance(value, list) else value


def preset_of(settings) -> str:
    """'quick' or 'full' when the settings are exactly that preset's, else 'custom'.

    The preset is worked out from the settings, never stored: a stored choice had to be reset to
    Custom by every setting's callback, and a browser that sent its next change before drawing
    that reset sent the old preset back, which re-applied it over the reviewer's change.
    """
    for name, values in PRESETS.items():
        if all(sorted(settings.get(k) or []) == sorted(v) if isinstance(v, list) else settings.get(k) == v
               for k, v in values.items()):
            return name
    return "custom"


def settings_form(ws: Workspace, study: StudyRecord) -> None:
    """The settings, the expected time and the Start button."""
    state = st.session_state
    for key, value in PRESETS["quick"].items():  # first visit, or a key Streamlit dropped on another page
        state.setdefault(key, list(value) if isinstance(value, list) else value)
    state.setdefault("train_unaware", False)  # a choice about the study, not an effort: in no preset
    preset = preset_of(state)
    cells = st.columns([1, 1, 3], vertical_alignment="center")
    for cell, name in zip(cells, PRESETS):
        cell.button(PRESET_WORDS[name], key=f"train_preset_{name}", on_click=_apply_preset, args=(name,),
                    type="primary" if preset == name else "secondary", use_container_width=True,
                    help=PRESET_HELP[name])
    cells[2].caption(f"Settings: **{PRESET_WORDS[preset]}**" + (
        " (changed from the presets; choose one to start again from it)." if preset == "custom" else "."))
    left, right = st.columns(2)
    with left:
        method = st.selectbox("Self-supervised (SSL) method", list(METHOD_WORDS), key="train_method",
                              help="How the encoder learns from all rows without using the outcome.")
        st.caption(METHOD_WORDS.get(method, method))
        st.select_slider("Encoder size", list(ENCODER_SIZES), key="train_size",
                         help="small: 2 layers of 128; default: 3 layers of 256; large: 4 layers of 512. "
                              "Larger encoders take longer.")
        st.number_input("Pretraining epochs", min_value=1, max_value=200, step=1, key="train_epochs",
                        help="Passes over the rows during self-supervised pretraining.")
        st.number_input("Fine-tuning epochs", min_value=1, max_value=200, step=1, key="train_finetune_epochs",
                        help="Passes over the labelled rows when training each model.")
    with right:
        st.select_slider("Share of training rows with labels", LABEL_PCT_CHOICES, key="train_label_pct",
                         format_func=lambda p: f"{p}%",
                         help="Fewer labels is where SSL pretraining is meant to help. Test rows always keep "
                              "their labels.")
        chosen = st.multiselect("Fine-tuning strategies", list(STRATEGIES), key="train_strategies",
                                format_func=lambda s: STRATEGY_LABELS.get(s, s),
                                help="Each strategy makes one model from the SSL encoder. A supervised baseline of "
                                     "the same shape, without pretraining, is always trained too. Code names: "
                                     + "; ".join(f"{STRATEGY_LABELS[s]} = {s}" for s in STRATEGIES) + ".")
        if chosen:
            st.caption("; ".join(STRATEGY_WORDS[s] for s in chosen) + ".")
        st.select_slider("Bootstrap resamples (for the confidence intervals)", N_BOOT_CHOICES, key="train_n_boot",
                         help="More resamples give steadier intervals and take a little longer.")
        replicates = st.number_input("Training replicates", min_value=1, max_value=20, step=1, key="train_replicates",
                                     help="How many times every model is trained, each time with its own seed. "
                                          "A model's fairness can change between trainings; with several, the "
                                          "verdicts cover that. Each replicate adds about one run's time.")
        if int(replicates) == 1:
            st.caption("One replicate: the verdicts cover one training run only.")
        st.checkbox("Unaware training", key="train_unaware",
                    help="The models do not get the sensitive attributes as inputs; the audit still compares "
                         "their groups.")
        st.caption("Unaware: the sensitive attributes are not given to the models, so the Embeddings page can show "
                   "whether their representations still carry them through other columns.")
        mitigation_views.mitigation_options()
        federated_views.federated_option()
        privacy_views.privacy_option()
    outside = outside_model_of(r["config"] for r in runs.audit_runs(ws, study["id"]))
    if outside:  # the study's outside model file, audited beside our models on the same test rows
        st.checkbox(f"Audit the outside model {Path(outside['model']).name} beside them", value=True,
                    key="train_outside", help="Compared with the supervised baseline on the same test rows.")
    st.caption(f"Expected time: {expected_time(preset, study['settings'].get('rows'))}. "
               "A supervised baseline is always trained as well. Training runs in the background: you can use "
               "the other pages, or close the browser, meanwhile.")
    if st.button("Start", type="primary", key="train_start", icon=":material/play_arrow:"):
        start_run(ws, study)


def rough(seconds: float) -> str:
    """An estimate, rounded as one: 27 -> '30 s'; 381 -> '6 min'; 1905 -> '32 min'."""
    if seconds < 60:
        return f"{max(5, int(round(seconds / 5)) * 5)} s"
    return f"{int(round(seconds / 60))} min"


def preset_seconds(preset: str, rows: int) -> float:
    """The preset's measured seconds (PRESET_SECONDS) followed linearly to `rows`: between two measured
    tables on the line through them, beyond the largest on the last line's slope, below the smallest
    the smallest's time (a run's fixed costs do not shrink with the table)."""
    points = PRESET_SECONDS.get(preset, PRESET_SECONDS["full"])
    if rows <= points[0][0]:
        return points[0][1]
    pairs = list(zip(points, points[1:]))
    (x0, y0), (x1, y1) = next(((a, b) for a, b in pairs if rows <= b[0]), pairs[-1])
    return y0 + (y1 - y0) * (rows - x0) / (x1 - x0)


def expected_time(preset: str, rows: int | None) -> str:
    """The preset's expected wall time for a table of `rows` rows, from the measurements above."""
    if rows is None:
        return "unknown for this table"
    estimate = rough(preset_seconds(preset, rows))
    if preset == "quick":
        small = ("; on a table this small most of a quick run is the audit itself (intervals, maps, probes), which "
                 "every preset pays" if rows <= SMALL_TABLE_ROWS else "")
        return (f"about {estimate} for {rows:,} rows (a full run: about {rough(preset_seconds('full', rows))}) "
                f"on a 2-core server ({MEASURED}){small}")
    if preset in PRESET_SECONDS:
        return f"about {estimate} for {rows:,} rows on a 2-core server ({MEASURED})"
    return (f"the full run takes about {estimate} for {rows:,} rows; more epochs, strategies, resamples "
            "or a larger encoder take longer")


def data_location(ws: Workspace, study: StudyRecord) -> str:
    """What `AuditConfig.data` needs: a bundled dataset's name, or the stored upload's absolute path."""
    settings = study["settings"]
    if settings.get("source") != "upload":
        return study["dataset"]
    relative = settings.get("stored_path")
    path = (ws.root / relative).resolve() if relative else None
    if path is None or ws.root not in path.parents or not path.is_file():
        raise InputError(f"The file of study '{study['name']}' is no longer in the workspace",
                         "Upload it again on the Data page and save the study")
    return str(path)


def build_config(ws: Workspace, study: StudyRecord) -> AuditConfig:
    """The audit the settings describe, on the study's table and set-up."""
    state, spec = st.session_state, study["spec"]
    config = AuditConfig(
        data=data_location(ws, study), target=spec["target"], sensitive=list(spec["sensitive"]),
        positive=spec.get("positive_label"), features=spec.get("features"),
        include_pii=bool(spec.get("include_pii")), min_group_size=int(spec.get("min_group_size") or 30),
        method=state["train_method"], strategies=list(state["train_strategies"]),
        label_fraction=state["train_label_pct"] / 100, epochs=int(state["train_epochs"]),
        finetune_epochs=int(state["train_finetune_epochs"]), encoder=dict(ENCODER_SIZES[state["train_size"]]),
        n_boot=int(state["train_n_boot"]), replicates=int(state["train_replicates"]),
        unaware=bool(state.get("train_unaware", False)))
    config.mitigations, config.mitigation_sweep = mitigation_views.chosen_mitigations()
    config.federated_by, config.federated_rounds = federated_views.chosen_federation()
    config.dp_epsilon = privacy_views.chosen_epsilons()
    outside = outside_model_of(r["config"] for r in runs.audit_runs(ws, study["id"]))
    if outside and state.get("train_outside", True):
        config.model, config.trust_types = outside["model"], outside["trust_types"]
    config.validate()
    return config


def start_run(ws: Workspace, study: StudyRecord) -> None:
    try:
        config = build_config(ws, study)
    except InputError as error:
        show_input_error(error)
        return
    state = st.session_state
    name = (f"{PRESET_WORDS[preset_of(state)]}: {config.method}, "
            f"{len(config.strategies)} strateg{'y' if len(config.strategies) == 1 else 'ies'} + supervised")
    run_id = jobs.submit(ws, runs.AUDIT, name, config.to_dict(), study_id=study["id"], actor=access.reviewer())
    state["_train_started"] = run_id
    st.rerun()  # redraw with the new run in the progress section and the list


def progress_section(ws: Workspace, study: StudyRecord) -> None:
    """Live progress of the study's queued and running runs (a fragment that polls the store)."""
    active = [r for r in runs.audit_runs(ws, study["id"]) if r["status"] in ("queued", "running")]
    st.fragment(_live, run_every=POLL_S if active else None)(ws, study["id"])


def _live(ws: Workspace, study_id: str) -> None:
    all_runs = runs.audit_runs(ws, study_id)
    active = [r for r in all_runs if r["status"] in ("queued", "running")]
    ids = tuple(r["id"] for r in active)
    seen = st.session_state.get("_train_active")
    st.session_state["_train_active"] = ids
    if seen is not None and seen != ids and st.session_state.pop("_train_rerun_for", None) != ids:
        st.session_state["_train_rerun_for"] = ids
        redraw_page()  # a run started or ended: redraw the whole page (runs list, polling on or off)
    if not active:
        st.caption("No run is under way. Start one above; its progress shows here.")
        return
    queued_everywhere = ws.list_runs(status="queued")
    if queued_everywhere and not ws.list_runs(status="running"):
        jobs.ensure_worker(ws)  # e.g. the server restarted while runs were queued
    for run in active:
        if run["status"] == "running":
            _running(ws, run)
        else:
            _queued(ws, run, queued_everywhere)


def _running(ws: Workspace, run: RunRecord) -> None:
    progress = run_progress(run)
    with st.container(border=True):
        st.markdown(f"**{md(run['name'])}** is running.")
        stage = STAGE_WORDS.get(progress["stage"], "Starting")
        message = f"{stage}: {md(plain_names(progress['message']))}" if progress["message"] else stage
        st.progress(progress["fraction"] or 0.0, text=message)
        cells = st.columns(4)
        cells[0].metric("Done", f"{100 * (progress['fraction'] or 0):.0f}%")
        cells[1].metric("Elapsed", duration(progress["elapsed_s"]))
        cells[2].metric("Time left (rough)", duration(progress["eta_s"]) if progress["eta_s"] is not None else "…",
                        help="Estimated from the share done so far; stages do not all run at the same speed.")
        epoch = (f"{progress['epoch']} of {progress['epochs']}" if progress.get("epoch") and progress.get("epochs")
                 else NOT_AVAILABLE)
        cells[3].metric("Epoch", epoch)
        curves = loss_curves(ws.events(run["id"]))
        if len(curves["pretrain"]):
            st.plotly_chart(result_charts.loss_chart(curves), key=f"loss_chart_{run['id']}",
                            config=result_charts.PLOTLY_CONFIG)
        if run["cancel_requested"]:
            st.info("Cancelling: the run stops at its next safe point (a few seconds).", icon=":material/block:")
        else:
            _cancel_button(ws, run)


def _queued(ws: Workspace, run: RunRecord, queued: list[RunRecord]) -> None:
    position = queue_position(run["id"], queued)
    with st.container(border=True):
        st.markdown(f"**{md(run['name'])}** is waiting in the queue: position {position} of {len(queued)}. "
                    "Runs go one at a time, oldest first.")
        _cancel_button(ws, run)


def _cancel(ws: Workspace, run_id: str) -> None:
    try:
        ws.request_cancel(run_id, actor=access.reviewer())
    except InputError as error:  # another reviewer's run, and shared edits are off
        st.session_state[f"_cancel_problem_{run_id}"] = error


def _cancel_button(ws: Workspace, run: RunRecord) -> None:
    """Cancel, as a callback: it runs before the redraw, which then shows the new state."""
    st.button("Cancel this run", key=f"cancel_{run['id']}", icon=":material/stop_circle:", on_click=_cancel,
              args=(ws, run["id"]))
    problem = st.session_state.pop(f"_cancel_problem_{run['id']}", None)
    if problem is not None:
        show_input_error(problem)


STAGE_WORDS = {"study": "Preparing the data", "pretrain": "Pretraining", "finetune": "Training the models",
               "audit": "Auditing", "done": "Finished"}


def duration(seconds: float | None) -> str:
    """95 -> '1 min 35 s'; None -> 'n/a'."""
    if seconds is None:
        return NOT_AVAILABLE
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def runs_list(ws: Workspace, study: StudyRecord) -> None:
    """Every audit run of the study, newest first, with what went wrong where something did."""
    all_runs = list(reversed(runs.audit_runs(ws, study["id"])))
    if not all_runs:
        st.caption("No run yet.")
        return
    rows = []
    for run in all_runs:
        config = run.get("config") or {}
        progress = run_progress(run)
        rows.append({"Started": (run.get("started_at") or run["created_at"])[:16].replace("T", " "),
                     "Name": run["name"], "Status": runs.STATUS_WORDS.get(run["status"], run["status"]),
                     "Took": duration(progress["elapsed_s"]) if run["status"] in ("succeeded", "failed",
                                                                                   "cancelled") else "",
                     "SSL method": config.get("method"),
                     "Strategies": ", ".join(STRATEGY_LABELS.get(s, s) for s in config.get("strategies") or []),
                     "Labels": f"{100 * float(config.get('label_fraction', 1)):g}%",
                     "Started by": run.get("owner") or "", "Reason": run.get("error") or ""})
    table = pd.DataFrame(rows)
    if not table["Started by"].any():
        table = table.drop(columns="Started by")  # a local server: every run is this reviewer's
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"Reason": st.column_config.TextColumn(width="large")})
    for run in all_runs[:5]:
        if run["status"] == "failed":
            st.error(f"Run **{md(run['name'])}** failed: {md(run.get('error') or 'no reason was recorded')}",
                     icon=":material/error:")
        elif run["status"] == "interrupted":
            st.warning(f"Run **{md(run['name'])}** was interrupted: the process running it stopped before it "
                       "finished (the server was stopped, or the machine ran out of memory). Its partial results "
                       "are kept in the workspace but not shown; start it again to get results.",
                       icon=":material/warning:")
    finished = [r for r in all_runs if r["status"] == "succeeded"]
    if finished:
        st.success(f"Latest finished run: **{md(finished[0]['name'])}**. See how its models treat the groups.",
                   icon=":material/check_circle:")
        links = st.columns(3)
        with links[0]:
            st.page_link("app_pages/fairness.py", label="Fairness", icon=":material/balance:")
        with links[1]:
            st.page_link("app_pages/embeddings.py", label="Embeddings", icon=":material/scatter_plot:")
        with links[2]:
            st.page_link("app_pages/compare.py", label="Compare", icon=":material/compare_arrows:")

