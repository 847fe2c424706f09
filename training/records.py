"""Records that cross training modules: labelled recordings and their pain-level track.

Every dataset (AI4PAIN CSVs, XDF sessions, simulated subjects) is turned into the same
:class:`Recording`: per-modality samples with timestamps plus a piecewise-constant pain
level over time. Windowing, caching and evaluation then never care where data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.estimate import CLASS_NAMES

UNLABELLED = -1
"""Level of time spans that must not be trained on (e.g. AI4PAIN 'rest' when skipped)."""

LEVEL_OF = {name: i for i, name in enumerate(CLASS_NAMES)}

TARGETS = ("class", "continuous")
"""What a head learns from a recording: its pain ``level`` track (``class``) or its
self-reported ``ratings`` (``continuous``). Here, torch-free, so the commands can offer them."""


@dataclass
class Signal:
    """One modality's samples: ``values`` (n,), ``timestamps`` (n,) seconds, nominal ``rate``."""

    values: np.ndarray
    timestamps: np.ndarray
    rate: float

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        if self.values.shape != self.timestamps.shape:
            raise ValueError(f"{self.values.shape[0]} samples but {self.timestamps.shape[0]} timestamps")

    @classmethod
    def regular(cls, values: np.ndarray, rate: float, t0: float = 0.0) -> Signal:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        return cls(values, t0 + np.arange(values.shape[0]) / rate, rate)

    @property
    def start(self) -> float:
        return float(self.timestamps[0]) if self.timestamps.size else float("nan")

    @property
    def end(self) -> float:
        return float(self.timestamps[-1]) if self.timestamps.size else float("nan")


@dataclass
class LevelTrack:
    """Piecewise-constant pain level: ``levels[i]`` holds from ``times[i]`` to ``times[i+1]``."""

    times: np.ndarray
    levels: np.ndarray

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.levels = np.asarray(self.levels, dtype=np.int64).reshape(-1)
        if self.times.shape != self.levels.shape or self.times.size == 0:
            raise ValueError("a level track needs as many (>= 1) change times as levels")
        if np.any(np.diff(self.times) < 0):
            raise ValueError("level change times must be non-decreasing")

    @classmethod
    def constant(cls, level: int, start: float) -> LevelTrack:
        return cls(np.array([start]), np.array([level]))

    def level_at(self, t: np.ndarray | float) -> np.ndarray:
        """Level at time(s) ``t``; UNLABELLED before the first change."""
        t = np.asarray(t, dtype=np.float64)
        i = np.searchsorted(self.times, t, side="right") - 1
        out = np.where(i >= 0, self.levels[np.clip(i, 0, None)], UNLABELLED)
        return out

    def majority(self, t0: float, t1: float, step: float = 0.1) -> tuple[int, float]:
        """Most common level over [t0, t1] and the fraction of the span it covers."""
        ts = np.arange(t0 + step / 2, t1, step)
        if ts.size == 0:
            ts = np.array([t1])
        lv = self.level_at(ts)
        values, counts = np.unique(lv, return_counts=True)
        k = int(np.argmax(counts))
        return int(values[k]), float(counts[k] / lv.size)


def window_ratings(ratings: Signal, t_end: np.ndarray, window_s: float, min_cover: float = 0.8) -> np.ndarray:
    """Mean self-reported rating over each window ``[t_end - window_s, t_end]``; NaN where
    the ratings cover less than ``min_cover`` of the window (not rated then)."""
    ts, rs = ratings.timestamps, ratings.values
    ends = np.asarray(t_end, dtype=np.float64).reshape(-1)
    out = np.full(ends.shape, np.nan)
    if ts.size == 0:
        return out
    period = 1.0 / ratings.rate if ratings.rate > 0 else (float(np.median(np.diff(ts))) if ts.size > 1 else 1.0)
    for i, t1 in enumerate(ends):
        lo, hi = np.searchsorted(ts, t1 - window_s, side="left"), np.searchsorted(ts, t1, side="right")
        inside = rs[lo:hi]
        inside = inside[np.isfinite(inside)]
        if inside.size * period >= min_cover * window_s:
            out[i] = float(inside.mean())
    return out


@dataclass
class Recording:
    """One labelled stretch of one subject (a whole session or a single segment)."""

    subject: str
    signals: dict[str, Signal]
    levels: LevelTrack
    id: str
    """Unique and stable within its dataset (used as the embedding-cache key)."""
    source: str = ""
    whole_segment: bool = False
    """True for pre-cut segments (AI4PAIN): windows are anchored at the segment's end."""
    info: dict = field(default_factory=dict)
    ratings: Signal | None = None
    """The subject's continuous self-reported pain (0-100) when the labels come from a
    self-report: the continuous training target (``painmon train --target continuous``)."""

    @property
    def span(self) -> tuple[float, float]:
        """Time range covered by at least one modality."""
        starts = [s.start for s in self.signals.values() if s.timestamps.size]
        ends = [s.end for s in self.signals.values() if s.timestamps.size]
        if not starts:
            return (float("nan"), float("nan"))
        return (min(starts), max(ends))
