"""Live progress of runs whose replicates train side by side: one loss curve per replicate."""

from __future__ import annotations

from core.workspace.run_progress import loss_curves
from dashboard.components.result_charts import loss_chart


def test_each_replicate_gets_its_own_pretraining_curve_and_line():
    """Events of two replicates interleave, as they do when the workers train them at once; the
    curves keep them apart, and the chart draws a training line (and validation points) for each."""
    events = [{"stage": "pretrain", "replicate": 0, "step": 5, "total_steps": 20, "epochs": 2, "loss": 3.0},
              {"stage": "pretrain", "replicate": 1, "step": 4, "total_steps": 20, "epochs": 2, "loss": 3.2},
              {"stage": "pretrain", "replicate": 0, "step": 10, "total_steps": 20, "epochs": 2, "loss": 2.5,
               "val_loss": 2.7},
              {"stage": "finetune", "model": "scarf+full", "replicate": 1, "epoch": 1, "loss": 0.6},
              {"stage": "finetune", "model": "scarf+full", "replicate": 0, "epoch": 1, "loss": 0.5},
              {"stage": "pretrain", "step": 2, "total_steps": 20, "epochs": 2, "loss": 3.5}]  # an older run: no key
    curves = loss_curves(events)
    pretrain = curves["pretrain"]
    assert pretrain[pretrain["replicate"] == 0]["epoch"].tolist() == [0.5, 1.0, 0.2]
    assert pretrain[pretrain["replicate"] == 1]["loss"].tolist() == [3.2]
    assert sorted(zip(curves["scarf+full"]["replicate"], curves["scarf+full"]["loss"])) == [(0, 0.5), (1, 0.6)]
    names = [trace.name for trace in loss_chart(curves).data]
    assert names == ["training loss (replicate 1)", "validation loss (replicate 1)", "training loss (replicate 2)"]


def test_one_replicate_reads_as_before():
    curves = loss_curves([{"stage": "pretrain", "step": 5, "total_steps": 10, "epochs": 1, "loss": 1.0, "val_loss": 1.1}])
    assert [trace.name for trace in loss_chart(curves).data] == ["training loss", "validation loss"]
