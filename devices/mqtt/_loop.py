"""An asyncio event loop on its own daemon thread, for the aiomqtt-based source and publisher.

aiomqtt is asyncio-only, while PainMon's callers (Qt GUI, engine, CLI) are threaded; running
each MQTT client's loop on a private thread keeps network I/O off the caller's thread and
lets ``stop()`` be a plain blocking call that always returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)


class LoopThread:
    """Runs ``main()`` as the one task of a fresh event loop on a daemon thread."""

    def __init__(self, name: str, main: Callable[[], Awaitable[None]]):
        self.name = name
        self._main = main
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

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
        thread = self._thread
        if thread is None:
            return True
        task = self._task
        if task is not None:
            self.call_soon(task.cancel)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s did not stop within %.1f s", self.name, timeout)
            return False
        return True

    def _run(self) -> None:
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
