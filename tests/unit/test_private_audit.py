"""Private models in an audit (core.run.private_models): they join as variants of the ordinary
model and of the pretrained fine-tuning, carry `privacy`, are compared with their base, and bad
privacy flags are bad input (exit 2)."""

from __future__ import annotations

import pytest

from core.cli import main as cli
from core.learning.finetune.classifier import TrainedClassifier
from core.results.privacy_cost import epsilon_curve, privacy_costs
from core.run.config import AuditConfig
from core.run.pipeline import run_audit
from core.run.private_models import private_bases

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1, finetune_epochs=1,
            n_boot=30, strategies=["linear"], baselines=[], umap=False, workers=1, replicates=1,
            encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8}, dp_epsilon=[8.0])


def test_private_variants_carry_their_guarantee_and_their_comparison(tmp_path):
    report = run_audit(AuditConfig(**TINY), tmp_path)
    models = {m["name"]: m for m in report["models"]}
    assert list(models)[-2:] == ["supervised+dp-eps8", "scarf+linear+dp-eps8"]
    for name, base in (("supervised+dp-eps8", "supervised"), ("scarf+linear+dp-eps8", "scarf+linear")):
        entry = models[name]
        assert entry["base"] == base and 0 < entry["privacy"]["epsilon"] <= 8
        assert entry["privacy"]["delta"] == pytest.approx(1 / report["study"]["n_train"])  # 1 / labelled rows
        assert entry["compared_with_base"]["sex"]["equalized_odds_difference"]["family"] == "variant_vs_base"
        assert "compared_with_supervised" not in entry
        loaded = TrainedClassifier.load(tmp_path / "models" / name)  # what the Explain page opens
        assert loaded.extra["privacy"]["target_epsilon"] == 8
    costs = privacy_costs(report)
    assert [c["name"] for c in costs] == ["supervised+dp-eps8", "scarf+linear+dp-eps8"]
    assert costs[0]["label"] == "Ordinary model (no pretraining), private (epsilon 8)"
    curve = {c["base"]: c for c in epsilon_curve(report)}
    assert [p["epsilon"] for p in curve["supervised"]["points"]] == [8.0, None]  # the base last: no privacy


def test_the_pretrained_private_model_follows_the_heaviest_strategy_with_a_private_version():
    assert private_bases(["linear", "full", "gradual"], "scarf") == ["supervised", "scarf+full"]
    assert private_bases(["linear"], "vicreg") == ["supervised", "vicreg+linear"]
    assert private_bases(["bn-affine", "gradual"], "scarf") == ["supervised"]


@pytest.mark.parametrize("flags, fragment", [
    (["--dp-epsilon", "0"], "epsilon must be above 0"),
    (["--dp-epsilon", "one,3"], "--dp-epsilon takes numbers"),
    (["--dp-epsilon", "3", "--dp-delta", "1.5"], "delta must lie in (0, 1)"),
    (["--dp-epsilon", "3", "--dp-max-grad-norm", "-1"], "clipping norm must be above 0"),
])
def test_bad_privacy_flags_exit_2_with_one_line(flags, fragment, tmp_path, capsys):
    code = cli.main(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex",
                     "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
