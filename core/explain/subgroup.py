"""What a model leans on, per group: LIME weights (or SHAP values) averaged over rows of each group.

For attribute A and each of its groups g, up to `rows_per_group` test rows of g are drawn
without replacement (`numpy.random.default_rng(seed)`, groups in the report's order) and each is
explained once, by LIME (`core.explain.lime_tabular.lime_weights`, same `num_samples` and
`seed` for every row) or by SHAP (`core.explain.shap_tabular.shap_values`, same `seed`):
`explainer` is a parameter, everything below is shared. Per feature f:

    importance_g(f) = mean over the group's rows of |w_row(f)|     (w: LIME weight or SHAP value)

with a percentile bootstrap interval over rows (`n_boot` resamples of the group's rows with
replacement; each group resampled on its own). Between two groups a and b:

    difference(f) = importance_a(f) - importance_b(f)

with the interval of the replicate differences (the groups' replicates paired by index,
which are independent draws). Its two-sided p-value is the normal one of the bootstrap,
``2 Phi(-|difference| / sd(replicate differences))`` (continuous, unlike a count of
replicates, so that it can survive the adjustment), and `clear` is decided on that p-value
Holm-adjusted over every (pair, feature) difference of the run, one family per explainer
(core.audit.multiplicity; `FAMILIES`); the interval stays as a description. Differences are listed for
every pair of groups, largest |difference| first. Groups with fewer than 2 sampled rows get
no interval.

It is slow by nature (one explanation per row): `on_progress(done, total)` is called after every
row, and `should_stop()` is checked between rows. The dashboard runs it as a background job
of kind "explain-subgroup" (`subgroup_job`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from itertools import combinations

import numpy as np

from core.audit.multiplicity import holm
from core.errors import InputError
from core.explain.agreement import LIME, SHAP
from core.explain.context import RunContext, load_run
from core.explain.counterfactual import check_attribute
from core.explain.lime_tabular import NUM_SAMPLES, lime_weights
from core.explain.shap_tabular import shap_values

ROWS_PER_GROUP = 100
N_BOOT = 1000
RESULT_FILE = "subgroup.json"


def sample_rows(ctx: RunContext, attribute: str, rows_per_group: int, seed: int) -> dict[str, np.ndarray]:
    """Test rows drawn per group (sorted), groups in the report's order (`RunContext.group_names`)."""
    rng = np.random.default_rng(seed)
    groups = ctx.study.data.groups[attribute].to_numpy().astype(str)[ctx.test_rows]
    out = {}
    for name in ctx.group_names(attribute):
        members = ctx.test_rows[groups == name]
        if len(members) == 0:
            continue
        take = min(rows_per_group, len(members))
        out[str(name)] = np.sort(rng.choice(members, size=take, replace=False))
    return out


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray | None:
    """(n_boot, features) means of row resamples; None with fewer than 2 rows."""
    if len(values) < 2 or n_boot < 1:
        return None
    picks = rng.integers(0, len(values), size=(n_boot, len(values)))
    return values[picks].mean(axis=1)


def _interval(replicates: np.ndarray | None, confidence: float) -> np.ndarray | None:
    if replicates is None:
        return None
    alpha = (1 - confidence) / 2
    return np.quantile(replicates, [alpha, 1 - alpha], axis=0)


