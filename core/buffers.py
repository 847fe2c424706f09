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

from core.limits import MAX_CHANNELS
from core.streams import MARKERS, StreamSpec

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 120.0
"""Retention of each numeric buffer: enough for a 30 s plot and several windows."""
DEFAULT_MAX_RATE = 250.0
"""Buffers are sized for at most this many rows per second: memory follows the rate the
model works at (100 Hz) and the retention, never what a sender declares. A faster stream
keeps proportionally less time (120 s x 250 / fs), still several windows at 1 kHz."""
INITIAL_ROWS = 256
"""Rows allocated up front; a buffer grows (doubling) to its capacity as data arrives, so
a stream that sends one message costs kilobytes, not its full retention."""


class RingBuffer:
    """Fixed-capacity circular store of (timestamp, sample) rows for one stream."""

    def __init__(self, n_channels: int, capacity: int, dtype: np.dtype | type = np.float32):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        if n_channels <= 0:
            raise ValueError(f"n_channels must be positive, got {n_channels}")
        self._capacity = int(capacity)
        rows = min(self._capacity, INITIAL_ROWS)
        self._data = np.full((rows, n_channels), np.nan, dtype=dtype)
        self._times = np.full(rows, np.nan, dtype=np.float64)
        self._write = 0  # next row to write
        self._count = 0  # rows held (<= capacity)
        self.total = 0  # rows ever pushed
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Most rows held; the arrays grow towards it as rows arrive."""
        return self._capacity

    @property
    def nbytes(self) -> int:
        """Bytes allocated now (grows with the data, never beyond capacity)."""
        return int(self._data.nbytes + self._times.nbytes)

    def _grow(self, needed: int) -> None:
        """Under the lock: make room for ``needed`` rows (at most capacity), oldest first."""
        size = self._times.shape[0]
        if needed <= size or size >= self._capacity:
            return
        new = min(self._capacity, max(needed, 2 * size))
        idx = self._ordered_indices()
        data = np.full((new, self._data.shape[1]), np.nan, dtype=self._data.dtype)
        times = np.full(new, np.nan, dtype=np.float64)
        data[: self._count] = self._data[idx]
        times[: self._count] = self._times[idx]
        self._data, self._times = data, times
        self._write = self._count % new

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
            self._grow(self._count + m)
            cap = self._times.shape[0]
            idx = (self._write + np.arange(m)) % cap
            self._data[idx] = data
            self._times[idx] = timestamps
            self._write = (self._write + m) % cap
            self._count = min(cap, self._count + m)
            self.total += n

    def _ordered_indices(self) -> np.ndarray:
        size = self._times.shape[0]
        start = (self._write - self._count) % size
        return (start + np.arange(self._count)) % size

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
            return float(self._times[(self._write - 1) % self._times.shape[0]])

    @property
    def first_timestamp(self) -> float:
        with self._lock:
            if self._count == 0:
                return float("nan")
            return float(self._times[(self._write - self._count) % self._times.shape[0]])


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

    def __init__(
        self, seconds: float = DEFAULT_SECONDS, max_markers: int = 10000, *, max_rate: float = DEFAULT_MAX_RATE
    ):
        if not (seconds > 0 and max_rate > 0):
            raise ValueError("seconds and max_rate must be positive")
        self.seconds = seconds
        self.max_rate = float(max_rate)
        self._removal_listeners: list[Callable[[str, str | None], None]] = []
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
            if spec.n_channels > MAX_CHANNELS:
                raise ValueError(f"{spec.subject}/{spec.modality}: {spec.n_channels} channels > {MAX_CHANNELS}")
            buf = RingBuffer(spec.n_channels, self.capacity_for(spec.nominal_rate))
            self._buffers[spec.key] = buf
            self._specs[spec.key] = spec
            return buf

    def capacity_for(self, rate: float) -> int:
        """Rows of a buffer for a stream declaring ``rate`` Hz: bounded by ``max_rate``
        (and sized for at least 1 Hz, so an understated rate still keeps some history)."""
        rows_per_s = min(max(rate, 1.0), self.max_rate) if rate > 0 else 100.0
        return max(16, int(np.ceil(self.seconds * rows_per_s * 1.25)))

    def nbytes(self) -> int:
        """Bytes held by all numeric buffers now."""
        with self._lock:
            return sum(b.nbytes for b in self._buffers.values())

    # --- removal ------------------------------------------------------------------
    def remove(self, subject: str, modality: str | None = None) -> bool:
        """Forget a stream (or, with ``modality=None``, every stream and marker of a
        subject) and release its buffer; listeners added with
        :meth:`add_removal_listener` are told ``(subject, modality)``, and once a subject
        has no stream left, ``(subject, None)``: engine state and outlets go with it.
        Returns whether anything was removed."""
        with self._lock:
            keys = [k for k in self._specs if k[0] == subject and (modality is None or k[1] == modality)]
            for key in keys:
                self._specs.pop(key, None)
                self._buffers.pop(key, None)
            subject_gone = bool(keys) and not any(k[0] == subject for k in self._specs)
            if subject_gone:
                self._markers = [m for m in self._markers if m.subject != subject]
            listeners = list(self._removal_listeners)
        for key in keys:
            self._notify_removal(listeners, key[0], key[1])
        if subject_gone:
            self._notify_removal(listeners, subject, None)
        return bool(keys)

    @staticmethod
    def _notify_removal(listeners: list[Callable[[str, str | None], None]], subject: str, modality: str | None) -> None:
        for fn in listeners:
            try:
                fn(subject, modality)
            except Exception:
                log.exception("removal listener %r failed", fn)

    def add_removal_listener(self, fn: Callable[[str, str | None], None]) -> None:
        """``fn(subject, modality)`` after a stream is removed; ``modality`` None: the
        subject's last stream went (release per-subject state such as outlets)."""
        with self._lock:
            self._removal_listeners.append(fn)

    def remove_removal_listener(self, fn: Callable[[str, str | None], None]) -> None:
        with self._lock:
            if fn in self._removal_listeners:
                self._removal_listeners.remove(fn)

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
