"""Explain page: cached core.explain calls, and the charts and tables they feed.

The run is picked with the shared picker (`components/runs.pick_run`), so the run chosen on
another result page stays chosen here. Caching: a run opened for explanations
(`core.explain.load_run`: study, models, LIME explainer) is shared by all sessions
(`st.cache_resource`, keyed by workspace and run id); explanations are `st.cache_data`, keyed by
run, model, row, num_samples and seed (SHAP's by run, model, row and seed). InputError is never
cached. The subgroup aggregate runs as a background job ("explain-subgroup") and this page polls
its progress.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import InputError
from core.explain import (RunContext, compare_models, explain_flip, explain_row, explain_row_shap,
                          explanations_agreement, flip_rates, flip_row, load_run, nearest_counterfactuals, proxies)
from core.explain.agreement import BOTH, LIME, SHAP
from core.explain.subgroup import RESULT_FILE
from core.results.formatting import fmt_num, fmt_pct
from core.vocabulary import NOT_AVAILABLE
from core.workspace.store import RunRecord, Workspace
from dashboard.components import state
from dashboard.components.format import md, words
from dashboard.components.messages import show_input_error

SUBGROUP_KIND = "explain-subgroup"
GREEN, RED, GREY = "#2E7D32", "#C62828", "#6B7280"
GROUP_COLOURS = ["#4C78A8", "#E8A33D", "#54A24B", "#B279A2", "#9D755D", "#72B7B2", "#FF9DA6", "#BAB0AC"]
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
ALL = "All"
#: The explainer choice in plain words (the page's "explain_explainer").
EXPLAINER_WORDS = {LIME: "LIME", SHAP: "SHAP", BOTH: "Both, side by side"}


# ----------------------------------------------------------------------------- cached calls
@st.cache_resource(show_spinner="Opening the run's models…", max_entries=8)
def _context(root: str, run_id: str) -> RunContext:
    return load_run(Path(root) / "runs" / run_id)


def context(ws: Workspace, run_id: str) -> RunContext | None:
    try:
        return _context(str(ws.root), run_id)
    except InputError as error:
        show_input_error(error)
        return None


@st.cache_data(show_spinner="Explaining the decision with LIME…", max_entries=256)
def explanation(root: str, run_id: str, model: str, row: int, num_samples: int, seed: int) -> dict:
    return explain_row(_context(root, run_id), row, model, num_samples=num_samples, seed=seed).to_dict()


@st.cache_data(show_spinner="Explaining the decision with SHAP…", max_entries=256)
def shap_explanation(root: str, run_id: str, model: str, row: int, seed: int) -> dict:
    return explain_row_shap(_context(root, run_id), row, model, seed=seed).to_dict()


@st.cache_data(show_spinner="Explaining the flipped row…", max_entries=128)
def flip_explanation(root: str, run_id: str, model: str, row: int, attribute: str, to: str, explainer: str,
                     with_proxies: bool, num_samples: int, seed: int) -> dict:
    return explain_flip(_context(root, run_id), row, model, attribute, to, explainer=explainer,
                        with_proxies=with_proxies, num_samples=num_samples, seed=seed)


@st.cache_data(show_spinner="Flipping the sensitive attributes…", max_entries=256)
def row_flips(root: str, run_id: str, model: str, row: int, with_proxies: bool) -> list[dict]:
    return flip_row(_context(root, run_id), row, model, with_proxies=with_proxies)


@st.cache_data(show_spinner="Looking for the nearest real person in another group…", max_entries=256)
def nearest(root: str, run_id: str, model: str, row: int) -> list[dict]:
    ctx = _context(root, run_id)
    return [entry for attribute in ctx.sensitive for entry in nearest_counterfactuals(ctx, row, attribute, model)[:1]]


@st.cache_data(show_spinner="Explaining the row with both models…", max_entries=128)
def comparison(root: str, run_id: str, row: int, model_a: str, model_b: str, num_samples: int, seed: int) -> dict:
    return compare_models(_context(root, run_id), row, [model_a, model_b], num_samples=num_samples, seed=seed)


def proxies_found(ctx: RunContext) -> bool:
    """Whether any sensitive attribute has a detected proxy among the model's features (core.explain.proxies,
    cached on the run's context), so the proxies toggles can say when there is nothing to change."""
    return any(proxies(ctx, attribute) for attribute in ctx.sensitive)


@st.cache_data(show_spinner="Computing flip rates over the test rows…", max_entries=32)
def rates(root: str, run_id: str, with_proxies: bool) -> dict:
    return flip_rates(_context(root, run_id), with_proxies=with_proxies)


