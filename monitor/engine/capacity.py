"""How many subjects this machine serves, and what the engine does when it is asked for more.

A live monitor that cannot keep up has two ways to fall behind. Skipping whichever windows
happen to be stale when the worker comes round (what the engine's catch-up did alone) gives
some subjects fresh estimates and others none for a while, at random and without saying
so. Lengthening *every* subject's hop alike keeps the ward uniform and can be shown: "hop
2.0 s for all 5 subjects". This module holds the pieces that make the second possible:

* :func:`measure_throughput`: at start, a short timed pass of the loaded estimator at the
  batch sizes the engine will use (one window, and the windows that fill one encoder call);
* :class:`Capacity`: images/s -> "capacity: 3 subjects at 1 Hz with 8 images each";
* :class:`HopGovernor`: a moving measure of throughput (images/s of the worker's busy time,
  from every batch it runs) and the number of subjects being served -> the effective hop
  ``max(hop, sum of the subjects' images / images_per_s * margin)``, rounded up to a
  quarter of the configured hop. It lengthens at once when the load needs it and shortens
  only after the lighter load has held for a few hops, so it does not flap.

Pure computation and timing; no threads (the engine calls it from its own).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

CAPACITY_MARGIN = 1.25
"""Work the engine plans for per unit of measured throughput: 25 % headroom for the GUI,
the sources, timing jitter and a neighbour on a shared CPU."""
HOP_STEP = 0.25
"""A lengthened hop is a multiple of this share of the configured hop (1.25, 1.5, ... s at 1 s)."""
RATE_SMOOTHING = 0.3
"""Weight of the newest batch in the moving images/s (about the last 3-4 batches count)."""
RECOVER_HOPS = 3.0
"""A shorter hop is taken only after the load has allowed it for this many (current) hops."""
MEASURE_BUDGET_S = 1.5
"""Seconds the start-up measurement may spend on its larger batch (besides one window)."""


@dataclass(frozen=True)
class Capacity:
    """What the machine sustains for one model layout at one hop."""

    images_per_s: float
    """Images encoded per second of the worker's time (rendering and fusion included)."""
    images_per_subject: int
    """Images of one window of one subject (modalities x representations)."""
    hop_s: float
    """The configured hop."""
    batch: int = 1
    """Windows per pass the rate was measured at."""
    margin: float = CAPACITY_MARGIN

    @property
    def subjects(self) -> int:
        """Subjects served at ``hop_s`` with every estimate on time (0 when not even one)."""
        if not (self.images_per_s > 0 and math.isfinite(self.images_per_s)):
            return 0
        return int(math.floor(self.images_per_s * self.hop_s / (self.images_per_subject * self.margin) + 1e-9))

    def describe(self) -> str:
        """"capacity: 3 subjects at 1 Hz with 8 images each (24.1 images/s, batch 4)"."""
        n = self.subjects
        return (f"capacity: {n} subject{'' if n == 1 else 's'} at {rate_text(self.hop_s)} with "
                f"{self.images_per_subject} images each ({self.images_per_s:.1f} images/s, batch {self.batch})")


def rate_text(hop_s: float) -> str:
    """A hop as a rate: 1 s -> "1 Hz", 0.5 s -> "2 Hz", 4 s -> "0.25 Hz"."""
    return f"{1.0 / hop_s:.3g} Hz"


def hop_text(hop_s: float) -> str:
    """A hop for people: "2.0 s", "1.25 s", "0.05 s"."""
    return f"{hop_s:.1f} s" if abs(hop_s * 10 - round(hop_s * 10)) < 1e-6 else f"{hop_s:.3g} s"


def load_text(hop_s: float, base_hop_s: float, subjects: int) -> str:
    """What the status bar and the health line say about the load: "" when the hop is the
    configured one, else "degraded: hop 2.0 s for all 5 subjects"."""
    if not (math.isfinite(hop_s) and hop_s > base_hop_s + 1e-9):
        return ""
    return f"degraded: hop {hop_text(hop_s)} for {subjects_text(subjects)}"


def subjects_text(n: int) -> str:
    """"all 5 subjects", "the 1 subject"."""
    return "the 1 subject" if n == 1 else f"all {n} subjects"


def measurement_batches(images_per_subject: int, encoder_batch: int, max_batch: int | None = None) -> tuple[int, int]:
    """The two batch sizes (windows) the start-up measurement times: one window (a lone
    subject), and the windows that fill one encoder call (a ward's subjects, cut on the same
    grid point, arrive together), at most ``max_batch``."""
    full = max(1, math.ceil(encoder_batch / max(1, images_per_subject)))
    if max_batch is not None:
        full = max(1, min(full, int(max_batch)))
    return 1, full


def measure_throughput(
    run: Callable[[int], object],
    images_per_subject: int,
    batches: Iterable[int],
    budget_s: float = MEASURE_BUDGET_S,
) -> dict[int, float]:
    """Images/s of ``run(n_windows)`` at each batch size, smallest first: the better of two
    timed passes where the time budget allows (a neighbour's burst on a shared CPU must not
    set the engine's plans for the first minutes), else one. A batch the budget cannot
    afford (judged from the smaller one's time) is shrunk to what fits, so a slow machine
    still starts in seconds. Call it on a warm estimator."""
    rates: dict[int, float] = {}
    per_window = math.nan
    for b in sorted(set(int(x) for x in batches)):
        if math.isfinite(per_window) and per_window > 0:
            b = max(1, min(b, int(budget_s / per_window)))
        if b in rates:
            continue
        best = math.inf
        for attempt in range(2):
            if attempt and best * 2 > budget_s:
                break
            t0 = time.perf_counter()
            run(b)
            best = min(best, max(time.perf_counter() - t0, 1e-9))
        rates[b] = b * images_per_subject / best
        per_window = best / b
    return rates


