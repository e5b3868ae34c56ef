"""Plotly figures of a run's results: loss curves, UMAP maps, gap bars, Pareto views, curves over
label fractions. Each takes what core.results.tables returned and draws it; none computes a metric.

Colours: one per model, the same on every page and in the HTML report (Okabe-Ito, colour-blind
safe); the supervised baseline is always dark grey.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.results.formatting import fmt_num
from core.results.palette import MODEL_PALETTE, model_colours  # one colour per model, the same as in the report
from dashboard.components.charts import PLOTLY_CONFIG

GROUP_PALETTE = ("#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#E6AB02", "#A6761D", "#1F78B4",
                 "#B15928", "#6A3D9A", "#999999", "#17BECF")
ERROR_COLOURS = {"correct": "#9CA3AF", "false positive": "#D55E00", "false negative": "#0072B2"}
LAYOUT = {"plot_bgcolor": "white", "font": {"size": 13}, "margin": {"l": 10, "r": 10, "t": 48, "b": 10}}
__all__ = ["PLOTLY_CONFIG", "model_colours", "loss_chart", "umap_chart", "gap_chart", "pareto_chart",
           "fraction_chart"]


def _grid(figure: go.Figure) -> go.Figure:
    figure.update_xaxes(showgrid=True, gridcolor="#E5E7EB", zeroline=False)
    figure.update_yaxes(showgrid=True, gridcolor="#E5E7EB", zeroline=False)
    return figure


def loss_chart(curves: dict[str, pd.DataFrame]) -> go.Figure:
    """Pretraining loss against (fractional) epoch, one line per training replicate (they train
    side by side); validation loss as dotted points at epochs' ends."""
    pretrain = curves["pretrain"]
    replicates = sorted(pretrain["replicate"].unique()) if "replicate" in pretrain else [0]
    figure = go.Figure()
    for replicate in replicates:
        rows = pretrain[pretrain["replicate"] == replicate] if "replicate" in pretrain else pretrain
        label = f" (replicate {replicate + 1})" if len(replicates) > 1 else ""
        colour = MODEL_PALETTE[replicate % len(MODEL_PALETTE)]
        figure.add_trace(go.Scatter(x=rows["epoch"], y=rows["loss"], mode="lines", name=f"training loss{label}",
                                    line={"color": colour}))
        validation = rows.dropna(subset=["val_loss"])
        if len(validation):
            figure.add_trace(go.Scatter(x=validation["epoch"], y=validation["val_loss"], mode="lines+markers",
                                        name=f"validation loss{label}", line={"color": colour, "dash": "dot"}))
    figure.update_layout(**LAYOUT, height=260, title="Pretraining loss (lower is better)",
                         legend={"orientation": "h", "y": -0.25}, xaxis_title="epoch", yaxis_title="loss")
    return _grid(figure)


def umap_chart(points: pd.DataFrame, colour_by: str, colour_title: str, title: str, hover_columns: list[str],
               categories: list[str]) -> go.Figure:
    """WebGL scatter of one model's 2-D map, one trace per category of `colour_by` (so the legend
    toggles groups). Hover: the row's groups, outcome, prediction and score (customdata)."""
    figure = go.Figure()
    palette = ERROR_COLOURS if colour_by == "error" else {
        c: GROUP_PALETTE[i % len(GROUP_PALETTE)] for i, c in enumerate(categories)}
    # One hover string per point, as a fixed-width numpy string array: st.plotly_chart deep-copies
    # the figure on every rerun, and an object array of 5 fields per point made that 5x slower.
    hover = pd.Series("", index=points.index)
    for i, column in enumerate(hover_columns):
        cells = points[column].map("{:.3f}".format) if column == "score" else points[column].astype(str)
        hover = hover + ("<br>" if i else "") + f"{column}: " + cells
    values = points[colour_by].astype(str).to_numpy()
    for category in categories:
        chosen = values == category
        if not chosen.any():
            continue
        rows = points[chosen]
        figure.add_trace(go.Scattergl(x=rows["umap_x"].to_numpy(), y=rows["umap_y"].to_numpy(), mode="markers",
                                      name=category,
                                      marker={"size": 5, "opacity": 0.75, "color": palette.get(category)},
                                      hovertext=np.asarray(hover[chosen].tolist(), dtype=str),
                                      hovertemplate="%{hovertext}<extra></extra>"))
    figure.update_layout(**LAYOUT, height=460, title=title, legend={"title": {"text": colour_title},
                                                                    "orientation": "h", "y": -0.05},
                         meta={"colour_by": colour_by})
    figure.update_xaxes(showticklabels=False, title=None, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, title=None, showgrid=False, zeroline=False, scaleanchor=None)
    return figure


def _error_arrays(values: pd.Series, lo: pd.Series, hi: pd.Series) -> tuple[list, list]:
    plus = [(h - v) if not (math.isnan(h) or math.isnan(v)) else 0 for v, h in zip(values, hi, strict=True)]
    minus = [(v - low) if not (math.isnan(low) or math.isnan(v)) else 0 for v, low in zip(values, lo, strict=True)]
    return plus, minus


