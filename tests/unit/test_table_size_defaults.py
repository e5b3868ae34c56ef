"""Small tables get gentler fine-tuning (issue 16, item 4): the rule, and that an audit applies it
to every model that trains by gradient steps, the supervised baseline included."""

from __future__ import annotations

import json

from core.learning.finetune.config import SMALL_TABLE_FINETUNE, SMALL_TABLE_ROWS, table_size_defaults
from core.run.config import AuditConfig
from core.run.pipeline import run_audit


def test_the_rule_switches_at_small_table_rows():
    assert table_size_defaults(SMALL_TABLE_ROWS - 1) == SMALL_TABLE_FINETUNE
    assert table_size_defaults(SMALL_TABLE_ROWS) == {}


def test_an_audit_of_a_small_table_fine_tunes_with_them(tmp_path):
    config = AuditConfig(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1,
                         finetune_epochs=2, n_boot=20, strategies=["full"], umap=False, workers=1, replicates=1,
                         baselines=[], encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16})
    run_audit(config, tmp_path)
    for name in ("supervised", "scarf+full"):
        saved = json.loads((tmp_path / "models" / name / "model.json").read_text())
        assert {k: saved["config"][k] for k in SMALL_TABLE_FINETUNE} == SMALL_TABLE_FINETUNE
        assert saved["encoder_config"]["depth"] == 2  # the encoder keeps the shape the audit gave it
