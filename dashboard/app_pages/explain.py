"""Explain: why a model decided as it did, for one row or a group."""

from dashboard.components import placeholder

placeholder.render(
    "Explain",
    "Look inside individual decisions: which features pushed a row's prediction up or down, and whether "
    "the decision changes if only the sensitive attribute changes.",
    ["a search for a row, and a bar chart of the features behind its prediction (LIME), with its stability",
     "a flip-the-attribute what-if: the same row with another group's value",
     "two models side by side, and averages over a group"],
    first="train a model on the Train page.", first_page="app_pages/train.py", first_label="Go to Train")
