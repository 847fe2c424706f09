"""Playback controls shared by the replay front-ends, delegated to their player.

Together they implement :class:`devices.source.PlaybackControls`, plus :attr:`hold`
(back-pressure) and :attr:`loops`, so callers never reach into the player.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from devices.replay._player import ReplayPlayer
from devices.xdf import Session


class _PlayerControls:
    """Controls shared by the replay front-ends, delegated to their player."""

    _player: ReplayPlayer

    @property
    def session(self) -> Session:
        return self._player.session

    @property
    def duration(self) -> float:
        return self._player.duration

    @property
    def position(self) -> float:
        return self._player.position

    @property
    def finished(self) -> threading.Event:
        return self._player.finished

    @property
    def speed(self) -> float:
        return self._player.speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._player.speed = value

    @property
    def loop(self) -> bool:
        return self._player.loop

    @loop.setter
    def loop(self, value: bool) -> None:
        self._player.loop = bool(value)

    @property
    def paused(self) -> bool:
        return self._player.paused

    def pause(self) -> None:
        self._player.pause()

    def resume(self) -> None:
        self._player.resume()

    def seek(self, seconds: float) -> None:
        self._player.seek(seconds)

    def wait(self, timeout: float | None = None) -> bool:
        return self._player.wait(timeout)

    def to_clock(self, session_seconds: float) -> float:
        return self._player.to_clock(session_seconds)

    def from_clock(self, timestamp: float) -> float:
        return self._player.from_clock(timestamp)

    @property
    def asap(self) -> bool:
        """Replaying as fast as possible (speed 0 or inf)."""
        return self._player.asap

    @property
    def loops(self) -> int:
        """Completed passes through the session (with ``loop``)."""
        return self._player.loops

    @property
    def hold(self) -> Callable[[], bool] | None:
        """Back-pressure for as-fast-as-possible replay: while it returns True no further
        data are released (e.g. until an offline engine has caught up). Settable."""
        return self._player.hold

    @hold.setter
    def hold(self, value: Callable[[], bool] | None) -> None:
        self._player.hold = value
