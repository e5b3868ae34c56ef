"""The project's vocabulary: names of models, strategies, metrics and gaps, the keys of
report.json, and the words shown for them. Light on purpose (no numpy, no torch): anything,
the CLI's start-up and the dashboard included, may import it, so nothing copies a constant.

Each name is defined here once; the modules that compute a metric or train a strategy use
these names, and the dashboard and the report show the words beside them.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- models
#: The model trained without pretraining: the same encoder shape, every layer trained.
SUPERVISED = "supervised"
#: Fine-tuning strategies of a pretrained encoder, from the lightest touch to the heaviest.
STRATEGIES: tuple[str, ...] = ("linear", "bn-stats", "bn-affine", "gradual", "full")
#: A model's decision: positive when its probability of the positive label is at least this.
DECISION_THRESHOLD = 0.5
#: report model entry "decisions" of a randomized classifier (fairlearn's reductions and threshold
#: rules): each row's decision is a seeded draw from its probability (core.results.folder.drawn_decisions).
DRAWN_DECISIONS = "drawn"
#: The classical baselines fitted beside the MLPs (core.learning.classical): names and strategy.
LOGISTIC_REGRESSION, GRADIENT_BOOSTING = "logistic-regression", "gradient-boosting"
BASELINES: tuple[str, ...] = (LOGISTIC_REGRESSION, GRADIENT_BOOSTING)
CLASSICAL = "classical"
#: The strategy of a model Equiscope did not train (uploaded predictions, an outside model file).
UPLOADED = "uploaded"
#: The strategy of a fairlearn mitigation of another model (core.mitigation.fairlearn_models).
MITIGATION = "mitigation"
#: report["study"]["kind"]: an audit of models Equiscope trained, or of uploaded predictions only.
TRAINING_STUDY, PREDICTIONS_STUDY = "training", "predictions"


def model_name(pretraining: str | None, strategy: str) -> str:
    """`scarf+linear` for a fine-tuned encoder, `supervised` for the baseline."""
    return strategy if pretraining is None else f"{pretraining}+{strategy}"


# ----------------------------------------------------------------------------- groups
#: An intersection's key joins the attribute names ("sex & race"); its groups join the values.
INTERSECTION = " & "


def join_partition(parts) -> str:
    return INTERSECTION.join(str(part) for part in parts)


def split_partition(partition: str) -> list[str]:
    """The attributes of a partition key: one for an attribute, two or more for an intersection."""
    return partition.split(INTERSECTION)


def is_intersection(partition: str) -> bool:
    return INTERSECTION in partition


# ----------------------------------------------------------------------------- metrics
#: Metrics computed from the confusion counts alone.
COUNT_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "tpr", "fpr", "fnr", "precision",
                                  "selection_rate")
#: Metrics that need the scores.
SCORE_METRICS: tuple[str, ...] = ("roc_auc", "calibration_error")
#: Every per-group metric of report.json's `groups` entries.
GROUP_METRICS: tuple[str, ...] = COUNT_METRICS + SCORE_METRICS
#: The per-group rates the tables and the report show, in their order.
SHOWN_GROUP_METRICS: tuple[str, ...] = ("accuracy", "tpr", "fpr", "selection_rate", "precision",
                                        "balanced_accuracy")
OVERALL_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "roc_auc", "calibration_error",
                                    "tpr", "fpr", "selection_rate")
#: Numeric gaps per partition; the first six are the report.json contract.
GAPS: tuple[str, ...] = ("demographic_parity_difference", "equalized_odds_difference",
                         "equal_opportunity_difference", "accuracy_difference", "worst_group_accuracy",
                         "mean_subgroup_gap", "fpr_difference", "demographic_parity_ratio",
                         "min_disparate_impact_ratio")
#: The gaps the summary leads with.
HEADLINE_GAPS: tuple[str, ...] = ("equalized_odds_difference", "demographic_parity_difference")
#: Gaps where a larger value is the better one (all others: 0 is best).
HIGHER_IS_BETTER: tuple[str, ...] = ("worst_group_accuracy", "demographic_parity_ratio",
                                     "min_disparate_impact_ratio")

# ----------------------------------------------------------------------------- words
#: What a metric is called where a reviewer reads it (capitalised: headings and table columns;
#: use `.lower()` inside a sentence).
METRIC_NAMES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "tpr": "True-positive rate",
                "fpr": "False-positive rate", "fnr": "False-negative rate", "precision": "Precision",
                "selection_rate": "Selection rate", "roc_auc": "ROC AUC",
                "calibration_error": "Calibration error"}
GAP_NAMES = {"equalized_odds_difference": "Equalized-odds gap",
             "demographic_parity_difference": "Demographic-parity gap",
             "equal_opportunity_difference": "Equal-opportunity gap",
             "fpr_difference": "False-positive-rate gap", "accuracy_difference": "Accuracy gap",
             "mean_subgroup_gap": "Mean subgroup gap", "worst_group_accuracy": "Worst-group accuracy",
             "demographic_parity_ratio": "Demographic-parity ratio",
             "min_disparate_impact_ratio": "Lowest disparate-impact ratio"}
#: Why a metric can be undefined for a group (shown as "n/a", never 0).
UNDEFINED_WHY = {"tpr": "no truly positive rows in this group", "fnr": "no truly positive rows in this group",
                 "fpr": "no truly negative rows in this group",
                 "precision": "the model predicts no row of this group positive",
                 "roc_auc": "needs both outcomes in the group"}
#: Shown wherever a value is undefined.
NOT_AVAILABLE = "n/a"
