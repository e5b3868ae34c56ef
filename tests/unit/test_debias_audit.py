"""The training-side mitigations join a real (tiny) audit as variants of scarf+full: each with its
mitigation, its base and its comparison with the base; saved as a TrainedClassifier that loads."""

from __future__ import annotations

import pytest

from core.learning.finetune import TrainedClassifier
from core.run.config import AuditConfig
from core.run.pipeline import run_audit

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1, finetune_epochs=1,
            n_boot=40, strategies=["linear", "full"], baselines=[], umap=False, workers=1, replicates=2,
            encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8},
            mitigations=["fairness-penalty", "pruning"])


def test_penalty_and_pruning_variants_are_audited_against_scarf_full(tmp_path):
    report = run_audit(AuditConfig(**TINY), tmp_path)
    models = {m["name"]: m for m in report["models"]}
    names = [f"scarf+full+penalty-l{w}" for w in ("0.5", "2", "8")] + [f"scarf+full+pruned{s}"
                                                                       for s in ("0.5", "0.8", "0.95")]
    assert [n for n in models if n.startswith("scarf+full+")] == names
    for name in names:
        entry = models[name]
        assert entry["base"] == "scarf+full" and entry["mitigation"]["kind"] == "training"
        assert entry["mitigation"]["base"] == "scarf+full" and len(entry["replicates"]) == 2
        compared = entry["compared_with_base"]["sex"]["equalized_odds_difference"]
        assert compared["family"] == "variant_vs_base" and compared["p_adjusted"] is not None
        cost = entry["compared_with_base_metrics"]["overall"]["accuracy"]
        assert cost["family"] == "variant_vs_base (accuracy)" and len(cost["ci"]) == 2
    penalty = models["scarf+full+penalty-l2"]["mitigation"]
    assert penalty["name"] == "fairness-penalty"
    assert penalty["params"] == {"lambda": 2.0, "gap": "equalized_odds_difference", "attribute": "sex",
                                 "strategy": "full"}
    pruning = models["scarf+full+pruned0.8"]["mitigation"]["params"]
    assert pruning["sparsity"] == 0.8 and pruning["realised_sparsity"] == pytest.approx(0.8, abs=0.01)
    assert report["multiplicity"]["variant_vs_base"]["size"] == 6 * 2  # 6 variants x 2 headline gaps x 1 attribute
    saved = TrainedClassifier.load(tmp_path / "models" / "scarf+full+pruned0.95")
    assert saved.strategy == "full" and saved.extra["mitigation"]["params"]["sparsity"] == 0.95
