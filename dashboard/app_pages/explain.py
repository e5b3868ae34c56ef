"""Explain: why a model decided as it did for one person, whether the decision would change in
another group, and what the model leans on for each group."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.explain import RunContext
from core.explain.agreement import CHOICES as EXPLAINER_CHOICES
from core.explain.agreement import LIME, SHAP, explainers_of
from core.data.proxies import MODERATE
from core.explain.lime_tabular import NUM_SAMPLES
from core.results.export import csv_bytes
from core.results.formatting import fmt_pct
from core.results.quality import flagged_models
from core.results.wording import model_label as plain_model_label
from core.vocabulary import PREDICTIONS_STUDY, SUPERVISED
from core.workspace import jobs
from core.workspace.store import StudyRecord, Workspace
from dashboard.components import access, runs, state
from dashboard.components import explain_views as views
from dashboard.components.format import md
from dashboard.components.messages import show_input_error
from dashboard.components.redraw import redraw_page

SAMPLE_CHOICES = [1000, 2000, 5000, 10000]
ROWS_CHOICES = [25, 50, 100, 200]
SECONDS_PER_ROW = {LIME: 0.15,  # one LIME run at 5,000 samples on the Adult default model (bench/bench_lime.py)
                   SHAP: 0.3}  # one SHAP run, 100 background rows (bench/bench_shap.py: 0.24 s, 0.79 s at load 3)


def model_label(ctx: RunContext, name: str) -> str:
    """The model's plain name ("Pretrained (SCARF), output layer only"); its code name is in the picker's help."""
    entry = next((m for m in ctx.report.get("models", []) if m["name"] == name), None)
    return plain_model_label(entry) if entry else name


def code_names(ctx: RunContext) -> str:
    return "Code names (as in the downloads and the report's appendix): " + "; ".join(
        f"{model_label(ctx, name)} = {name}" for name in ctx.model_names) + "."


def explainer_choice() -> str:
    """LIME, SHAP or both (kept across pages); every section below follows it."""
    state.keep_option("explain_explainer", list(EXPLAINER_CHOICES), LIME)
    return st.radio("Explain with", list(EXPLAINER_CHOICES), key="explain_explainer", horizontal=True,
                    format_func=views.EXPLAINER_WORDS.get,
                    help="LIME fits a simple local model around the person; SHAP shares out the difference between "
                         "this person's probability and the average person's among the features. Both: see them "
                         "side by side, and where they disagree.")


def explanation_section(ctx: RunContext, root: str, run_id: str, model: str, row: int,
                        explainer: str) -> tuple[int, int]:
    left, right = st.columns(2)
    state.keep_option("explain_num_samples", SAMPLE_CHOICES, NUM_SAMPLES)
    num_samples = left.selectbox("LIME samples", SAMPLE_CHOICES, key="explain_num_samples",
                                 help="How many perturbed copies of the row LIME scores. More is steadier and slower.")
    if "explain_seed" not in st.session_state:
        st.session_state["explain_seed"] = 0
    seed = int(right.number_input("Seed", min_value=0, step=1, key="explain_seed",
                                  help="Same seed, same explanation. Repeats for the stability check use the next "
                                       "seeds."))
    names = explainers_of(explainer)
    lime = views.explanation(root, run_id, model, row, num_samples, seed) if LIME in names else None
    shap = views.shap_explanation(root, run_id, model, row, seed) if SHAP in names else None
    result = lime or shap
    positive = ctx.positive_label
    y = ctx.study.data.y[row]
    cells = st.columns(3)
    cells[0].metric("Decision", views.decision_words(ctx, result["prediction"]))
    cells[1].metric(f"Probability of {positive}", fmt_pct(result["probability"]))
    cells[2].metric("True outcome", "unknown" if y != y else views.decision_words(ctx, int(y)))
    if lime is not None:
        _lime_explanation(lime, positive, num_samples)
    if shap is not None:
        _shap_explanation(shap, positive)
    if lime is not None and shap is not None:
        agreement = views.agreement_of(lime, shap)
        lines = views.disagreement_lines(agreement)
        (st.info if lines else st.success)(views.agreement_sentence(agreement)
                                           + (" They disagree on:" if lines else " They disagree on no top feature."),
                                           icon=":material/compare_arrows:")
        if lines:
            st.markdown("\n".join(lines))
    return num_samples, seed


def _shap_explanation(result: dict, positive: str) -> None:
    st.plotly_chart(views.shap_chart(result["values"], positive,
                                     title=f"SHAP: what pushed the probability of {positive} up (green) or down (red)"),
                    key="explain_shap_chart", config=views.PLOTLY_CONFIG)
    st.caption(f"SHAP starts from the model's average probability over {result['background_rows']} people of the "
               f"training data ({fmt_pct(result['base_value'])}) and shares out the difference to this person's "
               f"probability among the features: the values add up to {fmt_pct(result['probability'])} exactly. "
               "A feature counts as unknown by taking those people's values instead of this person's.")
    for note in result["notes"]:
        st.caption(md(note))
    with st.expander("Every feature's SHAP value", icon=":material/table_rows:"):
        st.dataframe(views.shap_table(result["values"]), hide_index=True, key="explain_shap_table")


def _lime_explanation(result: dict, positive: str, num_samples: int) -> None:
    st.plotly_chart(views.weight_chart(result["weights"], positive,
                                       title=f"What pushed the probability of {positive} up (green) or down (red)"),
                    key="explain_weights_chart", config=views.PLOTLY_CONFIG)
    views.stability_message(result["stability"])
    st.caption(f"LIME fits a simple weighted linear model to the model's answers on {num_samples:,} perturbed copies "
               f"of this row. That local model starts from {result['intercept']:.3f} and explains "
               f"{max(result['local_fit_r2'], 0):.0%} of the variation in the model's answers around the row: "
               "the lower, the rougher the summary. Numeric features are compared in training-data quartiles "
               "(e.g. age ≤ 28).")
    for note in result["notes"]:
        st.caption(md(note))
    with st.expander("Every feature's weight", icon=":material/table_rows:"):
        st.dataframe(views.weights_table(result["weights"]), hide_index=True, key="explain_weights_table")


def proxies_toggle(ctx: RunContext, label: str, key: str) -> bool:
    """The toggle that also changes the attributes' proxies; without proxies it is off and says so (it
    used to switch on and change nothing)."""
    found = views.proxies_found(ctx)
    with_proxies = st.toggle(label, key=key, disabled=not found,
                             help=f"Features clearly associated with the attribute (an association of at least "
                                  f"{MODERATE:g} on a scale of 0 to 1, on the training rows) are set to their most "
                                  "common value (median if numeric) among the other group's training rows.")
    if not found:
        st.caption("No proxies found: no feature is clearly associated with a sensitive attribute, so there is "
                   "nothing else to change.")
        return False
    return with_proxies


def flip_section(ctx: RunContext, root: str, run_id: str, model: str, row: int, explainer: str, num_samples: int,
                 seed: int) -> None:
    with_proxies = proxies_toggle(ctx, "Also change the attribute's proxies", "explain_with_proxies")
    flips = views.row_flips(root, run_id, model, row, with_proxies)
    if not flips:
        st.info("This row has no other group to flip to.", icon=":material/info:")
        return
    changed = [f for f in flips if f["changed"]]
    if changed:
        st.warning(f"The decision changes for {len(changed)} of {len(flips)} flips: "
                   + "; ".join(f"{md(f['attribute'])} {md(f['from'])} → {md(f['to'])}" for f in changed) + ".",
                   icon=":material/warning:")
    else:
        st.success(f"The decision stays the same in all {len(flips)} flips.", icon=":material/check_circle:")
    st.dataframe(views.flip_table(ctx, flips), hide_index=True, key="explain_flip_table")
    st.caption("Everything else about the person stays the same. A categorical attribute takes the other group's "
               "value; a numeric attribute audited in bins (such as age) takes the median of the other bin in the "
               "training rows.")
    flip_explained(root, run_id, model, row, flips, explainer, with_proxies, num_samples, seed)
    st.subheader("The nearest real person in another group")
    entries = views.nearest(root, run_id, model, row)
    lines = []
    for entry in entries:
        verdict = "a **different** decision" if entry["decision_differs"] else "the same decision"
        differs = ", ".join(md(d["feature"]) for d in entry["differences"][:6])
        more = len(entry["differences"]) - 6
        lines.append(f"- **{md(entry['attribute'])} = {md(entry['group'])}**: row {entry['row_id']} "
                     f"(distance {entry['distance']:.2f} in the model's embedding) got {verdict} "
                     f"({fmt_pct(entry['probability'])}); differs in {differs or 'nothing else'}"
                     + (f" and {more} more" if more > 0 else "") + ".")
    st.markdown("\n".join(lines) or "No test row of another group.")


def flip_explained(root: str, run_id: str, model: str, row: int, flips: list[dict], explainer: str,
                   with_proxies: bool, num_samples: int, seed: int) -> None:
    """One flip, explained before and after by the chosen explainer(s), per feature."""
    labels = {f"{f['attribute']}: {f['from']} → {f['to']}": f for f in flips}
    state.keep_option("explain_flip_explained", list(labels), next(iter(labels)))
    picked = labels[st.selectbox("Explain one flip, before and after", list(labels), key="explain_flip_explained")]
    result = views.flip_explanation(root, run_id, model, row, picked["attribute"], picked["to"], explainer,
                                    with_proxies, num_samples, seed)
    st.dataframe(views.flip_explanation_table(result), hide_index=True, key="explain_flip_explanation_table")
    st.caption("The same person before and after the flip, explained with the same settings: a feature whose "
               "weight or value moves a lot is one the model reads differently for the other group.")


def comparison_section(ctx: RunContext, root: str, run_id: str, model: str, row: int, num_samples: int,
                       seed: int) -> None:
    others = [m for m in ctx.model_names if m != model]
    if not others:
        st.info("This run has one model only.", icon=":material/info:")
        return
    state.keep_option("explain_other_model", others, SUPERVISED if SUPERVISED in others else others[0])
    other = st.selectbox("Compare with", others, key="explain_other_model", format_func=lambda m: model_label(ctx, m),
                         help=code_names(ctx))
    result = views.comparison(root, run_id, row, model, other, num_samples, seed)
    labels = [model_label(ctx, model), model_label(ctx, other)]
    st.plotly_chart(views.comparison_chart(result["table"], [model, other], labels), key="explain_compare_chart",
                    config=views.PLOTLY_CONFIG)
    a, b = result["models"]
    st.caption(f"Probability of {md(ctx.positive_label)}: {md(labels[0])} {fmt_pct(a['probability'])}, "
               f"{md(labels[1])} {fmt_pct(b['probability'])}. Each model explained with the same LIME samples settings "
               "(one run each).")


def subgroup_section(ws: Workspace, study: StudyRecord, ctx: RunContext, run_id: str, model: str,
                     seed: int, explainer: str) -> None:
    left, right = st.columns(2)
    state.keep_option("explain_subgroup_attribute", ctx.sensitive, ctx.sensitive[0])
    attribute = left.selectbox("Groups of", ctx.sensitive, key="explain_subgroup_attribute")
    state.keep_option("explain_subgroup_rows", ROWS_CHOICES, 100)
    rows = right.selectbox("Rows per group (at most)", ROWS_CHOICES, key="explain_subgroup_rows")
    names = explainers_of(explainer)
    for name in names:
        if len(names) > 1:
            st.subheader(views.EXPLAINER_WORDS[name])
        config = {"audit_run_id": run_id, "attribute": attribute, "model": model, "rows_per_group": int(rows),
                  "num_samples": NUM_SAMPLES, "seed": int(seed)}
        if name != LIME:  # LIME's jobs keep the configuration they always had, so earlier results stay found
            config["explainer"] = name
        _subgroup_of(ws, study, ctx, model, attribute, int(rows), config, name)


def _subgroup_of(ws: Workspace, study: StudyRecord, ctx: RunContext, model: str, attribute: str, rows: int,
                 config: dict, explainer: str) -> None:
    suffix = "" if explainer == LIME else f"_{explainer}"  # LIME's widgets keep their keys
    earlier = views.subgroup_runs(ws, study["id"], config)
    latest = earlier[0] if earlier else None
    if latest is not None and latest["status"] in ("queued", "running"):
        st.fragment(_subgroup_progress, run_every=1.0)(ws, latest["id"], suffix)
        return
    if latest is not None and latest["status"] == "succeeded":
        result = views.subgroup_result(ws, latest["id"])
        if result is not None:
            _subgroup_result(result, suffix)
            return
    if latest is not None and latest["status"] in ("failed", "cancelled", "interrupted"):
        st.warning(f"The last computation was {latest['status']}" + (f": {md(latest['error'])}" if latest.get("error")
                                                                     else "."), icon=":material/warning:")
    groups = ctx.study.data.groups[attribute].iloc[ctx.test_rows].nunique()
    estimate = SECONDS_PER_ROW[explainer] * rows * groups
    word, what = views.EXPLAINER_WORDS[explainer], "weight" if explainer == LIME else "SHAP value"
    st.markdown(f"Explains up to {rows} test rows of each of the {groups} groups of **{md(attribute)}** with {word} "
                f"and averages the size of each feature's {what} per group. It runs in the background "
                f"(about {max(estimate, 1):.0f} s or more on a busy machine); you can keep working meanwhile.")
    if st.button("Compute per-group averages", key=f"explain_subgroup_start{suffix}", icon=":material/play_arrow:"):
        try:
            jobs.submit(ws, views.SUBGROUP_KIND, f"Explain {model} by {attribute} ({word})", config,
                        study_id=study["id"], actor=access.reviewer())
        except InputError as error:
            show_input_error(error)
            return
        st.rerun()


def _subgroup_progress(ws: Workspace, job_id: str, suffix: str = "") -> None:
    run = ws.get_run(job_id)
    if run["status"] not in ("queued", "running"):
        redraw_page()  # finished: redraw the page with the result
    progress = run.get("progress") or {}
    if run["status"] == "queued":
        st.progress(0.0, text="Waiting for the background worker…")
    else:
        st.progress(float(progress.get("fraction") or 0.0),
                    text=f"Explaining rows in the background: {progress.get('step', 0)} of "
                         f"{progress.get('total_steps', '…')}")
    if st.button("Cancel", key=f"explain_subgroup_cancel{suffix}", icon=":material/stop:"):
        try:
            ws.request_cancel(job_id, actor=access.reviewer())
        except InputError as error:
            show_input_error(error)


def _subgroup_result(result: dict, suffix: str = "") -> None:
    st.plotly_chart(views.subgroup_chart(result), key=f"explain_subgroup_chart{suffix}", config=views.PLOTLY_CONFIG)
    clear = [d for d in result["differences"] if d["clear"]]
    if clear:
        top = clear[0]
        st.markdown(f"Largest clear difference: the model leans more on **{md(top['feature'])}** for "
                    f"**{md(top['group_a'] if top['difference'] > 0 else top['group_b'])}** "
                    f"(difference {abs(top['difference']):.3f} in its average weight, sign ignored).")
    else:
        st.markdown("No feature's average weight differs clearly between the groups (every 95% interval covers 0).")
    st.dataframe(views.differences_table(result), hide_index=True, key=f"explain_differences_table{suffix}")
    if result.get("explainer", LIME) == LIME:
        how = f"the size of its LIME weight ({result['num_samples']:,} samples each)"
    else:
        how = "the size of its SHAP value"
    st.caption(f"How strongly the model leans on each feature: {how}, whether it pushes up or down, averaged over "
               f"up to {result['rows_per_group']} test rows per group, with 95% bootstrap intervals over rows.")


def rates_section(ctx: RunContext, root: str, run_id: str) -> None:
    with_proxies = proxies_toggle(ctx, "Also change the proxies", "explain_rates_proxies")
    result = views.rates(root, run_id, with_proxies)
    table = views.rates_table(result)
    st.dataframe(table, hide_index=True, key="explain_rates_table")
    st.caption(f"Share of each group's test rows whose decision changes when only the attribute"
               + (" (and its proxies)" if with_proxies else "")
               + " is set to another group's value (any other group). 0% means the model's decisions never depend "
                 "on it alone; it says nothing about proxies unless they are changed too.")
    st.download_button("Download flip rates (CSV, exact values)", csv_bytes(_rates_frame(result)),
                       file_name=f"flip-rates-{run_id}.csv", mime="text/csv", key="explain_rates_download",
                       icon=":material/download:")


def _rates_frame(result: dict) -> pd.DataFrame:
    frame = pd.DataFrame(result["rates"]).drop(columns=["by_target"], errors="ignore")
    return frame.assign(with_proxies=result["with_proxies"])


def render() -> None:
    st.title("Explain")
    st.markdown("Why did a model decide as it did for one person, and would the decision change for someone of "
                "another group? Pick a person from the test rows, see which features pushed the decision (LIME, SHAP "
                "or both, and where they disagree), "
                "flip the sensitive attribute, and compare what models lean on for each group.")
    ws = state.workspace()
    picked = runs.current_run(ws)
    if picked is None:
        return
    study, run, res = picked
    if res.view.kind == PREDICTIONS_STUDY:
        st.info("Explanations need the model itself: this run audited uploaded predictions only, so there is no "
                "model to ask what it would decide for another input. To explain a model, upload its file (skops or "
                "ONNX) with the table on the Data page.", icon=":material/info:")
        return
    ctx = views.context(ws, run["id"])
    if ctx is None:
        return
    root, run_id = str(ws.root), run["id"]
    state.keep_option("explain_model", ctx.model_names, ctx.default_model)
    model = st.selectbox("Model", ctx.model_names, key="explain_model", format_func=lambda m: model_label(ctx, m),
                         help=code_names(ctx))
    for flagged in flagged_models(ctx.report, [model]):  # no better than chance: what it leans on means little
        st.warning(md(flagged["text"]), icon=":material/warning:")
    try:
        st.header("1. Find a person", divider="gray")
        table = views.rows_table(ctx, model)
        matching = views.filter_rows(ctx, table)
        st.caption(f"{len(matching):,} of {len(table):,} test rows match.")
        row = None
        if matching.empty:
            st.info("No test row matches these filters.", icon=":material/filter_alt_off:")
        else:
            records = {int(r["row_id"]): r for r in matching.head(2000).to_dict("records")}
            state.keep_option("explain_row", list(records), next(iter(records)))
            row = st.selectbox("Row", list(records), key="explain_row",
                               format_func=lambda r: views.row_label(ctx, records[r]))
        num_samples, seed = NUM_SAMPLES, int(st.session_state.get("explain_seed", 0))
        explainer = explainer_choice()
        if row is not None:
            st.header("2. Why this decision", divider="gray")
            num_samples, seed = explanation_section(ctx, root, run_id, model, row, explainer)
            st.header("3. Would it change in another group?", divider="gray")
            flip_section(ctx, root, run_id, model, row, explainer, num_samples, seed)
            st.header("4. Two models side by side", divider="gray")
            comparison_section(ctx, root, run_id, model, row, num_samples, seed)
        st.header("5. What the model leans on, per group", divider="gray")
        subgroup_section(ws, study, ctx, run_id, model, seed, explainer)
        st.header("6. Flip rate per group", divider="gray")
        rates_section(ctx, root, run_id)
    except InputError as error:
        show_input_error(error)


render()