# ----------------------------------------------------------------------------- rows
def decision_words(ctx: RunContext, prediction: int) -> str:
    """The table's own words: "Yes" or "No" (not "not Yes")."""
    return ctx.positive_label if prediction else ctx.negative_label


def rows_table(ctx: RunContext, model: str) -> pd.DataFrame:
    """Test rows with their groups, true outcome, the model's decision and probability."""
    p = ctx.predictions
    table = pd.DataFrame({"row_id": p["row_id"].astype(int).to_numpy()})
    for attribute in ctx.sensitive:
        table[attribute] = p[attribute].astype(str).to_numpy()
    table["outcome"] = p["y_true"].astype(int).to_numpy()
    table["decision"] = p[f"pred__{model}"].astype(int).to_numpy()
    table["probability"] = p[f"score__{model}"].astype(float).to_numpy()
    table["correct"] = table["outcome"] == table["decision"]
    return table


def filter_rows(ctx: RunContext, table: pd.DataFrame) -> pd.DataFrame:
    """Filters by group, outcome, decision and error, and a search by row id (widgets)."""
    positive = ctx.positive_label
    choices = {"outcome": [ALL, positive, ctx.negative_label], "decision": [ALL, positive, ctx.negative_label],
               "error": [ALL, "correct", "wrong", "false positive", "false negative"]}
    cells = st.columns(len(ctx.sensitive) + 3)
    mask = pd.Series(True, index=table.index)
    for cell, attribute in zip(cells, ctx.sensitive):
        options = [ALL] + sorted(table[attribute].unique().tolist())
        key = f"explain_filter_{attribute}"
        state.keep_option(key, options, ALL)
        value = cell.selectbox(attribute, options, key=key)
        if value != ALL:
            mask &= table[attribute] == value
    for cell, name in zip(cells[len(ctx.sensitive):], ("outcome", "decision", "error")):
        key = f"explain_filter_{name}"
        state.keep_option(key, choices[name], ALL)
        value = cell.selectbox({"outcome": "True outcome", "decision": "Model's decision",
                                "error": "Right or wrong"}[name], choices[name], key=key)
        if value == ALL:
            continue
        if name in ("outcome", "decision"):
            mask &= table[name] == int(value == positive)
        elif value in ("correct", "wrong"):
            mask &= table["correct"] == (value == "correct")
        else:
            mask &= (~table["correct"]) & (table["decision"] == int(value == "false positive"))
    search = st.text_input("Search by row id", key="explain_row_search", placeholder="e.g. 1024",
                           help="The row's position in the study's table (as in predictions.parquet).")
    if search.strip():
        try:
            wanted = int(search.strip())
        except ValueError:
            st.error(f"'{md(search.strip())}' is not a row id: give a whole number.", icon=":material/error:")
            return table.iloc[0:0]
        mask &= table["row_id"] == wanted
        if not (table["row_id"] == wanted).any():
            st.warning(f"Row {wanted} is not a test row of this run.", icon=":material/warning:")
    return table[mask]


def row_label(ctx: RunContext, record: dict) -> str:
    groups = " · ".join(str(record[a]) for a in ctx.sensitive)
    verdict = "right" if record["correct"] else "wrong"
    return (f"row {record['row_id']} · {groups} · decision {decision_words(ctx, record['decision'])} "
            f"({record['probability']:.0%}, {verdict})")


# ----------------------------------------------------------------------------- charts
def weight_chart(weights: list[dict], positive: str, top: int = 10, title: str = "",
                 name: str = "lime_weights") -> go.Figure:
    """Horizontal bars of LIME weights, green pushing towards `positive`, red away; error bars =
    the spread over repeats. `name`: the chart's meta name (SHAP's values are drawn the same way)."""
    shown = weights[:top][::-1]
    labels = [w["condition"] for w in shown]
    figure = go.Figure(go.Bar(
        y=labels, x=[w["weight"] for w in shown], orientation="h",
        marker_color=[GREEN if w["weight"] >= 0 else RED for w in shown],
        error_x={"type": "data", "array": [w.get("std", 0.0) for w in shown], "color": GREY, "thickness": 1},
        hovertext=[f"<b>{w['feature']}</b> = {w['value']}<br>weight {w['weight']:+.3f} ± {w.get('std', 0):.3f}"
                   for w in shown], hoverinfo="text"))
    figure.update_layout(height=90 + 30 * len(shown), margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                         title=title or None, plot_bgcolor="white", showlegend=False, font={"size": 13},
                         xaxis_title=f"change in the probability of {positive}", meta={"chart": name})
    figure.add_vline(x=0, line_color=GREY)
    figure.update_xaxes(showgrid=True, gridcolor="#E5E7EB", zeroline=False)
    figure.update_yaxes(automargin=True)
    return figure


