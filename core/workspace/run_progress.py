"""Where a background run stands, read from its store record and progress events (core.workspace.store).

    run_progress(run) -> dict          fraction, stage, message, elapsed and a rough ETA
    loss_curves(events) -> frames      live pretraining / fine-tuning loss curves
    queue_position(run_id, queued)     place of a queued run in the workspace's queue

Read-only helpers for the Train page; nothing here talks to the worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import pandas as pd


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def loss_curves(events: Iterable[Mapping]) -> dict[str, pd.DataFrame]:
    """Loss curves from a run's progress events.

    "pretrain": columns replicate (0 for runs before replicates trained side by side), epoch
    (fractional: step / total_steps * epochs), loss (the batch loss when the event was sent; at
    an epoch's end, the epoch's mean training loss), val_loss (validation loss, only at epochs'
    ends). Fine-tuned models, keyed by model name: replicate, epoch, loss, val_loss (one row per
    reported epoch of each replicate)."""
    pretrain, finetune = [], {}
    for event in events:
        stage = event.get("stage")
        if stage == "pretrain" and event.get("loss") is not None and event.get("total_steps"):
            epochs = event.get("epochs") or 1
            pretrain.append({"replicate": int(event.get("replicate") or 0),
                             "epoch": event["step"] / event["total_steps"] * epochs, "loss": float(event["loss"]),
                             "val_loss": _num(event.get("val_loss"))})
        elif stage == "finetune" and event.get("model") and event.get("loss") is not None:
            finetune.setdefault(event["model"], []).append(
                {"replicate": int(event.get("replicate") or 0), "epoch": event.get("epoch"),
                 "loss": float(event["loss"]), "val_loss": _num(event.get("val_loss"))})
    columns = ["replicate", "epoch", "loss", "val_loss"]
    curves = {"pretrain": pd.DataFrame(pretrain, columns=columns)}
    curves.update({name: pd.DataFrame(rows, columns=columns) for name, rows in finetune.items()})
    return curves


def run_progress(run: Mapping, now: datetime | None = None) -> dict:
    """Where a run stands: status, fraction (0..1), stage, message, epoch/epochs, elapsed_s and
    eta_s. ETA = elapsed x (1 - fraction) / fraction, from the stage weights of the pipeline's
    progress bar, so it is a rough guide; None until 3% is done or for a run not running."""
    progress = run.get("progress") or {}
    now = now or datetime.now(timezone.utc)
    started = _parse_time(run.get("started_at"))
    finished = _parse_time(run.get("finished_at"))
    elapsed = None
    if started is not None:
        elapsed = max(((finished or now) - started).total_seconds(), 0.0)
    fraction = progress.get("fraction")
    fraction = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
    eta = None
    if run.get("status") == "running" and fraction is not None and fraction >= 0.03 and elapsed:
        eta = elapsed * (1 - fraction) / fraction
    return {"status": run.get("status"), "fraction": fraction, "stage": progress.get("stage"),
            "message": progress.get("message"), "epoch": progress.get("epoch"), "epochs": progress.get("epochs"),
            "model": progress.get("model"), "elapsed_s": elapsed, "eta_s": eta}


def queue_position(run_id: str, queued: Iterable[Mapping]) -> int | None:
    """1-based place of a queued run among the workspace's queued runs (oldest first), or None."""
    for index, run in enumerate(queued, start=1):
        if run["id"] == run_id:
            return index
    return None
