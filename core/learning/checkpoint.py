"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

Two kinds of directory:
- an encoder (`save_encoder` / `load_encoder`): `encoder.safetensors` (the Encoder's state
  dict) + `encoder.json` ({"format", "encoder_config", "pretrain_config", ...extra}).
- a training checkpoint (`save_training_state` / `load_training_state`), written by
  core.learning.pretrain after every epoch: `epoch_NNNN.safetensors` (model, best encoder, optimizer
  state flattened to "optim.<param index>.<name>", RNG states as uint8 tensors) and
  `state.json` (config, epoch, history, optimizer hyper-parameters, the tensors file name).
  `state.json` is replaced last, so it always names a complete tensors file: a crash while
  saving leaves the previous checkpoint intact.

Every file is written with core.files.atomic_write (temporary name in the same directory,
fsync, os.replace). JSON is written with sorted keys so the same
state gives the same bytes. Loading reads safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from core.errors import InputError
from core.files import atomic_write
from core.learning.models import Encoder, EncoderConfig

ENCODER_FORMAT = "equiscope-encoder/1"
TRAINING_FORMAT = "equiscope-pretrain-checkpoint/1"


def write_json_atomic(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=True) + "\n")


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    atomic_write(path, save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
                            metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; InputError if it is not one (nothing is unpickled)."""
    try:
        return load_file(str(path), device="cpu")
    except SafetensorError as error:
        raise InputError(f"'{path}' is not a readable safetensors file ({error})",
                         "Use the files Equiscope wrote; Equiscope never opens pickled models") from None


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


# --- optimizer state --------------------------------------------------------------------

def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch optimizer state_dict -> (tensors "optim.<i>.<name>", JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# --- encoders ---------------------------------------------------------------------------

def save_encoder(directory: Path | str, encoder: Encoder, config: Any = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write `encoder.safetensors` + `encoder.json` into `directory` (created).
    `config` (a PretrainConfig or anything with to_dict) is recorded for provenance."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors_atomic(directory / "encoder.safetensors", encoder.state_dict())
    meta = {"format": ENCODER_FORMAT, "encoder_config": encoder.config.to_dict(),
            "pretrain_config": config.to_dict() if hasattr(config, "to_dict") else config,
            **(extra or {})}
    write_json_atomic(directory / "encoder.json", meta)
    return directory


def load_encoder(directory: Path | str) -> tuple[Encoder, EncoderConfig]:
    """Read an encoder written by `save_encoder` (safetensors; no pickle). Eval mode."""
    directory = Path(directory)
    meta_path, tensors_path = directory / "encoder.json", directory / "encoder.safetensors"
    if not meta_path.is_file() or not tensors_path.is_file():
        raise InputError(f"no saved encoder in '{directory}'",
                         "Give the directory a pretraining run wrote (encoder.json and "
                         "encoder.safetensors)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != ENCODER_FORMAT:
        raise InputError(f"'{meta_path}' is not an Equiscope encoder (format "
                         f"{meta.get('format')!r})", f"Expected format {ENCODER_FORMAT}")
    config = EncoderConfig.from_dict(meta["encoder_config"])
    encoder = Encoder(config)
    encoder.load_state_dict(load_tensors(tensors_path))
    return encoder.eval(), config


def read_encoder_meta(directory: Path | str) -> dict[str, Any]:
    return json.loads((Path(directory) / "encoder.json").read_text())


# --- training checkpoints ---------------------------------------------------------------

def save_training_state(directory: Path, tensors: dict[str, torch.Tensor],
                        meta: dict[str, Any]) -> None:
    """Write one epoch's checkpoint; `meta["epoch"]` names the tensors file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch_{int(meta['epoch']):04d}.safetensors"
    save_tensors_atomic(directory / name, tensors)
    write_json_atomic(directory / "state.json",
                      {**meta, "format": TRAINING_FORMAT, "tensors": name})
    for old in directory.glob("epoch_*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_training_state(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, meta) of the latest complete checkpoint, or None if there is none."""
    state_path = Path(directory) / "state.json"
    if not state_path.is_file():
        return None
    meta = json.loads(state_path.read_text())
    if meta.get("format") != TRAINING_FORMAT:
        raise InputError(f"'{state_path}' is not an Equiscope pretraining checkpoint",
                         "Point --checkpoint-dir at a directory written by pretraining")
    return load_tensors(Path(directory) / meta["tensors"]), meta
