"""Derived vital signs shown beside the raw signals on the dashboard.

Each function takes the recent samples of one stream as they come out of a
:class:`core.buffers.RingBuffer` (values and their shared-clock timestamps, possibly with
gaps) and returns a :class:`Vital`: a value *and* a verdict on whether it can be trusted.
A clinician glancing at "HR 72" must be able to tell a measured rate from a number a noisy,
half-detached sensor happened to produce, so every estimate carries ``reliable`` and a short
``reason`` when it is not; the dashboard greys unreliable values instead of hiding them.

Pure numpy/scipy: no I/O, no Qt, cheap enough to run a few times per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

HR_SECONDS = 10.0
"""BVP history for heart rate: ~10 beats at rest, short enough to follow changes."""
BR_SECONDS = 30.0
"""RESP history for breathing rate: a 10 s window holds too few breaths to judge rhythm."""
SCL_SECONDS = 10.0
"""EDA history for the tonic skin-conductance level."""
MAX_AGE = 5.0
"""Samples older than this (s) relative to ``now`` no longer describe the patient: a vital
computed from a stream that stopped is reported as stale, not as the current value."""

HR_RANGE = (30.0, 220.0)
BR_RANGE = (4.0, 60.0)
SCL_RANGE = (0.05, 60.0)
"""µS; below ~0.05 µS the electrodes are almost certainly off the skin."""
SPO2_RANGE = (70.0, 100.0)
"""Readings outside it are sensor artefacts far more often than real physiology."""


@dataclass(frozen=True)
class Vital:
    """One derived vital sign and whether the dashboard may present it as measured."""

    name: str
    value: float
    unit: str
    reliable: bool
    reason: str = ""
    """Why it is not reliable (empty when it is)."""

    def text(self) -> str:
        """Compact label text, e.g. ``"HR 72 bpm"`` or ``"HR --"``."""
        if math.isnan(self.value):
            return f"{self.name} --"
        decimals = 1 if self.unit == "µS" else 0
        return f"{self.name} {self.value:.{decimals}f} {self.unit}"


def _recent(values: np.ndarray, times: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The finite samples of the last ``seconds`` before the newest timestamp (1-D)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, 0]
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if values.shape[0] != times.shape[0]:
        raise ValueError(f"{values.shape[0]} samples but {times.shape[0]} timestamps")
    ok = np.isfinite(values) & np.isfinite(times)
    values, times = values[ok], times[ok]
    if times.size == 0:
        return values, times
    keep = times >= times[-1] - seconds
    return values[keep], times[keep]


def _stale(times: np.ndarray, now: float | None) -> bool:
    """True when the newest sample is more than :data:`MAX_AGE` older than ``now``."""
    return now is not None and times.size > 0 and now - float(times[-1]) > MAX_AGE


def _uniform(values: np.ndarray, times: np.ndarray, seconds: float) -> tuple[np.ndarray, float, str]:
    """Resample onto an even grid at the stream's median rate.

    Returns (samples, rate, problem). Peak detection needs even spacing; jittery LSL
    timestamps are fine, but a gap longer than a few samples would be interpolated into a
    fake flat stretch, so it is reported as a problem rather than papered over.
    """
    if times.size < 8:
        return values, 0.0, "too few samples"
    dt = np.diff(times)
    step = float(np.median(dt))
    if step <= 0:
        return values, 0.0, "timestamps not increasing"
    if float(dt.max()) > max(4 * step, 0.5):
        return values, 1.0 / step, "gap in signal"
    if times[-1] - times[0] < 0.8 * seconds:
        return values, 1.0 / step, "not enough history"
    grid = np.arange(times[0], times[-1], step)
    return np.interp(grid, times, values), 1.0 / step, ""


def _dominant_frequency(y: np.ndarray, fs: float, band: tuple[float, float]) -> float:
    """Strongest frequency (Hz) of ``y`` inside ``band`` (zero-padded periodogram)."""
    n = max(4096, int(2 ** np.ceil(np.log2(y.size))))
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size), n)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    if not inside.any():
        return math.nan
    return float(freqs[inside][np.argmax(spectrum[inside])])


def _rate_from_peaks(
    x: np.ndarray, fs: float, band: tuple[float, float], max_cv: float, min_cycles: int
) -> tuple[float, str]:
    """Cycles per minute from the peaks of a band-passed signal; problem text if unreliable.

    Two independent estimates must agree: the spectrum's dominant frequency, and the
    median interval between peaks found at least 0.6 dominant periods apart. The spacing
    keeps a PPG's dicrotic notch or a breath's double hump from counting as extra cycles;
    the agreement and the interval spread reject noise, where neither is stable.
    """
    nyq = fs / 2.0
    hi = min(band[1], 0.9 * nyq)
    if hi <= band[0]:
        return math.nan, f"sampling rate {fs:.1f} Hz too low"
    sos = signal.butter(2, [band[0] / nyq, hi / nyq], btype="bandpass", output="sos")
    y = signal.sosfiltfilt(sos, x - np.mean(x))
    spread = float(np.std(y))
    if spread <= 1e-12:
        return math.nan, "flat signal"
    f0 = _dominant_frequency(y, fs, (band[0], hi))
    if not f0 > 0:
        return math.nan, "no dominant rhythm"
    peaks, _ = signal.find_peaks(y, distance=max(1, int(0.6 * fs / f0)), prominence=0.3 * spread)
    if peaks.size < min_cycles + 1:
        return math.nan, "too few cycles"
    intervals = np.diff(peaks) / fs
    rate = 60.0 / float(np.median(intervals))
    cv = float(np.std(intervals) / np.mean(intervals))
    if cv > max_cv:
        return rate, "irregular cycles"
    if abs(rate - 60.0 * f0) > 0.15 * rate:
        return rate, "rhythm unclear"
    return rate, ""


def _periodic_vital(
    name: str,
    unit: str,
    values: np.ndarray,
    times: np.ndarray,
    now: float | None,
    seconds: float,
    band_hz: tuple[float, float],
    max_cv: float,
    min_cycles: int,
    plausible: tuple[float, float],
) -> Vital:
    """A rate from the peaks of a periodic signal (heart beats, breaths), with every
    reliability check of :func:`heart_rate` / :func:`breathing_rate` applied in one place."""
    v, t = _recent(values, times, seconds)
    x, fs, problem = _uniform(v, t, seconds)
    if problem:
        return Vital(name, math.nan, unit, False, problem)
    rate, problem = _rate_from_peaks(x, fs, band_hz, max_cv=max_cv, min_cycles=min_cycles)
    if not problem and not plausible[0] <= rate <= plausible[1]:
        problem = "implausible rate"
    if not problem and _stale(t, now):
        problem = "stale signal"
    return Vital(name, rate, unit, not problem, problem)


def heart_rate(
    values: np.ndarray, times: np.ndarray, now: float | None = None, seconds: float = HR_SECONDS
) -> Vital:
    """Heart rate (bpm) from BVP/PPG pulse peaks over the last ``seconds``.

    Reliable only with a gap-free window, at least 5 beats, inter-beat intervals that vary
    by < 25 % (motion artefacts make them erratic) and a plausible rate.
    """
    return _periodic_vital("HR", "bpm", values, times, now, seconds, (0.6, 3.7), 0.25, 4, HR_RANGE)


def breathing_rate(
    values: np.ndarray, times: np.ndarray, now: float | None = None, seconds: float = BR_SECONDS
) -> Vital:
    """Breathing rate (breaths/min) from RESP peaks over the last ``seconds``.

    Breathing is less regular than the heart beat, so intervals may vary by up to 35 %;
    at least 3 breaths are needed.
    """
    return _periodic_vital("BR", "/min", values, times, now, seconds, (0.08, 1.0), 0.35, 3, BR_RANGE)


def skin_conductance_level(
    values: np.ndarray, times: np.ndarray, now: float | None = None, seconds: float = SCL_SECONDS
) -> Vital:
    """Tonic skin-conductance level (µS): the median EDA over the last ``seconds``.

    The median rather than the mean keeps brief phasic responses (the skin conductance
    responses pain provokes) from inflating the tonic level.
    """
    v, t = _recent(values, times, seconds)
    if v.size < 3:
        return Vital("SCL", math.nan, "µS", False, "too few samples")
    level = float(np.median(v))
    if not SCL_RANGE[0] <= level <= SCL_RANGE[1]:
        return Vital("SCL", level, "µS", False, "out of range (electrode contact?)")
    if t[-1] - t[0] < 0.5 * seconds:
        return Vital("SCL", level, "µS", False, "not enough history")
    if _stale(t, now):
        return Vital("SCL", level, "µS", False, "stale signal")
    return Vital("SCL", level, "µS", True)


def spo2(values: np.ndarray, times: np.ndarray, now: float | None = None) -> Vital:
    """The last plausible SpO2 reading (%).

    Oximeters already report a processed value, so the vital is that reading; it is
    unreliable when it is older than :data:`MAX_AGE` relative to ``now`` (default: the
    newest timestamp passed in) or outside :data:`SPO2_RANGE`.
    """
    v, t = _recent(values, times, math.inf)
    if v.size == 0:
        return Vital("SpO2", math.nan, "%", False, "no reading")
    plausible = (v >= SPO2_RANGE[0]) & (v <= SPO2_RANGE[1])
    if not plausible.any():
        return Vital("SpO2", float(v[-1]), "%", False, "implausible reading")
    value, when = float(v[plausible][-1]), float(t[plausible][-1])
    if _stale(np.array([when]), float(t[-1]) if now is None else now):
        return Vital("SpO2", value, "%", False, "stale reading")
    return Vital("SpO2", value, "%", True)


VITAL_OF_MODALITY = {
    "BVP": heart_rate,
    "RESP": breathing_rate,
    "EDA": skin_conductance_level,
    "SpO2": spo2,
}
"""Which vital the dashboard derives from which modality."""

HISTORY_OF_MODALITY = {"BVP": HR_SECONDS, "RESP": BR_SECONDS, "EDA": SCL_SECONDS, "SpO2": 60.0}
"""Seconds of signal each vital needs (what a caller should read from the buffer)."""


def vital_for(
    modality: str, values: np.ndarray, times: np.ndarray, now: float | None = None
) -> Vital | None:
    """The vital derived from ``modality``, or None for modalities without one."""
    fn = VITAL_OF_MODALITY.get(modality)
    return None if fn is None else fn(values, times, now)
