"""Thread-safe MQTT publishing for the simulator and the engine's estimate outputs.

Callers on any thread hand messages to :meth:`MQTTPublisher.publish`, which only appends to a
bounded queue and wakes the publisher's asyncio loop; it never blocks on the network. While
the broker is away the queue keeps the newest ``max_queue`` messages (dropping, and
counting, the oldest: for live signals fresh data matters more than old), and the loop
reconnects with exponential back-off, then sends what is queued in order. With QoS 1 a
message counts as sent only once the broker acknowledged it, so a broker outage loses
nothing the queue can hold.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple, Self

import aiomqtt

from core.worker import WorkerStateError
from devices.mqtt._config import MQTTConfig
from devices.mqtt._loop import LoopThread, record_link, run_reconnecting

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 10_000
PUBLISH_TIMEOUT_S = 10.0


class _Outgoing(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class PublisherStats:
    """Counters of a publisher (a snapshot)."""

    link: str
    sent: int
    dropped: int
    """Messages discarded because the queue was full (broker down for long)."""
    queued: int
    connections: int
    last_error: str
    link_since: float = field(default_factory=time.time)
    """Wall-clock time the link entered its current state."""


class MQTTPublisher:
    """Publishes to one broker from a background thread; ``publish`` may be called anywhere.

    Lifecycle: ``start()`` once (a second call raises :class:`core.worker.WorkerStateError`;
    not restartable), ``stop()`` idempotent and safe before ``start()``.
    """

    def __init__(self, config: MQTTConfig, *, max_queue: int = DEFAULT_MAX_QUEUE):
        if max_queue <= 0:
            raise ValueError(f"max_queue must be positive, got {max_queue}")
        self.config = config
        self.max_queue = max_queue
        self._queue: deque[_Outgoing] = deque()
        self._inflight: _Outgoing | None = None
        self._cond = threading.Condition()
        self._stats = PublisherStats(link="idle", sent=0, dropped=0, queued=0, connections=0, last_error="")
        self._connected = threading.Event()
        self._wake: asyncio.Event | None = None
        self._thread = LoopThread(f"mqtt-publisher {config.host}:{config.port}", self._run)
        self._started = False

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the network thread; messages published before this are kept and sent."""
        if self._started:
            raise WorkerStateError("MQTT publisher already started")
        self.config.client_kwargs()  # surfaces unreadable TLS files now
        self._started = True
        self._set_link("connecting")
        self._thread.start()

    def stop(self, flush_timeout: float = 1.0) -> None:
        """Send what is queued (waiting at most ``flush_timeout`` s), then disconnect."""
        if not self._started:
            return
        if self._connected.is_set() and flush_timeout > 0:
            self.flush(flush_timeout)
        self._thread.stop()
        self._set_link("stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- API for any thread ----------------------------------------------------------------
    def publish(self, topic: str, payload: bytes | str, qos: int | None = None, retain: bool = False) -> None:
        """Queue one message. Raises ValueError for a topic or QoS no broker would accept."""
        if not topic or any(ch in topic for ch in "+#\0"):
            raise ValueError(f"invalid MQTT topic to publish on: {topic!r}")
        level = self.config.qos if qos is None else qos
        if level not in (0, 1, 2):
            raise ValueError(f"MQTT QoS must be 0, 1 or 2, got {level!r}")
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self._count_drop()
            self._queue.append(_Outgoing(topic, data, level, bool(retain)))
        self._thread.call_soon(self._wake_loop)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been handed to the broker."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._inflight is None, timeout)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self._connected.wait(timeout)

    def stats(self) -> PublisherStats:
        with self._cond:
            return PublisherStats(**{**self._stats.__dict__, "queued": len(self._queue)})

    # --- internals ---------------------------------------------------------------------------
    def _count_drop(self) -> None:
        self._stats.dropped += 1
        if self._stats.dropped == 1 or self._stats.dropped % 1000 == 0:
            log.warning(
                "MQTT publisher %s: queue full, dropped %d oldest message(s) so far",
                self.config.describe(),
                self._stats.dropped,
            )

    def _set_link(self, link: str, error: str | None = None) -> None:
        record_link(self._stats, self._cond, self._connected, link, error)

    def _wake_loop(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _take(self) -> _Outgoing | None:
        with self._cond:
            if self._queue:
                self._inflight = self._queue.popleft()
            return self._inflight

    def _done(self, sent: bool) -> None:
        """Finish the in-flight message: counted when sent, else put back first in line."""
        with self._cond:
            item, self._inflight = self._inflight, None
            if item is not None:
                if sent:
                    self._stats.sent += 1
                elif len(self._queue) >= self.max_queue:
                    self._count_drop()  # it is the oldest message: the one to lose
                else:
                    self._queue.appendleft(item)
            self._cond.notify_all()

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        await run_reconnecting(
            self.config,
            who="MQTT publisher",
            on_link=self._set_link,
            serve=self._serve,
            on_disconnect=lambda: self._done(sent=False),
        )

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Send until the connection fails; the watcher notices a dead connection even
        while nothing is being sent (aiomqtt reports it through its message iterator)."""
        sender = asyncio.create_task(self._send_all(client))
        watcher = asyncio.create_task(self._watch(client))
        try:
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when we are cancelled: never leave the two tasks behind
            for task in (sender, watcher):
                task.cancel()
            results = await asyncio.gather(sender, watcher, return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        raise errors[0] if errors else aiomqtt.MqttError("connection ended")

    async def _watch(self, client: aiomqtt.Client) -> None:
        async for _ in client.messages:
            pass

    async def _send_all(self, client: aiomqtt.Client) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            item = self._take()
            if item is None:
                await self._wake.wait()
                continue
            try:
                await client.publish(
                    item.topic, item.payload, qos=item.qos, retain=item.retain, timeout=PUBLISH_TIMEOUT_S
                )
            except TimeoutError as exc:
                raise aiomqtt.MqttError(f"publish timed out after {PUBLISH_TIMEOUT_S} s") from exc
            self._done(sent=True)
