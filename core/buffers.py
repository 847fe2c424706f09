"""Time-stamped ring buffers, one per stream, grouped per subject.

Modelled on mne-lsl's ``StreamLSL`` buffer: a fixed-capacity numpy array written
circularly, read by time range. Sources push from their own threads; readers (engine,
GUI, recorder) copy out what they need under a short lock, so no reader ever sees a half
written chunk. Gaps stay gaps: nothing is zero-filled, the timestamps show where data is
missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.streams import MARKERS, StreamSpec

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 120.0
"""Retention of each numeric buffer: enough for a 30 s plot and several windows."""


class RingBuffer:
    """Fixed-capacity circular store of (timestamp, sample) rows for one stream."""

    def __init__(self, n_channels: int, capacity: int, dtype: np.dtype | type = np.float32):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._data = np.full((capacity, n_channels), np.nan, dtype=dtype)
        self._times = np.full(capacity, np.nan, dtype=np.float64)
        self._write = 0  # next row to write
        self._count = 0  # rows held (<= capacity)
        self.total = 0  # rows ever pushed
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._times.shape[0]

    @property
    def n_channels(self) -> int:
        return self._data.shape[1]

    def __len__(self) -> int:
        return self._count

    def push(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append rows. ``data`` is (n, channels) or (n,) for one channel."""
        data = np.asarray(data)
        if data.ndim == 1:
            data = data[:, None]
        timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if data.shape[0] != timestamps.shape[0]:
            raise ValueError(
                f"{data.shape[0]} samples but {timestamps.shape[0]} timestamps"
            )
        if data.shape[1] != self.n_channels:
            raise ValueError(
                f"chunk has {data.shape[1]} channels, buffer has {self.n_channels}"
            )
        n = data.shape[0]
        if n == 0:
            return
        cap = self.capacity
        if n > cap:  # only the newest rows can survive anyway
            data, timestamps = data[-cap:], timestamps[-cap:]
        with self._lock:
            m = data.shape[0]
            idx = (self._write + np.arange(m)) % cap
            self._data[idx] = data
            self._times[idx] = timestamps
            self._write = (self._write + m) % cap
            self._count = min(cap, self._count + m)
            self.total += n

    def _ordered_indices(self) -> np.ndarray:
        start = (self._write - self._count) % self.capacity
        return (start + np.arange(self._count)) % self.capacity

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """All held rows, oldest first, as copies: (data (n, ch), timestamps (n,))."""
        with self._lock:
            idx = self._ordered_indices()
            return self._data[idx].copy(), self._times[idx].copy()

    def between(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows with ``t0 <= t < t1`` (copies), oldest first."""
        with self._lock:
            idx = self._ordered_indices()
            times = self._times[idx]
            # timestamps are non-decreasing in practice; a mask also tolerates small jitter
            mask = (times >= t0) & (times < t1)
            sel = idx[mask]
            return self._data[sel].copy(), self._times[sel].copy()

    def latest(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the last ``seconds`` before the newest timestamp."""
        last = self.last_timestamp
        if np.isnan(last):
            return self._data[:0].copy(), self._times[:0].copy()
        return self.between(last - seconds, last + 1e-9)

    def tail(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The newest ``n`` rows (or fewer)."""
        with self._lock:
            idx = self._ordered_indices()[-n:] if n > 0 else self._ordered_indices()[:0]
            return self._data[idx].copy(), self._times[idx].copy()

    @property
    def last_timestamp(self) -> float:
        with self._lock:
            if self._count == 0:
                return float("nan")
            return float(self._times[(self._write - 1) % self.capacity])

    @property
    def first_timestamp(self) -> float:
        with self._lock:
            if self._count == 0:
                return float("nan")
            return float(self._times[(self._write - self._count) % self.capacity])


@dataclass(frozen=True)
class Marker:
    """One event: from a marker stream, or entered by the user."""

    subject: str
    timestamp: float
    label: str
    source: str = ""


Listener = Callable[[StreamSpec, np.ndarray, np.ndarray], None]


class BufferHub:
    """All streams of all subjects: the sink every :class:`devices.source.Source` feeds.

    ``push`` is called from source threads. Listeners (the engine's preprocessing, the
    recorder) are called synchronously on the pushing thread after the data is stored, so
    they must be quick; a listener that raises is logged and does not stop the others.
    """

    def __init__(self, seconds: float = DEFAULT_SECONDS, max_markers: int = 10000):
        self.seconds = seconds
        self._buffers: dict[tuple[str, str], RingBuffer] = {}
        self._specs: dict[tuple[str, str], StreamSpec] = {}
        self._markers: list[Marker] = []
        self._max_markers = max_markers
        self._listeners: list[Listener] = []
        self._marker_listeners: list[Callable[[Marker], None]] = []
        self._lock = threading.RLock()

    # --- registration -------------------------------------------------------------
    def register(self, spec: StreamSpec) -> RingBuffer | None:
        """Create (or return) the buffer of a stream. Re-registering a stream with the
        same key but other channels replaces its buffer (the device changed)."""
        if spec.modality == MARKERS:
            with self._lock:
                self._specs[spec.key] = spec
            return None
        with self._lock:
            existing = self._buffers.get(spec.key)
            if existing is not None and existing.n_channels == spec.n_channels:
                self._specs[spec.key] = spec
                return existing
            rate = spec.nominal_rate if spec.nominal_rate > 0 else 100.0
            capacity = max(16, int(np.ceil(self.seconds * rate * 1.25)))
            buf = RingBuffer(spec.n_channels, capacity)
            self._buffers[spec.key] = buf
            self._specs[spec.key] = spec
            return buf

    def add_listener(self, fn: Listener) -> None:
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def add_marker_listener(self, fn: Callable[[Marker], None]) -> None:
        with self._lock:
            self._marker_listeners.append(fn)

    def remove_marker_listener(self, fn: Callable[[Marker], None]) -> None:
        with self._lock:
            if fn in self._marker_listeners:
                self._marker_listeners.remove(fn)

    # --- writing ------------------------------------------------------------------
    def push(self, spec: StreamSpec, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Store a chunk of a numeric stream and notify listeners."""
        with self._lock:
            buf = self._buffers.get(spec.key)
        if buf is None or buf.n_channels != spec.n_channels:
            buf = self.register(spec)
        assert buf is not None
        buf.push(data, timestamps)
        for fn in list(self._listeners):
            try:
                fn(spec, data, timestamps)
            except Exception:  # a faulty listener must not break ingestion
                log.exception("buffer listener %r failed", fn)

    def push_markers(self, subject: str, labels: list[str], timestamps, source: str = "") -> None:
        """Store events (from a marker stream or the user)."""
        new = [Marker(subject, float(t), str(label), source) for label, t in zip(labels, timestamps, strict=True)]
        with self._lock:
            self._markers.extend(new)
            if len(self._markers) > self._max_markers:
                del self._markers[: len(self._markers) - self._max_markers]
        for m in new:
            for fn in list(self._marker_listeners):
                try:
                    fn(m)
                except Exception:
                    log.exception("marker listener %r failed", fn)

    # --- reading ------------------------------------------------------------------
    def subjects(self) -> list[str]:
        with self._lock:
            return sorted({s for s, _ in self._specs})

    def specs(self, subject: str | None = None) -> list[StreamSpec]:
        with self._lock:
            return [s for k, s in self._specs.items() if subject is None or k[0] == subject]

    def spec(self, subject: str, modality: str) -> StreamSpec | None:
        with self._lock:
            return self._specs.get((subject, modality))

    def buffer(self, subject: str, modality: str) -> RingBuffer | None:
        with self._lock:
            return self._buffers.get((subject, modality))

    def modalities(self, subject: str) -> list[str]:
        with self._lock:
            return [m for (s, m) in self._buffers if s == subject]

    def markers(self, subject: str | None = None, since: float = -np.inf) -> list[Marker]:
        with self._lock:
            return [
                m
                for m in self._markers
                if (subject is None or m.subject == subject) and m.timestamp >= since
            ]
