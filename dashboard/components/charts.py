"""Plotly figures for the dashboard. Each function takes what core returned and draws it."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.results.formatting import fmt_int, fmt_pct

BLUE = "#4C78A8"
AMBER = "#E8A33D"
GREY = "#6B7280"
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def group_chart(attribute: str, groups: list[dict], overall_base_rate: float | None, outcome: str) -> go.Figure:
    """Rows and base rate per group of one sensitive attribute, side by side.

    `groups` is `profile_groups(...)[attribute]` (largest group first); small groups (fewer
    rows than the study's minimum group size) are drawn in amber and labelled "small".
    `outcome` names the positive outcome, e.g. "income = >50K".
    """
    names = [g["group"] for g in groups]
    sizes = [g["n"] for g in groups]
    rates = [g["base_rate"] for g in groups]
    colours = [AMBER if g["small"] else BLUE for g in groups]
    size_text = [f"{fmt_int(g['n'])} (small)" if g["small"] else fmt_int(g["n"]) for g in groups]
    hover = [f"<b>{g['group']}</b><br>{fmt_int(g['n'])} rows ({fmt_pct(g['share'])} of all)<br>"
             f"base rate {fmt_pct(g['base_rate'])}<br>missing values {fmt_pct(g['missing_rate'])}"
             + ("<br><i>small group: uncertain metrics</i>" if g["small"] else "") for g in groups]

    rate_title = f"Base rate: share with {outcome}"
    if overall_base_rate is not None:
        rate_title += f"<br><sup>dashed line: all rows, {fmt_pct(overall_base_rate, 0)}</sup>"
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.05,
                           subplot_titles=("Rows per group", rate_title))
    figure.add_trace(go.Bar(y=names, x=sizes, orientation="h", marker_color=colours, text=size_text,
                            textposition="auto", hovertext=hover, hoverinfo="text", name="rows"), row=1, col=1)
    figure.add_trace(go.Bar(y=names, x=[r if r is not None else 0 for r in rates], orientation="h",
                            marker_color=colours, text=[fmt_pct(r, 0) for r in rates], textposition="auto",
                            hovertext=hover, hoverinfo="text", name="base rate"), row=1, col=2)
    if overall_base_rate is not None:
        figure.add_vline(x=overall_base_rate, line_dash="dash", line_color=GREY, row=1, col=2)
    top_rate = max([r for r in rates if r is not None] + [overall_base_rate or 0, 0.05])
    figure.update_xaxes(row=1, col=2, range=[0, min(1.0, top_rate * 1.25)], tickformat=".0%")
    figure.update_xaxes(row=1, col=1, tickformat="~s", range=[0, max(sizes + [1]) * 1.15])
    figure.update_yaxes(autorange="reversed", automargin=True)
    figure.update_layout(height=110 + 34 * len(groups), margin={"l": 10, "r": 10, "t": 56, "b": 10},
                         showlegend=False, bargap=0.25, plot_bgcolor="white", font={"size": 13},
                         meta={"attribute": attribute})
    figure.update_xaxes(showgrid=True, gridcolor="#E5E7EB")
    return figure
