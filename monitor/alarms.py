"""Alarms at run time: :class:`core.alarms.AlarmMachine` fed by a pipeline, its
transitions sent everywhere an event goes.

:class:`AlarmMonitor` is an estimate output (:meth:`monitor.pipeline.Pipeline.add_output`)
that also checks, once a second on its own thread (a :class:`core.worker.BackgroundWorker`,
like every other loop of PainMon), how old each subject's newest sample is (the ``stale``
rule). Every transition (:class:`core.alarms.AlarmEvent`) becomes:

* a hub marker ``alarm:<kind>:<transition>`` (source ``alarm``), so the recorder writes it
  into the XDF file and the dashboard's trend draws it, like any event;
* a sample of the subject's LSL alarm stream (:class:`LSLAlarmOutlets`; released when the
  subject leaves, like its estimate stream);
* a JSON message on ``<prefix>/<subject>/alarm`` (:class:`MQTTAlarmPublisher`);
* a call of each listener (the web server's live feed, the dashboard's overview).

Names and JSON keys come from :mod:`core.wire`; :func:`alarm_to_dict` is the one builder of
the JSON (MQTT, LSL and the web API send the same object).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from core import clock
from core.alarms import Alarm, AlarmConfig, AlarmEvent, AlarmMachine, AlarmRules
from core.buffers import BufferHub
from core.estimate import Estimate
from core.wire import (
    ALARM_FIELDS,
    ALARM_MARKER_SOURCE,
    ALARM_SOURCE_KIND,
    ALARM_STREAM_TYPE,
    DEFAULT_TOPIC_PREFIX,
    alarm_stream_name,
    alarm_topic,
    stream_source_id,
)
from core.worker import BackgroundWorker
from monitor.outputs import forget_subject

log = logging.getLogger(__name__)

AlarmListener = Callable[[AlarmEvent], None]
STALE_CHECK_S = 1.0
MAX_HISTORY = 1000
"""Transitions kept per subject for the API and the subject page (the XDF file has all)."""


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def alarm_to_dict(event: AlarmEvent, origin: str | None = None) -> dict[str, Any]:
    """JSON-ready form of a transition, keys :data:`core.wire.ALARM_FIELDS` (NaN -> None)."""
    d = {
        "subject": event.subject,
        "kind": event.kind,
        "transition": event.transition,
        "alarm_id": event.alarm_id,
        "t": event.t,
        "value": _finite(event.value),
        "threshold": _finite(event.threshold),
        "message": event.message,
        "by": event.by,
        "origin": origin or "",
    }
    assert tuple(d) == ALARM_FIELDS
    return d


def alarm_to_json(event: AlarmEvent, origin: str | None = None) -> str:
    """The transition as compact JSON (UTF-8 text, no NaN): what MQTT and LSL carry."""
    return json.dumps(alarm_to_dict(event, origin), allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def active_to_dict(alarm: Alarm) -> dict[str, Any]:
    """An alarm that is on, as the web API lists it."""
    return {
        "subject": alarm.subject,
        "kind": alarm.kind,
        "alarm_id": alarm.alarm_id,
        "state": alarm.state,
        "raised_t": alarm.raised_t,
        "value": _finite(alarm.value),
        "threshold": _finite(alarm.threshold),
        "message": alarm.message,
        "acknowledged_t": _finite(alarm.acknowledged_t),
        "acknowledged_by": alarm.acknowledged_by,
    }


class AlarmMonitor:
    """Runs the alarm rules on a pipeline's estimates and hub; see the module docstring.

    Args:
        hub: the pipeline's hub (markers go there; sample ages come from there).
        config: the rules (default: the documented defaults for every subject).
        sinks: callables taking each :class:`AlarmEvent` (LSL, MQTT outputs); closed on
            :meth:`close` when they have ``close()``.
        now: the shared clock (tests may pass another).
        paused: true while data are held back on purpose (a paused replay): no ``stale`` check then.
    """

    def __init__(self, hub: BufferHub, config: AlarmConfig | None = None, *, sinks: list[AlarmListener] | None = None,
                 now: Callable[[], float] = clock.now, check_every_s: float = STALE_CHECK_S,
                 paused: Callable[[], bool] | None = None):
        self.hub = hub
        self.machine = AlarmMachine(config)
        self.sinks: list[AlarmListener] = list(sinks or [])
        self._listeners: list[AlarmListener] = []
        self._now = now
        self._every = check_every_s
        self._paused = paused
        self._lock = threading.RLock()
        self._history: dict[str, deque[AlarmEvent]] = {}
        self._worker = BackgroundWorker(self._run, name="painmon-alarms")

    # --- wiring ------------------------------------------------------------------------
    def start_clean(self, hub: BufferHub) -> None:
        """Follow a new session's ``hub``: alarm states and history start empty (what was
        raised on the previous source does not belong to this one), the rules stay."""
        with self._lock:
            self.hub = hub
            self.machine = AlarmMachine(self.machine.config)
            self._history.clear()

    def add_listener(self, fn: AlarmListener) -> None:
        """Call ``fn(event)`` for every transition (on the thread that caused it: quick)."""
        self._listeners.append(fn)

    @property
    def running(self) -> bool:
        """True while the stale check's thread is alive."""
        return self._worker.running

    def start(self) -> AlarmMonitor:
        """Start the once-a-second stale check (estimates need no thread). Idempotent:
        :func:`attach_alarms` starts it and a caller may start it again without harm."""
        if not self._worker.running:
            self._worker.start()
        return self

    def close(self) -> None:
        """Stop the stale check and close the sinks (the pipeline calls this on stop)."""
        self._worker.stop(5.0)
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing alarm sink %r failed", sink)

    # --- inputs ------------------------------------------------------------------------
    def __call__(self, est: Estimate) -> None:
        """An estimate (pipeline output, on the engine's worker thread)."""
        with self._lock:
            events = self.machine.update(est.subject, est.t_end, est.smoothed, est.state)
        self._emit(events)

    def check_stale(self) -> None:
        """Age of every subject's newest sample against the ``stale`` rule."""
        if self._paused is not None and self._paused():
            return
        now = self._now()
        for subject in self.hub.subjects():
            last = math.nan
            for modality in self.hub.modalities(subject):
                buf = self.hub.buffer(subject, modality)
                t = buf.last_timestamp if buf is not None else math.nan
                if math.isfinite(t) and not (t <= last):
                    last = t
            with self._lock:
                events = self.machine.check_stale(subject, now, last)
            self._emit(events)

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._every):
            try:
                self.check_stale()
            except Exception:  # the next check may succeed; never end the thread
                log.exception("stale check failed")

    def forget(self, subject: str) -> None:
        """The pipeline released ``subject`` (idle, or evicted by the ingest limits): its
        alarm state goes, unless an alarm of it is still active, and every sink with a
        ``forget(subject)`` releases what it holds for it (the LSL alarm outlet: its file
        descriptors and threads), as the estimate outlets do. A later transition of the
        subject (an acknowledgement of an alarm still active) opens a new outlet with the
        same ``source_id``, which LSL consumers reconnect to by themselves."""
        with self._lock:
            self.machine.forget(subject)
        forget_subject(self.sinks, subject)

    def acknowledge(self, subject: str, alarm_id: int, by: str = "") -> AlarmEvent | None:
        """Acknowledge a raised alarm (None: no such raised alarm)."""
        with self._lock:
            event = self.machine.acknowledge(subject, alarm_id, self._now(), by)
        if event is not None:
            self._emit([event])
        return event

    def set_rules(self, subject: str | None, rules: AlarmRules) -> None:
        with self._lock:
            self.machine.set_rules(subject, rules)

    def rules_for(self, subject: str | None) -> AlarmRules:
        """A subject's rules (``None``: the default for subjects without their own)."""
        with self._lock:
            config = self.machine.config
            return config.default if subject is None else config.rules(subject)

    # --- reading -----------------------------------------------------------------------
    def active(self, subject: str | None = None) -> list[Alarm]:
        with self._lock:
            return [Alarm(**vars(a)) for a in self.machine.active(subject)]

    def history(self, subject: str) -> list[AlarmEvent]:
        with self._lock:
            return list(self._history.get(subject, ()))

    # --- outputs -----------------------------------------------------------------------
    def _emit(self, events: list[AlarmEvent]) -> None:
        for event in events:
            with self._lock:
                self._history.setdefault(event.subject, deque(maxlen=MAX_HISTORY)).append(event)
            log.info("alarm %s %s for %s: %s", event.kind, event.transition, event.subject, event.message)
            self.hub.push_markers(event.subject, [event.label], [event.t], source=ALARM_MARKER_SOURCE)
            for fn in (*self.sinks, *self._listeners):
                try:
                    fn(event)
                except Exception:
                    log.exception("alarm output %r failed", fn)