class HopGovernor:
    """The effective hop of every subject, from a moving throughput and the current load.

    Args:
        hop_s: the configured hop (never gone below).
        images_per_subject: images of a full window (a subject not yet seen counts this).
        margin: planned work per unit of measured throughput (:data:`CAPACITY_MARGIN`).
        step: a lengthened hop is a multiple of ``step * hop_s``.
        recover_hops: hops a lighter load must hold before the hop shortens.
    """

    def __init__(
        self,
        hop_s: float,
        images_per_subject: int,
        *,
        margin: float = CAPACITY_MARGIN,
        step: float = HOP_STEP,
        recover_hops: float = RECOVER_HOPS,
        smoothing: float = RATE_SMOOTHING,
    ):
        if hop_s <= 0 or images_per_subject <= 0 or margin <= 0 or step <= 0:
            raise ValueError("hop, images per subject, margin and step must be positive")
        self.base_hop_s = float(hop_s)
        self.images_per_subject = int(images_per_subject)
        self.margin = float(margin)
        self.step_s = float(step) * self.base_hop_s
        self.recover_hops = float(recover_hops)
        self.smoothing = float(smoothing)
        self.hop_s = self.base_hop_s
        """The effective hop now."""
        self.images_per_s = math.nan
        """Moving images/s (NaN until measured)."""
        self.batch = 1
        """Windows per pass of the start-up measurement used for the capacity statement."""
        self.active = 0
        """Subjects counted at the last :meth:`update`."""
        self._images: dict[str, int] = {}
        self._lighter_since = math.nan

    # --- throughput -------------------------------------------------------------------
    def seed(self, rates: Mapping[int, float]) -> None:
        """Start from the start-up measurement (:func:`measure_throughput`): the rate of
        the largest batch measured, the one a loaded ward runs at."""
        if not rates:
            return
        self.batch = max(rates)
        self.images_per_s = float(rates[self.batch])

    def observe_batch(self, images: Sequence[tuple[str, int]], seconds: float) -> None:
        """One pass of the worker: ``(subject, images)`` of each window it encoded, in
        ``seconds`` of its time."""
        total = 0
        for subject, n in images:
            self._images[subject] = n
            total += n
        if total <= 0 or not seconds > 0:
            return
        rate = total / seconds
        if math.isnan(self.images_per_s):
            self.images_per_s = rate
        else:
            self.images_per_s += self.smoothing * (rate - self.images_per_s)

    def forget(self, subject: str) -> None:
        self._images.pop(subject, None)

    # --- decisions --------------------------------------------------------------------
    def required_s(self, subjects: Iterable[str]) -> float:
        """Seconds of worker time one round of ``subjects`` needs, with the margin."""
        if not (self.images_per_s > 0):
            return 0.0
        images = sum(self._images.get(s, self.images_per_subject) for s in subjects)
        return images / self.images_per_s * self.margin

    def target_s(self, subjects: Iterable[str]) -> float:
        """The hop this load needs: the configured one, or longer, in whole steps."""
        need = self.required_s(subjects)
        if need <= self.base_hop_s:
            return self.base_hop_s
        return math.ceil(need / self.step_s - 1e-9) * self.step_s

    def update(self, now: float, subjects: Iterable[str]) -> float:
        """The effective hop for the subjects served now (their ids); lengthens at once,
        shortens once the lighter load has held for ``recover_hops`` hops."""
        subjects = list(subjects)
        self.active = len(subjects)
        if len(self._images) > 2 * len(subjects) + 16:  # subjects that left: bounded memory
            served = set(subjects)
            self._images = {s: n for s, n in self._images.items() if s in served}
        target = self.target_s(subjects)
        if target > self.hop_s + 1e-9:
            self.hop_s = target
            self._lighter_since = math.nan
        elif target < self.hop_s - 1e-9:
            if math.isnan(self._lighter_since):
                self._lighter_since = now
            elif now - self._lighter_since >= self.recover_hops * self.hop_s:
                self.hop_s = target
                self._lighter_since = math.nan
        else:
            self._lighter_since = math.nan
        return self.hop_s

    @property
    def degraded(self) -> bool:
        return self.hop_s > self.base_hop_s + 1e-9

    def capacity(self) -> Capacity:
        return Capacity(self.images_per_s, self.images_per_subject, self.base_hop_s, self.batch, self.margin)


def images_of(modalities: int, representations: int, missing: int, valid: bool) -> int:
    """Images one window cost: its present modalities x the representations."""
    return max(0, modalities - missing) * representations if valid else 0


def summary(rates: Mapping[int, float]) -> str:
    """"8.1 images/s at batch 1, 9.6 at batch 4"."""
    parts = [f"{v:.1f} images/s at batch {b}" if i == 0 else f"{v:.1f} at batch {b}"
             for i, (b, v) in enumerate(sorted(rates.items()))]
    return ", ".join(parts) if parts else "not measured"


__all__ = [
    "CAPACITY_MARGIN",
    "Capacity",
    "HopGovernor",
    "hop_text",
    "images_of",
    "load_text",
    "measure_throughput",
    "measurement_batches",
    "rate_text",
    "subjects_text",
    "summary",
]
