"""`equiscope finetune`: fine-tune a pretrained encoder with several strategies, next to a
supervised baseline of the same shape, and measure each on the study's test rows.

Reads --pretrained DIR (the output of `equiscope pretrain`: study.json + encoder/). Writes
into --out:
    study.json            the study at the chosen label fraction (same train/validation/test rows)
    models/NAME/          each TrainedClassifier (model.safetensors + model.json)
    metrics.json          per model: test accuracy, balanced accuracy, ROC AUC (decisions at
                          core.vocabulary's DECISION_THRESHOLD, 0.5, on the calibrated probability),
                          n_trainable_params, calibration, timings
Every model sees the same labelled training rows, validation rows (early stopping,
calibration) and test rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.cli._format import text_table
from core.cli._progress import ProgressBar
from core.cli.pretrain import ENCODER_DIR, add_threads_argument, output_folder, set_threads
from core.errors import InputError
from core.files import atomic_write
from core.vocabulary import DECISION_THRESHOLD, STRATEGIES, SUPERVISED

METRICS_FILE = "metrics.json"
MODELS_DIR = "models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pretrained", required=True, help="output folder of 'equiscope pretrain'")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated: {', '.join(STRATEGIES)} (default: all {len(STRATEGIES)}); "
                             "the supervised baseline is always trained")
    parser.add_argument("--label-fraction", type=float, default=1.0,
                        help="share of the training rows whose labels are used, in (0, 1] (default 1)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum fine-tuning epochs (default 100, "
                                                                 "with early stopping on validation loss)")
    parser.add_argument("--batch-size", type=int, default=None, help="rows per step (default 256)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    parser.add_argument("--class-weight", choices=["none", "balanced"], default="none",
                        help="'balanced' weighs positives by n_negative / n_positive")
    parser.add_argument("--seed", type=int, default=0, help="seed of fine-tuning (default 0)")
    add_threads_argument(parser)
    parser.add_argument("--out", required=True, help="folder for models/, metrics.json and study.json")


def parse_strategies(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES + (SUPERVISED,)]
    if unknown or not names:
        raise InputError(f"Unknown fine-tuning strateg{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(repr(s) for s in unknown) or '(none given)'}",
                         f"Choose from: {', '.join(STRATEGIES)}")
    return [s for i, s in enumerate(names) if s != SUPERVISED and s not in names[:i]]


def run(args: argparse.Namespace) -> int:
    if not 0 < args.label_fraction <= 1:
        raise InputError(f"Label fraction {args.label_fraction} is outside (0, 1]",
                         "Give a fraction such as 0.1 for 10% of the labels, or 1 for all")
    pretrained = Path(args.pretrained).expanduser()
    if not pretrained.is_dir():  # checked before importing torch, so the answer comes at once
        raise InputError(f"--pretrained folder '{pretrained}' does not exist",
                         "Give the --out folder of an 'equiscope pretrain' run")
    from core.learning.finetune import FinetuneConfig  # torch: loaded by `run` only, so --help stays fast

    strategies = parse_strategies(args.strategies)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr))
                 if v is not None}
    base = FinetuneConfig(seed=args.seed, class_weight=None if args.class_weight == "none" else args.class_weight,
                          **overrides)  # validates epochs, batch size, lr
    set_threads(args.threads)
    out = output_folder(args.out)
    return _run(args, strategies + [SUPERVISED], base, pretrained, out)


def _run(args, plan: list[str], base, pretrained: Path, out: Path) -> int:
    # Heavy (torch, pandas): loaded when the command runs, not when the CLI builds its parser.
    from core.data.study import Study
    from core.learning.checkpoint import load_encoder, read_encoder_meta
    from core.learning.finetune import FinetuneConfig, finetune

    study = Study.load(pretrained)
    encoder, _ = load_encoder(pretrained / ENCODER_DIR)
    meta = read_encoder_meta(pretrained / ENCODER_DIR)
    method = meta.get("method") or (meta.get("pretrain_config") or {}).get("method") or "pretrained"
    study = study.with_label_fraction(args.label_fraction)
    X, split = study.X, study.split
    X_train, y_train = X[split.labelled_train], study.labels(split.labelled_train)
    X_val, y_val = X[split.validation], study.labels(split.validation)
    X_test, y_test = X[split.test], study.labels(split.test)
    out.mkdir(parents=True, exist_ok=True)
    study.save(out)
    print(f"Fine-tuning on {study.source.name}: {len(X_train):,} labelled training rows "
          f"({100 * args.label_fraction:g}% of {len(split.train):,}), {len(X_val):,} validation, "
          f"{len(X_test):,} test", file=sys.stderr)
    results = []
    for strategy in plan:
        config = FinetuneConfig.from_dict({**base.to_dict(), "strategy": strategy})
        bar = ProgressBar()
        started = time.perf_counter()
        try:
            model = finetune(None if strategy == SUPERVISED else encoder, X_train, y_train, X_val, y_val, config,
                             pretraining=None if strategy == SUPERVISED else method,
                             encoder_config=encoder.config, on_event=bar)
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        model.save(out / MODELS_DIR / model.name)
        results.append(model_metrics(model, X_test, y_test, seconds))
    report = {"dataset": study.source.name, "dataset_sha256": study.source.sha256, "target": study.spec.target,
              "positive_label": study.spec.positive_label, "pretrained": str(pretrained.resolve()),
              "method": method, "label_fraction": args.label_fraction, "n_labelled_train": len(X_train),
              "n_validation": len(X_val), "n_test": len(X_test), "split_seed": split.seed,
              "config": base.to_dict(), "models": results}
    atomic_write(out / METRICS_FILE, json.dumps(report, indent=2))
    rows = [[r["name"], f"{r['n_trainable_params']:,}", f"{r['test']['accuracy']:.4f}",
             f"{r['test']['balanced_accuracy']:.4f}", f"{r['test']['roc_auc']:.4f}", r["epochs_run"] or "-",
             f"{r['seconds']:.1f}"] for r in results]
    print(text_table(rows, ["model", "trainable", "accuracy", "balanced acc", "ROC AUC", "epochs", "seconds"],
                     indent=""))
    print(f"\nTest rows: {len(X_test):,}. Wrote {out / METRICS_FILE} and {out / MODELS_DIR}/")
    return 0


def model_metrics(model, X_test, y_test, seconds: float) -> dict:
    """Test metrics of one model: predictions are probability >= DECISION_THRESHOLD."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score  # heavy: only when run

    score = model.predict_proba(X_test)
    pred = (score >= DECISION_THRESHOLD).astype(int)
    calibration = model.calibration or {}
    return {"name": model.name, "pretraining": model.pretraining, "strategy": model.strategy,
            "n_trainable_params": model.n_trainable_params,
            "test": {"n": int(len(y_test)), "accuracy": float(accuracy_score(y_test, pred)),
                     "balanced_accuracy": float(balanced_accuracy_score(y_test, pred)),
                     "roc_auc": float(roc_auc_score(y_test, score))},
            "validation_calibration": {k: calibration.get(k) for k in ("temperature", "ece_before", "ece_after")},
            "epochs_run": model.extra.get("epochs_run"), "best_epoch": model.extra.get("best_epoch"),
            "probe": model.extra.get("probe"), "seconds": seconds}
