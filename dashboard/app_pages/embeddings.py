"""Embeddings: what the models' representations reveal about the groups."""

from __future__ import annotations

import streamlit as st

from core.results.quality import flagged_models
from core.results.tables import ssl_models
from core.vocabulary import CLASSICAL, SUPERVISED
from dashboard.components import embedding_views, runs, state
from dashboard.components.format import md, words


def render() -> None:
    st.title("Embeddings")
    st.markdown("How each model represents the test rows, drawn as a 2-D map (UMAP): rows the model sees as "
                "similar lie close together. If the groups form separate islands, the model's representation "
                "encodes the group, even when the attribute is not used as a feature. Only neighbourhoods carry "
                "meaning: the distances between far-apart islands and the axes do not.")
    ws = state.workspace()
    picked = runs.current_run(ws)
    if picked is None:
        return
    _, run, res = picked
    if not res.view.trained:
        st.info("This run has no representation to show: these models were not trained by Equiscope (uploaded "
                "predictions or an outside model file), so there is no embedding of the rows to map. Their fairness "
                "is on the Fairness and Compare pages.", icon=":material/info:")
        return
    if res.embeddings is None:
        st.info("This run has no 2-D maps (it ran without UMAP). Start a new run on the Train page.",
                icon=":material/info:")
        return
    options = embedding_views.colour_options(res)
    state.keep_option("embed_colour", options, next(iter(options)))
    mapped = set(res.embeddings["model"].unique())  # unique(): iterating 36,000 Arrow strings took 0.1 s
    ssl = [m for m in ssl_models(res.report) if m in mapped]
    left_side, right_side = st.columns(2)
    colour_by = left_side.selectbox("Colour the points by", list(options), format_func=options.get,
                                    key="embed_colour")
    if ssl:
        state.keep_option("embed_model", ssl, ssl[0])
        model = right_side.selectbox("Pretrained model (left map)", ssl, key="embed_model",
                                     format_func=lambda m: embedding_views.plain_label(res, m),
                                     help=embedding_views.code_names(res, ssl))
    else:
        model = None
    st.caption("Hover a point to see its row: groups, true outcome, prediction and score. Click a legend entry to "
               "hide or show a category. Columns withheld as personal data are never shown.")
    classical = [m.name for m in res.view.models if m.strategy == CLASSICAL]
    if classical:
        labels = words([embedding_views.plain_label(res, m) for m in classical])
        st.caption(f"The classical baselines ({md(labels)}) learn no representation of the rows, so they "
                   "have no map here; their fairness is on the Fairness and Compare pages.")
    shown = [m for m in (model, SUPERVISED) if m is not None and m in mapped]
    for flagged in flagged_models(res.report, shown):  # a model no better than chance: its map means little
        st.warning(md(flagged["text"]), icon=":material/warning:")
    columns = st.columns(len(shown))
    for column, name in zip(columns, shown, strict=True):
        with column:
            embedding_views.map_column(res, run["id"], str(ws.root), name, colour_by, options[colour_by])


render()
