"""What each estimate may be trusted for: one state machine per subject.

Every estimate leaves the engine with a ``state`` (:data:`core.estimate.STATES`) and a
``mode`` (:data:`core.estimate.MODES`), decided here and nowhere else, so the dashboard,
the LSL and MQTT outputs, recordings and CSV exports all say the same thing.

The state (:data:`core.estimate.STATES`) of an estimate computed from a window, most
severe first:

1. ``low_quality`` — the window had too little usable signal (``valid`` False) or the
   model's output is not finite: no number is shown;
2. ``uncertain`` — the window's embeddings lie beyond the model's training distribution
   (``ood_score`` > 1; NaN = the model carries no statistics, never uncertain);
3. ``calibrating`` — the subject's baseline is still being learnt (``calibration`` < 1;
   NaN = the model uses no baseline, never calibrating): the number is shown grey;
4. ``ok``.

``stale`` is not a property of a window but of the *absence* of windows: a subject whose
every stream has delivered nothing for more than :data:`STALE_AFTER_S` seconds **by the
wall clock** (time of arrival — the data's own timestamps stop with the data, so they can
never say that the data stopped). The engine then keeps emitting, once per hop, a
state-only estimate (:func:`stale_estimate`: state ``stale``, every number NaN, no
probabilities, ``silent_s`` the seconds since the subject's newest sample arrived). A
status that travels as an ordinary estimate reaches every consumer without a second
channel: the dashboard greys its last number and says why, MQTT publishes
``"state": "stale"`` with null numbers, LSL and recordings get a row of NaN with the stale
state code. When data return, the next window's estimate carries its own state again.

The mode follows the estimator (the baseline tracker decides whether a window was seen
relative to the subject's baseline); anything else than a known mode reads ``absolute``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from core.distribution import outside
from core.estimate import MODES, Estimate

STALE_AFTER_S = 5.0
"""Seconds without a new sample of a subject (wall clock) before its estimates read ``stale``."""


def window_state(est: Estimate) -> str:
    """The state of an estimate computed from a window (see the module docstring)."""
    if not est.valid or not math.isfinite(est.index) or not all(math.isfinite(p) for p in est.probs):
        return "low_quality"
    if outside(est.ood_score):  # NaN: no statistics, no verdict
        return "uncertain"
    if est.calibration < 1.0:  # NaN compares False: no baseline in use
        return "calibrating"
    return "ok"


def mode_of(est: Estimate) -> str:
    """The estimate's mode, ``absolute`` unless the estimator said ``relative``."""
    return est.mode if est.mode in MODES else "absolute"


def stale_estimate(last: Estimate, t_end: float, silent_s: float, created: float) -> Estimate:
    """A state-only estimate saying ``last.subject`` has been silent for ``silent_s`` s.

    Numbers are NaN (nothing was measured), the mode and model are the last estimate's,
    and every modality counts as missing."""
    nan = float("nan")
    return Estimate(
        subject=last.subject,
        t_end=t_end,
        index=nan,
        probs=(nan, nan, nan),
        smoothed=nan,
        smoothed_long=nan,
        quality={},
        missing=tuple(sorted({*last.quality, *last.missing})),
        valid=False,
        model=last.model,
        created=created,
        state="stale",
        mode=mode_of(last),
        calibration=last.calibration,
        hop_s=last.hop_s,
        silent_s=silent_s,
    )


@dataclass
class SubjectState:
    """The state machine of one subject: gives window estimates their state and mode, and
    says when the subject has gone stale (and when to repeat the stale status)."""

    stale_after_s: float = STALE_AFTER_S
    state: str = "ok"
    """State of the newest estimate delivered for the subject."""
    last_arrival: float = math.nan
    """Wall-clock time (shared clock) the subject's newest sample arrived."""
    last_stale_emit: float = math.nan
    last: Estimate | None = None
    """Newest estimate computed from a window."""

    def arrived(self, when: float) -> None:
        """Samples of the subject arrived at ``when`` (wall clock)."""
        if not self.last_arrival >= when:
            self.last_arrival = when

    def on_window(self, est: Estimate) -> Estimate:
        """The window estimate with its state and mode set (and remembered)."""
        out = dataclasses.replace(est, state=window_state(est), mode=mode_of(est))
        self.state = out.state
        self.last = out
        self.last_stale_emit = math.nan
        return out

    def silent_for(self, now: float) -> float:
        return now - self.last_arrival if math.isfinite(self.last_arrival) else math.nan

    def check_stale(self, now: float, every_s: float) -> Estimate | None:
        """A stale estimate when the subject has been silent for more than
        ``stale_after_s`` and the last stale status is ``every_s`` old (else None)."""
        if self.last is None:
            return None  # never estimated: nothing is on show that could look live
        silent = self.silent_for(now)
        if not silent > self.stale_after_s:
            return None
        if self.state == "stale" and now - self.last_stale_emit < every_s:
            return None
        self.state = "stale"
        self.last_stale_emit = now
        return stale_estimate(self.last, t_end=now, silent_s=silent, created=now)

