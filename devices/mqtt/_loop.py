"""The network side shared by the MQTT source and publisher: an asyncio loop on its own
thread, and the one connect / serve / back-off / reconnect loop both run on it.

aiomqtt is asyncio-only, while PainMon's callers (Qt GUI, engine, CLI) are threaded; running
each MQTT client's loop on a private thread keeps network I/O off the caller's thread and
lets ``stop()`` be a plain blocking call that always returns. A lost broker is retried with
exponential back-off (:class:`Backoff`) for as long as the client runs, so the source and
the publisher recover from a broker restart the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Protocol

import aiomqtt

from core.errors import PainMonError
from core.logthrottle import LogLimiter
from core.worker import BackgroundWorker
from devices.mqtt._config import MQTTConfig

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 5.0
RETRY_LOG_INTERVAL_S = 60.0
"""The first failure of a streak is logged as a warning; the retries that follow (every
0.3 s while a broker is down) at most once a minute, with their count."""
_RETRY_LOG = LogLimiter(log, interval=RETRY_LOG_INTERVAL_S, first=0, max_keys=64)


class Backoff:
    """Exponential reconnect delay with +-20 % jitter (so many clients do not reconnect
    in lock-step after a broker restart), reset after each successful connection."""

    def __init__(self, first: float, cap: float):
        self.first = first
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * (2 ** self.attempt))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0


LinkCallback = Callable[[str, "str | None"], None]
"""``on_link(link, error)``: link is 'connected', 'reconnecting' (with the error text) or
'failed' (the broker refused us ``auth_retries`` times: the client has given up)."""

_REFUSED_CODES = {4, 5, 134, 135}
"""CONNACK codes for bad credentials / not authorised (MQTT 3.1.1 and 5)."""


class BrokerRefusedError(PainMonError, ConnectionRefusedError):
    """The broker refused our credentials or we refused its certificate, ``auth_retries``
    times in a row: retrying cannot help, the configuration must change."""


def describe_error(exc: BaseException) -> str:
    """One line for a failed connection (aiomqtt's connect errors have an empty str)."""
    rc = getattr(exc, "rc", None)
    text = str(exc).strip()
    if rc is not None and not text:
        return f"refused by the broker: {rc}"
    return text or type(exc).__name__


def is_refusal(exc: BaseException) -> bool:
    """True for failures a retry cannot fix: credentials refused, certificate not trusted."""
    rc = getattr(exc, "rc", None)
    if rc is not None:
        try:
            return int(getattr(rc, "value", rc)) in _REFUSED_CODES
        except (TypeError, ValueError):
            return False
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


class LinkStatus(Protocol):
    """The link fields that the source's and the publisher's status records share."""

    link: str
    link_since: float
    last_error: str
    connections: int


def record_link(
    status: LinkStatus,
    lock: AbstractContextManager[Any],
    connected: threading.Event,
    link: str,
    error: str | None = None,
) -> None:
    """What an ``on_link`` does with a link change: note it in ``status`` (under ``lock``),
    counting connects, keeping the last error and since when (wall clock) the link is in its
    state, then set or clear ``connected``."""
    with lock:
        if link != status.link:
            status.link_since = time.time()
        status.link = link
        if error is not None:
            status.last_error = error
        if link == "connected":
            status.connections += 1
    if link == "connected":
        connected.set()
    else:
        connected.clear()


async def run_reconnecting(
    config: MQTTConfig,
    *,
    who: str,
    on_link: LinkCallback,
    serve: Callable[[aiomqtt.Client], Awaitable[None]],
    on_connect: Callable[[aiomqtt.Client], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], None] | None = None,
) -> None:
    """Connect, ``await on_connect(client)`` (subscribe), report 'connected', ``await
    serve(client)`` until the connection fails; then back off and start over, until
    cancelled.

    Args:
        config: the broker and back-off settings.
        who: names the client in log lines ("MQTT source", "MQTT publisher").
        on_link: told of every connect and every failure (for status and ``wait_connected``).
        serve: the work while connected; returns or raises ``MqttError`` when the link ends.
        on_connect: setup before the link counts as connected (a subscription).
        on_disconnect: called after every lost connection and on cancellation (the
            publisher puts its in-flight message back in line).
    """
    backoff = Backoff(config.reconnect_min, config.reconnect_max)
    refusals = 0
    while True:
        try:
            async with aiomqtt.Client(**config.client_kwargs()) as client:
                if on_connect is not None:
                    await on_connect(client)
                on_link("connected", None)
                backoff.reset()
                refusals = 0
                await serve(client)
        except aiomqtt.MqttError as exc:
            if on_disconnect is not None:
                on_disconnect()
            error = describe_error(exc)
            refusals = refusals + 1 if is_refusal(exc) else 0
            if config.auth_retries is not None and refusals >= config.auth_retries:
                on_link("failed", error)
                raise BrokerRefusedError(
                    f"{who}: {config.describe()}: {error}; gave up after {refusals} attempts"
                ) from None
            # a refused login or certificate is retried a little more slowly
            delay = backoff.next_delay() if not refusals else max(1.0, backoff.next_delay())
            on_link("reconnecting", error)
            # the first failure of a streak (lost broker, refused login, bad certificate)
            # is worth a warning; the retries that follow once a minute, counted
            line = "%s: %s (%s); retrying in %.2f s"
            if backoff.attempt == 1:
                log.warning(line, who, config.describe(), error, delay)
            else:
                _RETRY_LOG.warning((who, config.describe()), line, who, config.describe(), error, delay)
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if on_disconnect is not None:
                on_disconnect()
            raise


class LoopThread:
    """Runs ``main()`` as the one task of a fresh event loop on a background worker.

    Same lifecycle as :class:`core.worker.BackgroundWorker` (a second ``start()`` while
    running raises ``WorkerStateError``; ``stop()`` is idempotent and safe before start).
    """

    def __init__(self, name: str, main: Callable[[], Coroutine[Any, Any, None]]):
        self.name = name
        self._main = main
        self._worker = BackgroundWorker(self._run, name=name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()

    @property
    def running(self) -> bool:
        return self._worker.running

    def start(self) -> None:
        """Start the loop's thread and wait until ``main`` is scheduled on it."""
        self._ready.clear()
        self._worker.start()
        self._ready.wait(READY_TIMEOUT_S)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Schedule ``fn(*args)`` on the loop from any thread; False if the loop is gone."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # closed between the check and the call
            return False

    def stop(self, timeout: float = 5.0) -> bool:
        """Cancel ``main`` and join the thread; True if it ended within ``timeout``."""
        task = self._task
        if task is not None:
            self.call_soon(task.cancel)
        return self._worker.stop(timeout)

    def _run(self, _stop: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        # A private executor: aiomqtt connects in an executor thread, and a connect blocked on
        # an unreachable host must not hold up shutdown (we do not wait for it at the end).
        executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"{self.name}-connect")
        loop.set_default_executor(executor)
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._task = loop.create_task(self._main())
            self._ready.set()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BrokerRefusedError as exc:  # reported through on_link; the application says it
            log.warning("%s", exc)
        except Exception:
            log.exception("%s crashed", self.name)
        finally:
            self._ready.set()
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                executor.shutdown(wait=False, cancel_futures=True)
                loop.close()
