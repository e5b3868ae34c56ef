"""The fairlearn mitigations of an audit as variants (core.run.variants): which model each
changes, on which rows it is fitted, and one task per (variant, replicate).

    eg-demographic-parity, eg-equalized-odds, eg-tpr-parity
        ExponentiatedGradient over logistic regressions on the raw encoded features of the
        labelled training rows; base "logistic-regression" (C: that baseline's chosen setting).
    eg-embedding-equalized-odds
        the same with equalized odds over the frozen SSL embedding of "{method}+linear" (its
        base: the linear strategy keeps the pretrained encoder frozen, so its embed is the
        pretrained encoder's); C = 1, scikit-learn's default (the baseline's C was chosen for
        other features).
    correlation-remover
        CorrelationRemover (alpha 1) on the attribute's encoded columns, then a logistic
        regression; base "logistic-regression".
    threshold-optimizer
        ThresholdOptimizer (equalized odds, best balanced accuracy) on the scores of two bases,
        the supervised baseline and the classical baseline of lowest validation log loss
        (replicate 0's, so every replicate has the same base), fitted on the VALIDATION rows
        (core.audit.thresholds.optimize_thresholds, the what-if's own fit); each row's group is
        read from X's encoded columns of the attribute when deciding.

Every mitigation targets the study's first sensitive attribute, the one the headline gaps
lead with (intersections are sparser: a reduction's constraint per small cell is noisy).
With `config.mitigation_sweep` each reduction is fitted at every bound of SWEEP_EPS (a curve);
else at DEFAULT_EPS, fairlearn's default. A mitigation that cannot apply (no logistic-regression
baseline, no linear strategy, an unaware study) is skipped with a warning that says why.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.metrics import log_loss

from core.audit.thresholds import optimize_thresholds
from core.errors import Cancelled, InputError
from core.mitigation.catalog import FAIRLEARN, MITIGATIONS
from core.mitigation.fairlearn_models import THRESHOLDS, GroupDecoder, MitigatedModel
from core.mitigation.fitting import fit_correlation_remover, fit_reduction
from core.run.parallel import Task, send_event, stop_requested
from core.run.variants import VARIANT, VariantContext
from core.vocabulary import LOGISTIC_REGRESSION, SUPERVISED

#: The reductions over raw features and their fairlearn constraints.
REDUCTIONS = {"eg-demographic-parity": "demographic_parity", "eg-equalized-odds": "equalized_odds",
              "eg-tpr-parity": "true_positive_rate_parity"}
EMBEDDING_REDUCTION = "eg-embedding-equalized-odds"
#: ExponentiatedGradient's bound on the constraint's violation: fairlearn's default, and the sweep's bounds.
DEFAULT_EPS = 0.01
SWEEP_EPS = (0.005, 0.01, 0.02, 0.05)
EMBEDDING_C = 1.0
CORRELATION_ALPHA = 1.0
THRESHOLD_CONSTRAINT, THRESHOLD_OBJECTIVE = "equalized_odds", "balanced_accuracy_score"


class MitigationSkipped(UserWarning):
    """A requested mitigation that cannot apply to this audit (the message says why)."""


def variant_tasks(context: VariantContext) -> list[Task]:
    """One task per (fairlearn variant, replicate); [] when the config asks for none."""
    wanted = [name for name in context.config.mitigations if MITIGATIONS[name].kind == FAIRLEARN]
    tasks: list[Task] = []
    for name in wanted:
        try:
            tasks += _tasks_of(name, context)
        except _Skip as skip:
            warnings.warn(f"Mitigation '{name}' skipped: {skip}", MitigationSkipped, stacklevel=2)
            context.notes.append(f"The mitigation '{name}' was asked for but does not apply here: {skip}")
    return tasks


class _Skip(Exception):
    """Why a mitigation does not apply to this audit."""


def _tasks_of(name: str, context: VariantContext) -> list[Task]:
    config, study = context.config, context.study
    attribute = config.sensitive[0]
    replicates = range(len(context.models))
    seeds = config.replicate_seeds
    y = [study.labels(rows) for rows in context.labelled]
    groups = [study.groups(rows)[attribute].to_numpy(dtype=str) for rows in context.labelled]
    bounds = SWEEP_EPS if config.mitigation_sweep else (DEFAULT_EPS,)
    if name in REDUCTIONS or name == "correlation-remover":
        if LOGISTIC_REGRESSION not in config.baselines:
            raise _Skip("its base, the logistic-regression baseline, is not in this audit's baselines")
        C = [float(context.model(r, LOGISTIC_REGRESSION).setting_["C"]) for r in replicates]
    if name in REDUCTIONS:
        return [Task(VARIANT, (_variant_name(LOGISTIC_REGRESSION, name, eps), r), _fit_reduction_task, (dict(
            name=_variant_name(LOGISTIC_REGRESSION, name, eps), base=LOGISTIC_REGRESSION,
            mitigation=_mitigation(name, LOGISTIC_REGRESSION, constraint=REDUCTIONS[name], eps=eps, C=C[r],
                                   attribute=attribute, features="raw"),
            X=study.X[context.labelled[r]], y=y[r], groups=groups[r], constraint=REDUCTIONS[name], eps=eps, C=C[r],
            random_state=seeds[r]),))
            for eps in bounds for r in replicates]
    if name == EMBEDDING_REDUCTION:
        if "linear" not in config.strategies:
            raise _Skip("it needs the frozen embedding of the 'linear' strategy, which this audit does not train")
        base = f"{config.method}+linear"
        return [Task(VARIANT, (_variant_name(base, name, eps), r), _fit_reduction_task, (dict(
            name=_variant_name(base, name, eps), base=base,
            mitigation=_mitigation(name, base, constraint="equalized_odds", eps=eps, C=EMBEDDING_C,
                                   attribute=attribute, features="embedding"),
            X=study.X[context.labelled[r]], y=y[r], groups=groups[r], constraint="equalized_odds", eps=eps,
            C=EMBEDDING_C, random_state=seeds[r], inner=context.model(r, base)),))
            for eps in bounds for r in replicates]
    block = study.encoder.column_slices_.get(attribute)
    if block is None:
        raise _Skip(f"the study is unaware: '{attribute}' is not among the model's features, so there are no "
                    "columns to " + ("decorrelate" if name == "correlation-remover" else "read each row's group from"))
    if name == "correlation-remover":
        columns = list(range(block.start, block.stop))
        return [Task(VARIANT, (f"{LOGISTIC_REGRESSION}+{name}", r), _fit_correlation_task, (dict(
            name=f"{LOGISTIC_REGRESSION}+{name}", base=LOGISTIC_REGRESSION,
            mitigation=_mitigation(name, LOGISTIC_REGRESSION, alpha=CORRELATION_ALPHA, C=C[r], attribute=attribute),
            X=study.X[context.labelled[r]], y=y[r], sensitive_columns=columns, alpha=CORRELATION_ALPHA, C=C[r],
            random_state=seeds[r]),)) for r in replicates]
    try:  # every row of the study: the encoded pattern -> group table is a function of the data, not of labels
        decoder = GroupDecoder(attribute, block).fit(study.X, study.data.groups[attribute].to_numpy(dtype=str))
    except InputError as refused:
        raise _Skip(refused.args[0]) from None
    validation = study.split.validation
    X_val, y_val = study.X[validation], study.labels(validation)
    return [Task(VARIANT, (f"{base}+{name}", r), _fit_threshold_task,
                 (f"{base}+{name}", base, context.model(r, base), decoder, X_val, y_val, seeds[r],
                  _mitigation(name, base, constraint=THRESHOLD_CONSTRAINT, objective=THRESHOLD_OBJECTIVE,
                              fitted_on="validation", attribute=attribute)))
            for base in threshold_bases(context) for r in replicates]


def threshold_bases(context: VariantContext) -> list[str]:
    """The supervised baseline, and the classical baseline of lowest validation log loss (replicate 0's)."""
    validation = context.study.split.validation
    X_val, y_val = context.study.X[validation], context.study.labels(validation)
    losses = {kind: log_loss(y_val, np.clip(context.model(0, kind).predict_proba(X_val), 1e-7, 1 - 1e-7),
                             labels=[0, 1]) for kind in context.config.baselines}
    return [SUPERVISED] + ([min(losses, key=losses.get)] if losses else [])


def _variant_name(base: str, mitigation: str, eps: float) -> str:
    """`logistic-regression+eg-equalized-odds` at the default bound, `...-eps0.05` at another."""
    return f"{base}+{mitigation}" + ("" if eps == DEFAULT_EPS else f"-eps{eps:g}")


def _mitigation(name: str, base: str, **params) -> dict:
    return {"name": name, "kind": FAIRLEARN, "base": base, "params": params}


def _starting(name: str) -> float:
    if stop_requested():
        raise Cancelled()
    send_event({"stage": "finetune", "model": name, "message": f"Fitting {name}"})
    return time.perf_counter()


def _timed(model: MitigatedModel, started: float) -> MitigatedModel:
    """The fit's wall time in the model's history (model.json; report.json stays free of timings)."""
    model.history[0]["fit_s"] = round(time.perf_counter() - started, 3)
    return model


def _fit_reduction_task(arguments: dict) -> MitigatedModel:
    """A worker's task: the embedding (when there is an inner model), then fit_reduction."""
    started = _starting(arguments["name"])
    inner = arguments.get("inner")
    if inner is not None:
        width = arguments["X"].shape[1]
        arguments = {**arguments, "X": inner.embed(arguments["X"]), "n_features_in": width}
    return _timed(fit_reduction(**arguments), started)


def _fit_correlation_task(arguments: dict) -> MitigatedModel:
    started = _starting(arguments["name"])
    return _timed(fit_correlation_remover(**arguments), started)


def _fit_threshold_task(name: str, base: str, inner, decoder: GroupDecoder, X_val: np.ndarray, y_val: np.ndarray,
                        seed: int, mitigation: dict) -> MitigatedModel:
    """ThresholdOptimizer on the base's validation scores, with the groups decoded from X as at test time."""
    started = _starting(name)
    fitted = optimize_thresholds(THRESHOLD_CONSTRAINT, fit_on=(inner.predict_proba(X_val), y_val, decoder.decode(X_val)),
                                 objective=THRESHOLD_OBJECTIVE, random_state=seed)
    history = [{"validation_accuracy": fitted["accuracy"], "randomized": fitted["randomized"], "n_fit": fitted["n_fit"]}]
    return _timed(MitigatedModel(name=name, base=base, mitigation=mitigation, shape=THRESHOLDS,
                                 state={"rules": fitted["rules"]}, n_features_in=X_val.shape[1], inner=inner,
                                 decoder=decoder, history=history), started)
