"""One LSL stream followed by :class:`devices.lsl.LSLSource`: its inlet, pulls and health.

Design choices:

* Inlets are created with ``recover=False``. liblsl's silent recovery would hide a lost
  device from the monitor and, because it reconnects to the *same* uid only, never finds
  a restarted outlet (new uid). Instead a lost stream is closed and reported, and the
  source's discovery opens a fresh inlet when a stream with the same identity
  (source_id, else name/type/host) appears again.
* Loss is noticed two ways: liblsl raises ``LostError`` once the connection breaks, and a
  stream silent for longer than :meth:`FollowedStream.silence_limit` is checked against
  the network (see ``LSLSource``), so a vanished device is reported within ~2 s even when
  no TCP error arrives.
* Timestamps: ``proc_clocksync`` maps the sender's clock onto this machine's
  ``local_clock`` (streams from different devices align); ``proc_dejitter`` smooths
  network jitter for regular streams only (it would distort irregular marker times).
* A chunk whose timestamps go backwards or are not finite is rejected and counted; the
  buffer never receives out-of-order rows. A pause in a stream stays a gap (counted), it
  is never filled.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import replace

import numpy as np
import pylsl

from core import clock
from core.buffers import BufferHub
from core.errors import PainMonError
from core.streams import MARKERS, StreamHealth, StreamSpec
from devices.lsl._discovery import DiscoveredStream

log = logging.getLogger(__name__)

RATE_WINDOW_S = 5.0
"""Effective rate is measured over this much recent time."""


class StreamLost(PainMonError, RuntimeError):
    """The outlet of a followed stream is gone."""


def open_inlet(info: pylsl.StreamInfo, timeout: float = 1.0) -> tuple[pylsl.StreamInlet, pylsl.StreamInfo]:
    """Subscribe to a resolved stream; returns the inlet and the stream's *full* info.

    Resolved infos lack the ``<desc>`` (subject, channel labels, units); only a connected
    inlet can fetch it. Subscribing right away also means no sample is missed before the
    first pull. Raises (``LostError``/``TimeoutError``) when the outlet is already gone.
    """
    flags = pylsl.proc_clocksync
    if info.channel_format() != pylsl.cf_string and info.nominal_srate() > 0:
        flags |= pylsl.proc_dejitter
    inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False, processing_flags=flags)
    try:
        full = inlet.info(timeout=timeout)
        inlet.open_stream(timeout=timeout)
    except Exception:
        inlet.close_stream()
        raise
    return inlet, full


class FollowedStream:
    """Inlet, health and gap bookkeeping of one stream identity (survives outlet restarts).

    Each incarnation of the stream is pulled by its own worker thread (see
    :class:`devices.lsl.LSLSource`), so a slow connect or a blocking first clock-sync of one
    stream never delays the others. Fields are read and written under the source's lock,
    except the inlet itself, which only its worker touches.
    """

    def __init__(self, stream: DiscoveredStream, spec: StreamSpec):
        self.stream = stream
        self.spec = spec
        self.health = StreamHealth(spec=spec, status="discovered")
        self.inlet: pylsl.StreamInlet | None = None
        self.uid = ""
        self.active = False
        """A worker is following the current incarnation (until it ends)."""
        self.lost_request: str | None = None
        """Set by the presence check: the worker should close the inlet and end."""
        self._last_data_at = float("nan")
        self._lost_at = float("nan")
        self._arrivals: deque[tuple[float, int]] = deque()
        rate = spec.nominal_rate
        self.gap_threshold = max(4.0 / rate, 0.25) if rate > 0 else float("inf")
        self.is_markers = spec.modality == MARKERS

    # --- connection -----------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.health.connected

    def attach(self, inlet: pylsl.StreamInlet, stream: DiscoveredStream, now: float) -> None:
        """Follow (a possibly new incarnation of) the stream through an open inlet."""
        reconnect = not np.isnan(self._lost_at)
        self.inlet, self.uid, self.stream = inlet, stream.uid, stream
        self.active, self.lost_request = True, None
        self._last_data_at = now
        self.health.connected = True
        self.health.status = "reconnected" if reconnect else "connected"
        if reconnect:
            log.info("LSL stream %s is back after %.1f s", self.spec.name, now - self._lost_at)

    def report_lost(self, now: float, why: str) -> None:
        """Report the stream lost (data already stored stays); its worker closes the inlet."""
        if self.health.connected:
            log.warning("LSL stream %s lost (%s)", self.spec.name, why)
            self._lost_at = now
        self.lost_request = why
        self._arrivals.clear()
        self.health.connected = False
        self.health.effective_rate = 0.0
        self.health.status = "lost"

    def close(self) -> None:
        """Worker side: drop the inlet (its connection is gone or no longer wanted)."""
        inlet, self.inlet = self.inlet, None
        if inlet is not None:
            try:
                inlet.close_stream()
            except Exception as exc:  # noqa: BLE001 - the connection is gone anyway
                log.debug("closing the inlet of %s: %s", self.spec.name, exc)

    # --- data -----------------------------------------------------------------------
    def silence_limit(self) -> float:
        """Seconds without data after which the outlet's presence is checked."""
        rate = self.spec.nominal_rate
        return max(0.6, 4.0 / rate) if rate > 0 and not self.is_markers else 1.0

    def silent_for(self, now: float) -> float:
        return now - self._last_data_at if self.health.connected else 0.0

    def mark_alive(self, now: float) -> None:
        """The outlet answered a presence check: silent, not lost."""
        self._last_data_at = now
        if self.health.samples and self.spec.nominal_rate > 0:
            self.health.status = "no data"

    def pull(self, hub: BufferHub, lock: threading.Lock, timeout: float = 0.1) -> int:
        """Wait up to ``timeout`` for data, then move what is waiting into ``hub``.

        The wait and the push into the hub happen outside ``lock``; bookkeeping inside it. Raises
        :class:`StreamLost` when liblsl reports the outlet gone.
        """
        assert self.inlet is not None
        max_samples = max(64, int(self.spec.nominal_rate * 2))
        try:
            data, stamps = self.inlet.pull_chunk(timeout=timeout, max_samples=max_samples, min_samples=1,
                                                 as_numpy=True)
        except pylsl.util.LostError as exc:
            raise StreamLost(str(exc)) from exc
        if stamps is None or len(stamps) == 0:
            with lock:
                self._update_rate(clock.now(), 0)
            return 0
        now = clock.now()
        with lock:
            data, stamps = self._screen(data, np.asarray(stamps, dtype=np.float64))
        if stamps.size:
            # outside the lock: hub listeners may be slow or may ask this source for health
            if self.is_markers:
                labels = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data[:, 0]]
                hub.push_markers(self.spec.subject, labels, stamps, source=self.spec.name)
            else:
                hub.push(self.spec, data, stamps)
        with lock:
            self._count(stamps, now)
            self._update_rate(now, int(stamps.size))
        return int(stamps.size)

    def _screen(self, data: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop (and count) samples not after every earlier one; count a gap before the chunk."""
        h = self.health
        last = h.last_timestamp
        finite = np.isfinite(stamps)
        # each sample must come after every earlier one (in this chunk and before it)
        before = np.maximum.accumulate(np.concatenate([[-np.inf if np.isnan(last) else last],
                                                       np.where(finite, stamps, -np.inf)]))[:-1]
        keep = finite & ((stamps >= before) if self.is_markers else (stamps > before))
        if not keep.all():
            bad = int((~keep).sum())
            h.rejected += bad
            h.reject_reasons["timestamps not increasing"] += bad
            log.warning("LSL stream %s: rejected %d samples with out-of-order or invalid timestamps",
                        self.spec.name, bad)
            data, stamps = data[keep], stamps[keep]
        if stamps.size and not np.isnan(last) and stamps[0] - last > self.gap_threshold:
            h.gaps += 1
            log.info("LSL stream %s: gap of %.2f s", self.spec.name, stamps[0] - last)
        if stamps.size:
            h.last_timestamp = float(stamps[-1])
        return data, stamps

    def _count(self, stamps: np.ndarray, now: float) -> None:
        if not stamps.size:
            return
        h = self.health
        h.samples += int(stamps.size)
        h.last_received = now
        self._last_data_at = now
        if h.status != "connected" and h.connected:
            h.status = "connected"

    def _update_rate(self, now: float, n: int) -> None:
        if n:
            self._arrivals.append((now, n))
        while self._arrivals and self._arrivals[0][0] < now - RATE_WINDOW_S:
            self._arrivals.popleft()
        if self._arrivals:
            span = max(now - self._arrivals[0][0], 1.0)
            self.health.effective_rate = sum(c for _, c in self._arrivals) / span
        else:
            self.health.effective_rate = 0.0

    def snapshot(self, now: float) -> StreamHealth:
        """A copy of the health with a status text that says how long a loss has lasted."""
        h = replace(self.health, reject_reasons=self.health.reject_reasons.copy())
        if h.status == "lost" and not np.isnan(self._lost_at):
            h.status = f"lost {now - self._lost_at:.1f} s ago"
        return h
