"""Cutting fixed-length windows out of preprocessed streams, with a quality score.

The model sees 10 s of each modality on an exact grid of ``round(length_s * rate)``
samples ending at the window's end time. Streams rarely cooperate: a window can start
before the stream did, straddle a gap the preprocessor refused to bridge, or contain
interpolated / artefact samples. Rather than hiding that, :func:`cut_window` always
returns a complete, finite signal (missing parts filled by interpolation or edge values,
so the image renderer never sees NaN) *and* says how much of it is real.

Quality of a channel = fraction of grid points that have a real, unflagged sample within
half a sample period. Flagged samples (interpolated over bad input, out of range, flat
line, clipping — see :mod:`core.preprocessing`) count as bad, so those lower the score
too. A window is valid when channel 0's quality reaches :data:`VALID_QUALITY`;
the model uses channel 0 of each modality, the other channels' qualities are reported for
display only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VALID_QUALITY = 0.6
"""Minimum quality of a window's channel 0 for the window to be fed to the model."""


@dataclass
class WindowSignal:
    """One modality's window: the signal the model sees and how trustworthy it is."""

    signal: np.ndarray
    """(n,) float32, channel 0 on the exact window grid; always finite."""
    quality: float
    """0-1, quality of channel 0 (fraction of good samples)."""
    valid: bool
    reason: str
    """Empty when valid; otherwise why not, in words for the dashboard/log."""
    t_end: float
    rate: float
    channel_quality: tuple[float, ...] = ()
    """Quality of every channel (index 0 = :attr:`quality`)."""
    good: np.ndarray | None = None
    """(n,) bool mask of channel 0's good samples (for shading bad stretches)."""
    channels: np.ndarray | None = None
    """(n, channels) float32: all channels on the same grid."""

    @property
    def timestamps(self) -> np.ndarray:
        """The window's grid times (computed, not stored)."""
        n = self.signal.shape[0]
        return self.t_end - (n - 1 - np.arange(n)) / self.rate


def window_grid(t_end: float, length_s: float, rate: float) -> np.ndarray:
    """Times of the ``round(length_s * rate)`` samples of a window ending at ``t_end``."""
    n = int(round(length_s * rate))
    return t_end - (n - 1 - np.arange(n, dtype=np.float64)) / rate


def cut_window(
    values: np.ndarray,
    timestamps: np.ndarray,
    flags: np.ndarray | None,
    t_end: float,
    length_s: float,
    rate: float,
    min_quality: float = VALID_QUALITY,
) -> WindowSignal:
    """Sample ``values`` (m,) or (m, ch) at the window grid and score it.

    ``timestamps`` must be the samples' times (any order tolerated; sorted here when
    needed), ``flags`` the preprocessor's bad-sample flags (None = all good). Samples
    outside the window may be included: only the window's span is looked at.
    """
    if not (rate > 0 and length_s > 0):
        raise ValueError(f"window needs positive length and rate, got {length_s} s at {rate} Hz")
    n = int(round(length_s * rate))
    if n < 2:
        raise ValueError(f"window of {length_s} s at {rate} Hz has fewer than 2 samples")
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if values.ndim != 2 or values.shape[0] != ts.shape[0]:
        raise ValueError(f"values {values.shape} do not match timestamps {ts.shape}")
    ch = values.shape[1]
    flags = np.zeros(values.shape, bool) if flags is None else np.asarray(flags, bool).reshape(values.shape)
    grid = window_grid(t_end, length_s, rate)

    finite = np.isfinite(ts) & np.isfinite(values).all(axis=1)
    if not finite.all():  # never expected from the preprocessor; be safe, not wrong
        values, ts, flags = values[finite], ts[finite], flags[finite]
    if ts.shape[0] == 0:
        return _empty(n, ch, t_end, rate, "no samples in window")
    if ts.shape[0] > 1 and not (np.diff(ts) > 0).all():
        order = np.argsort(ts, kind="stable")
        values, ts, flags = values[order], ts[order], flags[order]

    # nearest sample of each grid point, and whether it is close enough to be "there"
    right = np.clip(np.searchsorted(ts, grid), 0, ts.shape[0] - 1)
    left = np.clip(right - 1, 0, ts.shape[0] - 1)
    d_left, d_right = np.abs(grid - ts[left]), np.abs(ts[right] - grid)
    nearest = np.where(d_left <= d_right, left, right)
    present = np.minimum(d_left, d_right) <= 0.5 / rate * (1 + 1e-6) + 1e-9
    good = present[:, None] & ~flags[nearest]

    out = np.empty((n, ch), np.float32)
    for c in range(ch):
        out[:, c] = np.interp(grid, ts, values[:, c].astype(np.float64))
    quality = tuple(float(g) for g in good.mean(axis=0))
    q0 = quality[0]
    reason = ""
    if q0 < min_quality:
        missing = 1.0 - float(present.mean())
        flagged = float((present & flags[nearest][:, 0]).mean())
        if missing >= flagged:
            reason = f"{missing:.0%} of window missing (gap or stream not started)"
        else:
            reason = f"{flagged:.0%} of window flagged (interpolated, artefact, flat or clipped)"
    return WindowSignal(
        signal=out[:, 0].copy(),
        quality=q0,
        valid=q0 >= min_quality,
        reason=reason,
        t_end=float(t_end),
        rate=float(rate),
        channel_quality=quality,
        good=good[:, 0].copy(),
        channels=out,
    )


