"""MQTT ingestion: subscribe to ``<prefix>/+/+`` and feed every valid message into the hub.

The network side runs on an asyncio loop (aiomqtt) in a background thread; each message is
decoded, validated and placed on the shared clock there, then pushed into
:class:`core.buffers.BufferHub`. Anything malformed is refused with a counted, logged reason
and never touches data already stored. A lost broker is retried with exponential back-off
(capped at ``config.reconnect_max``) for as long as the source runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from core.buffers import BufferHub
from core.clock import now
from core.streams import StreamHealth, StreamSpec
from core.wire import subscription
from devices.mqtt._config import MQTTConfig
from devices.mqtt._loop import LoopThread, record_link, run_reconnecting
from devices.mqtt._schema import PayloadError, decode_markers, decode_samples
from devices.mqtt._stream import StreamTracker
from devices.mqtt._topics import Topic, parse_topic
from devices.source import Source, SourceError

log = logging.getLogger(__name__)

MAX_STREAMS = 1024
"""More (subject, modality) streams than this are refused: a runaway publisher inventing
subject ids must not exhaust memory."""
RETAINED = "retained"
TOO_MANY_STREAMS = "too_many_streams"
INTERNAL_ERROR = "internal_error"
_LOG_FIRST = 5
_LOG_EVERY = 1000


@dataclass
class MQTTStatus:
    """Connection-level state of a source (streams have their own :class:`StreamHealth`)."""

    broker: str
    link: str
    """'idle', 'connecting', 'connected', 'reconnecting' or 'stopped'."""
    connections: int = 0
    """Successful connects so far (> 1 means it has reconnected)."""
    messages: int = 0
    accepted: int = 0
    ignored: int = 0
    """Messages of subjects another instance takes, and PainMon's own estimates."""
    rejected: int = 0
    reject_reasons: Counter = field(default_factory=Counter)
    last_error: str = ""
    link_since: float = field(default_factory=time.time)
    """Wall-clock time (``time.time()``) the link entered its current state."""


UNREACHABLE_LINKS = ("reconnecting", "failed")
"""Link states in which the broker is not answering (retries go on, or have given up)."""


def link_text(status: MQTTStatus) -> str:
    """The link state for people: "connected", "connecting", or "broker unreachable since
    08:12:03" (local wall-clock time the broker stopped answering) while it is retried."""
    if status.link in UNREACHABLE_LINKS:
        return f"broker unreachable since {time.strftime('%H:%M:%S', time.localtime(status.link_since))}"
    return status.link


