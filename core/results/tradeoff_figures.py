"""The trade-off's figures, one build for the Compare page and the HTML report (core.results.tradeoff
gives their numbers):

    tradeoff_figure(points, gap_title, lower_is_better)   accuracy against the gap, every model, error bars
                                                           on both axes, each mitigation joined to its base,
                                                           the frontier dashed
    sweep_figure(curves, gap_title)                        the gap and the accuracy against the swept parameter
    tradeoff_divs(report, attribute, gap)                  both as the report's self-contained divs (None without
                                                           mitigated models)
    report_section(report, attribute, gap)                 those divs and the sentences, for the HTML report
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.subplots import make_subplots

from core.results.figures import _axis, _fig_html, _layout
from core.results.palette import model_colours
from core.results.tradeoff import mitigation_findings, sweep_curves, tradeoff_points
from core.results.wording import floor_words
from core.vocabulary import GAP_NAMES, HIGHER_IS_BETTER


def _bars(values: pd.Series, low: pd.Series, high: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Error-bar lengths above and below each value (0 where the interval is missing)."""
    values, low, high = (np.asarray(v, dtype=float) for v in (values, low, high))
    return np.nan_to_num(np.maximum(high - values, 0)), np.nan_to_num(np.maximum(values - low, 0))


def tradeoff_figure(points: pd.DataFrame, gap_title: str, lower_is_better: bool) -> go.Figure:
    """One marker per model (a diamond for a mitigation, open when flagged), its replicate-aware
    intervals as error bars, a thin line from each mitigation to its base, the frontier dashed."""
    colours = model_colours(list(points["model"]))
    figure = go.Figure()
    where = points.set_index("model")
    for _, row in points[points["base"].notna()].iterrows():  # what the mitigation moved, from its base
        if row["base"] in where.index:
            base = where.loc[row["base"]]
            figure.add_trace(go.Scatter(x=[base["accuracy"], row["accuracy"]], y=[base["gap"], row["gap"]],
                                        mode="lines", line={"color": "#CBD2D9", "width": 1}, hoverinfo="skip",
                                        showlegend=False))
    for _, row in points.iterrows():
        x_plus, x_minus = _bars(pd.Series([row["accuracy"]]), pd.Series([row["accuracy_low"]]),
                                pd.Series([row["accuracy_high"]]))
        y_plus, y_minus = _bars(pd.Series([row["gap"]]), pd.Series([row["gap_low"]]), pd.Series([row["gap_high"]]))
        colour = colours[row["model"]]
        symbol = ("diamond" if isinstance(row["mitigation"], str) else "circle") + ("-open" if row["flagged"] else "")
        figure.add_trace(go.Scatter(
            x=[row["accuracy"]], y=[row["gap"]], mode="markers", name=row["label"],
            marker={"size": 15 if row["frontier"] else 11, "color": colour, "symbol": symbol,
                    "line": {"width": 2 if row["frontier"] else 0, "color": "#1f2933"}},
            error_x={"type": "data", "array": x_plus, "arrayminus": x_minus, "thickness": 1, "color": colour},
            error_y={"type": "data", "array": y_plus, "arrayminus": y_minus, "thickness": 1, "color": colour},
            hovertemplate=(f"<b>{row['label']}</b> ({row['model']})<br>accuracy %{{x:.3f}} "
                           f"[{row['accuracy_low']:.3f}, {row['accuracy_high']:.3f}]<br>{gap_title} %{{y:.3f}} "
                           f"[{row['gap_low']:.3f}, {row['gap_high']:.3f}]<br>{int(row['n_replicates'])} "
                           "replicate(s)<extra></extra>")))
    front = points[points["frontier"]].sort_values("accuracy")
    if len(front) > 1:
        figure.add_trace(go.Scatter(x=front["accuracy"], y=front["gap"], mode="lines", name="best trade-offs",
                                    line={"color": "#9CA3AF", "dash": "dash"}, hoverinfo="skip"))
    arrow = "lower is better" if lower_is_better else "higher is better"
    figure.update_layout(**_layout(legend={"orientation": "h", "y": -0.25}, meta={"chart": "mitigation_tradeoff"}),
                         title=f"Accuracy against the {gap_title}", height=460,
                         xaxis=_axis(title="accuracy (higher is better)"),
                         yaxis=_axis(title=f"{gap_title} ({arrow})"))
    return figure


def sweep_figure(curves: pd.DataFrame, gap_title: str) -> go.Figure:
    """Left: the gap against the swept value; right: the accuracy; one line per curve, intervals as bars."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=(gap_title, "accuracy"))
    colours = model_colours(list(dict.fromkeys(curves["curve"])))
    for curve, rows in curves.groupby("curve", sort=False):
        for column, (value, low, high) in enumerate((("gap", "gap_low", "gap_high"),
                                                     ("accuracy", "accuracy_low", "accuracy_high")), start=1):
            plus, minus = _bars(rows[value], rows[low], rows[high])
            figure.add_trace(go.Scatter(
                x=rows["value"], y=rows[value], mode="lines+markers", name=curve, showlegend=column == 1,
                legendgroup=curve, line={"color": colours[curve]},
                error_y={"type": "data", "array": plus, "arrayminus": minus, "thickness": 1},
                hovertemplate=f"{curve}<br>{rows['parameter'].iloc[0]} %{{x:g}}: %{{y:.3f}}<extra></extra>"),
                row=1, col=column)
    parameter = ", ".join(dict.fromkeys(curves["parameter"]))
    figure.update_layout(**_layout(legend={"orientation": "h", "y": -0.25}, meta={"chart": "mitigation_sweep"}),
                         height=380, title=f"Sweeps: what each value of {parameter} gives")
    figure.update_xaxes(**_axis(title=parameter, type="log"))
    figure.update_yaxes(**_axis())
    return figure


def tradeoff_divs(report: Mapping, attribute: str, gap: str) -> dict[str, Markup] | None:
    """The report's trade-off and sweep figures as divs; None when the run has no mitigated model."""
    if not any(entry.get("mitigation") for entry in report.get("models", [])):
        return None
    title = f"{attribute} {GAP_NAMES[gap].lower()}"
    divs = {"tradeoff": _fig_html(tradeoff_figure(tradeoff_points(report, attribute, gap), title,
                                                  gap not in HIGHER_IS_BETTER), "fig-mitigation-tradeoff", 460)}
    curves = sweep_curves(report, attribute, gap)
    if not curves.empty:
        divs["sweep"] = _fig_html(sweep_figure(curves, title), "fig-mitigation-sweep", 380)
    return divs


def report_section(report: Mapping, attribute: str, gap: str) -> dict | None:
    """The HTML report's trade-off section (core.results.report): the figures, one sentence per mitigated
    model and the floor's rule; None when the run has no mitigated model."""
    divs = tradeoff_divs(report, attribute, gap)
    if divs is None:
        return None
    findings = mitigation_findings(report, attribute, gap)
    return {"attribute": attribute, "gap_name": GAP_NAMES[gap].lower(), "figures": divs,
            "sentences": [{"text": f["sentence"], "fairer": f["fairer"]} for f in findings], "floor": floor_words()}
