"""Per-stream bookkeeping of the MQTT source: continuity, sequence numbers, clock mapping
and health counters of one ``(subject, modality)`` stream.

It decides, for each decoded message, whether it continues the stream (timestamps follow
on exactly), opens a gap (counted; with ``seq`` the lost samples are counted as dropped),
is stale or reordered (refused as ``out_of_order``), or comes from a restarted sender
(re-anchored). All of it runs on the source's network thread; :meth:`health` may be called
from any thread.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import numpy as np

from core.modalities import REGISTRY
from core.streams import StreamHealth, StreamSpec
from devices.mqtt._clock import SenderClock
from devices.mqtt._schema import PayloadError, SampleMessage

SNAP_S = 0.010
"""A message whose t0 is within this (or half a sample period) of where the previous one
ended continues it exactly: sample counting beats a jittery per-message sender stamp."""
GAP_PERIODS = 3.0
"""A jump of more than this many sample periods counts as a gap."""
RESTART_S = 5.0
"""Sender time running backwards by more than this means the sender restarted its clock."""
LOST_MIN_S = 3.0
"""A stream silent for max(this, 5 message intervals) is reported lost."""
RATE_WINDOW_S = 10.0
LAYOUT_RATE_TOLERANCE = 1e-3

OUT_OF_ORDER = "out_of_order"
LAYOUT_CHANGED = "layout_changed"


def default_channels(n: int) -> tuple[str, ...]:
    return ("value",) if n == 1 else tuple(f"ch{i + 1}" for i in range(n))


class StreamTracker:
    """State of one sample (or marker) stream fed over MQTT."""

    def __init__(self, subject: str, modality: str, topic: str, *, trust_sender_clock: bool = False):
        units = REGISTRY[modality].units if modality in REGISTRY else ""
        self.spec = StreamSpec(
            subject=subject, modality=modality, units=units, name=topic, source_id=f"mqtt:{topic}"
        )
        self.has_data = False
        self.clock = SenderClock(trusted=trust_sender_clock)
        self._lock = threading.Lock()
        self._next_t0: float | None = None  # sender time where the next message should start
        self._last_seq: int | None = None
        self._arrivals: deque[tuple[float, int]] = deque()  # (local time, samples), last RATE_WINDOW_S
        self._interval = 0.0
        self._started = float("nan")  # local time of the stream's first sample (estimated)
        self.samples = 0
        self.gaps = 0
        self.dropped = 0
        self.rejected = 0
        self.reject_reasons: Counter = Counter()
        self.last_timestamp = float("nan")
        self.last_received = float("nan")

    # --- refusing ------------------------------------------------------------------
    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self.reject_reasons[reason] += 1

    # --- accepting samples -----------------------------------------------------------
    def admit(self, msg: SampleMessage, received: float) -> tuple[np.ndarray, np.ndarray]:
        """Check ``msg`` continues this stream; return ``(values, local timestamps)``.

        Raises :class:`PayloadError` (``out_of_order``, ``layout_changed``) before touching
        the stream, so a refused message leaves it as it was. Timestamps stay strictly
        increasing: if re-anchoring the clock (restarted sender) would place samples at or
        before the last stored one, those samples are dropped and counted (and if that is all
        of them the message is refused, though its clock observation is kept: it is a valid
        measurement of the sender's clock).
        """
        with self._lock:
            restart = self._layout_restart(msg, received)
            t0, gap, dropped = msg.t0, False, 0
            if self._next_t0 is not None and not restart:
                t0, gap, dropped, restart = self._continuity(msg)
            if restart:
                self.clock.reset()
                gap = self.has_data
                t0 = msg.t0
            n = msg.n_samples
            rel = np.arange(n, dtype=np.float64) / msg.fs
            before, after = self.clock.observe(t0 + rel[-1], received)
            ramp = before + (after - before) * (np.arange(1, n + 1, dtype=np.float64) / n)
            timestamps = t0 + rel + ramp
            values = msg.values
            if self.has_data and timestamps[0] <= self.last_timestamp:
                keep = int(np.searchsorted(timestamps, self.last_timestamp, side="right"))
                if keep == n:
                    raise PayloadError(OUT_OF_ORDER, "all samples at or before the last stored one")
                self.dropped += keep
                values, timestamps = values[keep:], timestamps[keep:]
            self._commit(msg, received, t0, timestamps, gap, dropped)
            return values, timestamps

    def _layout_restart(self, msg: SampleMessage, received: float) -> bool:
        """True when the layout changed after the stream was lost (a new device); raises
        when it changes while the stream is live (one odd message must not wipe a buffer)."""
        if not self.has_data:
            return False
        same = msg.n_channels == self.spec.n_channels and abs(
            msg.fs - self.spec.nominal_rate
        ) <= LAYOUT_RATE_TOLERANCE * self.spec.nominal_rate
        if same:
            return False
        if received - self.last_received <= self._lost_after():
            raise PayloadError(
                LAYOUT_CHANGED,
                f"{msg.n_channels} ch @ {msg.fs:g} Hz while the live stream has "
                f"{self.spec.n_channels} ch @ {self.spec.nominal_rate:g} Hz",
            )
        return True

    def _continuity(self, msg: SampleMessage) -> tuple[float, bool, int, bool]:
        """(t0 to use, gap?, samples dropped, sender restarted?) against the previous message."""
        assert self._next_t0 is not None
        delta = msg.t0 - self._next_t0
        tol = max(0.5 / msg.fs, SNAP_S)
        seq, last = msg.seq, self._last_seq
        seq_back = seq is not None and last is not None and seq <= last
        if seq_back:
            if delta > tol or delta < -RESTART_S:  # time moved on: a restarted sender
                return msg.t0, True, 0, True
            raise PayloadError(OUT_OF_ORDER, f"seq {seq} after {last}")
        if delta < -tol:
            if delta < -RESTART_S:
                return msg.t0, True, 0, True
            raise PayloadError(OUT_OF_ORDER, f"t0 {delta * 1000:.1f} ms before the previous end")
        t0 = self._next_t0 if abs(delta) <= tol else msg.t0
        gap = delta > max(GAP_PERIODS / msg.fs, tol)
        dropped = 0
        if seq is not None and last is not None and seq > last + 1:
            missing = seq - last - 1
            by_time = round(delta * msg.fs)
            dropped = by_time if by_time >= missing else missing * msg.n_samples
            gap = True
        return t0, gap, dropped, False

    def _commit(
        self, msg: SampleMessage, received: float, t0: float, timestamps: np.ndarray, gap: bool, dropped: int
    ) -> None:
        channels = msg.channels or (
            self.spec.channels if self.has_data and self.spec.n_channels == msg.n_channels
            else default_channels(msg.n_channels)
        )
        units = msg.units if msg.units is not None else self.spec.units
        if (channels, msg.fs, units) != (self.spec.channels, self.spec.nominal_rate, self.spec.units):
            self.spec = StreamSpec(
                subject=self.spec.subject,
                modality=self.spec.modality,
                channels=tuple(channels),
                nominal_rate=float(msg.fs),
                units=units,
                name=self.spec.name,
                source_id=self.spec.source_id,
            )
        if self._arrivals and received > self._arrivals[-1][0]:
            step = received - self._arrivals[-1][0]
            self._interval = step if self._interval == 0 else 0.8 * self._interval + 0.2 * step
        if not self.has_data:
            self._started = received - msg.duration
        self._note_arrival(received, msg.n_samples)
        self._next_t0 = t0 + msg.n_samples / msg.fs
        self._last_seq = msg.seq
        self.has_data = True
        self.samples += msg.n_samples
        self.gaps += int(gap)
        self.dropped += dropped
        self.last_timestamp = float(timestamps[-1])
        self.last_received = received

    # --- accepting markers -----------------------------------------------------------
    def admit_markers(self, times: tuple[float, ...], received: float, offset: float | None = None) -> np.ndarray:
        """Local timestamps of events. ``offset``: the clock offset of a sample stream of the
        same subject (usually the same sender); sparse markers alone estimate it poorly (one
        marker sent retroactively would anchor it wrongly), so it is preferred when given."""
        with self._lock:
            if offset is None:
                _, offset = self.clock.observe(max(times), received)
            self.samples += len(times)
            if not self.has_data:
                self._started = received
            self.has_data = True
            self._note_arrival(received, len(times))
            out = np.asarray(times, dtype=np.float64) + offset
            self.last_timestamp = float(out.max())
            self.last_received = received
            return out

    def current_offset(self) -> tuple[float, float] | None:
        """(offset, local time of the last message) for lending to the marker stream."""
        with self._lock:
            if not self.has_data or self.clock.offset is None:
                return None
            return self.clock.offset, self.last_received

    def _note_arrival(self, received: float, n: int) -> None:
        self._arrivals.append((received, n))
        while self._arrivals and self._arrivals[0][0] < received - RATE_WINDOW_S:
            self._arrivals.popleft()

    # --- reporting -------------------------------------------------------------------
    def _lost_after(self) -> float:
        return max(LOST_MIN_S, 5.0 * self._interval)

    def _effective_rate(self, now: float) -> float:
        """Samples received per second of local time over the last ``RATE_WINDOW_S`` (or
        since the stream began): what the device delivers, to compare with what it claims."""
        if not self._arrivals or now - self._arrivals[-1][0] > self._lost_after():
            return 0.0
        window = min(RATE_WINDOW_S, now - self._started)
        if window <= 0:
            return 0.0
        return sum(n for t, n in self._arrivals if t > now - window) / window

    def health(self, now: float, link: str) -> StreamHealth:
        """Snapshot; ``link`` is the broker connection state of the source."""
        with self._lock:
            idle = now - self.last_received if self.has_data else float("inf")
            irregular = self.spec.nominal_rate <= 0  # markers: silence is normal
            live = link == "connected" and self.has_data and (irregular or idle <= self._lost_after())
            if link != "connected":
                status = f"broker {link}"
            elif not self.has_data:
                status = "no valid data"
            elif not live:
                status = f"lost {idle:.1f} s ago"
            else:
                status = "connected"
            return StreamHealth(
                spec=self.spec,
                connected=live,
                samples=self.samples,
                effective_rate=self._effective_rate(now) if self.spec.nominal_rate > 0 else 0.0,
                gaps=self.gaps,
                dropped=self.dropped,
                rejected=self.rejected,
                reject_reasons=Counter(self.reject_reasons),
                last_timestamp=self.last_timestamp,
                last_received=self.last_received,
                status=status,
            )
