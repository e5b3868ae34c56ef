"""The fairlearn mitigations inside an audit (core.run.mitigation_models through core.run.variants):
a tiny German audit has them as models with `mitigation`, `base` and `compared_with_base`, the
sweep adds one variant per bound, a mitigation that cannot apply is skipped with a warning,
the Explain page's loader opens them, and `equiscope mitigations` lists every one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.cli.main import main
from core.data.source import open_source
from core.data.study import Study
from core.explain.context import load_run
from core.errors import InputError
from core.results.folder import load_results, score_column
from core.results.whatif import manual_whatif
from core.mitigation.catalog import CATALOG
from core.run.config import AuditConfig
from core.run.mitigation_models import DEFAULT_EPS, SWEEP_EPS, MitigationSkipped, variant_tasks
from core.run.pipeline import run_audit
from core.run.variants import VariantContext
from core.vocabulary import DRAWN_DECISIONS

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1, finetune_epochs=1,
            n_boot=40, strategies=["linear"], baselines=["logistic-regression"], umap=False, workers=1,
            replicates=2, encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8})


def test_a_tiny_audit_has_the_mitigated_models(tmp_path):
    config = AuditConfig(**{**TINY, "replicates": 1}, mitigations=["eg-equalized-odds", "threshold-optimizer"])
    report = run_audit(config, tmp_path)
    models = {m["name"]: m for m in report["models"]}
    expected = ["logistic-regression+eg-equalized-odds", "supervised+threshold-optimizer",
                "logistic-regression+threshold-optimizer"]
    assert [name for name in models if "+" in name and name != "scarf+linear"] == expected
    for name in expected:
        entry = models[name]
        assert entry["mitigation"]["kind"] == "fairlearn" and entry["mitigation"]["base"] == entry["base"]
        assert entry["compared_with_base"]["sex"]["equalized_odds_difference"]["family"] == "variant_vs_base"
        assert len(entry["replicates"]) == 1 and entry["strategy"] == "mitigation"
    assert models[expected[0]]["mitigation"]["params"]["eps"] == DEFAULT_EPS
    # Randomized rules decide by a seeded draw: the report says so, and no threshold what-if is offered for them.
    assert [name for name, entry in models.items() if entry.get("decisions") == DRAWN_DECISIONS] == expected
    results = load_results(tmp_path)
    with pytest.raises(InputError, match="does not decide at a threshold"):
        manual_whatif(results, expected[0], "sex", {"male": 0.5, "female": 0.5})
    assert manual_whatif(results, "logistic-regression", "sex", {"male": 0.5, "female": 0.5})["groups"]
    assert models["supervised+threshold-optimizer"]["base"] == "supervised"
    assert models["supervised+threshold-optimizer"]["mitigation"]["params"]["fitted_on"] == "validation"
    html = (tmp_path / "report.html").read_text()  # the HTML report's trade-off section, with its sentences
    assert 'id="mitigations"' in html and "Logistic regression + eg-equalized-odds, against Logistic regression" in html
    # The Explain page opens a saved mitigation, and it decides what the audit's predictions say it did.
    context = load_run(tmp_path)
    test = context.study.split.test
    for name in ("logistic-regression+eg-equalized-odds", "supervised+threshold-optimizer"):
        stored = context.predictions.loc[test, score_column(name)].to_numpy()
        np.testing.assert_allclose(context.model(name).predict_proba(context.study.X[test]), stored, atol=1e-6)


class _Fitted:
    def __init__(self, name):
        self.name, self.setting_ = name, {"C": 1.0}


def test_a_mitigation_that_cannot_apply_is_skipped_with_a_warning():
    config = AuditConfig(**{**TINY, "replicates": 1}, unaware=True,
                         mitigations=["correlation-remover", "threshold-optimizer", "eg-demographic-parity"])
    study = Study.create(open_source("german"), config.spec(), seed=0)
    labelled = [study.split.labelled_train]
    context = VariantContext(config, study, [None], [[_Fitted("logistic-regression")]], labelled)
    with pytest.warns(MitigationSkipped, match="unaware") as caught:
        tasks = variant_tasks(context)
    assert len(caught) == 2  # correlation-remover and threshold-optimizer need the attribute in X
    assert [task.key for task in tasks] == [("logistic-regression+eg-demographic-parity", 0)]
    without_lr = VariantContext(AuditConfig(**{**TINY, "baselines": []}, mitigations=["eg-tpr-parity"]), study,
                                [None], [[]], labelled)
    with pytest.warns(MitigationSkipped, match="logistic-regression baseline"):
        assert variant_tasks(without_lr) == []


def test_the_sweep_fits_one_variant_per_bound():
    config = AuditConfig(**{**TINY, "replicates": 2}, mitigations=["eg-demographic-parity"], mitigation_sweep=True)
    study = Study.create(open_source("german"), config.spec(), seed=0)
    labelled = [study.split.labelled_train] * 2
    models = [[_Fitted("logistic-regression")]] * 2
    tasks = variant_tasks(VariantContext(config, study, [None, None], models, labelled))
    names = list(dict.fromkeys(task.key[0] for task in tasks))
    assert names == [f"logistic-regression+eg-demographic-parity" + ("" if eps == DEFAULT_EPS else f"-eps{eps:g}")
                     for eps in SWEEP_EPS]
    assert sorted(task.args[0]["mitigation"]["params"]["eps"] for task in tasks) == sorted(2 * list(SWEEP_EPS))
    assert {task.args[0]["random_state"] for task in tasks} == set(config.replicate_seeds)


def test_equiscope_mitigations_lists_every_one(capsys):
    assert main(["mitigations"]) == 0
    out = capsys.readouterr().out
    assert all(m.name in out and m.cost in out for m in CATALOG)
    assert main(["mitigations", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == [m.name for m in CATALOG] and listed[0]["kind"] == "fairlearn"


def test_nothing_asked_nothing_built():
    context = SimpleNamespace(config=AuditConfig(**TINY))
    assert variant_tasks(context) == []
