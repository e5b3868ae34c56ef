"""Pretraining under torchrun (PyTorch DDP): one process per GPU, or CPU processes (gloo).

    torchrun --standalone --nproc_per_node=2 -m core.learning.pretrain_ddp \\
        --train X_train.npy [--val X_val.npy] [--layout layout.json] [--config config.json] \\
        [--checkpoint-dir DIR [--resume]] --out DIR

--train   a float32 .npy matrix (n, d), or a .parquet file of encoded float columns
          (streamed by row group).
--layout  JSON {"column_of_feature": [...], "is_numeric": [...]} (FeatureLayout.to_dict);
          default: every feature its own numeric column.
--config  JSON of PretrainConfig fields; `batch_size` is the global batch.
Rank 0 writes DIR/encoder/ (save_encoder) and DIR/result.json (PretrainResult.to_dict).
core.learning.pretrain does the distributed work (process group, synchronised BatchNorm, DDP, sharded
batches); without torchrun this runs as a single process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.learning.checkpoint import save_encoder, write_json_atomic
from core.learning.pretrain import pretrain
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl.views import FeatureLayout
from core.learning.streaming import ParquetChunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.learning.pretrain_ddp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--val", type=Path)
    parser.add_argument("--layout", type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    try:
        train = (ParquetChunks(args.train) if args.train.suffix == ".parquet"
                 else np.load(args.train, allow_pickle=False))
        val = np.load(args.val, allow_pickle=False) if args.val else None
        d = train.n_features if isinstance(train, ParquetChunks) else train.shape[1]
        layout = (FeatureLayout.from_dict(json.loads(args.layout.read_text())) if args.layout
                  else FeatureLayout.all_numeric(d))
        config = (PretrainConfig.from_dict(json.loads(args.config.read_text())) if args.config
                  else PretrainConfig())
        events = (lambda e: print(json.dumps(e), flush=True)) if rank == 0 else None
        result = pretrain(train, val, layout, config, on_event=events,
                          checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        save_encoder(args.out / "encoder", result.encoder, config)
        write_json_atomic(args.out / "result.json", result.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
