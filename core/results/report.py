"""The stakeholder report: one self-contained HTML file (and a PDF where Chromium exists).

    render_html(report, *, embeddings, notes, sign_off) -> str
    write_html_report(report, out_dir, *, notes=None, sign_off=None) -> Path   (out_dir/report.html)
    html_to_pdf(html_path, pdf_path) -> Path | None                            (None: no browser)

Self-contained means: plotly.js is inlined once in <head>, every figure is a `<div>` plus a
`Plotly.newPlot` call on inline JSON, CSS is inline, fonts are the system's. Opening the file
makes no request of any kind (tested in Chromium with every request counted).

What goes in: the report.json dict (aggregates only) and, for the UMAP maps, the 2-D
coordinates with the group label of the first sensitive attribute per row (no row ids, no
feature values). Texts that come from users (review notes, group and column names) are
escaped by Jinja2's autoescape in tables and by plotly's JSON encoder (which writes `<` as
`\\u003c`) inside figures. The section list and the summary rules are in docs/report.md.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from core.results.formatting import ci_includes_zero, ci_label, fmt_ci, fmt_int, fmt_num, fmt_pct, is_number
from core.results.summary import GAP_WORDS, SUPERVISED, attributes, degeneracy, intersections, summarize
from core.files import atomic_write

TEMPLATES = Path(__file__).resolve().parent / "templates"
UMAP_MAX_POINTS = 5000
PDF_TIMEOUT_S = 120
FONT = ('-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", '
        '"Liberation Sans", sans-serif')
# Okabe-Ito (colour-blind safe); the supervised baseline is always dark grey.
MODEL_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D31", "#7F3C8D")
SUPERVISED_COLOUR = "#4D4D4D"
# Groups in the UMAP maps: Paul Tol's muted scheme, chosen to differ from the model colours.
GROUP_PALETTE = ("#332288", "#CC6677", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933",
                 "#AA4499", "#DDDDDD")
GROUP_METRICS = (("accuracy", "Accuracy"), ("tpr", "True-positive rate"), ("fpr", "False-positive rate"),
                 ("selection_rate", "Selection rate"))
UNDEFINED_WHY = {"tpr": "undefined: no truly positive rows in this group",
                 "fnr": "undefined: no truly positive rows in this group",
                 "fpr": "undefined: no truly negative rows in this group",
                 "precision": "undefined: the model predicts no row of this group positive",
                 "roc_auc": "undefined: needs both labels in the group"}
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


# -- colours and figures -------------------------------------------------------------------------
def model_colours(names: list[str]) -> dict[str, str]:
    """One colour per model, the same in every chart and table: SSL models in report order, supervised grey."""
    colours, index = {}, 0
    for name in names:
        if name == SUPERVISED:
            colours[name] = SUPERVISED_COLOUR
        else:
            colours[name] = MODEL_PALETTE[index % len(MODEL_PALETTE)]
            index += 1
    return colours


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


def gap_figure(report: dict, partition: str, colours: dict[str, str], div_id: str) -> Markup:
    """Equalized-odds and demographic-parity gap of every model for one partition, with CI error bars."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    models = report.get("models") or []
    names = [m["name"] for m in models]
    label = ci_label(report)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[GAP_WORDS[g].capitalize() for g in
                                        ("equalized_odds_difference", "demographic_parity_difference")])
    top = 0.1
    for col, gap in enumerate(("equalized_odds_difference", "demographic_parity_difference"), start=1):
        gaps = [((m.get("gaps") or {}).get(partition) or {}) for m in models]
        values = [g.get(gap) if is_number(g.get(gap)) else None for g in gaps]
        cis = [(g.get("ci") or {}).get(gap) for g in gaps]
        plus, minus = _error_bars(values, cis)
        top = max([top] + [v + p for v, p in zip(values, plus) if v is not None])
        hover = [f"{n}<br>{GAP_WORDS[gap]}: {fmt_num(v)}<br>{label} {fmt_ci(c)}" for n, v, c in zip(names, values, cis)]
        fig.add_trace(go.Bar(x=names, y=values, marker={"color": [colours[n] for n in names]},
                             error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                                      "color": "#323f4b", "thickness": 1.2, "width": 5},
                             hovertext=hover, hoverinfo="text", showlegend=False), row=1, col=col)
        for name, value in zip(names, values):
            if value is None:
                fig.add_annotation(x=name, y=0, text="n/a", showarrow=False, yshift=10, row=1, col=col,
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


def umap_figure(report: dict, embeddings: pd.DataFrame, attribute: str | None, colours: dict[str, str],
                div_id: str) -> Markup:
    """Small multiples of the UMAP maps (supervised first), points coloured by group of `attribute`."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    present = list(dict.fromkeys(embeddings["model"].astype(str)))
    order = [m["name"] for m in report.get("models") or [] if m["name"] in present]
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
                                     marker={"size": 4, "opacity": 0.7, "color": GROUP_PALETTE[g_index % len(GROUP_PALETTE)]},
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


def leakage_figure(report: dict, colours: dict[str, str], div_id: str) -> Markup | None:
    """Per attribute: the probe's balanced accuracy on each model's embedding (bars, +-1 sd over folds),
    on the raw features (dashed line) and chance (dotted line)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    models = report.get("models") or []
    attrs = [a for a in attributes(report)
             if any(((m.get("representation") or {}).get("leakage") or {}).get(a) for m in models)]
    if not attrs:
        return None
    fig = make_subplots(rows=1, cols=len(attrs), subplot_titles=attrs, shared_yaxes=True, horizontal_spacing=0.06)
    names = [m["name"] for m in models]
    for col, attribute in enumerate(attrs, start=1):
        probes = [((m.get("representation") or {}).get("leakage") or {}).get(attribute) or {} for m in models]
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


def loss_figure(report: dict, div_id: str) -> Markup | None:
    """Pretraining loss per epoch (training and validation where recorded)."""
    import plotly.graph_objects as go

    history = (report.get("pretraining") or {}).get("history") or []
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
    best = (report.get("pretraining") or {}).get("best_epoch")
    if is_number(best):
        fig.add_vline(x=best, line={"color": "#9aa5b1", "dash": "dot"}, annotation_text=f"best epoch {best}",
                      annotation_position="top right")
    fig.update_xaxes(_axis(title_text="epoch", dtick=1 if len(history) <= 20 else None))
    fig.update_yaxes(_axis(title_text=f"{(report.get('pretraining') or {}).get('method', 'SSL')} loss"))
    fig.update_layout(_layout(legend={"orientation": "h", "y": 1.12}))
    return _fig_html(fig, div_id, 320)


# -- table contents -----------------------------------------------------------------------------
def _cell(value: Any, ci: Any = None, *, pct: bool = False, why: str = "") -> dict:
    """A table cell: main text, interval text, and a tooltip for undefined values."""
    fmt = fmt_pct if pct else fmt_num
    if not is_number(value):
        return {"text": "n/a", "ci": "", "title": why or "undefined", "na": True}
    return {"text": fmt(value), "ci": fmt_ci(ci, fmt) if ci else "", "title": "", "na": False}


def _model_rows(report: dict, colours: dict[str, str]) -> list[dict]:
    rows = []
    for model in report.get("models") or []:
        overall, ci = model.get("overall") or {}, (model.get("overall") or {}).get("ci") or {}
        worst = None
        for attribute in attributes(report):
            gaps = (model.get("gaps") or {}).get(attribute) or {}
            value = gaps.get("worst_group_accuracy")
            if is_number(value) and (worst is None or value < worst[0]):
                group = ((gaps.get("between") or {}).get("worst_group_accuracy") or {}).get("min_group")
                worst = (value, (gaps.get("ci") or {}).get("worst_group_accuracy"), f"{attribute} \u201c{group}\u201d")
        rows.append({"name": model["name"], "colour": colours[model["name"]],
                     "pretraining": model.get("pretraining") or "none", "strategy": model.get("strategy") or "",
                     "params": fmt_int(model.get("n_trainable_params")),
                     "accuracy": _cell(overall.get("accuracy"), ci.get("accuracy"), pct=True),
                     "balanced_accuracy": _cell(overall.get("balanced_accuracy"), ci.get("balanced_accuracy")),
                     "roc_auc": _cell(overall.get("roc_auc"), ci.get("roc_auc"), why=UNDEFINED_WHY["roc_auc"]),
                     "selection_rate": _cell(overall.get("selection_rate"), ci.get("selection_rate"), pct=True),
                     "worst": _cell(worst[0], worst[1], pct=True) if worst else _cell(None),
                     "worst_group": worst[2] if worst else "", "degenerate": _one_label(model)})
    return rows


def _one_label(model: dict) -> str:
    """Badge text for a model that predicts (nearly) one label, else ""."""
    kind = degeneracy(model)
    if kind is None:
        return ""
    if kind in ("all", "none"):
        return "one label for every row"
    rate = model["overall"]["selection_rate"]
    return f"one label for {fmt_pct(max(rate, 1 - rate))} of rows"


def _delta(model: dict, partition: str, gap: str) -> dict | None:
    compared = ((model.get("compared_with_supervised") or {}).get(partition) or {}).get(gap)
    if not compared:
        return None
    diff, ci = compared.get("difference"), compared.get("ci")
    includes = ci_includes_zero(ci)
    if not is_number(diff) or includes is None:
        return {"text": "n/a", "ci": "", "verdict": "not comparable", "cls": "na"}
    if includes:
        return {"text": fmt_num(diff), "ci": fmt_ci(ci), "verdict": "no clear difference", "cls": "unclear"}
    verdict = "narrowed" if diff < 0 else "widened"
    return {"text": fmt_num(diff), "ci": fmt_ci(ci), "verdict": verdict, "cls": verdict}


def _gap_rows(report: dict, partition: str, colours: dict[str, str]) -> list[dict]:
    rows = []
    for model in report.get("models") or []:
        gaps = (model.get("gaps") or {}).get(partition) or {}
        ci = gaps.get("ci") or {}
        between = gaps.get("between") or {}
        cells = {gap: _cell(gaps.get(gap), ci.get(gap)) for gap in
                 ("equalized_odds_difference", "demographic_parity_difference", "equal_opportunity_difference",
                  "accuracy_difference")}
        eo = between.get("equalized_odds_difference") or {}
        dp = between.get("demographic_parity_difference") or {}
        rows.append({"name": model["name"], "colour": colours[model["name"]], **cells,
                     "eo_between": _between_text(eo), "dp_between": _between_text(dp),
                     "eo_delta": _delta(model, partition, "equalized_odds_difference"),
                     "dp_delta": _delta(model, partition, "demographic_parity_difference"),
                     "worst": _cell(gaps.get("worst_group_accuracy"), ci.get("worst_group_accuracy"), pct=True),
                     "worst_group": ((between.get("worst_group_accuracy") or {}).get("min_group")) or "",
                     "di_ratio": _cell(gaps.get("min_disparate_impact_ratio")),
                     "four_fifths": bool(gaps.get("four_fifths_flag"))})
    return rows


def _between_text(between: dict) -> str:
    if not between.get("max_group") or not between.get("min_group"):
        return ""
    metric = {"tpr": "TPR", "fpr": "FPR", "selection_rate": "selection rate"}.get(between.get("metric"), "")
    return f"{metric}: \u201c{between['max_group']}\u201d above \u201c{between['min_group']}\u201d"


def _group_tables(report: dict, partition: str) -> dict:
    models = report.get("models") or []
    first_rows = (models[0].get("groups") or {}).get(partition) or [] if models else []
    groups = [{"group": r.get("group"), "n": fmt_int(r.get("n")), "small": bool(r.get("small")),
               "base_rate": fmt_pct(r["n_positive"] / r["n"]) if is_number(r.get("n_positive")) and r.get("n") else "n/a"}
              for r in first_rows]
    tables = []
    for metric, title in GROUP_METRICS:
        body = []
        for group in groups:
            cells = []
            for model in models:
                row = next((r for r in (model.get("groups") or {}).get(partition) or []
                            if r.get("group") == group["group"]), {})
                cells.append(_cell(row.get(metric), (row.get("ci") or {}).get(metric), pct=True,
                                   why=UNDEFINED_WHY.get(metric, "")))
            body.append({**group, "cells": cells})
        tables.append({"metric": metric, "title": title, "rows": body})
    return {"partition": partition, "tables": tables, "n_small": sum(g["small"] for g in groups),
            "n_groups": len(groups)}


def _leakage_rows(report: dict, colours: dict[str, str]) -> list[dict]:
    rows = []
    for attribute in attributes(report):
        for model in report.get("models") or []:
            probe = ((model.get("representation") or {}).get("leakage") or {}).get(attribute)
            if not probe:
                continue
            cka = (((model.get("representation") or {}).get("cka_with_supervised") or {}).get(attribute) or {})
            knn = (((model.get("representation") or {}).get("knn_accuracy") or {}).get(attribute) or {})
            rows.append({"attribute": attribute, "name": model["name"], "colour": colours[model["name"]],
                         "embedding": fmt_num(probe.get("balanced_accuracy")), "std": fmt_num(probe.get("std")),
                         "raw": fmt_num(probe.get("raw_features_balanced_accuracy")),
                         "chance": fmt_num(probe.get("chance")), "note": probe.get("note") or "",
                         "knn": fmt_pct(knn.get("overall")),
                         "cka": "\u2014" if model["name"] == SUPERVISED else fmt_num(cka.get("overall"))})
    return rows


def summary_blocks(items: list[dict]) -> list[dict]:
    """The summary for display: each paired comparison under its tally line, the per-model
    worst-group lines under one heading; everything else as it comes."""
    blocks: list[dict] = []
    for item in items:
        topic = item.get("topic")
        if topic == "ssl_vs_supervised" and blocks and blocks[-1]["topic"] == "ssl_tally":
            blocks[-1]["children"].append(item)
        elif topic == "worst_group":
            if not blocks or blocks[-1]["topic"] != "worst_group":
                blocks.append({"level": "info", "topic": "worst_group", "children": [],
                               "text": "Worst-group accuracy: the lowest accuracy of any group of a single attribute, "
                                       "per model."})
            blocks[-1]["children"].append(item)
        else:
            blocks.append({**item, "children": []})
    return blocks


def _config_rows(config: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in config.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append((key, text))
    return rows


def _notes(notes: list[dict] | None) -> list[dict]:
    out = []
    for note in notes or []:
        out.append({"author": str(note.get("author") or "unknown"), "status": str(note.get("status") or ""),
                    "time": str(note.get("time") or note.get("created_at") or ""),
                    "text": str(note.get("text") if note.get("text") is not None else note.get("body") or ""),
                    "run": str(note.get("run_id") or "")})
    return out


def _sign_off(sign_off: dict | None) -> dict | None:
    return _notes([sign_off])[0] if sign_off else None


# -- rendering -----------------------------------------------------------------------------------
def _environment():
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader

    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=ChainableUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def render_html(report: dict, *, embeddings: pd.DataFrame | None = None, notes: list[dict] | None = None,
                sign_off: dict | None = None, generated_at: datetime | None = None) -> str:
    """The report as one self-contained HTML string.

    `embeddings`: columns row_id, model, umap_x, umap_y and, to colour the maps, the first
    sensitive attribute (one group label per row); None leaves the maps out. `notes`: review
    notes as the store lists them (author, status, created_at or time, body or text);
    `sign_off`: the note that records the decision, same keys.
    """
    from plotly.offline import get_plotlyjs

    models = report.get("models") or []
    colours = model_colours([m["name"] for m in models])
    study = report.get("study") or {}
    sensitive = attributes(report)
    partitions = sensitive + intersections(report)
    figures: dict[str, Any] = {"gaps": {p: gap_figure(report, p, colours, f"gap-{i}") for i, p in enumerate(partitions)}}
    umap = None
    if embeddings is not None and len(embeddings):
        seed = int((report.get("config") or {}).get("seed") or 0)
        shown, total = subsample_embeddings(embeddings, UMAP_MAX_POINTS, seed)
        attribute = sensitive[0] if sensitive and sensitive[0] in shown else None
        umap = {"figure": umap_figure(report, shown, attribute, colours, "umap"), "shown": fmt_int(min(total, UMAP_MAX_POINTS)),
                "total": fmt_int(total), "subsampled": total > UMAP_MAX_POINTS, "attribute": attribute,
                "max": fmt_int(UMAP_MAX_POINTS)}
    figures["leakage"] = leakage_figure(report, colours, "leakage")
    figures["loss"] = loss_figure(report, "loss")
    generated = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    context = {
        "report": report, "study": study, "summary": summary_blocks(summarize(report)), "ci_label": ci_label(report),
        "colours": colours, "models": _model_rows(report, colours), "sensitive": sensitive,
        "partitions": [{"key": p, "figure": figures["gaps"][p], "rows": _gap_rows(report, p, colours),
                        "small": ((models[0].get("gaps") or {}).get(p) or {}).get("small_groups") or [] if models else []}
                       for p in partitions],
        "group_tables": [_group_tables(report, p) for p in partitions], "model_names": [m["name"] for m in models],
        "umap": umap, "leakage": figures["leakage"], "leakage_rows": _leakage_rows(report, colours),
        "loss": figures["loss"], "pretraining": report.get("pretraining") or {},
        "notes": _notes(notes), "sign_off": _sign_off(sign_off),
        "config_rows": _config_rows(report.get("config") or {}),
        "versions": report.get("versions") or {}, "bootstrap": report.get("bootstrap") or {},
        "withheld": [str(c) for c in report.get("withheld_columns") or []],
        "data_notes": [str(n) for n in report.get("notes") or []],
        "data_warnings": [str(w) for w in report.get("warnings") or []],
        "generated": generated.strftime("%Y-%m-%d %H:%M UTC"),
        "plotly_js": Markup(get_plotlyjs()), "fmt_pct": fmt_pct, "fmt_num": fmt_num, "fmt_int": fmt_int,
        "min_group_size": (report.get("config") or {}).get("min_group_size", 30),
    }
    return _environment().get_template("report.html.j2").render(**context)


def load_embeddings(out_dir: Path, attribute: str | None) -> pd.DataFrame | None:
    """embeddings.parquet of a run joined with the group label of `attribute` from predictions.parquet."""
    path = Path(out_dir) / "embeddings.parquet"
    if not path.is_file():
        return None
    frame = pd.read_parquet(path, columns=["row_id", "model", "umap_x", "umap_y"])
    predictions = Path(out_dir) / "predictions.parquet"
    if attribute and predictions.is_file():
        import pyarrow.parquet as pq

        if attribute in pq.read_schema(predictions).names:
            labels = pd.read_parquet(predictions, columns=["row_id", attribute])
            frame = frame.merge(labels.drop_duplicates("row_id"), on="row_id", how="left")
            frame[attribute] = frame[attribute].astype(str)
    return frame


def write_html_report(report: dict, out_dir: Path, *, notes: list[dict] | None = None,
                      sign_off: dict | None = None) -> Path:
    """Render the report of the run in `out_dir` (using its embeddings.parquet when present) into
    `out_dir/report.html`, atomically; returns the path."""
    out_dir = Path(out_dir)
    sensitive = attributes(report)
    embeddings = load_embeddings(out_dir, sensitive[0] if sensitive else None)
    html = render_html(report, embeddings=embeddings, notes=notes, sign_off=sign_off)
    path = out_dir / "report.html"
    atomic_write(path, html)
    return path


# -- PDF -----------------------------------------------------------------------------------------
def find_browser() -> str | None:
    """Chromium's executable: /usr/bin/chromium, else `chromium` / `chromium-browser` on PATH, else None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = PDF_TIMEOUT_S) -> Path | None:
    """Print `html_path` to `pdf_path` with headless Chromium; None when no browser is installed
    (the caller then offers the HTML only). Raises RuntimeError when the browser fails or
    runs past `timeout_s`."""
    browser = find_browser()
    if browser is None:
        return None
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="equiscope-chromium-") as profile:
        tmp_pdf = Path(profile) / "out.pdf"
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={profile}",
                   "--no-pdf-header-footer", "--window-size=800,1200", "--virtual-time-budget=15000",
                   "--run-all-compositor-stages-before-draw", f"--print-to-pdf={tmp_pdf}", html_path.as_uri()]
        try:
            result = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"Chromium did not finish printing {html_path.name} within {timeout_s:.0f} s") from error
        if not tmp_pdf.is_file() or tmp_pdf.read_bytes()[:4] != b"%PDF":
            tail = result.stderr.decode(errors="replace")[-1500:]
            raise RuntimeError(f"Chromium could not print {html_path.name} (exit code {result.returncode}): {tail}")
        atomic_write(pdf_path, tmp_pdf.read_bytes())
    return pdf_path