class LSLAlarmOutlets:
    """One LSL string stream per subject (:func:`core.wire.alarm_stream_name`, type
    :data:`core.wire.ALARM_STREAM_TYPE`); each sample is a transition's JSON, stamped with
    its shared-clock time."""

    def __init__(self, source_prefix: str = DEFAULT_TOPIC_PREFIX, origin: str | None = None):
        self.source_prefix = source_prefix
        self.origin = origin
        self._outlets: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.sent = 0
        self.closed = 0

    def outlet(self, subject: str) -> Any:
        import pylsl

        with self._lock:
            out = self._outlets.get(subject)
            if out is None:
                source_id = stream_source_id(subject, ALARM_SOURCE_KIND, self.source_prefix)
                info = pylsl.StreamInfo(alarm_stream_name(subject), ALARM_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE,
                                        pylsl.cf_string, source_id)
                info.desc().append_child_value("subject", subject)
                info.desc().append_child_value("format", "JSON: " + ",".join(ALARM_FIELDS))
                out = self._outlets[subject] = pylsl.StreamOutlet(info)
            return out

    def __call__(self, event: AlarmEvent) -> None:
        self.outlet(event.subject).push_sample([alarm_to_json(event, self.origin)], event.t)
        self.sent += 1

    def subjects(self) -> list[str]:
        """Subjects with an open alarm outlet."""
        with self._lock:
            return sorted(self._outlets)

    def forget(self, subject: str) -> None:
        """Close the subject's outlet, if any (the subject left): an outlet holds file
        descriptors and threads, so a churn of subjects must not keep theirs."""
        with self._lock:
            out = self._outlets.pop(subject, None)
        if out is not None:
            del out  # the last reference: pylsl destroys the outlet (sockets, threads)
            self.closed += 1
            log.info("LSL outlet %s closed (subject released)", alarm_stream_name(subject))

    def close(self) -> None:
        """Drop every outlet (LSL consumers see the streams disappear)."""
        with self._lock:
            self._outlets.clear()


