"""What the replicates of one recipe share, and how their progress events are told apart.

The replicates of a recipe are the same training run with another seed: their configs must be
equal in every field but `seed` (a batched run has one schedule, one batch size and one
learning rate for all of them). Every progress event of replicate r carries
{"replicate": r, "replicates": R}, so a live view can draw one loss curve per replicate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

Event = Callable[[dict], None]


class _Seeded(Protocol):
    seed: int

    def to_dict(self) -> dict[str, Any]: ...


def check_replicate_configs(configs: Sequence[_Seeded], what: str) -> None:
    """Raise ValueError unless there is at least one config and all are equal but for `seed`
    (a caller's mistake, not bad user input: the pipeline builds these configs)."""
    if not configs:
        raise ValueError(f"{what} of replicates needs at least one config")
    first = {k: v for k, v in configs[0].to_dict().items() if k != "seed"}
    for r, config in enumerate(configs[1:], start=1):
        other = {k: v for k, v in config.to_dict().items() if k != "seed"}
        if other != first:
            differing = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
            raise ValueError(f"{what}: replicate {r}'s config differs from replicate 0's in {differing}; "
                             "the replicates of a recipe may differ only in their seed")


def replicate_events(on_event: Event | None, replicate: int, replicates: int) -> Event | None:
    """`on_event` with {"replicate", "replicates"} added to every event (None stays None)."""
    if on_event is None:
        return None

    def tagged(event: dict) -> None:
        on_event({**event, "replicate": replicate, "replicates": replicates})

    return tagged
