"""TrainedClassifier: an encoder + a logistic head + a temperature, saved without pickle.

    z(x) = head(encoder(x))               logit of the positive label (encoder and head in eval mode)
    predict_proba(x) = sigmoid(z(x) / T)  T from temperature scaling on validation rows (1 if none)
    embed(x) = encoder(x)                 (n, embed_dim) float32, the head's input

On disk (folder DIR):
    DIR/model.safetensors   encoder.* and head.* tensors (weights and BN running statistics)
    DIR/model.json          name, pretraining, strategy, n_trainable_params, encoder config,
                            temperature, calibration report, fine-tuning config, history
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from core import __version__
from core.data.features import check_encoded_rows
from core.errors import InputError
from core.files import atomic_write
from core.learning.checkpoint import load_tensors, save_tensors_atomic
from core.learning.models import ClassifierHead, Encoder, EncoderConfig
from core.vocabulary import DECISION_THRESHOLD

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
FORMAT_VERSION = 1
INFERENCE_BATCH = 8192


class TrainedClassifier:
    """A fine-tuned (or supervised) binary classifier; the contract in docs/interfaces.md."""

    def __init__(self, *, name: str, pretraining: str | None, strategy: str, encoder: Encoder,
                 head: ClassifierHead, n_trainable_params: int, temperature: float = 1.0,
                 history: list[dict] | None = None, calibration: dict | None = None,
                 config: dict | None = None, extra: dict | None = None) -> None:
        self.name = name
        self.pretraining = pretraining
        self.strategy = strategy
        self.encoder = encoder.cpu().eval()
        self.head = head.cpu().eval()
        self.n_trainable_params = int(n_trainable_params)
        self.temperature = float(temperature)
        self.history = list(history or [])
        self.calibration = calibration
        self.config = dict(config or {})
        self.extra = dict(extra or {})

    @property
    def input_dim(self) -> int:
        return self.encoder.config.input_dim

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated logits z(x), float64 (n,)."""
        X = self._check_input(X)
        out = np.empty(len(X), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(X), INFERENCE_BATCH):
                batch = torch.from_numpy(X[start:start + INFERENCE_BATCH])
                out[start:start + len(batch)] = self.head(self.encoder(batch)).double().numpy()
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of the positive label, sigmoid(z / T), float64 (n,)."""
        return expit(self.logits(X) / self.temperature)

    def predict(self, X: np.ndarray, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
        """0/1 predictions: predict_proba(X) >= threshold (int64)."""
        return (self.predict_proba(X) >= threshold).astype(np.int64)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The encoder's representation (eval mode), float32 (n, embed_dim)."""
        X = self._check_input(X)
        out = np.empty((len(X), self.encoder.embed_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(X), INFERENCE_BATCH):
                batch = torch.from_numpy(X[start:start + INFERENCE_BATCH])
                out[start:start + len(batch)] = self.encoder(batch).numpy()
        return out

    def _check_input(self, X: np.ndarray) -> np.ndarray:
        return check_encoded_rows(X, self.input_dim, self.name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON part of the saved model (no tensors)."""
        return {"format_version": FORMAT_VERSION, "equiscope_version": __version__, "name": self.name,
                "pretraining": self.pretraining, "strategy": self.strategy,
                "n_trainable_params": self.n_trainable_params, "encoder_config": self.encoder.config.to_dict(),
                "temperature": self.temperature, "calibration": self.calibration, "config": self.config,
                "history": self.history, "extra": self.extra}

    def save(self, folder: str | Path) -> Path:
        """Write model.safetensors and model.json into `folder` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in self.encoder.state_dict().items()}
        tensors |= {f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        save_tensors_atomic(folder / WEIGHTS_FILE, tensors,
                            metadata={"name": self.name, "format_version": str(FORMAT_VERSION)})
        atomic_write(folder / META_FILE, json.dumps(self.to_dict(), indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TrainedClassifier:
        """Rebuild a saved model; the tensors must match the saved encoder shape exactly."""
        folder = Path(folder)
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        if not meta_path.exists() or not weights_path.exists():
            raise InputError(f"No saved model in '{folder}' ({META_FILE} and {WEIGHTS_FILE} expected)",
                             "Point to a folder written by TrainedClassifier.save, e.g. OUT/models/NAME")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise InputError(f"Model format {meta.get('format_version')} in '{folder}' is not supported",
                             f"This Equiscope reads format {FORMAT_VERSION}; retrain the model")
        encoder = Encoder(EncoderConfig.from_dict(meta["encoder_config"]))
        head = ClassifierHead(encoder.embed_dim)
        tensors = load_tensors(weights_path)  # InputError for anything but safetensors
        encoder.load_state_dict({k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")})
        head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")})
        return cls(name=meta["name"], pretraining=meta["pretraining"], strategy=meta["strategy"], encoder=encoder,
                   head=head, n_trainable_params=meta["n_trainable_params"], temperature=meta["temperature"],
                   history=meta.get("history"), calibration=meta.get("calibration"), config=meta.get("config"),
                   extra=meta.get("extra"))

    def __repr__(self) -> str:
        return (f"TrainedClassifier(name={self.name!r}, strategy={self.strategy!r}, "
                f"n_trainable_params={self.n_trainable_params}, temperature={self.temperature:.3f})")
