"""A subject's continuous self-report of pain (CoVAS: 0 = no pain, 100 = worst imaginable).

Pain research records what subjects say alongside what their bodies show: the subject (or
an observer) keeps a slider at their current pain, and the rating is sampled steadily, so
a rating held for a minute is recorded as held. :class:`SelfReportChannel` is that rating
for one subject, independent of any widget (the dashboard's slider,
:mod:`monitor.gui.self_report`, only calls :meth:`SelfReportChannel.set`):

* from the first rating on it samples the value :data:`core.wire.SELF_REPORT_RATE` times a
  second, on its own thread, and pushes each sample
  - into the hub as the subject's :data:`core.streams.SELF_REPORT` stream, so the session
    recorder writes it to the XDF file beside the signals and ``painmon train --dataset
    xdf --labels selfreport`` can learn from it;
  - onto an LSL outlet :func:`core.wire.self_report_stream_name` (type
    :data:`core.wire.SELF_REPORT_STREAM_TYPE`, one channel :data:`core.wire.SELF_REPORT_CHANNEL`),
    so LabRecorder and other tools see it;
  - as JSON on :func:`core.wire.self_report_topic` when given a publisher (MQTT);
* :class:`SelfReports` holds the channels of a session and a bounded history of every
  self-report the hub sees (local or replayed from a file) for the trend
  (:meth:`SelfReports.trend`).

Self-reports are not a model input and not a registered modality: LSL and MQTT sources do
not follow them, so a dashboard that follows every LSL stream never reads its own outlet
back in as a second copy.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from core import clock
from core.buffers import BufferHub
from core.streams import SELF_REPORT, StreamSpec
from core.wire import (
    DEFAULT_TOPIC_PREFIX,
    SELF_REPORT_CHANNEL,
    SELF_REPORT_RANGE,
    SELF_REPORT_RATE,
    SELF_REPORT_SOURCE_KIND,
    SELF_REPORT_STREAM_TYPE,
    SELF_REPORT_UNITS,
    self_report_stream_name,
    self_report_topic,
    stream_source_id,
)
from core.worker import BackgroundWorker
from monitor.outputs import Publisher

log = logging.getLogger(__name__)

HISTORY_RATE = 1.0
"""Samples per second kept for the trend (the file keeps every sample)."""
HISTORY_S = 6 * 3600.0
"""Trend history per subject (bounded: 6 h at 1 Hz is 21 600 points)."""


def self_report_spec(subject: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> StreamSpec:
    """The hub/XDF stream of a subject's self-report (names from :mod:`core.wire`)."""
    return StreamSpec(
        subject=subject,
        modality=SELF_REPORT,
        channels=(SELF_REPORT_CHANNEL,),
        nominal_rate=SELF_REPORT_RATE,
        units=SELF_REPORT_UNITS,
        name=self_report_stream_name(subject),
        source_id=stream_source_id(subject, SELF_REPORT_SOURCE_KIND, prefix),
    )


