"""MQTT ingestion: subscribe to ``<prefix>/+/+`` and feed every valid message into the hub.

The network side runs on an asyncio loop (aiomqtt) in a background thread; each message is
decoded, validated and placed on the shared clock there, then pushed into
:class:`core.buffers.BufferHub`. Anything malformed is refused with a counted, logged reason
and never touches data already stored. A lost broker is retried with exponential back-off
(capped at ``config.reconnect_max``) for as long as the source runs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from core.buffers import BufferHub
from core.clock import now
from core.limits import DeclarationError
from core.logthrottle import LogLimiter
from core.modalities import check_declared
from core.streams import StreamHealth, StreamSpec
from core.wire import subscription
from devices.mqtt._config import MQTTConfig
from devices.mqtt._loop import LoopThread, record_link, run_reconnecting
from devices.mqtt._schema import MarkerMessage, PayloadError, SampleMessage, decode_markers, decode_samples
from devices.mqtt._stream import StreamTracker
from devices.mqtt._topics import Topic, parse_topic
from devices.source import Source, SourceError

log = logging.getLogger(__name__)

RETAINED = "retained"
TOO_MANY_SUBJECTS = "too_many_subjects"
TOO_MANY_STREAMS = "too_many_streams"
SUBJECT_NOT_ALLOWED = "subject_not_allowed"
INTERNAL_ERROR = "internal_error"
SWEEP_EVERY_S = 1.0


@dataclass(frozen=True)
class IngestLimits:
    """What one MQTT source holds at most, and when it lets go.

    A subject is *on probation* until it has sent data for ``probation_s`` seconds; while
    the subject table is full a new subject takes the slot of the probationary subject
    heard from least recently, so a flood of invented ids only ever competes with itself
    and never costs an established subject its streams. Slots exist only for messages that
    passed validation.

    Args:
        max_subjects: subjects held at once (established and on probation).
        idle_expiry_s: an established subject silent this long is forgotten (its buffers,
            engine state and estimate outlet are released).
        probation_s: seconds of data after which a subject is established.
        probation_idle_s: a subject on probation silent this long is forgotten.
        subject_pattern: if given, only subject ids matching it entirely are taken
            (others are refused as ``subject_not_allowed``).
        rate_ranges: per-modality ``(low, high)`` Hz overriding :func:`core.modalities.rate_range`.
    """

    max_subjects: int = 64
    idle_expiry_s: float = 300.0
    probation_s: float = 10.0
    probation_idle_s: float = 20.0
    subject_pattern: str | None = None
    rate_ranges: dict[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        if self.max_subjects < 1:
            raise ValueError(f"max_subjects must be at least 1, got {self.max_subjects}")
        if not (self.idle_expiry_s > 0 and self.probation_idle_s > 0 and self.probation_s >= 0):
            raise ValueError("expiry times must be positive")
        if self.subject_pattern is not None:
            try:
                re.compile(self.subject_pattern)
            except re.error as exc:
                raise ValueError(f"bad subject pattern {self.subject_pattern!r}: {exc}") from None


@dataclass
class _Subject:
    first_seen: float
    last_seen: float
    established: bool = False


@dataclass
class MQTTStatus:
    """Connection-level state of a source (streams have their own :class:`StreamHealth`)."""

    broker: str
    link: str
    """'idle', 'connecting', 'connected', 'reconnecting', 'failed' or 'stopped'."""
    connections: int = 0
    """Successful connects so far (> 1 means it has reconnected)."""
    messages: int = 0
    """Messages handled so far (stored, ignored or refused): counted once a message is
    done with, so ``messages >= n`` means the first n are in the hub or refused."""
    accepted: int = 0
    ignored: int = 0
    """Messages of subjects another instance takes, and PainMon's own estimates."""
    rejected: int = 0
    reject_reasons: Counter = field(default_factory=Counter)
    last_error: str = ""
    link_since: float = field(default_factory=time.time)
    """Wall-clock time (``time.time()``) the link entered its current state."""
    subjects: int = 0
    """Subjects held now (established and on probation)."""
    expired: int = 0
    """Subjects forgotten so far (idle, or evicted from probation by newcomers)."""


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
    ``t0`` on this machine's LSL clock (same-machine publishers), so no offset is estimated;
    ``limits`` bounds subjects and sets their expiry (:class:`IngestLimits`).
    Not restartable: after ``stop()`` make a new source.
    """

    name = "mqtt"

    def __init__(
        self,
        config: MQTTConfig,
        *,
        subjects: Callable[[str], bool] | None = None,
        trust_sender_clock: bool = False,
        limits: IngestLimits | None = None,
    ):
        super().__init__()
        self.config = config
        self.limits = limits or IngestLimits()
        self._subjects = subjects
        self._pattern = re.compile(self.limits.subject_pattern) if self.limits.subject_pattern else None
        self._trust = trust_sender_clock
        self._hub: BufferHub | None = None
        self._trackers: dict[tuple[str, str], StreamTracker] = {}
        self._known: dict[str, _Subject] = {}
        self._lock = threading.Lock()
        self._status = MQTTStatus(broker=config.describe(), link="idle")
        self._connected = threading.Event()
        self._thread = LoopThread(f"mqtt-source {config.host}:{config.port}", self._run)
        self._reject_log = LogLimiter(log, interval=10.0, first=3, max_keys=256)
        self._registered: dict[tuple[str, str], StreamSpec] = {}  # what the hub was told
        self._last_sweep = 0.0

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
        self._thread.call_soon(self.expire_idle)  # on the network thread, like every slot change
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
            return MQTTStatus(
                **{**s.__dict__, "reject_reasons": Counter(s.reject_reasons), "subjects": len(self._known)}
            )

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
        """Decode, validate, time-stamp and store one message; never raises.

        Everything a message declares is checked before it may take a slot or size a
        buffer: topic, subject id, payload, plausible rate and channel count."""
        received = now()
        try:
            self._handle(topic, payload, retained, received)
        finally:
            with self._lock:
                self._status.messages += 1

    def _handle(self, topic: str, payload: object, retained: bool, received: float) -> None:
        """The body of :meth:`_on_message` (which counts the message once this returns)."""
        if received - self._last_sweep >= SWEEP_EVERY_S:
            self.expire_idle(received)
        tracker: StreamTracker | None = None
        try:
            parsed = parse_topic(self.config.prefix, topic)
            not_ours = self._subjects is not None and not self._subjects(parsed.subject)
            if parsed.is_output or not_ours:
                with self._lock:
                    self._status.ignored += 1
                return
            if self._pattern is not None and not self._pattern.fullmatch(parsed.subject):
                raise PayloadError(SUBJECT_NOT_ALLOWED, f"subject {parsed.subject[:64]!r}")
            with self._lock:
                tracker = self._trackers.get((parsed.subject, parsed.modality))
            if retained:  # stored on the broker long ago: its times would be misread as now
                raise PayloadError(RETAINED, "retained message")
            raw = bytes(payload) if isinstance(payload, (bytes, bytearray)) else str(payload).encode()
            if parsed.kind == "markers":
                markers = decode_markers(raw)
                tracker = self._slot(parsed, topic, received)
                self._store_markers(tracker, markers, received)
            else:
                msg = decode_samples(raw)
                self._check_plausible(parsed.modality, msg)
                tracker = self._slot(parsed, topic, received)
                self._store_samples(tracker, msg, received)
            with self._lock:
                self._status.accepted += 1
        except PayloadError as exc:  # TopicError is one too
            self._reject(tracker, topic, exc.reason, exc.detail)
        except Exception as exc:  # a bug must cost one message, not the session
            first = self._reject_log.count(INTERNAL_ERROR) == 0
            log.error("MQTT source: failed on a message of %s", topic, exc_info=first)
            self._reject(tracker, topic, INTERNAL_ERROR, repr(exc)[:200])

    def _check_plausible(self, modality: str, msg: SampleMessage) -> None:
        """The limits every source applies to a declaration (:func:`core.modalities.check_declared`)."""
        try:
            check_declared(modality, msg.fs, msg.n_channels, rate_ranges=self.limits.rate_ranges)
        except DeclarationError as exc:
            raise PayloadError(exc.reason, exc.detail) from None

    def _slot(self, parsed: Topic, topic: str, received: float) -> StreamTracker:
        """The tracker of a validated message's stream, making room if needed: a new
        subject may only displace a subject on probation, never an established one."""
        key = (parsed.subject, parsed.modality)
        evicted: str | None = None
        with self._lock:
            subject = self._known.get(parsed.subject)
            if subject is None:
                if len(self._known) >= self.limits.max_subjects:
                    evicted = self._probationer_to_evict()
                    if evicted is None:
                        raise PayloadError(
                            TOO_MANY_SUBJECTS, f"{len(self._known)} subjects held, all established"
                        )
                    self._forget_locked(evicted)
                subject = self._known[parsed.subject] = _Subject(received, received)
            subject.last_seen = received
            if not subject.established and received - subject.first_seen >= self.limits.probation_s:
                subject.established = True
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = StreamTracker(parsed.subject, parsed.modality, topic, trust_sender_clock=self._trust)
                self._trackers[key] = tracker
        if evicted is not None:
            self._release(evicted)
        return tracker

    def _probationer_to_evict(self) -> str | None:
        """Under the lock: the subject on probation heard from least recently, if any."""
        candidates = [(s.last_seen, name) for name, s in self._known.items() if not s.established]
        return min(candidates)[1] if candidates else None

    def _forget_locked(self, subject: str) -> None:
        self._known.pop(subject, None)
        for key in [k for k in self._trackers if k[0] == subject]:
            del self._trackers[key]
            self._registered.pop(key, None)
        self._status.expired += 1

    def _release(self, subject: str) -> None:
        """Outside the lock: drop the subject's buffers (the hub tells engine and outputs)."""
        if self._hub is not None:
            self._hub.remove(subject)

    def expire_idle(self, t: float | None = None) -> list[str]:
        """Forget subjects silent longer than their expiry; returns their ids. Runs by
        itself on the network thread, at most once a second on incoming messages and on
        every :meth:`health`."""
        t = now() if t is None else t
        self._last_sweep = t
        limits = self.limits
        with self._lock:
            gone = [
                name
                for name, s in self._known.items()
                if t - s.last_seen > (limits.idle_expiry_s if s.established else limits.probation_idle_s)
            ]
            for name in gone:
                self._forget_locked(name)
        for name in gone:
            log.info("MQTT source: subject %s idle, released", name)
            self._release(name)
        return gone

    def _store_samples(self, tracker: StreamTracker, msg: SampleMessage, received: float) -> None:
        values, timestamps = tracker.admit(msg, received)
        assert self._hub is not None
        spec = tracker.spec
        if self._registered.get(spec.key) != spec:  # new stream, or labels/units/rate changed
            self._hub.register(spec)
            self._registered[spec.key] = spec
        self._hub.push(spec, values, timestamps)

    def _store_markers(self, tracker: StreamTracker, msg: MarkerMessage, received: float) -> None:
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
        self._reject_log.warning(reason, "MQTT: rejected message on %s: %s (%s)", topic[:160], reason, detail[:200])
