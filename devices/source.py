"""The one interface of everything that produces samples, and its lifecycle.

A source discovers or opens its streams, then delivers time-stamped chunks into a
:class:`core.buffers.BufferHub` from its own background thread (or asyncio loop running in
one), never from the caller's (GUI) thread. All timestamps are on the shared clock of
:mod:`core.clock` (= ``pylsl.local_clock()``).

Lifecycle, the same for every source (enforced here, not by each subclass):

* ``start(hub)`` launches the background work and returns quickly; a second ``start()``
  while the source runs raises :class:`SourceError`;
* ``stop()`` ends the work and joins it; it is idempotent and safe before ``start()``;
* restarting: a source whose :attr:`Source.restartable` is True (LSL, simulator) may be
  started again after ``stop()``; the others (MQTT, replay) raise :class:`SourceError`
  instead (make a new one);
* ``health()`` and ``streams()`` may be called from any thread at any time and return
  snapshots.

Other device objects with a background thread but no hub (publishers, the recorder, the
simulator's outlets, the LSL re-publisher) follow the same rules through
:class:`core.worker.BackgroundWorker`: a second ``start()`` raises
:class:`core.worker.WorkerStateError`, ``stop()`` is idempotent.
"""

from __future__ import annotations

import abc
import logging
import threading
from typing import ClassVar, Protocol, Self, runtime_checkable

from core.buffers import BufferHub
from core.errors import PainMonError
from core.streams import StreamHealth, StreamSpec

log = logging.getLogger(__name__)

IDLE, RUNNING, STOPPED = "idle", "running", "stopped"


class SourceError(PainMonError, RuntimeError):
    """A source could not start (bad configuration, missing file, broker unreachable, ...)
    or was started while running (or again, when it cannot be restarted)."""


class Source(abc.ABC):
    """Base class of LSL, MQTT, replay and simulator sources (lifecycle in the module doc).

    Subclasses implement :meth:`_start` and :meth:`_stop`; :meth:`start` and :meth:`stop`
    here guard them so every source answers a second start or an early stop alike.
    Subclasses must call ``super().__init__()``.
    """

    name: str = "source"
    restartable: ClassVar[bool] = False
    """Whether ``start()`` may be called again after ``stop()``."""

    def __init__(self) -> None:
        self._state = IDLE
        self._state_lock = threading.Lock()

    @property
    def state(self) -> str:
        """``"idle"`` (never started), ``"running"`` or ``"stopped"``."""
        return self._state

    def start(self, hub: BufferHub) -> None:
        """Begin delivering samples into ``hub`` from a background thread.

        Raises :class:`SourceError` when already running, when stopped and not
        :attr:`restartable`, or when the source cannot start (then it stays startable).
        """
        with self._state_lock:
            if self._state == RUNNING:
                raise SourceError(f"{self.describe()} is already running")
            if self._state == STOPPED and not self.restartable:
                raise SourceError(f"{self.describe()} was stopped and cannot be restarted; make a new one")
            previous, self._state = self._state, RUNNING
        try:
            self._start(hub)
        except BaseException:
            with self._state_lock:
                self._state = previous
            raise

    def stop(self) -> None:
        """Stop delivering and release resources; idempotent, safe before ``start()``."""
        with self._state_lock:
            if self._state != RUNNING:
                return
            self._state = STOPPED
        self._stop()

    @abc.abstractmethod
    def _start(self, hub: BufferHub) -> None:
        """Launch the background work (called by :meth:`start` once per run)."""

    @abc.abstractmethod
    def _stop(self) -> None:
        """End the background work and join it (called by :meth:`stop` once per run)."""

    @abc.abstractmethod
    def streams(self) -> list[StreamSpec]:
        """The streams this source currently offers (may grow as devices appear)."""

    @abc.abstractmethod
    def health(self) -> list[StreamHealth]:
        """A health snapshot per stream."""

    def describe(self) -> str:
        """One line for status bars and logs."""
        return self.name

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@runtime_checkable
class PlaybackControls(Protocol):
    """What a source playing back a recording offers on top of :class:`Source` (replay bar,
    headless replay). Test with ``isinstance(source, PlaybackControls)``, not ``hasattr``.

    Controls may be called from any thread; they take effect at the player's next tick.
    """

    @property
    def duration(self) -> float:
        """Seconds the recording spans."""
        ...

    @property
    def position(self) -> float:
        """Seconds into the recording of the replay head."""
        ...

    @property
    def paused(self) -> bool: ...

    @property
    def finished(self) -> threading.Event:
        """Set when the end is reached without ``loop`` (cleared by a seek)."""
        ...

    @property
    def asap(self) -> bool:
        """Playing as fast as possible (speed 0 or inf)."""
        ...

    @property
    def speed(self) -> float:
        """1 = real time; 0 or ``math.inf`` = as fast as possible. Settable."""
        ...

    @speed.setter
    def speed(self, value: float) -> None: ...

    @property
    def loop(self) -> bool:
        """Start over at the end. Settable."""
        ...

    @loop.setter
    def loop(self, value: bool) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def seek(self, seconds: float) -> None:
        """Move the replay head to ``seconds`` into the recording (clamped to its span)."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the playback finished; True if it did."""
        ...

    def to_clock(self, session_seconds: float) -> float:
        """Shared-clock timestamp of the sample at ``session_seconds``."""
        ...

    def from_clock(self, timestamp: float) -> float:
        """Seconds into the recording of a delivered timestamp."""
        ...
