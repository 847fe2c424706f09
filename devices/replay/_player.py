"""The replay engine: paces a recorded session's samples onto a sink, as if live.

A :class:`ReplayPlayer` walks through a :class:`~devices.xdf.Session` at a speed
factor (1 = real time, 0 or ``math.inf`` = as fast as possible), with pause, resume, seek
and loop, and hands each slice of samples to a sink. :class:`ReplaySource` is the sink that
feeds a :class:`~core.buffers.BufferHub` (a :class:`~devices.source.Source` like LSL or
MQTT); :class:`LSLRepublisher` publishes the same slices on LSL outlets for other tools.

Timestamps: the session's timestamps keep their recorded spacing and are shifted onto the
shared clock (:func:`core.clock.now`) so that the replayed data looks live: at start, the
sample at the current position maps to ``now()`` rounded up to a whole second
(:data:`SHIFT_QUANTUM_S`), and at a finite speed pacing begins when the clock gets there,
so at speed 1 every sample is delivered as its timestamp comes due, like a live device's
(never ahead of the clock, never stamped before the replay began). After a pause, seek or
loop the position maps to ``now()`` rounded *down* (pacing goes on at once; samples are then
up to a second older than the clock, like a device's latency), and the shift never lets
time run backwards, so a buffer never sees a timestamp older than one it already holds (a
pause shows up as a gap, like a sensor that was off). At speeds other than 1 the timestamps
keep the recorded spacing (so rates stay right for filtering) and run ahead of or behind
``now()``.

Why whole seconds: the engine resamples every stream onto the grid ``k / working_rate`` of
the shared clock and (live) ends windows on multiples of the hop. A shift by an arbitrary
fraction of a sample put that grid somewhere else in the recording on every replay, so two
replays of one file interpolated different points and gave different estimates. A whole
second is a whole number of periods of any integer working rate (100 Hz) and of the default
1 s hop (and of every hop dividing it), so grid points and live windows fall on the same
places of the recording every time; and adding an integer to the file's relative timestamps
changes only their integer part, so the shifted timestamps, and every interpolation weight
computed from them, are bit-identical from one replay to the next (while the clock stays
within one power of two, i.e. for days; a shift of k x 0.01 s would not be: 0.01 has no
exact binary form). The price: playing starts up to 1 s later than asked (as fast as
possible, at speed 0, nothing waits), and a pause shows as a gap of whole seconds (one
shorter than a second may show none).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from core import clock
from core.worker import BackgroundWorker, WorkerStateError
from devices.xdf import Session, SessionStream, load_session

log = logging.getLogger(__name__)

TICK_S = 0.02
"""Delivery period at finite speeds: chunks as small as a live LSL inlet would give."""
ASAP_CHUNK_S = 1.0
"""Seconds of data per delivery when replaying as fast as possible."""
HOLD_POLL_S = 0.01
"""How often a held as-fast-as-possible replay asks again whether it may go on."""
SEEK_TOLERANCE_S = 1e-6
"""Samples this close before a seek position still count as at it (float rounding)."""
MIN_STEP_S = 1e-3
"""Smallest forward step of the clock shift after a seek or loop (keeps time increasing)."""
SHIFT_QUANTUM_S = 1.0
"""The clock shift is a whole multiple of this (see the module docstring): replays of one
file then put the engine's resampling grid and windows on the same samples."""


class ReplaySink(Protocol):
    """Receives the slices a :class:`ReplayPlayer` releases (on the player's thread)."""

    def deliver(self, index: int, stream: SessionStream, lo: int, hi: int, timestamps: np.ndarray) -> None:
        """Samples ``lo:hi`` of ``stream`` (``index`` in ``session.replayable``), with
        their timestamps already shifted onto the shared clock."""


def as_session(path_or_session: str | os.PathLike | Session) -> Session:
    """A loaded session, reading the file when given a path."""
    if isinstance(path_or_session, Session):
        return path_or_session
    return load_session(path_or_session)


def _check_speed(speed: float) -> float:
    speed = float(speed)
    if math.isnan(speed) or speed < 0:
        raise ValueError(f"replay speed must be >= 0 (0 or inf = as fast as possible), got {speed}")
    return speed