def gap_chart(table: pd.DataFrame, gap_title: str, confidence: float) -> go.Figure:
    """One bar per model with its interval as an error bar; the largest gap outlined."""
    colours = model_colours(list(table["model"]))
    plus, minus = _error_arrays(table["value"], table["lo"], table["hi"])
    shown = table["value"].fillna(0)
    text = [fmt_num(v) for v in table["value"]]
    figure = go.Figure(go.Bar(
        x=table["model"], y=shown, marker_color=[colours[m] for m in table["model"]], text=text,
        textposition="inside", insidetextanchor="start", textfont={"color": "white"},
        error_y={"type": "data", "array": plus, "arrayminus": minus, "color": "#374151", "thickness": 1.5},
        hovertemplate="%{x}: %{text}<extra></extra>"))
    top = np.nanmax(np.concatenate([table["hi"].to_numpy(float), table["value"].to_numpy(float), [0.05]]))
    figure.update_layout(**LAYOUT, height=320, showlegend=False, bargap=0.45,
                         title=f"{gap_title}, with {confidence:.0%} intervals",
                         yaxis={"range": [0, top * 1.2], "title": gap_title}, meta={"chart": "gap"})
    return _grid(figure)


#: Marker fills of the runs on one chart: the first run filled, the next ones open (plotly symbol suffixes).
RUN_MARKER_FILLS = ("", "-open", "-open-dot", "-dot")


def pareto_chart(table: pd.DataFrame, y: str, y_title: str, front: str, lower_is_better: bool) -> go.Figure:
    """Accuracy (x) against `y`, one marker per model of each run; the best trade-offs (the Pareto
    front) joined by a line and drawn as diamonds. Error bars: the intervals of both numbers.
    With several runs each run's models get their own name ("run: model"), colour and marker
    fill (filled, then open and larger), so markers on the same spot stay visible."""
    runs = list(dict.fromkeys(table["run_id"])) if "run_id" in table else [None]
    several = len(runs) > 1
    keys = [f"{r}|{m}" for r, m in zip(table.get("run_id", [None] * len(table)), table["model"], strict=True)]
    colours = model_colours(list(dict.fromkeys(keys if several else table["model"])))
    labels = table["label"] if "label" in table else table["model"]
    figure = go.Figure()
    frame = table.assign(_key=keys if several else list(table["model"]), _label=list(labels))
    for key, rows in frame.groupby("_key", sort=False):
        run_index = runs.index(rows["run_id"].iloc[0]) if several else 0
        fill = RUN_MARKER_FILLS[run_index % len(RUN_MARKER_FILLS)]
        name = f"{rows['run_name'].iloc[0]}: {rows['_label'].iloc[0]}" if several else rows["_label"].iloc[0]
        colour = colours[key]
        xp, xm = _error_arrays(rows["accuracy"], rows["accuracy_lo"], rows["accuracy_hi"])
        yp, ym = _error_arrays(rows[y], rows[f"{y}_lo"], rows[f"{y}_hi"])
        figure.add_trace(go.Scatter(
            x=rows["accuracy"], y=rows[y], mode="markers", name=name,
            marker={"size": 13 + 4 * min(run_index, 1), "color": colour,
                    "symbol": [("diamond" if f else "circle") + fill for f in rows[front]],
                    "line": {"width": 2 if fill else 1, "color": colour if fill else "white"}},
            error_x={"type": "data", "array": xp, "arrayminus": xm, "thickness": 1, "color": colour},
            error_y={"type": "data", "array": yp, "arrayminus": ym, "thickness": 1, "color": colour},
            customdata=np.stack([rows["run_name"].astype(str), rows["label_fraction"] * 100,
                                 rows["model"].astype(str)], axis=1),
            hovertemplate=(f"<b>{name}</b> (%{{customdata[2]}})<br>%{{customdata[0]}} · %{{customdata[1]:.0f}}% "
                           f"labels<br>accuracy %{{x:.3f}}<br>{y_title} %{{y:.3f}}<extra></extra>")))
    on_front = table[table[front]].sort_values("accuracy")
    if len(on_front) > 1:
        figure.add_trace(go.Scatter(x=on_front["accuracy"], y=on_front[y], mode="lines", name="best trade-offs",
                                    line={"color": "#9CA3AF", "dash": "dash"}, hoverinfo="skip"))
    arrow = "lower is better" if lower_is_better else "higher is better"
    figure.update_layout(**LAYOUT, height=400, title=f"Accuracy against {y_title}",
                         xaxis_title="accuracy (higher is better)", yaxis_title=f"{y_title} ({arrow})",
                         legend={"orientation": "h", "y": -0.2}, meta={"chart": f"pareto_{y}"})
    return _grid(figure)


def fraction_chart(curves: pd.DataFrame, y_title: str, by_group: bool) -> go.Figure:
    """A metric against the share of labelled rows: one line per model (and per group)."""
    colours = model_colours(list(dict.fromkeys(curves["model"])))
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    groups = list(dict.fromkeys(curves["group"])) if by_group else [None]
    figure = go.Figure()
    for model, rows in curves.groupby("model", sort=False):
        for index, group in enumerate(groups):
            line = rows[rows["group"] == group] if by_group else rows
            if line.empty:
                continue
            plus, minus = _error_arrays(line["value"], line["lo"], line["hi"])
            name = f"{model} · {group}" if by_group else model
            figure.add_trace(go.Scatter(
                x=line["label_fraction"] * 100, y=line["value"], mode="lines+markers", name=name,
                line={"color": colours[model], "dash": dashes[index % len(dashes)]},
                error_y={"type": "data", "array": plus, "arrayminus": minus, "thickness": 1},
                hovertemplate=f"{name}<br>%{{x:g}}% labels: %{{y:.3f}}<extra></extra>"))
    figure.update_layout(**LAYOUT, height=420, title=f"{y_title} as the share of labelled rows grows",
                         xaxis={"title": "share of training rows with labels (%)", "type": "log"},
                         yaxis_title=y_title, legend={"orientation": "h", "y": -0.2}, meta={"chart": "fractions"})
    return _grid(figure)
