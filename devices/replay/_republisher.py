"""Re-publishing a recorded session on LSL outlets, paced like a live device."""

from __future__ import annotations

import logging
import os
from typing import Self

import numpy as np

from core.worker import WorkerStateError
from devices.replay._controls import _PlayerControls
from devices.replay._player import ReplayPlayer, as_session
from devices.xdf import Session, SessionStream

log = logging.getLogger(__name__)


class LSLRepublisher(_PlayerControls):
    """Re-publishes a session's streams as LSL outlets (same name, type, channels and
    description) so other LSL tools can consume a recording as if it were live.

    Implements :class:`~devices.source.PlaybackControls`. Started once (a second
    ``start()`` raises :class:`core.worker.WorkerStateError`); ``stop()`` is idempotent.
    """

    def __init__(
        self,
        path_or_session: str | os.PathLike | Session,
        *,
        speed: float = 1.0,
        loop: bool = False,
        chunk_size: int = 0,
    ):
        session = as_session(path_or_session)
        self._player = ReplayPlayer(session, self, speed=speed, loop=loop)
        self._outlets: list = []
        self._chunk_size = chunk_size
        self.pushed = [0] * len(session.replayable)
        self._started = False

    def start(self) -> None:
        """Create the outlets, then start pacing samples into them."""
        from devices.replay._outlets import make_outlet

        if self._started:
            raise WorkerStateError("LSL re-publisher already started")
        self._started = True
        self._outlets = [make_outlet(s, self._chunk_size) for s in self.session.replayable]
        self._player.start()
        log.info("re-publishing %s on LSL (%d outlets)", self.session.path, len(self._outlets))

    def stop(self) -> None:
        self._player.stop()
        self._outlets = []  # pylsl closes an outlet when its object is collected

    def deliver(self, index: int, stream: SessionStream, lo: int, hi: int, timestamps: np.ndarray) -> None:
        outlet = self._outlets[index]
        if stream.is_marker:
            outlet.push_chunk([[v] for v in stream.values[lo:hi]], timestamps.tolist())
        else:
            outlet.push_chunk(stream.values[lo:hi], timestamps.tolist())
        self.pushed[index] += hi - lo

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
