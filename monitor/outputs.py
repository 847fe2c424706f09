"""Where estimates go besides the dashboard: an LSL outlet per subject and MQTT JSON.

Both classes are plain callables taking an :class:`core.estimate.Estimate`, so they plug
into :meth:`monitor.engine.Engine.add_callback` or :meth:`monitor.pipeline.Pipeline.add_output`
(they run on the engine's worker thread), and both have ``close()``.

Every name they put on the wire comes from :mod:`core.wire`:

* LSL: one outlet per subject, named :func:`core.wire.estimate_stream_name`, type
  :data:`core.wire.ESTIMATE_STREAM_TYPE`, float32 channels :data:`core.wire.ESTIMATE_CHANNELS`,
  each sample stamped with the window end ``t_end`` on the shared clock, so LabRecorder
  stores estimates aligned with the signals they came from;
* MQTT: JSON (:func:`estimate_to_json`, the one builder of the estimate payload) on
  :func:`core.wire.estimate_topic` (NaN becomes ``null``: JSON has no NaN), with the
  estimate's ``state`` and ``mode`` as words (and ``silent_s`` on a ``stale`` status).

A subject whose streams stopped keeps getting a ``stale`` estimate once per hop (every
number NaN/null, see :mod:`monitor.engine.states`), so consumers of either output see the
silence instead of the last number frozen.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from core.estimate import CLASS_NAMES, Estimate
from core.wire import (
    DEFAULT_TOPIC_PREFIX,
    ESTIMATE_CHANNELS,
    ESTIMATE_SOURCE_KIND,
    ESTIMATE_STREAM_TYPE,
    MODE_CODES,
    STATE_CODES,
    estimate_stream_name,
    estimate_topic,
    estimate_values,
    stream_source_id,
)

log = logging.getLogger(__name__)


def forget_subject(outputs: Iterable[object], subject: str) -> None:
    """Let every output with a ``forget(subject)`` release what it holds for a subject that
    left (an LSL outlet: file descriptors and threads); one failing output does not keep
    the others from it."""
    for output in outputs:
        forget = getattr(output, "forget", None)
        if forget is not None:
            try:
                forget(subject)
            except Exception:
                log.exception("output %r failed to forget %s", output, subject)


def estimate_row(est: Estimate) -> list[float]:
    """The LSL channel values of an estimate (:func:`core.wire.estimate_values`)."""
    return estimate_values(est)


DEFAULT_OUTLET_IDLE_S = 300.0
DEFAULT_MAX_OUTLETS = 128
"""An LSL outlet holds ~9 file descriptors and 2 threads: this many stay far below the
usual limit of 1,024 open files."""
SWEEP_EVERY_S = 5.0


class LSLEstimateOutlets:
    """One LSL outlet per subject, created when the subject's first estimate arrives.

    Outlets are released, so a churn of subjects cannot exhaust file descriptors: the
    pipeline calls :meth:`forget` when a source lets a subject go; an outlet without an
    estimate for ``idle_s`` seconds is closed; and beyond ``max_outlets`` the least
    recently used one is closed to make room (a returning subject gets a new outlet with
    the same ``source_id``, which LSL consumers reconnect to by themselves).
    """

    def __init__(
        self,
        model_name: str = "",
        source_prefix: str = DEFAULT_TOPIC_PREFIX,
        chunk_size: int = 1,
        *,
        idle_s: float = DEFAULT_OUTLET_IDLE_S,
        max_outlets: int = DEFAULT_MAX_OUTLETS,
    ):
        if idle_s <= 0 or max_outlets < 1:
            raise ValueError("idle_s must be positive and max_outlets at least 1")
        self.model_name = model_name
        self.source_prefix = source_prefix
        self.chunk_size = chunk_size
        self.idle_s = float(idle_s)
        self.max_outlets = int(max_outlets)
        self._outlets: dict[str, Any] = {}
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()
        self.sent = 0
        self.closed = 0

    def outlet(self, subject: str, model_name: str | None = None) -> Any:
        """The subject's outlet (created on first use)."""
        import pylsl

        with self._lock:
            self._used[subject] = time.monotonic()
            out = self._outlets.get(subject)
            if out is not None:
                return out
            while len(self._outlets) >= self.max_outlets:
                oldest = min(self._outlets, key=lambda s: self._used.get(s, 0.0))
                self._close_locked(oldest, "too many outlets")
            info = pylsl.StreamInfo(
                estimate_stream_name(subject),
                ESTIMATE_STREAM_TYPE,
                len(ESTIMATE_CHANNELS),
                pylsl.IRREGULAR_RATE,  # windows may be skipped under load: not a fixed rate
                pylsl.cf_float32,
                stream_source_id(subject, ESTIMATE_SOURCE_KIND, self.source_prefix),
            )
            desc = info.desc()
            desc.append_child_value("subject", subject)
            desc.append_child_value("model", model_name or self.model_name)
            desc.append_child_value("timestamps", "window end (LSL local clock)")
            desc.append_child_value("state_codes", ",".join(STATE_CODES))
            desc.append_child_value("mode_codes", ",".join(MODE_CODES))
            chans = desc.append_child("channels")
            for label, unit in ESTIMATE_CHANNELS:
                ch = chans.append_child("channel")
                ch.append_child_value("label", label)
                ch.append_child_value("unit", unit)
                ch.append_child_value("type", ESTIMATE_STREAM_TYPE)
            out = pylsl.StreamOutlet(info, chunk_size=self.chunk_size)
            self._outlets[subject] = out
            log.info("LSL outlet %s opened", estimate_stream_name(subject))
            return out

    def __call__(self, est: Estimate) -> None:
        self.outlet(est.subject, est.model).push_sample(estimate_row(est), est.t_end)
        self.sent += 1
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY_S:
            self.expire_idle()

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(self._outlets)

    def forget(self, subject: str) -> None:
        """Close the subject's outlet, if any (the subject left)."""
        with self._lock:
            self._close_locked(subject, "subject released")

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Close outlets without an estimate for ``idle_s``; returns their subjects."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._last_sweep = t
            idle = [s for s in self._outlets if t - self._used.get(s, t) > self.idle_s]
            for subject in idle:
                self._close_locked(subject, "idle")
        return idle

    def _close_locked(self, subject: str, why: str) -> None:
        out = self._outlets.pop(subject, None)
        self._used.pop(subject, None)
        if out is not None:
            del out  # the last reference: pylsl destroys the outlet (sockets, threads)
            self.closed += 1
            log.info("LSL outlet %s closed (%s)", estimate_stream_name(subject), why)

    def close(self) -> None:
        """Drop every outlet (LSL consumers see the streams disappear)."""
        with self._lock:
            for subject in list(self._outlets):
                self._close_locked(subject, "shutdown")


