"""A small progress bar on stderr for long commands (pretrain, finetune, audit); no tqdm.

It draws the progress events of core.learning.pretrain / core.learning.finetune / core.run.pipeline (dicts with the
optional keys stage, model, message, epoch, epochs, step, total_steps, loss, val_loss,
rows_per_second, fraction):

    finetune scarf+full  epoch 3/100  step 40/124  [######------------------]  24%  loss 0.4123  val 0.4011  12,345 rows/s  ETA 0:12

ETA = elapsed * (1 - fraction) / fraction, measured from the first event of the current
stage and model. On a terminal the line is redrawn in place (at most every `min_interval`
seconds) and cut to the terminal's width (a wrapped line cannot be redrawn); into a file or
pipe a line is written for the first event of a stage, at the end of each epoch and for
each new message, so logs stay readable. Events with stage "warning" get a line of their own.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class ProgressBar:
    """Call `update(event)` (or the bar itself) for every event, `close()` at the end."""

    def __init__(self, stream: TextIO | None = None, width: int = 24, min_interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._key: tuple | None = None
        self._started = 0.0
        self._last_fraction = 0.0
        self._last_draw = 0.0
        self._last_line_key: tuple | None = None
        self._drawn = 0  # length of the line currently on screen (terminal only)

    def __call__(self, event: dict) -> None:
        self.update(event)

    def update(self, event: dict) -> None:
        if event.get("stage") == "warning":
            self._clear()
            self.stream.write(f"warning: {event.get('message', '')}\n")
            self.stream.flush()
            return
        now = time.monotonic()
        key = (event.get("stage"), event.get("model"))
        fraction = event.get("fraction")
        if key != self._key or (fraction is not None and fraction < self._last_fraction):
            self._key, self._started, self._last_fraction = key, now, 0.0
        if fraction is not None:
            self._last_fraction = float(fraction)
        line = self.render(event, now - self._started)
        if self.interactive:
            final = fraction is not None and fraction >= 1.0
            if final or now - self._last_draw >= self.min_interval:
                self._last_draw = now
                line = line[:max(20, shutil.get_terminal_size().columns - 1)]
                padding = " " * max(0, self._drawn - len(line))
                self.stream.write("\r" + line + padding)
                self.stream.flush()
                self._drawn = len(line)
        else:  # a log, not a screen: the first event of a stage, each epoch's end, each new message
            line_key = (key, event.get("epoch"), event.get("message"))
            first = self._last_line_key is None or line_key[0] != self._last_line_key[0]
            epoch_end = event.get("val_loss") is not None or "val_loss" in event
            message = event.get("epoch") is None and line_key != self._last_line_key
            if first or epoch_end or message:
                self._last_line_key = line_key
                self.stream.write(line + "\n")
                self.stream.flush()

    def render(self, event: dict, elapsed: float) -> str:
        """The text of one progress line for `event`, `elapsed` seconds into its stage."""
        parts = [str(event.get("stage") or "progress")]
        if event.get("model"):
            parts[0] += f" {event['model']}"
        if event.get("epoch") is not None and event.get("epochs"):
            parts.append(f"epoch {event['epoch']}/{event['epochs']}")
        if event.get("step") is not None and event.get("total_steps"):
            parts.append(f"step {event['step']}/{event['total_steps']}")
        fraction = event.get("fraction")
        if fraction is not None:
            fraction = min(max(float(fraction), 0.0), 1.0)
            filled = int(round(fraction * self.width))
            parts.append(f"[{'#' * filled}{'-' * (self.width - filled)}] {100 * fraction:3.0f}%")
        if event.get("loss") is not None:
            parts.append(f"loss {event['loss']:.4f}")
        if event.get("val_loss") is not None:
            parts.append(f"val {event['val_loss']:.4f}")
        if event.get("rows_per_second"):
            parts.append(f"{event['rows_per_second']:,.0f} rows/s")
        if fraction is not None and 0 < fraction < 1 and elapsed > 0:
            parts.append(f"ETA {format_duration(elapsed * (1 - fraction) / fraction)}")
        if event.get("epoch") is None and event.get("message"):
            parts.append(str(event["message"]))
        return "  ".join(parts)

    def close(self) -> None:
        """End the line on a terminal (idempotent)."""
        if self.interactive and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = 0

    def _clear(self) -> None:
        if self.interactive and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0


def format_duration(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