def shap_chart(values: list[dict], positive: str, top: int = 10, title: str = "") -> go.Figure:
    """SHAP values drawn as LIME's weights are (green up, red down); a bar reads "feature = its value"."""
    shown = [{"feature": v["feature"], "value": v["feature_value"], "weight": v["value"], "std": 0.0,
              "condition": f"{v['feature']} = {'missing' if v['feature_value'] is None else v['feature_value']}"}
             for v in values]
    return weight_chart(shown, positive, top, title, name="shap_values")


def comparison_chart(table: list[dict], models: list[str], labels: list[str] | None = None,
                     top: int = 10) -> go.Figure:
    """Both models' LIME weights side by side; the legend shows `labels` (plain names), the hover the code names."""
    shown = table[:top][::-1]
    figure = go.Figure()
    for index, model in enumerate(models):
        figure.add_trace(go.Bar(y=[r["feature"] for r in shown], x=[r["weights"][model] for r in shown],
                                orientation="h", name=(labels or models)[index], hovertext=f"code name: {model}",
                                marker_color=GROUP_COLOURS[index]))
    figure.update_layout(barmode="group", height=130 + 44 * len(shown), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         plot_bgcolor="white", font={"size": 13},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
                         xaxis_title="push on the probability (LIME weight)", meta={"chart": "model_comparison"})
    figure.add_vline(x=0, line_color=GREY)
    figure.update_yaxes(automargin=True)
    return figure


def subgroup_chart(result: dict, top: int = 10) -> go.Figure:
    first = result["groups"][0]["importance"]
    peak = {f: 0.0 for f in result["features"]}
    for group in result["groups"]:
        for item in group["importance"]:
            peak[item["feature"]] = max(peak[item["feature"]], item["mean_abs_weight"] or 0.0)
    features = sorted(peak, key=lambda f: -peak[f])[:top][::-1] if first else []
    figure = go.Figure()
    for index, group in enumerate(result["groups"]):
        by = {i["feature"]: i for i in group["importance"]}
        means = [by[f]["mean_abs_weight"] or 0.0 for f in features]
        low = [m - (by[f]["ci"][0] if by[f]["ci"] else m) for f, m in zip(features, means)]
        high = [(by[f]["ci"][1] if by[f]["ci"] else m) - m for f, m in zip(features, means)]
        figure.add_trace(go.Bar(y=features, x=means, orientation="h", name=f"{group['group']} ({group['n_rows']} rows)",
                                marker_color=GROUP_COLOURS[index % len(GROUP_COLOURS)],
                                error_x={"type": "data", "symmetric": False, "array": high, "arrayminus": low,
                                         "color": GREY, "thickness": 1}))
    figure.update_layout(barmode="group", height=140 + 26 * len(features) * max(1, len(result["groups"])) // 2,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, plot_bgcolor="white", font={"size": 13},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
                         xaxis_title="how strongly the model leans on it: average size of its weight "
                                     "(lines: 95% interval)",
                         meta={"chart": "subgroup"})
    figure.update_yaxes(automargin=True)
    return figure


# ----------------------------------------------------------------------------- sections
def stability_message(stability: dict | None) -> None:
    if not stability:
        return
    n = stability["repeats"]
    same = round(stability["agreement"] * n)
    if not stability["unstable"]:
        st.success(f"**Stable.** LIME was run {n} times with different random samples; the top features were the "
                   f"same every time ({md(words(stability['top_features']))}).", icon=":material/check_circle:")
        return
    sometimes = words(stability["sometimes_top"])
    st.warning(f"**Unstable.** LIME was run {n} times with different random samples and the top features changed: "
               f"the same as the first run in {same} of {n}. Always among the top: "
               f"{md(words(stability['always_top'])) or 'none'}; only sometimes: {md(sometimes)}. Read the order of "
               "the smaller weights with care (more samples may settle it).", icon=":material/warning:")


def weights_table(weights: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"Feature": [w["feature"] for w in weights],
                         "This row's value": [("missing" if w["value"] is None else str(w["value"])) for w in weights],
                         "LIME condition": [w["condition"] for w in weights],
                         "Weight": [round(w["weight"], 4) for w in weights],
                         "Spread over repeats (std)": [round(w["std"], 4) for w in weights]})


def shap_table(values: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"Feature": [v["feature"] for v in values],
                         "This row's value": ["missing" if v["feature_value"] is None else str(v["feature_value"])
                                              for v in values],
                         "SHAP value": [round(v["value"], 4) for v in values]})


