"""Fairness: per-group metrics, gaps and threshold what-ifs."""

from dashboard.components import placeholder

placeholder.render(
    "Fairness",
    "Compare how each model treats the groups: accuracy, true and false positive rates and selection rate "
    "per group, with confidence intervals, and the gaps between groups.",
    ["a per-group table with confidence intervals; the worst group highlighted; small groups flagged",
     "gap charts (for example the difference in selection rate between groups) with error bars",
     "a threshold what-if: per-group thresholds and their cost in accuracy"],
    first="train a model on the Train page.", first_page="app_pages/train.py", first_label="Go to Train")
