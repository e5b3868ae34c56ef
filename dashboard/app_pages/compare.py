"""Compare: every run of the study, side by side."""

from dashboard.components import placeholder

placeholder.render(
    "Compare",
    "Weigh the models against each other: overall accuracy against the accuracy of the worst-off group, "
    "and against a fairness gap you choose.",
    ["a chart of accuracy against worst-group accuracy or a gap, with the best trade-offs marked",
     "a sortable table of every run of the study",
     "whether the difference between two chosen models is larger than chance (a confidence interval)"],
    first="train at least two models on the Train page (an SSL model and the supervised baseline).",
    first_page="app_pages/train.py", first_label="Go to Train")
