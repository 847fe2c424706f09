"""The record the estimator produces for one window of one subject."""

from __future__ import annotations

from dataclasses import dataclass, field

CLASS_NAMES: tuple[str, ...] = ("no", "low", "high")
"""Pain classes, in the order of every probability vector in PainMon."""

STATES: tuple[str, ...] = ("calibrating", "ok", "low_quality", "stale", "uncertain")
"""What an estimate may be trusted for, shown beside every number:

* ``calibrating`` — the subject's baseline is still being learnt (the number is shown grey);
* ``ok`` — a valid estimate of a live subject;
* ``low_quality`` — too little usable signal in the window (no number is shown);
* ``stale`` — no new samples for a while by the wall clock (the last number is greyed);
* ``uncertain`` — the window's embeddings lie far outside what the model was trained on.
"""
MODES: tuple[str, ...] = ("relative", "absolute")
"""``relative``: the model sees the window relative to the subject's baseline;
``absolute``: the population model, before or without a baseline."""

BAND_EDGES: tuple[float, float] = (100.0 / 3.0, 200.0 / 3.0)
"""Fixed class bands of the 0-100 index: no < 33.3 <= low < 66.7 <= high. The headline's
class word and colour both come from :func:`band_of`, so they can never disagree."""


def band_of(index: float) -> str | None:
    """The class band (a :data:`CLASS_NAMES` entry) an index falls in; None for NaN."""
    if index != index:  # NaN
        return None
    if index < BAND_EDGES[0]:
        return CLASS_NAMES[0]
    if index < BAND_EDGES[1]:
        return CLASS_NAMES[1]
    return CLASS_NAMES[2]


@dataclass(frozen=True)
class Estimate:
    """One pain estimate. Crosses from the worker thread to the GUI, LSL and MQTT outputs."""

    subject: str
    t_end: float
    """End of the window on the source clock (shared LSL clock)."""
    index: float
    """Pain index 0-100 (see :func:`core.fusion.pain_index` for its definition)."""
    probs: tuple[float, float, float]
    """Probabilities of no / low / high pain."""
    smoothed: float = float("nan")
    """Short moving average of the index (clinical monitors' fast trend)."""
    smoothed_long: float = float("nan")
    """Long moving average of the index (slow trend)."""
    quality: dict[str, float] = field(default_factory=dict)
    """Per-modality signal quality 0-1 of the window."""
    missing: tuple[str, ...] = ()
    """Modalities the model expects but the window lacked (absent or invalid)."""
    valid: bool = True
    """False when too little usable signal: shown greyed, not trusted."""
    model: str = ""
    latency: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage (preprocess, represent, encode, fuse, total)."""
    created: float = float("nan")
    """Shared-clock time when the estimate was produced."""
    state: str = "ok"
    """One of :data:`STATES`."""
    mode: str = "absolute"
    """One of :data:`MODES`."""
    calibration: float = float("nan")
    """Fraction of the subject's baseline learnt so far (0-1; 1 once complete); NaN when the
    model uses no baseline."""
    ood_score: float = float("nan")
    """How far the window's embeddings lie from the model's training distribution, scaled so
    that 1.0 is the model's ``uncertain`` threshold; NaN when the model carries no statistics."""
    hop_s: float = float("nan")
    """Seconds between this subject's estimates when it was made (lengthens, for every
    subject alike, when the machine cannot keep up)."""
    silent_s: float = float("nan")
    """On a ``stale`` estimate: seconds (wall clock) since the subject's newest sample
    arrived, so a display can say why ("no signal for 7 s"); NaN otherwise."""

    @property
    def quality_overall(self) -> float:
        """Mean quality over the modalities present (0 when none)."""
        return sum(self.quality.values()) / len(self.quality) if self.quality else 0.0
