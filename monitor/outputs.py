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


def estimate_row(est: Estimate) -> list[float]:
    """The LSL channel values of an estimate (:func:`core.wire.estimate_values`)."""
    return estimate_values(est)


class LSLEstimateOutlets:
    """One LSL outlet per subject, created when the subject's first estimate arrives."""

    def __init__(self, model_name: str = "", source_prefix: str = DEFAULT_TOPIC_PREFIX, chunk_size: int = 1):
        self.model_name = model_name
        self.source_prefix = source_prefix
        self.chunk_size = chunk_size
        self._outlets: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.sent = 0

    def outlet(self, subject: str, model_name: str | None = None) -> Any:
        """The subject's outlet (created on first use)."""
        import pylsl

        with self._lock:
            out = self._outlets.get(subject)
            if out is not None:
                return out
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

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(self._outlets)

    def close(self) -> None:
        """Drop every outlet (LSL consumers see the streams disappear)."""
        with self._lock:
            self._outlets.clear()


class Publisher(Protocol):
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
        "index": _finite(est.index),
        "smoothed": _finite(est.smoothed),
        "smoothed_long": _finite(est.smoothed_long),
        "probs": {name: _finite(p) for name, p in zip(CLASS_NAMES, est.probs)},
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
