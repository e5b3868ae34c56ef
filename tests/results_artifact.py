"""A small real audit run, built once per test session and shared by the result tests.

`build(tmp_path_factory)` runs `run_audit` on German credit with tiny settings (1 pretraining
epoch, 2 fine-tuning epochs, 50 resamples, linear + bn-stats + supervised, UMAP on, one replicate): about a
minute on a loaded 2-core machine. `install(ws, study_id, artifact)` copies it into a
workspace as a finished run, as the job worker would have left it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

_BUILT: dict[str, Path] = {}


def build(tmp_path_factory) -> Path:
    if "german" not in _BUILT:
        from core.data.datasets import load_card
        from core.run.config import AuditConfig
        from core.run.pipeline import run_audit

        card = load_card("german")
        config = AuditConfig(data="german", target=card.target, sensitive=list(card.sensitive),
                             positive=str(card.positive_label), epochs=1, finetune_epochs=2, n_boot=50,
                             strategies=["linear", "bn-stats"], umap=True, replicates=1)
        out = tmp_path_factory.mktemp("german-run")
        run_audit(config, out)
        _BUILT["german"] = out
    return _BUILT["german"]


def install(ws, study_id: str, artifact: Path, name: str = "Quick run: scarf, 2 strategies + supervised",
            label_fraction: float | None = None, replicates: int | None = None,
            edit: Callable[[dict], dict] | None = None) -> str:
    """A succeeded audit run of `study_id` whose folder holds a copy of `artifact`. With
    `label_fraction`, the copy's report says the run used that share of labels; with
    `replicates`, that it trained each model that many times; `edit` rewrites the copy's report
    (a test's planted models)."""
    config = json.loads((artifact / "report.json").read_text())["config"]
    run_id = ws.create_run("audit", name, config, study_id=study_id)
    ws.start_run(run_id)
    target = ws.run_dir(run_id)
    shutil.copytree(artifact, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints", "models",
                                                                                         "encoder"))
    if label_fraction is not None or replicates is not None or edit is not None:
        report = json.loads((target / "report.json").read_text())
        if label_fraction is not None:
            report["study"]["label_fraction"] = report["config"]["label_fraction"] = label_fraction
        if replicates is not None:
            report["replicates"] = report["config"]["replicates"] = replicates
        if edit is not None:
            report = edit(report)
        (target / "report.json").write_text(json.dumps(report))
    ws.finish_run(run_id, "succeeded", metrics={})
    return run_id
