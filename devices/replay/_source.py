"""A recorded session as a live :class:`~devices.source.Source` feeding a hub."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Callable

import numpy as np

from core import clock
from core.buffers import BufferHub
from core.streams import StreamHealth, StreamSpec
from devices.replay._controls import _PlayerControls
from devices.replay._player import ReplayPlayer, as_session
from devices.source import Source
from devices.xdf import Session, SessionStream

log = logging.getLogger(__name__)


class _StreamCounters:
    """What a replayed stream has delivered so far (for :class:`StreamHealth`)."""

    __slots__ = ("gaps", "last_ts", "last_wall", "recent", "samples")

    def __init__(self) -> None:
        self.samples = 0
        self.gaps = 0
        self.last_ts = math.nan
        self.last_wall = math.nan
        self.recent: list[tuple[float, int]] = []  # (last timestamp, n) of recent chunks


class ReplaySource(_PlayerControls, Source):
    """A recorded session as a live :class:`~devices.source.Source` feeding a hub.

    ``hold``: back-pressure for as-fast-as-possible replay (see :attr:`hold`), so an
    offline consumer sees every window instead of a flood it must skip. Implements
    :class:`~devices.source.PlaybackControls`. Not restartable: a stopped replay is over
    (make a new source; a seek before ``start()`` starts it elsewhere).
    """

    name = "replay"

    def __init__(
        self,
        path_or_session: str | os.PathLike | Session,
        *,
        speed: float = 1.0,
        loop: bool = False,
        hold: Callable[[], bool] | None = None,
    ):
        super().__init__()
        session = as_session(path_or_session)
        self._player = ReplayPlayer(session, self, speed=speed, loop=loop)
        self._player.hold = hold
        self._hub: BufferHub | None = None
        self._lock = threading.Lock()
        self._counters = [_StreamCounters() for _ in session.replayable]
        self._stopped = False

    def describe(self) -> str:
        return f"replay {self.session.path.name} ({len(self.session.replayable)} streams, {self.duration:.0f} s)"

    def _start(self, hub: BufferHub) -> None:
        self._hub = hub
        for stream in self.session.replayable:
            hub.register(stream.spec)
        self._player.start()
        log.info("replaying %s at speed %s", self.session.path, self._player.speed)

    def _stop(self) -> None:
        self._stopped = True
        self._player.stop()

    def streams(self) -> list[StreamSpec]:
        return [s.spec for s in self.session.replayable]

    def deliver(self, index: int, stream: SessionStream, lo: int, hi: int, timestamps: np.ndarray) -> None:
        hub = self._hub
        assert hub is not None
        if stream.is_marker:
            hub.push_markers(stream.spec.subject, stream.values[lo:hi], timestamps, source=stream.spec.name)
        else:
            hub.push(stream.spec, stream.values[lo:hi], timestamps)
        self._count(index, stream, timestamps)

    def _count(self, index: int, stream: SessionStream, ts: np.ndarray) -> None:
        c = self._counters[index]
        rate = stream.spec.nominal_rate
        threshold = max(1.0, 5.0 / rate) if rate > 0 else math.inf
        with self._lock:
            prev = c.last_ts
            steps = np.diff(ts) if math.isnan(prev) else np.diff(np.concatenate(([prev], ts)))
            c.gaps += int(np.count_nonzero(steps > threshold))
            c.samples += len(ts)
            c.last_ts = float(ts[-1])
            c.last_wall = clock.now()
            c.recent.append((c.last_ts, len(ts)))
            horizon = c.last_ts - 2.0
            while len(c.recent) > 1 and c.recent[0][0] < horizon:
                c.recent.pop(0)

    def health(self) -> list[StreamHealth]:
        player = self._player
        if player.error is not None:
            status = f"error: {player.error}"
        elif player.finished.is_set():
            status = "finished"
        elif self._stopped:
            status = "stopped"
        elif not player.running:
            status = "not started" if self._hub is None else "stopped"
        elif player.paused:
            status = "paused"
        else:
            status = f"replaying x{player.speed:g}" if not player.asap else "replaying (fast)"
        out = []
        with self._lock:
            for stream, c in zip(self.session.replayable, self._counters, strict=True):
                rate = 0.0
                if len(c.recent) > 1 and stream.spec.nominal_rate > 0:
                    span = c.recent[-1][0] - c.recent[0][0]
                    n = sum(k for _, k in c.recent[1:])
                    rate = n / span if span > 0 else 0.0
                out.append(
                    StreamHealth(
                        spec=stream.spec,
                        connected=player.running and not player.finished.is_set(),
                        samples=c.samples,
                        effective_rate=rate,
                        gaps=c.gaps,
                        dropped=0,
                        rejected=0,
                        reject_reasons=Counter(),
                        last_timestamp=c.last_ts,
                        last_received=c.last_wall,
                        status=status,
                    )
                )
        return out