def clamp_rating(value: float) -> float:
    """A rating within :data:`core.wire.SELF_REPORT_RANGE`; ValueError for NaN/inf."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a self-report must be a finite number, got {value}")
    lo, hi = SELF_REPORT_RANGE
    return min(hi, max(lo, value))


def self_report_to_json(subject: str, rating: float, unix_time: float, t: float) -> str:
    """The MQTT payload: wall-clock and shared-clock time, the rating and its scale."""
    return json.dumps(
        {"subject": subject, "t": unix_time, "t_clock": t, "rating": rating, "scale": SELF_REPORT_UNITS},
        allow_nan=False, separators=(",", ":"),
    )


def _lsl_outlet(spec: StreamSpec) -> Any:
    import pylsl

    info = pylsl.StreamInfo(spec.name, SELF_REPORT_STREAM_TYPE, 1, spec.nominal_rate, pylsl.cf_float32,
                            spec.source_id)
    desc = info.desc()
    desc.append_child_value("subject", spec.subject)
    desc.append_child_value("modality", SELF_REPORT)
    desc.append_child_value("scale", "0 = no pain, 100 = worst pain imaginable")
    ch = desc.append_child("channels").append_child("channel")
    ch.append_child_value("label", SELF_REPORT_CHANNEL)
    ch.append_child_value("unit", SELF_REPORT_UNITS)
    ch.append_child_value("type", SELF_REPORT)
    return pylsl.StreamOutlet(info)


class SelfReportChannel:
    """One subject's rating, sampled steadily into the hub, LSL and MQTT once first set.

    Args:
        subject: whose rating it is.
        hub: where the samples go (the recorder listens there).
        lsl: open an LSL outlet (at the first rating).
        publisher: an object with ``publish(topic, payload)`` (e.g. a started
            :class:`devices.mqtt.MQTTPublisher`) for MQTT, or None.
        prefix: MQTT topic prefix and ``source_id`` prefix.
        rate: samples per second.
        steady: sample on a thread of its own from the first rating (False: only when
            :meth:`sample` is called, e.g. to stamp ratings read from elsewhere).
    """

    def __init__(
        self,
        subject: str,
        hub: BufferHub,
        *,
        lsl: bool = True,
        publisher: Publisher | None = None,
        prefix: str = DEFAULT_TOPIC_PREFIX,
        rate: float = SELF_REPORT_RATE,
        steady: bool = True,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.subject = subject
        self.hub = hub
        self.lsl = lsl
        self.publisher = publisher
        self.prefix = prefix
        self.rate = rate
        self.steady = steady
        self.spec = self_report_spec(subject, prefix)
        self.samples = 0
        """Samples pushed so far."""
        self.publish_failures = 0
        self._rating: float | None = None
        self._outlet: Any = None
        self._lock = threading.Lock()
        self._worker: BackgroundWorker | None = None
        self._closed = False

    @property
    def rating(self) -> float | None:
        """The current rating; None until the first :meth:`set`."""
        return self._rating

    def set(self, rating: float) -> float:
        """Set the rating (any thread); the first call starts the steady sampling.
        Returns the rating as stored (clamped to 0-100)."""
        value = clamp_rating(rating)
        with self._lock:
            first = self._rating is None
            self._rating = value
            if self._closed:
                return value
            if first:
                if self.lsl:
                    try:
                        self._outlet = _lsl_outlet(self.spec)
                    except Exception as exc:  # no liblsl: the hub and MQTT still get it
                        log.warning("no LSL outlet for %s's self-report: %s", self.subject, exc)
                if self.steady:
                    self._worker = BackgroundWorker(self._run, name=f"painmon-selfreport-{self.subject}")
                    self._worker.start()
        if first:
            log.info("self-report of %s started at %.0f", self.subject, value)
        return value

    def sample(self, t: float | None = None) -> bool:
        """Push the current rating once, stamped ``t`` (default now); False before the first rating."""
        rating = self._rating
        if rating is None:
            return False
        t = clock.now() if t is None else t
        self.hub.push(self.spec, np.array([[rating]], dtype=np.float32), np.array([t]))
        outlet = self._outlet
        if outlet is not None:
            outlet.push_sample([rating], t)
        if self.publisher is not None:
            try:
                self.publisher.publish(self_report_topic(self.prefix, self.subject),
                                       self_report_to_json(self.subject, rating, time.time(), t))
            except Exception as exc:  # a lost broker must not stop the recording of ratings
                self.publish_failures += 1
                if self.publish_failures == 1:
                    log.warning("MQTT publish of %s's self-report failed: %s", self.subject, exc)
        self.samples += 1
        return True

    def _run(self, stop: threading.Event) -> None:
        period = 1.0 / self.rate
        next_t = time.monotonic()
        while True:
            self.sample()
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:  # fell behind (suspended): resume the steady pace from now
                next_t = time.monotonic()
                delay = 0.0
            if stop.wait(max(0.0, delay)):
                return

    def close(self) -> None:
        """Stop sampling and drop the outlet; idempotent."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        self._outlet = None


class SelfReports:
    """The self-report channels of one session plus a trend history of every self-report
    the hub receives (this dashboard's, or a recording's being replayed).

    ``stop()`` (the pipeline calls it with its helpers, see
    :meth:`monitor.pipeline.Pipeline.add_helper`) closes every channel.
    """

    def __init__(
        self,
        hub: BufferHub,
        *,
        lsl: bool = True,
        publisher: Publisher | None = None,
        prefix: str = DEFAULT_TOPIC_PREFIX,
    ) -> None:
        self.hub = hub
        self.lsl = lsl
        self.publisher = publisher
        self.prefix = prefix
        self._channels: dict[str, SelfReportChannel] = {}
        self._history: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        hub.add_listener(self._on_chunk)

    def channel(self, subject: str) -> SelfReportChannel:
        """The subject's channel (created on first use)."""
        with self._lock:
            ch = self._channels.get(subject)
            if ch is None:
                ch = SelfReportChannel(subject, self.hub, lsl=self.lsl, publisher=self.publisher, prefix=self.prefix)
                self._channels[subject] = ch
            return ch

    def _on_chunk(self, spec: StreamSpec, data: Any, timestamps: Any) -> None:
        """Hub listener: keep ~1 Hz of every self-report stream for the trend."""
        if spec.modality != SELF_REPORT:
            return
        values = np.asarray(data, dtype=np.float64).reshape(-1)
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        with self._lock:
            hist = self._history.get(spec.subject)
            if hist is None:
                hist = self._history[spec.subject] = deque(maxlen=int(HISTORY_S * HISTORY_RATE))
            for t, v in zip(ts, values, strict=False):
                if not (math.isfinite(t) and math.isfinite(v)):
                    continue
                if hist and t < hist[-1][0]:  # a replay sought back: the history starts over
                    hist.clear()
                if not hist or t - hist[-1][0] >= 1.0 / HISTORY_RATE or v != hist[-1][1]:
                    hist.append((float(t), float(v)))

    def trend(self, subject: str, since: float = -math.inf) -> tuple[np.ndarray, np.ndarray]:
        """(times on the shared clock, ratings 0-100) of the subject's self-report since
        ``since``: what the trend draws beside the index (empty arrays when none)."""
        with self._lock:
            points = [p for p in self._history.get(subject, ()) if p[0] >= since]
        if not points:
            return np.empty(0), np.empty(0)
        arr = np.asarray(points, dtype=np.float64)
        return arr[:, 0], arr[:, 1]

    def subjects(self) -> list[str]:
        """Subjects with a self-report (channel or history)."""
        with self._lock:
            return sorted(set(self._channels) | set(self._history))

    def stop(self) -> None:
        """Close every channel (the history stays readable)."""
        with self._lock:
            channels = list(self._channels.values())
        for ch in channels:
            ch.close()
        self.hub.remove_listener(self._on_chunk)
