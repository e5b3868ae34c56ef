"""The interface every SSL objective implements.

An objective owns the encoder it pretrains plus its heads (projection, predictor,
reconstruction, prototypes) and, for BYOL, a target network. One training step is

    views = objective.make_views(x, generator)   # batched random views of the batch x
    loss, logs = objective(*views)               # forward = compute_loss(views)
    loss.backward(); optimizer.step()
    objective.after_step(step, total_steps)      # e.g. BYOL's EMA update
and `objective.before_epoch(embed_rows)` starts every epoch (DeepCluster's reassignment).

Views are made on the whole (global) batch and every view has the batch on dim 0, so under
DDP each rank makes identical views from the same generator and keeps its slice of rows;
`compute_loss` gathers what it needs across ranks (core.learning.ssl.dist). `loss(x, generator)`
does both steps in one call. `logs` holds detached scalar tensors (no device sync).

`TwoViewObjective` is the base of the objectives that compare two independently corrupted
views of each row (SimCLR, BYOL, SimSiam, VICReg, Barlow Twins, SwAV).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from core.errors import InputError
from core.learning.models import Encoder, EncoderConfig
from core.learning.ssl.views import FeatureLayout, corrupted_view


class Objective(nn.Module):
    """Base class: subclasses set `name`, `paper`, `defaults` and implement
    `make_views` and `compute_loss`."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout,
                 **params: Any) -> None:
        super().__init__()
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise InputError(f"unknown parameter(s) {unknown} for method '{self.name}'",
                             f"Parameters of '{self.name}' are: {sorted(self.defaults)}")
        if layout.n_features != encoder_config.input_dim:
            raise InputError(
                f"feature layout has {layout.n_features} features but the encoder expects "
                f"{encoder_config.input_dim}", "Build both from the same encoded matrix")
        self.params = {**self.defaults, **params}
        self.encoder_config = encoder_config
        self.encoder = Encoder(encoder_config)
        self.n_columns = layout.n_columns
        # Buffers move with .to(device); float mask because gloo broadcasts of bool buffers
        # are not portable. Non-persistent: the layout is not model state.
        self.register_buffer("layout_column", layout.column_of_feature.clone(), persistent=False)
        self.register_buffer("layout_numeric", layout.is_numeric.float(), persistent=False)

    @property
    def layout(self) -> FeatureLayout:
        return FeatureLayout(self.layout_column, self.layout_numeric.bool())

    def make_views(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def compute_loss(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.compute_loss(*views)

    def loss(self, x: torch.Tensor, generator: torch.Generator
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.compute_loss(*self.make_views(x, generator))

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step (step counts from 0)."""

    def before_epoch(self, embed_rows: Callable[[], torch.Tensor]) -> list[nn.Parameter]:
        """Called at the start of every epoch (a fresh run's first: before its initial validation);
        `embed_rows()` gives the encoder's eval-mode embeddings of all training rows. Returns the
        parameters it re-initialised, whose optimizer state the loop drops. DeepCluster's k-means;
        the others do nothing."""
        return []

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


class TwoViewObjective(Objective):
    """An objective on two independently corrupted (+ numeric noise) views of each row."""

    defaults: ClassVar[dict[str, Any]] = {"corruption_rate": 0.3, "noise_std": 0.1}

    def make_views(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.params
        return (corrupted_view(x, self.layout, p["corruption_rate"], p["noise_std"], generator),
                corrupted_view(x, self.layout, p["corruption_rate"], p["noise_std"], generator))