def flip_table(ctx: RunContext, flips: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "Attribute": [f["attribute"] for f in flips],
        "From → to": [f"{f['from']} → {f['to']}" for f in flips],
        "Set to": ["(not a model input)" if not f["attribute_is_feature"] else str(f["value"]) for f in flips],
        "Also set (proxies)": [", ".join(f"{k} = {v}" for k, v in (f.get("proxies") or {}).items()) for f in flips],
        "Probability before": [fmt_pct(f["probability_before"]) for f in flips],
        "Probability after": [fmt_pct(f["probability"]) for f in flips],
        "Decision after": [decision_words(ctx, f["prediction"]) for f in flips],
        "Decision changes": ["yes" if f["changed"] else "no" for f in flips]})


def rates_table(result: dict) -> pd.DataFrame:
    frame = pd.DataFrame(result["rates"])
    if frame.empty:
        return frame
    wide = frame.pivot_table(index=["attribute", "group", "n"], columns="model", values="flip_rate", sort=False)
    wide = wide.map(fmt_pct).reset_index()
    wide.columns.name = None
    return wide.rename(columns={"attribute": "Attribute", "group": "Group", "n": "Test rows"})


def differences_table(result: dict, top: int = 10) -> pd.DataFrame:
    rows = result["differences"][:top]
    return pd.DataFrame({
        "Feature": [d["feature"] for d in rows],
        "Groups": [f"{d['group_a']} − {d['group_b']}" for d in rows],
        "Difference in average weight (size)": [round(d["difference"], 4) for d in rows],
        "95% interval": [NOT_AVAILABLE if d["ci"] is None else f"{d['ci'][0]:+.4f} to {d['ci'][1]:+.4f}"
                         for d in rows],
        "Holm-adjusted p": [NOT_AVAILABLE if d.get("p_adjusted") is None else f"{d['p_adjusted']:.3f}"
                            for d in rows],
        # decided on the p-value Holm-adjusted over every difference of the run (core.explain.subgroup)
        "Clear difference": ["yes" if d["clear"] else "no" for d in rows]})


def subgroup_runs(ws: Workspace, study_id: str, config: dict) -> list[RunRecord]:
    """Earlier subgroup jobs of this study with exactly this configuration, newest first."""
    runs = [r for r in ws.list_runs(study_id=study_id, kind=SUBGROUP_KIND) if r.get("config") == config]
    return sorted(runs, key=lambda r: r.get("created_at") or "", reverse=True)


def subgroup_result(ws: Workspace, run_id: str) -> dict | None:
    path = ws.run_dir(run_id) / RESULT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


# ----------------------------------------------------------------------------- LIME and SHAP together
REASON_WORDS = {"sign": "they push in opposite directions", "top_lime_only": "only LIME counts it among the top",
                "top_shap_only": "only SHAP counts it among the top"}


def agreement_of(lime_result: dict, shap_result: dict) -> dict:
    return explanations_agreement(lime_result["weights"], shap_result["values"])


def agreement_sentence(result: dict) -> str:
    """The agreement of LIME and SHAP in one plain sentence (Spearman's rank correlation over the
    features either counts among its top 5: 0.7 and above "largely agree", below 0.3 "disagree")."""
    n, rho = len(result["features"]), result["spearman"]
    if rho is None:
        return (f"LIME and SHAP both single out {md(words(result['features']))}: there is no order to compare."
                if n == 1 else "LIME and SHAP find no feature that clearly matters.")
    verdict = ("largely agree on" if rho >= 0.7 else "partly agree on" if rho >= 0.3 else "disagree about")
    return (f"LIME and SHAP {verdict} which features matter most for this decision (rank correlation "
            f"{fmt_num(rho)} over the {n} features either counts among its top {result['k']}; 1 is the same order).")


def disagreement_lines(result: dict) -> list[str]:
    return [f"- **{md(d['feature'])}**: {REASON_WORDS[d['reason']]} (LIME {d['lime']:+.3f}, SHAP {d['shap']:+.3f})"
            for d in result["disagreements"]]


def flip_explanation_table(result: dict) -> pd.DataFrame:
    """Per feature: the value before → after the flip and each explainer's attribution before and after."""
    frame = {"Feature": [e["feature"] for e in result["table"]],
             "Value (before → after)": [str(e["value"]) if e["value"] == e["flipped_value"]
                                        else f"{e['value']} → {e['flipped_value']}" for e in result["table"]]}
    for name in result["explainers"]:
        word = EXPLAINER_WORDS[name]
        frame[f"{word} before"] = [round(e[f"{name}_original"], 4) for e in result["table"]]
        frame[f"{word} after"] = [round(e[f"{name}_flipped"], 4) for e in result["table"]]
    return pd.DataFrame(frame)
