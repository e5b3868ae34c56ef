"""One colour per model and per group, the same in the stakeholder report and the dashboard.

Models: the Okabe-Ito palette (colour-blind safe), in report order; the supervised baseline is
always dark grey. Groups (the UMAP maps): Paul Tol's muted scheme, chosen to differ from the
model colours.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.vocabulary import SUPERVISED

MODEL_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D31", "#7F3C8D")
SUPERVISED_COLOUR = "#4D4D4D"
GROUP_PALETTE = ("#332288", "#CC6677", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933",
                 "#AA4499", "#DDDDDD")


def model_colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per model, the same in every chart and table: SSL models in report order, supervised grey."""
    colours, index = {}, 0
    for name in names:
        if name == SUPERVISED:
            colours[name] = SUPERVISED_COLOUR
        else:
            colours[name] = MODEL_PALETTE[index % len(MODEL_PALETTE)]
            index += 1
    return colours


def group_colour(index: int) -> str:
    """The colour of the `index`-th group of a map (the palette repeats after ten groups)."""
    return GROUP_PALETTE[index % len(GROUP_PALETTE)]
