"""The stakeholder report's figures: plotly charts as self-contained `<div>`s (no plotly.js: the
report inlines it once).

    gap_figure(view, partition, colours, div_id)             headline gaps of every model, CI error bars
    umap_figure(view, embeddings, attribute, colours, div_id) small multiples of the UMAP maps
    leakage_figure(view, colours, div_id)                     probe balanced accuracy vs raw features and chance
    loss_figure(view, div_id)                                 pretraining loss per epoch
    subsample_embeddings(embeddings, max_points, seed)        the same rows in every map

`view` is the report.json read through core.results.folder.ReportView. Undefined values are drawn
as "n/a", never as 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.subplots import make_subplots

from core.results.formatting import ci_label, fmt_ci, fmt_num, is_number
from core.results.palette import MODEL_PALETTE, group_colour
from core.results.folder import ReportView
from core.vocabulary import GAP_NAMES, HEADLINE_GAPS, NOT_AVAILABLE, SUPERVISED

UMAP_MAX_POINTS = 5000
FONT = ('-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", '
        '"Liberation Sans", sans-serif')
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def _layout(**extra: Any) -> dict:
    base = {"template": "none", "font": {"family": FONT, "size": 12, "color": "#1f2933"},
            "paper_bgcolor": "white", "plot_bgcolor": "white", "margin": {"l": 56, "r": 16, "t": 40, "b": 56},
            "hoverlabel": {"font": {"family": FONT}}}
    base.update(extra)
    return base


def _axis(**extra: Any) -> dict:
    return {"gridcolor": "#e4e7eb", "zerolinecolor": "#9aa5b1", "linecolor": "#9aa5b1", "ticks": "", **extra}


def _fig_html(fig, div_id: str, height: int) -> Markup:
    fig.update_layout(height=height)
    html = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG,
                       default_height=f"{height}px", default_width="100%")
    return Markup(html)


def _error_bars(values: list, cis: list) -> tuple[list, list]:
    plus, minus = [], []
    for value, ci in zip(values, cis):
        ok = is_number(value) and ci and all(is_number(c) for c in ci)
        plus.append(max(ci[1] - value, 0.0) if ok else 0.0)
        minus.append(max(value - ci[0], 0.0) if ok else 0.0)
    return plus, minus


def gap_figure(view: ReportView, partition: str, colours: dict[str, str], div_id: str) -> Markup:
    """Equalized-odds and demographic-parity gap of every model for one partition, with CI error bars."""
    names = view.model_names
    label = ci_label(view.confidence)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[GAP_NAMES[g] for g in HEADLINE_GAPS])
    top = 0.1
    for col, gap in enumerate(HEADLINE_GAPS, start=1):
        values = [m.gaps(partition).get(gap) if is_number(m.gaps(partition).get(gap)) else None for m in view.models]
        cis = [m.gap_ci(partition, gap) for m in view.models]
        plus, minus = _error_bars(values, cis)
        top = max([top] + [v + p for v, p in zip(values, plus) if v is not None])
        hover = [f"{n}<br>{GAP_NAMES[gap].lower()}: {fmt_num(v)}<br>{label} {fmt_ci(c)}"
                 for n, v, c in zip(names, values, cis)]
        fig.add_trace(go.Bar(x=names, y=values, marker={"color": [colours[n] for n in names]},
                             error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                                      "color": "#323f4b", "thickness": 1.2, "width": 5},
                             hovertext=hover, hoverinfo="text", showlegend=False), row=1, col=col)
        for name, value in zip(names, values):
            if value is None:
                fig.add_annotation(x=name, y=0, text=NOT_AVAILABLE, showarrow=False, yshift=10, row=1, col=col,
                                   font={"color": "#7b8794"})
    fig.update_yaxes(_axis(rangemode="tozero", range=[0, min(1.05, top * 1.1)], title_text="gap (0 = equal)"),
                     row=1, col=1)
    fig.update_yaxes(_axis(rangemode="tozero"), row=1, col=2)
    fig.update_xaxes(_axis(tickangle=-35))
    fig.update_layout(_layout(bargap=0.35))
    return _fig_html(fig, div_id, 360)


def subsample_embeddings(embeddings: pd.DataFrame, max_points: int = UMAP_MAX_POINTS, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """The same random rows (by row_id) in every model's map, at most `max_points` per map;
    returns (subsample, number of distinct rows before subsampling)."""
    row_ids = np.unique(embeddings["row_id"].to_numpy())
    if len(row_ids) <= max_points:
        return embeddings, len(row_ids)
    keep = np.random.default_rng(seed).choice(row_ids, size=max_points, replace=False)
    return embeddings[embeddings["row_id"].isin(keep)], len(row_ids)


def umap_figure(view: ReportView, embeddings: pd.DataFrame, attribute: str | None, colours: dict[str, str],
                div_id: str) -> Markup:
    """Small multiples of the UMAP maps (supervised first), points coloured by group of `attribute`."""
    present = list(dict.fromkeys(embeddings["model"].astype(str)))
    order = [name for name in view.model_names if name in present]
    order = [n for n in order if n == SUPERVISED] + [n for n in order if n != SUPERVISED]
    order += [n for n in present if n not in order]
    cols = min(3, len(order))
    rows = math.ceil(len(order) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=order, horizontal_spacing=0.03,
                        vertical_spacing=0.08)
    labels = (embeddings[attribute].astype(str) if attribute and attribute in embeddings
              else pd.Series("all test rows", index=embeddings.index))
    groups = sorted(labels.unique())
    for index, name in enumerate(order):
        row, col = divmod(index, cols)
        mine = embeddings["model"].astype(str) == name
        for g_index, group in enumerate(groups):
            points = embeddings[mine & (labels == group)]
            fig.add_trace(go.Scatter(x=points["umap_x"].to_numpy(np.float32), y=points["umap_y"].to_numpy(np.float32),
                                     mode="markers", name=group, legendgroup=group, showlegend=index == 0,
                                     marker={"size": 4, "opacity": 0.7, "color": group_colour(g_index)},
                                     hoverinfo="name"), row=row + 1, col=col + 1)
    for annotation, name in zip(fig.layout.annotations, order):
        annotation.font = {"color": colours.get(name, "#1f2933"), "size": 13}
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, linecolor="#e4e7eb", mirror=True,
                     showline=True)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, linecolor="#e4e7eb", mirror=True,
                     showline=True)
    fig.update_layout(_layout(legend={"title": {"text": attribute or ""}, "orientation": "h", "y": -0.04,
                                      "itemsizing": "constant"}, margin={"l": 10, "r": 10, "t": 40, "b": 40}))
    return _fig_html(fig, div_id, 300 * rows + 60)


def leakage_figure(view: ReportView, colours: dict[str, str], div_id: str) -> Markup | None:
    """Per attribute: the probe's balanced accuracy on each model's embedding (bars, +-1 sd over folds),
    on the raw features (dashed line) and chance (dotted line)."""
    attrs = [a for a in view.sensitive if any(m.probe(a) for m in view.models)]
    if not attrs:
        return None
    fig = make_subplots(rows=1, cols=len(attrs), subplot_titles=attrs, shared_yaxes=True, horizontal_spacing=0.06)
    names = view.model_names
    for col, attribute in enumerate(attrs, start=1):
        probes = [m.probe(attribute) for m in view.models]
        values = [p.get("balanced_accuracy") if is_number(p.get("balanced_accuracy")) else None for p in probes]
        sds = [p.get("std") if is_number(p.get("std")) else 0.0 for p in probes]
        fig.add_trace(go.Bar(x=names, y=values, marker={"color": [colours[n] for n in names]}, showlegend=False,
                             error_y={"type": "data", "array": sds, "color": "#323f4b", "thickness": 1.2, "width": 5},
                             hovertext=[f"{n}: {fmt_num(v)} \u00b1 {fmt_num(s)}" for n, v, s in zip(names, values, sds)],
                             hoverinfo="text"), row=1, col=col)
        reference = next((p for p in probes if p), {})
        xref = "x domain" if col == 1 else f"x{col} domain"
        yref = "y" if col == 1 else f"y{col}"
        for key, dash, text in (("raw_features_balanced_accuracy", "dash", "raw features"),
                                ("chance", "dot", "chance")):
            value = reference.get(key)
            if is_number(value):
                fig.add_shape(type="line", xref=xref, yref=yref, x0=0, x1=1, y0=value, y1=value,
                              line={"color": "#1f2933", "dash": dash, "width": 1.5})
                fig.add_annotation(xref=xref, yref=yref, x=0, y=value, text=f"{text} {fmt_num(value)}",
                                   showarrow=False, xanchor="left", yanchor="bottom", font={"size": 11},
                                   bgcolor="rgba(255,255,255,0.85)")
    fig.update_yaxes(_axis(range=[0, 1.05]))
    fig.update_yaxes(title_text="balanced accuracy of the probe", row=1, col=1)
    fig.update_xaxes(_axis(tickangle=-35))
    fig.update_layout(_layout(bargap=0.35))
    return _fig_html(fig, div_id, 360)


def loss_figure(view: ReportView, div_id: str) -> Markup | None:
    """Pretraining loss per epoch (training and validation where recorded)."""
    history = view.pretraining.get("history") or []
    if not history:
        return None
    fig = go.Figure()
    for key, name, colour in (("loss", "training loss", "#7b8794"), ("val_loss", "validation loss", MODEL_PALETTE[0])):
        points = [(h["epoch"], h[key]) for h in history if is_number(h.get(key)) and is_number(h.get("epoch"))]
        if points:
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name,
                                     mode="lines+markers", line={"color": colour, "width": 2}))
    if not fig.data:
        return None
    best = view.pretraining.get("best_epoch")
    if is_number(best):
        fig.add_vline(x=best, line={"color": "#9aa5b1", "dash": "dot"}, annotation_text=f"best epoch {best}",
                      annotation_position="top right")
    fig.update_xaxes(_axis(title_text="epoch", dtick=1 if len(history) <= 20 else None))
    fig.update_yaxes(_axis(title_text=f"{view.pretraining.get('method', 'SSL')} loss"))
    fig.update_layout(_layout(legend={"orientation": "h", "y": 1.12}))
    return _fig_html(fig, div_id, 320)