def _empty(n: int, ch: int, t_end: float, rate: float, reason: str) -> WindowSignal:
    return WindowSignal(
        signal=np.zeros(n, np.float32),
        quality=0.0,
        valid=False,
        reason=reason,
        t_end=float(t_end),
        rate=float(rate),
        channel_quality=(0.0,) * ch,
        good=np.zeros(n, bool),
        channels=np.zeros((n, ch), np.float32),
    )


def end_at_input(
    values: np.ndarray,
    timestamps: np.ndarray,
    flags: np.ndarray,
    input_times: np.ndarray,
    t_end: float,
    length_s: float,
    input_rate: float,
    rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """End a processed signal at the newest *input* sample before ``t_end`` and hold that
    sample's value up to ``t_end`` when it is at most one input period before it.

    Why: the live engine cuts a window as soon as its last input sample has arrived (no
    waiting for the next one, which for a 1 Hz SpO2 probe would cost up to a second). A
    sample *at* the end, or processed points interpolated towards a later one, may or may
    not have arrived by then, so they are left out and a window's content does not depend
    on how quickly the engine got to it. Interpolation cannot reach past the newest input
    sample, so without the hold the final input period of every window would count as
    missing (10 % of a 10 s SpO2 window); a sample describes its stream until the next one
    is due, so holding it over at most one period is what the sample says.

    Training cuts its windows through this same rule (:func:`training.recording_windows.cut_recording`):
    a model trained on windows that end differently from the engine's sees, at serve time,
    a different last second (for 1 Hz SpO2, a held value instead of a ramp to the next
    sample) — a train/serve skew.

    Args:
        values: the processed signal at ``rate``, (m, ch); may extend past ``t_end``.
        timestamps: its (m,) times.
        flags: its (m, ch) bad-sample flags.
        input_times: timestamps of the stream's accepted input samples (any that fall
            within ``[t_end - length_s, t_end)`` are used).
        t_end: the window's end.
        length_s: the window's length.
        input_rate: the stream's nominal rate (<= 0: unknown, nothing is changed).
        rate: the working rate of ``values``.

    Returns:
        ``(values, timestamps, flags)`` to hand to :func:`cut_window`.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.size == 0 or input_rate <= 0:
        return values, timestamps, flags
    raw = np.asarray(input_times, dtype=np.float64)
    raw = raw[(raw >= t_end - length_s) & (raw < t_end - 1e-6)]
    if raw.size == 0:
        return values, timestamps, flags
    t_input = float(raw.max())
    keep = ts <= t_input + 1e-9
    values, ts, flags = values[keep], ts[keep], flags[keep]
    period = 1.0 / input_rate
    step = 1.0 / rate
    if ts.size == 0 or not (ts[-1] < t_end - 0.5 * step and t_input >= t_end - period - 1e-6):
        return values, ts, flags
    k0 = int(round(ts[-1] * rate)) + 1
    k1 = int(round(t_end * rate))
    if k1 < k0 or (k1 - k0 + 1) * step > period + step:
        return values, ts, flags
    n = k1 - k0 + 1
    extra_ts = np.arange(k0, k1 + 1, dtype=np.float64) / rate
    return (
        np.vstack([values, np.repeat(values[-1:], n, axis=0)]),
        np.concatenate([ts, extra_ts]),
        np.vstack([flags, np.repeat(flags[-1:], n, axis=0)]),
    )
