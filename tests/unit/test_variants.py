"""Variants (core.run.variants): a model that changes another joins the audit after training,
once per replicate, and is compared with its base over the replicates and test rows, in its own
Holm family; a builder that forgets a replicate is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.files import atomic_write
from core.results.folder import drawn_decisions
from core.run.config import AuditConfig
from core.run.parallel import Task
from core.run.pipeline import run_audit
from core.run.variants import VARIANT, VariantContext, variant_tasks

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1, finetune_epochs=1,
            n_boot=40, strategies=["linear"], baselines=["logistic-regression"], umap=False, workers=1,
            replicates=2, encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8})


class Shifted:
    """The base model's scores raised to a power: fewer positive decisions (power > 1)."""

    pretraining, strategy, calibration, history = None, "classical", None, []

    def __init__(self, base, power: float) -> None:
        self.wrapped, self.power = base, power
        self.name, self.base = f"{base.name}+shifted{power:g}", base.name
        self.n_trainable_params = 0
        self.mitigation = {"name": "shift", "kind": "training", "base": base.name, "params": {"power": power}}

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.wrapped.predict_proba(X) ** self.power

    def embed(self, X: np.ndarray) -> None:
        return None

    def save(self, directory) -> None:
        atomic_write(directory / "model.json", json.dumps({"power": self.power}))


class Drawn(Shifted):
    """A randomized classifier: its score is the probability of a positive decision."""

    randomized = True

    def __init__(self, base, power: float) -> None:
        super().__init__(base, power)
        self.name = "drawn"


def broken(base, replicate: int):
    if replicate == 1:
        raise RuntimeError("the fit did not converge")
    return Shifted(base, 2.0)


def shift_builder(context: VariantContext) -> list[Task]:
    replicates = range(len(context.models))
    return ([Task(VARIANT, (f"logistic-regression+shifted{power:g}", r), Shifted,
                  (context.model(r, "logistic-regression"), power)) for power in (1.0, 3.0) for r in replicates]
            + [Task(VARIANT, ("logistic-regression+shifted2", r), broken, (context.model(r, "logistic-regression"), r))
               for r in replicates]
            + [Task(VARIANT, ("drawn", r), Drawn, (context.model(r, "logistic-regression"), 1.0)) for r in replicates])


def test_a_variant_is_audited_and_compared_with_its_base(tmp_path, monkeypatch):
    monkeypatch.setattr("core.run.variants.BUILDERS", (f"{__name__}:shift_builder",))
    report = run_audit(AuditConfig(**TINY), tmp_path)
    models = {m["name"]: m for m in report["models"]}
    assert list(models)[-3:] == ["logistic-regression+shifted1", "logistic-regression+shifted3", "drawn"]
    # A variant that fails in one replicate is left out of all of them, and the report says why.
    assert any("'logistic-regression+shifted2' failed" in w and "did not converge" in w for w in report["warnings"])
    # A randomized classifier's decisions are drawn from its score, seeded: not its score at 0.5.
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    score, drawn = predictions["score__drawn"].to_numpy(), predictions["pred__drawn"].to_numpy()
    assert not np.array_equal(drawn, (score >= 0.5).astype(int))
    assert abs(drawn.mean() - score.mean()) < 0.06 and set(np.unique(drawn)) <= {0, 1}
    assert np.array_equal(drawn, drawn_decisions(score, 0, 0, "drawn"))
    same, shifted = models["logistic-regression+shifted1"], models["logistic-regression+shifted3"]
    assert same["base"] == "logistic-regression" and same["mitigation"]["params"] == {"power": 1.0}
    assert len(same["replicates"]) == 2  # one per replicate, like every model
    # Identical to its base: every paired difference is 0; a power of 3 lowers the selection rate.
    compared = same["compared_with_base"]["sex"]["demographic_parity_difference"]
    assert compared["difference"] == 0 and compared["family"] == "variant_vs_base"
    assert shifted["overall"]["selection_rate"] < models["logistic-regression"]["overall"]["selection_rate"]
    # 3 variants x 2 headline gaps x 1 attribute; the SSL-vs-supervised family keeps its 2 models x 2 gaps.
    assert report["multiplicity"]["variant_vs_base"]["size"] == 6
    assert report["multiplicity"]["ssl_vs_supervised"]["size"] == 4
    assert "compared_with_base" not in models["scarf+linear"] and "compared_with_supervised" not in same
    assert (tmp_path / "models" / "logistic-regression+shifted3" / "model.json").exists()
    # The accuracy cost, overall and per group, in its own family: 3 variants x 2 rates x (overall + 2 groups).
    cost = shifted["compared_with_base_metrics"]
    assert cost["overall"]["accuracy"]["difference"] == pytest.approx(
        shifted["overall"]["accuracy"] - models["logistic-regression"]["overall"]["accuracy"], abs=1e-9)
    assert set(cost["groups"]["sex"]) == {g["values"]["sex"] for g in shifted["groups"]["sex"]}
    assert same["compared_with_base_metrics"]["groups"]["sex"]["female"]["accuracy"]["difference"] == 0
    assert report["multiplicity"]["variant_vs_base (accuracy)"]["size"] == 18


def test_a_builder_must_give_every_replicate(monkeypatch):
    def one_replicate_only(context):
        return [Task(VARIANT, ("x", 0), int, ())]

    monkeypatch.setattr(f"{__name__}.shift_builder", one_replicate_only)
    context = VariantContext(AuditConfig(data="german", target="credit", sensitive=["sex"]), None, [None, None],
                             [[], []], [np.arange(3), np.arange(3)])
    with pytest.raises(ValueError, match="one task per replicate"):
        variant_tasks(context, (f"{__name__}:shift_builder",))
    assert variant_tasks(context, ()) == []
