"""A small stderr progress bar (no tqdm dependency) for long training steps."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Counts work done and redraws one stderr line at most every ``interval`` seconds.

    Long steps (embedding thousands of images on a CPU) must show they are alive and how
    long is left; a full logging line per item would drown the log instead.
    """

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, interval: float = 0.5, enabled: bool = True
    ):
        self.total = max(0, int(total))
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.enabled = enabled
        self.done = 0
        self._t0 = time.monotonic()
        self._last = -float("inf")
        self._drawn = -1  # ``done`` at the last redraw

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= self.interval or self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn = self.done
        elapsed = now - self._t0
        frac = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(width * min(1.0, frac)) + "-" * (width - int(width * min(1.0, frac)))
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        self.stream.write(
            f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.0f}s elapsed, ~{eta:4.0f}s left"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            if self._drawn != self.done:
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(items: Iterable[T], total: int, label: str, enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` while drawing a :class:`Progress` bar."""
    with Progress(total, label, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update()