def subgroup_importance(ctx: RunContext, attribute: str, model_name: str | None = None, *,
                        rows_per_group: int = ROWS_PER_GROUP, num_samples: int = NUM_SAMPLES, seed: int = 0,
                        n_boot: int = N_BOOT, confidence: float = 0.95, explainer: str = LIME,
                        on_progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> dict:
    """Mean |LIME weight| (or |SHAP value|, `explainer="shap"`) per feature and group, with bootstrap
    intervals and group differences.

    Returns {"attribute", "model", "explainer", "num_samples", "seed", "rows_per_group", "confidence",
    "features", "groups": [{"group", "n_rows", "row_ids", "importance": [{"feature", "mean_abs_weight",
    "ci"}]}], "differences": [{"feature", "group_a", "group_b", "difference", "ci", "p_value", "p_adjusted",
    "family", "family_size", "clear"}],
    "stopped"} (see the module docstring for the formulas)."""
    check_attribute(ctx, attribute)
    attribution = row_attribution(explainer, num_samples)
    model_name = model_name or ctx.default_model
    ctx.model(model_name)
    if rows_per_group < 1:
        raise InputError(f"rows_per_group {rows_per_group} must be at least 1", "Use for example 100")
    if not 0 < confidence < 1:
        raise InputError(f"confidence {confidence} must be between 0 and 1", "Use 0.95")
    samples = sample_rows(ctx, attribute, rows_per_group, seed)
    total = sum(len(rows) for rows in samples.values())
    columns = ctx.codec.columns
    weights: dict[str, list[np.ndarray]] = {group: [] for group in samples}
    done, stopped = 0, False
    if on_progress is not None:
        on_progress(0, total)
    for group, rows in samples.items():
        for row in rows:
            if should_stop is not None and should_stop():
                stopped = True
                break
            weights[group].append(np.abs(attribution(ctx, model_name, int(row), seed)))
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        if stopped:
            break

    rng = np.random.default_rng(seed)
    summary, replicates = [], {}
    for group, rows in samples.items():
        values = np.array(weights[group]).reshape(-1, len(columns))
        means = values.mean(axis=0) if len(values) else np.full(len(columns), np.nan)
        replicates[group] = _bootstrap_means(values, n_boot, rng)
        ci = _interval(replicates[group], confidence)
        order = np.argsort(-np.nan_to_num(means, nan=-1), kind="stable")
        summary.append({"group": group, "n_rows": int(len(values)), "row_ids": [int(r) for r in rows[:len(values)]],
                        "importance": [{"feature": columns[j], "mean_abs_weight": _num(means[j]),
                                        "ci": None if ci is None else [_num(ci[0, j]), _num(ci[1, j])]}
                                       for j in order]})
    differences = []
    means_of = {g["group"]: {i["feature"]: i["mean_abs_weight"] for i in g["importance"]} for g in summary}
    for a, b in combinations(list(samples), 2):
        ra, rb = replicates[a], replicates[b]
        ci = _interval(ra - rb, confidence) if ra is not None and rb is not None else None
        sd = np.std(ra - rb, axis=0, ddof=1) if ra is not None and rb is not None else None
        for j, feature in enumerate(columns):
            if means_of[a][feature] is None or means_of[b][feature] is None:
                continue
            difference = means_of[a][feature] - means_of[b][feature]
            interval = None if ci is None else [float(ci[0, j]), float(ci[1, j])]
            differences.append({"feature": feature, "group_a": a, "group_b": b, "difference": float(difference),
                                "ci": interval, "p_value": None if sd is None else _normal_p(difference, sd[j])})
    _decide(differences, confidence, FAMILIES[explainer])
    differences.sort(key=lambda d: -abs(d["difference"]))
    return {"attribute": attribute, "model": model_name, "explainer": explainer, "num_samples": num_samples,
            "seed": seed,
            "rows_per_group": rows_per_group, "confidence": confidence, "n_boot": n_boot, "features": list(columns),
            "groups": summary, "differences": differences, "stopped": stopped}


#: The family of the per-group differences of each explainer (core.audit.multiplicity's word for it).
FAMILY = "lime_group_differences"
FAMILIES = {LIME: FAMILY, SHAP: "shap_group_differences"}


def row_attribution(explainer: str, num_samples: int) -> Callable[[RunContext, str, int, int], np.ndarray]:
    """(ctx, model, row, seed) -> one attribution per column, for the named explainer."""
    if explainer == LIME:
        return lambda ctx, model, row, seed: lime_weights(ctx, model, row, num_samples, seed)["weights"]
    if explainer == SHAP:
        return lambda ctx, model, row, seed: shap_values(ctx, model, row, seed)["values"]
    raise InputError(f"Unknown explainer '{explainer}'", f"Use one of: {LIME}, {SHAP}")


def _normal_p(difference: float, sd: float) -> float:
    """Two-sided p of "the difference is 0" from its bootstrap standard deviation."""
    if not sd > 0:
        return 1.0 if difference == 0 else 0.0
    return float(math.erfc(abs(difference) / sd / math.sqrt(2)))


def _decide(differences: list[dict], confidence: float, family: str = FAMILY) -> None:
    """`clear` from the Holm-adjusted p-values of all differences (one family), in place."""
    adjusted = holm([d["p_value"] for d in differences])
    size = sum(p is not None for p in adjusted)
    for d, p in zip(differences, adjusted):
        d.update(p_adjusted=p, family=family if p is not None else None, family_size=size if p is not None else None,
                 clear=bool(p is not None and p < 1 - confidence))


def _num(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def subgroup_job(context) -> dict:
    """Job entry point (core.workspace.jobs kind "explain-subgroup").

    config: {"audit_run_id" or "run_dir", "attribute", "model", "rows_per_group",
    "num_samples", "seed", "explainer" (default "lime")}; writes the result to `<job run>/subgroup.json` and reports
    progress events ({"stage": "explain", "step", "total_steps", "fraction", "message"})."""
    from core.errors import Cancelled
    from core.files import atomic_write

    config = context.config
    run_dir = (context.workspace.run_dir(config["audit_run_id"]) if config.get("audit_run_id")
               else config.get("run_dir"))
    if not run_dir:
        raise InputError("The job names no audit run", "Give audit_run_id or run_dir")
    ctx = load_run(run_dir)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if done in (0, total) or now - last[0] >= 0.5:  # at most two events a second
            last[0] = now
            context.report({"stage": "explain", "step": done, "total_steps": total,
                            "fraction": round(done / max(total, 1), 4),
                            "message": f"Explaining row {done} of {total}"})

    result = subgroup_importance(ctx, config["attribute"], config.get("model"),
                                 rows_per_group=int(config.get("rows_per_group", ROWS_PER_GROUP)),
                                 num_samples=int(config.get("num_samples", NUM_SAMPLES)),
                                 seed=int(config.get("seed", 0)), explainer=str(config.get("explainer", LIME)),
                                 on_progress=progress,
                                 should_stop=context.should_stop)
    if result["stopped"]:
        raise Cancelled()
    atomic_write(context.run_dir / RESULT_FILE, json.dumps(result))
    return {"attribute": result["attribute"], "model": result["model"],
            "rows": sum(g["n_rows"] for g in result["groups"])}
