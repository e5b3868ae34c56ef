"""`equiscope pretrain`: build a study and pretrain an encoder with a self-supervised method.

Writes into --out:
    study.json      the study (dataset + sha256, spec, split, fitted TabularEncoder, seed)
    encoder/        the pretrained encoder (encoder.safetensors + encoder.json)
    history.json    per-epoch losses, best epoch, rows/s, collapse check, settings
Pretraining uses the study's pretraining rows (train + unlabelled pool, never validation or
test) and the validation rows for early stopping. `equiscope finetune --pretrained OUT`
continues from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from core.cli._progress import ProgressBar
from core.errors import InputError
from core.files import atomic_write
from core.learning.encoder_config import EncoderConfig
from core.learning.pretrain_config import PretrainConfig

ENCODER_DIR = "encoder"
HISTORY_FILE = "history.json"

# One source of the defaults the help shows: the configs (light modules, no torch).
PRETRAIN_DEFAULTS = {f.name: f.default for f in fields(PretrainConfig)}
ENCODER_DEFAULTS = {f.name: f.default for f in fields(EncoderConfig)}


#: The registry's names (core.learning.ssl.method_names(), a test checks they agree), written out
#: because the registry loads torch and the parser must not; `equiscope audit --method` shows them too.
METHOD_NAMES = "scarf, vime, dae, simclr, byol, simsiam, vicreg, barlow, swav, moco, vae, deepcluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a bundled dataset name or a CSV/Parquet/Excel path")
    parser.add_argument("--target", required=True, help="the outcome column")
    parser.add_argument("--sensitive", help="comma-separated sensitive attributes "
                                            "(default: the dataset card's, or columns named like sex, race, age)")
    parser.add_argument("--positive", help="the target value that counts as positive")
    parser.add_argument("--method", required=True,
                        help=f"self-supervised objective: {METHOD_NAMES}")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"maximum pretraining epochs (default {PRETRAIN_DEFAULTS['epochs']})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"rows per step (default {PRETRAIN_DEFAULTS['batch_size']})")
    parser.add_argument("--seed", type=int, default=PRETRAIN_DEFAULTS["seed"],
                        help="seed of the split and of training (default %(default)s)")
    add_encoder_arguments(parser)
    add_threads_argument(parser)
    parser.add_argument("--device", default=PRETRAIN_DEFAULTS["device"],
                        help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, ... (default %(default)s)")
    parser.add_argument("--out", required=True, help="folder for study.json, encoder/ and history.json")


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden-dim", type=int, default=None,
                        help=f"encoder width (default {ENCODER_DEFAULTS['hidden_dim']})")
    parser.add_argument("--depth", type=int, default=None,
                        help=f"encoder blocks (default {ENCODER_DEFAULTS['depth']})")
    parser.add_argument("--embed-dim", type=int, default=None,
                        help=f"embedding width (default {ENCODER_DEFAULTS['embed_dim']})")


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1: these small networks gain little from more, "
                             "and on a busy machine extra threads can make training several times slower)")


def set_threads(threads: int) -> None:
    import torch  # only when a command runs: building the CLI's parser must not load torch

    if threads < 1:
        raise InputError(f"--threads must be 1 or more, got {threads}", "Use --threads 1")
    torch.set_num_threads(threads)


def output_folder(text: str) -> Path:
    out = Path(text).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file", "Give a folder path")
    return out


def run(args: argparse.Namespace) -> int:
    # Heavy (torch, pandas, scikit-learn): loaded when the command runs, not when the CLI builds its parser.
    from core.data import DatasetSpec, open_source
    from core.data.study import Study
    from core.learning.checkpoint import save_encoder
    from core.learning.pretrain import pretrain
    from core.learning.ssl.views import FeatureLayout

    config = PretrainConfig(method=args.method, seed=args.seed,
                            encoder={k: v for k, v in (("hidden_dim", args.hidden_dim), ("depth", args.depth),
                                                       ("embed_dim", args.embed_dim)) if v is not None},
                            device=args.device)
    if args.epochs is not None:
        if args.epochs < 1:
            raise InputError(f"--epochs must be 1 or more, got {args.epochs}", "Use e.g. --epochs 20")
        config.epochs = args.epochs
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    config.validate()  # unknown method, bad batch size, bad encoder shape: before loading any data
    set_threads(args.threads)
    out = output_folder(args.out)

    source = open_source(args.data)
    spec = DatasetSpec(target=args.target, sensitive=tuple(sensitive_attributes(args.sensitive, source)),
                       positive_label=positive_label(args.positive, args.target, source))
    study = Study.create(source, spec, seed=args.seed)
    X, split = study.X, study.split
    out.mkdir(parents=True, exist_ok=True)
    study.save(out)
    print(f"Pretraining {config.method} on {source.name}: {len(split.pretrain):,} rows x {X.shape[1]} features "
          f"(validation {len(split.validation):,} rows)", file=sys.stderr)
    bar = ProgressBar()
    try:
        result = pretrain(X[split.pretrain], X[split.validation], FeatureLayout.from_encoder(study.encoder), config,
                          on_event=bar)
    finally:
        bar.close()
    save_encoder(out / ENCODER_DIR, result.encoder, result.config,
                 extra={"method": config.method, "dataset": source.name, "best_epoch": result.best_epoch})
    summary = result.to_dict()
    atomic_write(out / HISTORY_FILE, json.dumps(summary, indent=2, default=str))
    best = f"{result.best_val_loss:.4f}" if result.best_val_loss is not None else "n/a"
    print(f"{config.method}: {result.epochs_completed} epochs (best {result.best_epoch}, validation loss {best}), "
          f"{result.rows_per_second:,.0f} rows/s on {result.device}, {result.elapsed_seconds:.0f} s"
          f"{'; stopped early' if result.stopped_early else ''}")
    if result.collapse.get("collapsed"):
        print("warning: the encoder collapsed (its embeddings barely vary); see history.json", file=sys.stderr)
    print(f"Wrote {out / 'study.json'}, {out / ENCODER_DIR}/ and {out / HISTORY_FILE}")
    return 0


def sensitive_attributes(text: str | None, source) -> list[str]:
    """--sensitive, else the bundled dataset card's, else names that look protected."""
    if text:
        return [s.strip() for s in text.split(",") if s.strip()]
    if source.card:
        return list(source.card.sensitive)
    from core.data.spec import suggest_sensitive  # pandas: only when no attribute was given

    suggested = suggest_sensitive(source.frame)
    if not suggested:
        raise InputError("No sensitive attribute given and none recognised by name",
                         "Give --sensitive, e.g. --sensitive sex,race")
    return suggested


def positive_label(text: str | None, target: str, source) -> str | None:
    if text:
        return text
    if source.card and target == source.card.target:
        return str(source.card.positive_label)
    return None
