"""The supervised MLP against the classical baselines, test ROC AUC per study split: the figures
of docs/finetuning.md ("Supervised MLP vs the best classical baseline", issue 16 item 4).

    .venv/bin/python scripts/baseline_gap.py german compas adult --splits 0 1 2 3 --seeds 0 1 2

Each study split (`--splits`: the audit's --seed) is encoded as an audit encodes it; on it the
supervised MLP is trained with the audit's defaults for that table's size, once per fine-tuning
seed, and both baselines are fitted once (they draw nothing random once the validation rows are
given). Prints one line per split and the mean gap over the splits; no timing (see bench/).
Training is in fp32 on the CPU; an audit uses bfloat16 where the CPU computes it natively
(core.learning.precision): Adult's supervised MLP, split 0, seed 0, 0.9275 here and 0.9277 in a
bf16 audit.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from core.data.datasets import load_card
from core.data.source import open_source
from core.data.study import Study
from core.learning.classical import fit_classical
from core.learning.finetune import train_supervised
from core.learning.pretrain_config import PretrainConfig
from core.run.config import AuditConfig
from core.run.training import finetune_config_for
from core.vocabulary import BASELINES, SUPERVISED

def split_figures(name: str, split_seed: int, seeds: list[int]) -> dict[str, Any]:
    """Test ROC AUC of the supervised MLP (mean over `seeds`) and of each baseline on one split."""
    card = load_card(name)  # the target and sensitive attributes the Data page proposes
    config = AuditConfig(data=name, target=card.target, sensitive=list(card.sensitive), seed=split_seed)
    study = Study.create(open_source(name), config.spec(), seed=split_seed)
    split = study.split
    X_train, y_train = study.rows(split.labelled_train), study.labels(split.labelled_train)
    X_val, y_val = study.rows(split.validation), study.labels(split.validation)
    X_test, y_test = study.rows(split.test), study.labels(split.test)
    encoder_config = PretrainConfig(encoder=dict(config.encoder)).encoder_config(study.X.shape[1])
    mlp = []
    for seed in seeds:
        finetune_config = finetune_config_for(config, len(split.labelled_train), SUPERVISED, seed)
        model = train_supervised(X_train, y_train, X_val, y_val, finetune_config, encoder_config)
        mlp.append(roc_auc_score(y_test, model.predict_proba(X_test)))
    figures = {"features": study.X.shape[1], "supervised": float(np.mean(mlp)), "per_seed": mlp}
    for kind in BASELINES:
        baseline = fit_classical(kind, X_train, y_train, X_val, y_val, seed=split_seed)
        figures[kind] = roc_auc_score(y_test, baseline.predict_proba(X_test))
    figures["gap"] = figures["supervised"] - max(figures[kind] for kind in BASELINES)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", choices=["german", "compas", "adult"])
    parser.add_argument("--splits", type=int, nargs="+", default=[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    for name in args.datasets:
        gaps = []
        for split_seed in args.splits:
            f = split_figures(name, split_seed, args.seeds)
            gaps.append(f["gap"])
            seeds = " / ".join(f"{auc:.4f}" for auc in f["per_seed"])
            print(f"{name} split {split_seed} ({f['features']} features): supervised {f['supervised']:.4f} "
                  f"({seeds}), " + ", ".join(f"{kind} {f[kind]:.4f}" for kind in BASELINES)
                  + f", gap to best {f['gap']:+.4f}", flush=True)
        print(f"{name}: mean gap over splits {args.splits}: {np.mean(gaps):+.4f}", flush=True)


if __name__ == "__main__":
    main()