class MQTTSource(Source):
    """Source of every subject/modality published under ``config.prefix``.

    ``subjects`` (optional) says which subject ids this instance takes, so several
    instances can share the load; ``trust_sender_clock`` declares that senders already stamp
    ``t0`` on this machine's LSL clock (same-machine publishers), so no offset is estimated.
    Not restartable: after ``stop()`` make a new source.
    """

    name = "mqtt"

    def __init__(
        self,
        config: MQTTConfig,
        *,
        subjects: Callable[[str], bool] | None = None,
        trust_sender_clock: bool = False,
    ):
        super().__init__()
        self.config = config
        self._subjects = subjects
        self._trust = trust_sender_clock
        self._hub: BufferHub | None = None
        self._trackers: dict[tuple[str, str], StreamTracker] = {}
        self._lock = threading.Lock()
        self._status = MQTTStatus(broker=config.describe(), link="idle")
        self._connected = threading.Event()
        self._thread = LoopThread(f"mqtt-source {config.host}:{config.port}", self._run)
        self._reject_logs: Counter = Counter()
        self._registered: dict[tuple[str, str], StreamSpec] = {}  # what the hub was told

    # --- Source interface ---------------------------------------------------------------
    def _start(self, hub: BufferHub) -> None:
        """Launch the network thread and return; the broker may come up later."""
        try:
            self.config.client_kwargs()  # TLS files are loaded here: fail now, clearly
        except (OSError, ValueError) as exc:
            raise SourceError(f"MQTT configuration unusable: {exc}") from exc
        self._hub = hub
        self._set_link("connecting")
        self._thread.start()

    def _stop(self) -> None:
        self._thread.stop()
        self._set_link("stopped")

    def streams(self) -> list[StreamSpec]:
        with self._lock:
            return [t.spec for t in self._trackers.values() if t.has_data]

    def health(self) -> list[StreamHealth]:
        t = now()
        link = self.status().link
        with self._lock:
            trackers = list(self._trackers.values())
        return [tr.health(t, link) for tr in trackers]

    def describe(self) -> str:
        """"MQTT host:1883 (connected)", or "(broker unreachable since 08:12:03)" while
        the broker does not answer (status bars show this line as it is)."""
        return f"MQTT {self.config.describe()} ({link_text(self.status())})"

    # --- extras ------------------------------------------------------------------------
    def status(self) -> MQTTStatus:
        """A copy of the connection-level counters."""
        with self._lock:
            s = self._status
            return MQTTStatus(**{**s.__dict__, "reject_reasons": Counter(s.reject_reasons)})

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Block until subscribed to the broker (for CLIs and tests)."""
        return self._connected.wait(timeout)

    # --- network loop --------------------------------------------------------------------
    def _set_link(self, link: str, error: str | None = None) -> None:
        record_link(self._status, self._lock, self._connected, link, error)

    async def _run(self) -> None:
        await run_reconnecting(
            self.config, who="MQTT source", on_link=self._set_link, on_connect=self._subscribe, serve=self._receive
        )

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        topic_filter = subscription(self.config.prefix)
        await client.subscribe(topic_filter, qos=self.config.qos)
        log.info("MQTT source subscribed to %s on %s", topic_filter, self.config.describe())

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._on_message(str(message.topic), message.payload, bool(message.retain))

    # --- message handling ----------------------------------------------------------------
    def _on_message(self, topic: str, payload: object, retained: bool) -> None:
        """Decode, validate, time-stamp and store one message; never raises."""
        received = now()
        with self._lock:
            self._status.messages += 1
        tracker: StreamTracker | None = None
        try:
            parsed = parse_topic(self.config.prefix, topic)
            not_ours = self._subjects is not None and not self._subjects(parsed.subject)
            if parsed.kind in ("estimate", "selfreport") or not_ours:
                with self._lock:
                    self._status.ignored += 1
                return
            tracker = self._tracker(parsed, topic)
            if retained:  # stored on the broker long ago: its times would be misread as now
                raise PayloadError(RETAINED, "retained message")
            raw = bytes(payload) if isinstance(payload, (bytes, bytearray)) else str(payload).encode()
            if parsed.kind == "markers":
                self._store_markers(tracker, raw, received)
            else:
                self._store_samples(tracker, raw, received)
            with self._lock:
                self._status.accepted += 1
        except PayloadError as exc:  # TopicError is one too
            self._reject(tracker, topic, exc.reason, exc.detail)
        except Exception as exc:  # a bug must cost one message, not the session
            log.exception("MQTT source: failed on message of %s", topic)
            self._reject(tracker, topic, INTERNAL_ERROR, repr(exc))

    def _tracker(self, parsed: Topic, topic: str) -> StreamTracker:
        key = (parsed.subject, parsed.modality)
        with self._lock:
            tracker = self._trackers.get(key)
            if tracker is None:
                if len(self._trackers) >= MAX_STREAMS:
                    raise PayloadError(TOO_MANY_STREAMS, f"{MAX_STREAMS} streams already")
                tracker = StreamTracker(parsed.subject, parsed.modality, topic, trust_sender_clock=self._trust)
                self._trackers[key] = tracker
            return tracker

    def _store_samples(self, tracker: StreamTracker, raw: bytes, received: float) -> None:
        msg = decode_samples(raw)
        values, timestamps = tracker.admit(msg, received)
        assert self._hub is not None
        spec = tracker.spec
        if self._registered.get(spec.key) != spec:  # new stream, or labels/units/rate changed
            self._hub.register(spec)
            self._registered[spec.key] = spec
        self._hub.push(spec, values, timestamps)

    def _store_markers(self, tracker: StreamTracker, raw: bytes, received: float) -> None:
        msg = decode_markers(raw)
        first = not tracker.has_data
        timestamps = tracker.admit_markers(msg.times, received, self._subject_offset(tracker))
        assert self._hub is not None
        if first:
            self._hub.register(tracker.spec)
        self._hub.push_markers(tracker.spec.subject, list(msg.labels), timestamps, source=tracker.spec.source_id)

    def _subject_offset(self, markers: StreamTracker) -> float | None:
        """Clock offset of the subject's most recently active sample stream, if any."""
        if self._trust:
            return 0.0
        with self._lock:
            others = [t for (s, m), t in self._trackers.items() if s == markers.spec.subject and t is not markers]
        offsets = [o for o in (t.current_offset() for t in others) if o is not None]
        return max(offsets, key=lambda o: o[1])[0] if offsets else None

    def _reject(self, tracker: StreamTracker | None, topic: str, reason: str, detail: str) -> None:
        if tracker is not None:
            tracker.reject(reason)
        with self._lock:
            self._status.rejected += 1
            self._status.reject_reasons[reason] += 1
        key = (topic, reason)
        if len(self._reject_logs) > 10_000:  # many bogus topics: keep the log limiter bounded
            self._reject_logs.clear()
        self._reject_logs[key] += 1
        count = self._reject_logs[key]
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            log.warning("MQTT: rejected message on %s: %s (%s) [%d so far]", topic, reason, detail, count)
