"""The record the estimator produces for one window of one subject."""

from __future__ import annotations

from dataclasses import dataclass, field

CLASS_NAMES: tuple[str, ...] = ("no", "low", "high")
"""Pain classes, in the order of every probability vector in PainMon."""


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

    @property
    def quality_overall(self) -> float:
        """Mean quality over the modalities present (0 when none)."""
        return sum(self.quality.values()) / len(self.quality) if self.quality else 0.0