class Publisher(Protocol):
    """What :class:`MQTTEstimatePublisher` needs of an MQTT client: ``publish(topic, payload)``."""
    def publish(self, topic: str, payload: bytes | str) -> Any: ...


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def estimate_to_dict(est: Estimate, origin: str | None = None) -> dict[str, Any]:
    """JSON-ready form of an estimate (NaN -> None). ``origin`` names the producing
    instance (host, process, shard), so a ward spread over machines can be audited."""
    d: dict[str, Any] = {
        "subject": est.subject,
        "t_end": est.t_end,
        "state": est.state,
        "mode": est.mode,
        "hop_s": _finite(est.hop_s),
        "index": _finite(est.index),
        "smoothed": _finite(est.smoothed),
        "smoothed_long": _finite(est.smoothed_long),
        "probs": {name: _finite(p) for name, p in zip(CLASS_NAMES, est.probs, strict=True)},
        "quality": {m: _finite(q) for m, q in est.quality.items()},
        "missing": list(est.missing),
        "valid": bool(est.valid),
        "model": est.model,
        "latency": {k: _finite(v) for k, v in est.latency.items()},
        "created": _finite(est.created),
        "calibration": _finite(est.calibration),
        "ood_score": _finite(est.ood_score),
    }
    if est.state == "stale":
        d["silent_s"] = _finite(est.silent_s)
    if origin:
        d["origin"] = origin
    return d


def estimate_to_json(est: Estimate, origin: str | None = None) -> str:
    """Compact JSON of :func:`estimate_to_dict` (NaN already null, so the output is strict JSON)."""
    return json.dumps(estimate_to_dict(est, origin), allow_nan=False, separators=(",", ":"))


class MQTTEstimatePublisher:
    """Publishes each estimate as JSON on ``<prefix>/<subject>/estimate`` through
    ``publisher`` (an object with ``publish(topic, payload)``, e.g.
    :class:`devices.mqtt.MQTTPublisher`). A failed publish is logged and counted, never
    raised into the engine. An output made by :meth:`connect` owns its publisher and
    :meth:`close` stops it; otherwise the publisher stays the caller's."""

    def __init__(self, publisher: Publisher, prefix: str = DEFAULT_TOPIC_PREFIX, origin: str | None = None):
        self.publisher = publisher
        self.prefix = prefix.rstrip("/")
        self.origin = origin
        self.sent = 0
        self.failed = 0
        self._owned: Any = None

    @classmethod
    def connect(cls, config: Any, origin: str | None = None) -> MQTTEstimatePublisher:
        """An output with its own :class:`devices.mqtt.MQTTPublisher` on ``config``
        (a :class:`devices.mqtt.MQTTConfig`; its prefix is the topic prefix), started now."""
        from devices.mqtt import MQTTPublisher

        publisher = MQTTPublisher(config)
        publisher.start()
        out = cls(publisher, prefix=config.prefix, origin=origin)
        out._owned = publisher
        return out

    def broker_stats(self) -> Any:
        """The publisher's :class:`devices.mqtt.PublisherStats` (link state, queue), or None
        when the publisher keeps no statistics."""
        stats = getattr(self.publisher, "stats", None)
        return stats() if callable(stats) else None

    def close(self) -> None:
        """Stop the publisher when this output owns it (it flushes what is queued first)."""
        owned, self._owned = self._owned, None
        if owned is not None:
            owned.stop()

    def __call__(self, est: Estimate) -> None:
        try:
            self.publisher.publish(estimate_topic(self.prefix, est.subject), estimate_to_json(est, self.origin))
            self.sent += 1
        except Exception as exc:
            self.failed += 1
            log.warning("MQTT publish of %s's estimate failed: %s", est.subject, exc)
