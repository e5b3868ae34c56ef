"""Embeddings: what the models' representations reveal about the groups."""

from dashboard.components import placeholder

placeholder.render(
    "Embeddings",
    "See how each model represents the rows: a 2-D map (UMAP) of the test rows, and how much a model's "
    "representation gives away a sensitive attribute even when the attribute is not a feature.",
    ["the map of the SSL and supervised models side by side, coloured by group, outcome, prediction or error",
     "leakage scores: how well the sensitive attribute can be read from the representation (chance = none)",
     "hovering a point shows its row"],
    first="train a model on the Train page.", first_page="app_pages/train.py", first_label="Go to Train")
