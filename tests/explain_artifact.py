"""A tiny audit run folder with models whose behaviour is known exactly, for the explanation tests.

`build(folder)` writes what `run_audit` writes and explanations read (study.json, models/,
predictions.parquet, report.json) for a synthetic table of 400 people:
    sex (Female/Male), age (18-79, audited in bins), region (4 values), signal and noise
    (numeric), email (personal data: withheld), approved (yes/no, driven by signal).
Models are real `TrainedClassifier`s with hand-set weights (one block: Linear -> BN -> ReLU,
BN at its identity initialisation), so that with s = the standardised signal,
    scarf+linear ("signal"):  logit = 3 s                  (reads one feature only)
    supervised ("uses sex"):  logit = 3 s + 4 [sex = Female] - 2
    scarf+mixed ("mixed"):    logit = s + [sex = Female] + [region = North] + 0.5 z(age)
relu(u) - relu(-u) = u gives the exact linear terms. Built in seconds, no training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.data import DatasetSpec, open_source
from core.learning.finetune.classifier import TrainedClassifier
from core.learning.models import ClassifierHead, Encoder, EncoderConfig
from core.data.study import Study
from core.results import folder as run_folder

N_ROWS = 400


def table(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, n).round(3)
    return pd.DataFrame({
        "sex": rng.choice(["Female", "Male"], size=n, p=[0.45, 0.55]),
        "age": rng.integers(18, 80, size=n),
        "region": rng.choice(["North", "South", "East", "West"], size=n),
        "signal": signal,
        "noise": rng.normal(0, 1, n).round(3),
        "email": [f"person{i}@example.org" for i in range(n)],
        "approved": np.where(signal + 0.5 * rng.normal(size=n) > 0, "yes", "no"),
    })


def _model(study: Study, name: str, pretraining: str | None, terms: dict[str, float], bias: float) -> TrainedClassifier:
    """logit = sum_f terms[f] * x_f + bias, for encoded features f, via units +x_f and -x_f."""
    names = list(study.encoder.feature_names_)
    d, k = len(names), 2 * len(terms)
    encoder = Encoder(EncoderConfig(input_dim=d, hidden_dim=k, depth=1, embed_dim=k))
    head = ClassifierHead(k)
    with torch.no_grad():
        weight = torch.zeros(k, d)
        head_weight = torch.zeros(1, k)
        for i, (feature, coefficient) in enumerate(terms.items()):
            j = names.index(feature)
            weight[2 * i, j], weight[2 * i + 1, j] = 1.0, -1.0
            head_weight[0, 2 * i], head_weight[0, 2 * i + 1] = coefficient, -coefficient
        encoder.blocks[0].linear.weight.copy_(weight)
        encoder.blocks[0].norm.eps = 0.0  # running mean 0, variance 1: the identity
        head.linear.weight.copy_(head_weight)
        head.linear.bias.fill_(bias)
    return TrainedClassifier(name=name, pretraining=pretraining, strategy="linear" if pretraining else "supervised",
                             encoder=encoder, head=head, n_trainable_params=k + 1)


def build(folder: Path) -> Path:
    """Write the run into `folder` (created) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "people.csv"
    table().to_csv(csv, index=False)
    study = Study.create(open_source(str(csv)), DatasetSpec(target="approved", sensitive=("sex", "age"),
                                                            positive_label="yes"), seed=0)
    study.save(folder)
    models = [_model(study, "scarf+linear", "scarf", {"signal": 3.0}, 0.0),
              _model(study, "supervised", None, {"signal": 3.0, "sex = Female": 4.0}, -2.0),
              _model(study, "scarf+mixed", "scarf", {"signal": 1.0, "sex = Female": 1.0, "region = North": 1.0,
                                                     "age": 0.5}, 0.0)]
    test = study.split.test
    for model in models:
        model.save(run_folder.model_dir(folder, model.name))
    run_folder.write_predictions(folder / run_folder.PREDICTIONS, study.row_ids(test), study.groups(test),
                                 study.labels(test), {m.name: m.predict_proba(study.X[test]) for m in models})
    report = {"equiscope_version": "test",
              "study": {"dataset": "people.csv", "target": "approved", "positive_label": "yes",
                        "sensitive": ["sex", "age"], "n_test": int(len(test)), "label_fraction": 1.0, "seed": 0},
              "models": [{"name": m.name, "pretraining": m.pretraining, "strategy": m.strategy} for m in models],
              "withheld_columns": study.data.withheld_columns,
              "config": {"data": str(csv), "target": "approved", "sensitive": ["sex", "age"], "method": "scarf",
                         "strategies": ["linear"], "label_fraction": 1.0}}
    run_folder.write_report(folder, report)
    return folder
