"""A background thread with one start/stop/join lifecycle, shared by every class that runs one.

Sources, the recorder, simulator outlets and the engine each own a daemon thread that
loops until told to stop. Hand-rolling ``Thread`` + ``Event`` + ``join`` in each of them
made "second start" and "stop before start" behave differently from class to class; this
helper gives them all the same answers:

* :meth:`BackgroundWorker.start` launches the thread; a second start while it runs raises
  :class:`WorkerStateError` (a programming error, not something to ignore silently);
* :meth:`BackgroundWorker.stop` sets the stop event and joins; it is idempotent and safe
  before start;
* a worker can be started again after it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.errors import PainMonError

log = logging.getLogger(__name__)


class WorkerStateError(PainMonError, RuntimeError):
    """``start()`` on a worker that is already running."""


class BackgroundWorker:
    """Runs ``target(stop_event)`` on one daemon thread.

    Args:
        target: the loop; it must return soon after ``stop_event`` is set.
        name: thread name (shown by py-spy, in logs and in thread-leak checks).
    """

    def __init__(self, target: Callable[[threading.Event], None], *, name: str) -> None:
        self._target = target
        self.name = name
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Launch the thread; raise :class:`WorkerStateError` if it is already running."""
        if self.running:
            raise WorkerStateError(f"{self.name} is already running")
        self.stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._target(self.stop_event)
        except Exception:  # the thread's last word: a crash must be visible, not silent
            log.exception("background worker %s crashed", self.name)

    def request_stop(self) -> None:
        """Ask the loop to end without waiting for it."""
        self.stop_event.set()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Ask the loop to end and join it; True when the thread has ended (or never ran)."""
        self.stop_event.set()
        thread, self._thread = self._thread, None
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("background worker %s did not stop within %.1f s", self.name, timeout or 0.0)
            self._thread = thread
            return False
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop to end by itself; True when it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()