def _check_stream(stream: SessionStream) -> None:
    """Refuse a stream whose arrays contradict its spec (a hand-built Session) up front,
    with what is wrong, instead of failing in the replay thread."""
    name = stream.spec.name or f"{stream.spec.subject} {stream.spec.modality}"
    n = stream.timestamps.shape[0]
    if stream.timestamps.ndim != 1:
        raise ValueError(f"stream {name!r}: timestamps must be one-dimensional")
    if not np.all(np.isfinite(stream.timestamps)):
        raise ValueError(f"stream {name!r}: timestamps must be finite")
    if stream.is_marker:
        if len(stream.values) != n:
            raise ValueError(f"stream {name!r}: {len(stream.values)} labels but {n} timestamps")
        return
    shape = np.shape(stream.values)
    if len(shape) != 2 or shape != (n, stream.spec.n_channels):
        raise ValueError(
            f"stream {name!r}: values of shape {shape}, expected ({n}, {stream.spec.n_channels}) "
            f"for {n} timestamps and channels {stream.spec.channels}"
        )


class ReplayPlayer:
    """Paces a session's samples onto a sink from its own thread.

    All controls (:meth:`pause`, :meth:`resume`, :meth:`seek`, :attr:`speed`) may be
    called from any thread; they take effect at the next tick. Started once (a second
    ``start()`` raises :class:`core.worker.WorkerStateError`); ``stop()`` is idempotent.
    """

    def __init__(self, session: Session, sink: ReplaySink, *, speed: float = 1.0, loop: bool = False):
        self.session = session
        self.sink = sink
        self.loop = bool(loop)
        self._speed = _check_speed(speed)
        self._streams = session.replayable
        for s in self._streams:
            _check_stream(s)
        self._rel = [s.timestamps - session.t_start for s in self._streams]
        # pacing follows the running maximum, so a stream whose timestamps step back
        # (jitter in a raw recording) still replays every sample once, in file order
        self._pace = [np.maximum.accumulate(r) if r.size else r for r in self._rel]
        self._cursor = [0] * len(self._streams)
        self._cond = threading.Condition(threading.RLock())
        self._done_until = 0.0  # session seconds delivered (exclusive)
        self._anchor_pos = 0.0
        self._anchor_wall = 0.0
        self._shift = math.nan  # clock time of session position 0
        self._last_out = -math.inf  # newest timestamp handed to the sink
        self._paused = False
        self._generation = 0  # bumped by seek: an end reached before it no longer counts
        self._started = False
        self._stopping = False
        self._worker = BackgroundWorker(self._run, name="painmon-replay")
        self.loops = 0
        """Completed passes through the session (with ``loop``)."""
        self.finished = threading.Event()
        """Set when the end is reached without ``loop`` (cleared again by a seek)."""
        self.error: BaseException | None = None
        self.hold: Callable[[], bool] | None = None
        """Optional back-pressure for as-fast-as-possible replay: while it returns True
        no further data are released (e.g. until an offline engine has caught up)."""

    # --- properties ---------------------------------------------------------------
    @property
    def duration(self) -> float:
        return self.session.duration

    @property
    def asap(self) -> bool:
        return self._speed == 0 or math.isinf(self._speed)

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        value = _check_speed(value)
        with self._cond:
            self._anchor_pos = self._position_locked()
            self._anchor_wall = max(clock.now(), self._anchor_wall)  # a pending wait still holds
            self._speed = value
            self._cond.notify_all()

    @property
    def position(self) -> float:
        """Seconds into the session of the replay head."""
        with self._cond:
            return self._position_locked()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        return self._worker.running

    def to_clock(self, session_seconds: float) -> float:
        """The shared-clock timestamp the sample at ``session_seconds`` is (or will be)
        delivered with, under the current shift."""
        return self._shift + session_seconds

    def from_clock(self, timestamp: float) -> float:
        """Seconds into the session of a replayed timestamp (inverse of :meth:`to_clock`)."""
        return timestamp - self._shift

    def _position_locked(self) -> float:
        if self.finished.is_set():
            return self.duration
        if self.asap:
            return min(self._done_until, self.duration)
        if self._paused or not self._started:
            return self._anchor_pos
        # before the anchor's wall time (the wait for a whole second, see _reanchor) it stays put
        elapsed = max(clock.now() - self._anchor_wall, 0.0)
        return min(self._anchor_pos + elapsed * self._speed, self.duration)

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Start pacing from the current position (``seek`` before ``start`` is allowed)."""
        with self._cond:
            if self._started:
                raise WorkerStateError("replay already started")
            self._reanchor(self._anchor_pos, starting=True)
            self._started = True
        self._worker.start()

    def stop(self) -> None:
        """Stop pacing and join the thread (not when called from the sink, on that thread)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._worker.stop(timeout=None)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replay finished (never, with ``loop``); True if it did."""
        return self.finished.wait(timeout)

    # --- controls -----------------------------------------------------------------
    def pause(self) -> None:
        with self._cond:
            if not self._paused:
                self._anchor_pos = self._position_locked()
                self._paused = True
                self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            if self._paused:
                self._paused = False
                self._reanchor(self._anchor_pos)
                self._cond.notify_all()

    def seek(self, seconds: float) -> None:
        """Move the replay head to ``seconds`` into the session (clamped to its span)."""
        seconds = float(seconds)
        if math.isnan(seconds):
            raise ValueError("seek position is NaN")
        seconds = min(max(seconds, 0.0), self.duration)
        with self._cond:
            # a sample recorded "at" the position may be a hair earlier after rebasing
            edge = seconds - SEEK_TOLERANCE_S
            self._cursor = [int(np.searchsorted(r, edge, side="left")) for r in self._pace]
            self._done_until = seconds
            self._generation += 1
            self.finished.clear()
            self._reanchor(seconds)
            self._cond.notify_all()

    def _reanchor(self, pos: float, *, starting: bool = False) -> None:
        """Restart pacing at ``pos`` and shift time onto the clock by whole quanta
        (:data:`SHIFT_QUANTUM_S`) so that no pending sample maps at or before a timestamp
        already delivered (that bound is rounded up).

        ``starting``: ``pos`` maps to now() rounded *up*, and at a finite speed pacing waits
        for the clock to get there (less than a quantum), so no sample is stamped before the
        replay began or delivered ahead of its time. Otherwise (resume, seek, loop) ``pos``
        maps to now() rounded *down* and pacing goes on at once: a play button answers
        without a wait, and samples are then at most a quantum older than the clock."""
        now = clock.now()
        pending = [r[c] for r, c in zip(self._rel, self._cursor, strict=True) if c < len(r)]
        first = min([pos, *pending])
        q = SHIFT_QUANTUM_S
        live = (math.ceil if starting else math.floor)((now - pos) / q) * q
        shift = live
        if math.isfinite(self._last_out):  # something was delivered already
            shift = max(shift, math.ceil((self._last_out + MIN_STEP_S - first) / q) * q)
        self._shift = shift
        self._anchor_pos = pos
        self._anchor_wall = now + max(live - (now - pos), 0.0) if starting and not self.asap else now
        self._done_until = pos

    # --- the thread ---------------------------------------------------------------
    def _run(self, _stop: threading.Event) -> None:
        """Take the due slices under the lock, hand them to the sink outside it (a slow
        hub listener must not block the GUI's pause/seek/position calls)."""
        try:
            while True:
                with self._cond:
                    if self._stopping:
                        return
                    if self._paused or self.finished.is_set():
                        self._cond.wait(0.5)
                        continue
                    if self.asap and self.hold is not None and self.hold():
                        self._cond.wait(HOLD_POLL_S)  # the consumer asked for a breather
                        continue
                    target = self._done_until + ASAP_CHUNK_S if self.asap else self._position_locked()
                    batch = self._take_until(target)
                    at_end = self._done_until >= self.duration and self._all_taken()
                    generation = self._generation
                for i, lo, hi, ts in batch:
                    self.sink.deliver(i, self._streams[i], lo, hi, ts)
                with self._cond:
                    if at_end and generation == self._generation and not self._stopping:
                        self._at_end()
                    if not self.asap and not self.finished.is_set():
                        self._cond.wait(TICK_S)
                if self.asap:
                    time.sleep(0)  # let other threads (GUI, engine) in between chunks
        except BaseException as exc:  # surface a failing sink instead of dying silently
            self.error = exc
            log.exception("replay of %s stopped by an error", self.session.path)
            self.finished.set()

    def _all_taken(self) -> bool:
        return all(c >= len(r) for c, r in zip(self._cursor, self._rel, strict=True))

    def _take_until(self, target: float) -> list[tuple[int, int, int, np.ndarray]]:
        """Advance the cursors to ``target`` and return the slices (with their shifted
        timestamps) passed over; the caller delivers them."""
        end = math.inf if target >= self.duration else target
        batch = []
        for i, rel in enumerate(self._rel):
            lo = self._cursor[i]
            hi = len(rel) if end == math.inf else int(np.searchsorted(self._pace[i], end, side="left"))
            if hi <= lo:
                continue
            ts = rel[lo:hi] + self._shift
            self._cursor[i] = hi
            self._last_out = max(self._last_out, float(ts[-1]))
            batch.append((i, lo, hi, ts))
        self._done_until = min(target, self.duration)
        return batch

    def _at_end(self) -> None:
        if self.loop:
            self.loops += 1
            log.info("replay of %s: loop %d done, starting over", self.session.path.name, self.loops)
            self._cursor = [0] * len(self._rel)
            self._reanchor(0.0)
        else:
            self._done_until = self.duration
            self.finished.set()
            log.info("replay of %s finished", self.session.path.name)
