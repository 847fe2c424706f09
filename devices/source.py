"""The one interface of everything that produces samples.

A source discovers or opens its streams, then delivers time-stamped chunks into a
:class:`core.buffers.BufferHub` from its own background thread (or asyncio loop running in
one), never from the caller's (GUI) thread. All timestamps are on the shared clock of
:mod:`core.clock` (= ``pylsl.local_clock()``).
"""

from __future__ import annotations

import abc
import logging

from core.buffers import BufferHub
from core.streams import StreamHealth, StreamSpec

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source could not start (bad configuration, missing file, broker unreachable, ...)."""


class Source(abc.ABC):
    """Base class of LSL, MQTT, replay and simulator sources.

    Lifecycle: ``start(hub)`` returns quickly after launching the background worker;
    ``stop()`` ends it and joins it (idempotent); ``health()`` may be called from any thread
    at any time and returns snapshots.
    """

    name: str = "source"

    @abc.abstractmethod
    def start(self, hub: BufferHub) -> None:
        """Begin delivering samples into ``hub`` from a background thread."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop delivering and release resources; safe to call twice."""

    @abc.abstractmethod
    def streams(self) -> list[StreamSpec]:
        """The streams this source currently offers (may grow as devices appear)."""

    @abc.abstractmethod
    def health(self) -> list[StreamHealth]:
        """A health snapshot per stream."""

    def describe(self) -> str:
        """One line for status bars and logs."""
        return self.name

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