class MQTTAlarmPublisher:
    """Publishes each transition's JSON on ``<prefix>/<subject>/alarm`` (QoS of the
    publisher; a failure is logged and counted, never raised)."""

    def __init__(self, publisher: Any, prefix: str = DEFAULT_TOPIC_PREFIX, origin: str | None = None):
        self.publisher = publisher
        self.prefix = prefix.rstrip("/")
        self.origin = origin
        self.sent = 0
        self.failed = 0

    def __call__(self, event: AlarmEvent) -> None:
        try:
            self.publisher.publish(alarm_topic(self.prefix, event.subject), alarm_to_json(event, self.origin))
            self.sent += 1
        except Exception as exc:
            self.failed += 1
            log.warning("MQTT publish of %s's alarm failed: %s", event.subject, exc)


def attach_alarms(pipeline: Any, config: AlarmConfig | None = None, *, lsl: bool = False, mqtt: Any = None,
                  prefix: str = DEFAULT_TOPIC_PREFIX, origin: str | None = None,
                  paused: Callable[[], bool] | None = None) -> AlarmMonitor:
    """An :class:`AlarmMonitor` on ``pipeline`` (its estimate output, stopped with it),
    publishing on LSL when ``lsl`` and through ``mqtt`` (an object with ``publish``, e.g.
    the estimate output's :class:`devices.mqtt.MQTTPublisher`) when given; started."""
    sinks: list[AlarmListener] = []
    if lsl:
        sinks.append(LSLAlarmOutlets(origin=origin))
    if mqtt is not None:
        sinks.append(MQTTAlarmPublisher(mqtt, prefix=prefix, origin=origin))
    monitor = AlarmMonitor(pipeline.hub, config, sinks=sinks, paused=paused)
    pipeline.add_output(monitor)
    return monitor.start()
