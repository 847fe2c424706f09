"""Offline scoring: a whole recording through the real engine as fast as the CPU allows.

``painmon replay FILE --headless --speed 0`` and ``painmon bench index`` both come here,
so what a benchmark measures is what a user's export contains. The recording is replayed
by a :class:`devices.replay.ReplaySource` at speed 0 into a :class:`monitor.pipeline.Pipeline`
whose :class:`monitor.engine.Engine` runs offline (``realtime=False``: every window is cut
and estimated in order, stalls judged on the data's clock). The replay is held back while
its data run more than a window ahead of the engine's newest estimate of any subject *that
the model can serve*, so memory stays bounded and no window is skipped; a subject with no
stream the model uses never holds the replay (it would wait for estimates that cannot come).

A file with no stream the model uses is refused up front (:class:`NothingToScoreError`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.buffers import BufferHub, Marker
from core.errors import PainMonError
from core.estimate import Estimate
from devices.xdf import Session

if TYPE_CHECKING:
    from monitor.engine import Engine

log = logging.getLogger(__name__)

PROGRESS_FRACTION = 0.1
"""Progress is reported every 10 % of the recording ..."""
PROGRESS_EVERY_S = 5.0
"""... or every 5 s of wall time, whichever comes first."""
WATCHDOG_S = 60.0
"""A held replay goes on (a chunk at a time) when the engine made no progress for this
long: the replay can slow down, never stop. Long, because one batch of windows on a busy
2-core machine can take tens of seconds."""


class NothingToScoreError(PainMonError, ValueError):
    """The recording holds no stream of a modality the model uses."""


@dataclass(frozen=True)
class ScoringProgress:
    """Where an offline scoring run stands (handed to the progress callback)."""

    data_s: float
    """Seconds of the recording estimated so far (newest window end)."""
    duration_s: float
    estimates: int
    wall_s: float
    finished: bool = False

    @property
    def speed(self) -> float:
        """Seconds of recording scored per second of wall time."""
        return self.data_s / self.wall_s if self.wall_s > 0 else math.nan

    def line(self) -> str:
        pct = 100.0 * self.data_s / self.duration_s if self.duration_s > 0 else 100.0
        return (f"{'scored' if self.finished else 'scoring'} {min(pct, 100.0):3.0f} % "
                f"({self.data_s:.0f} / {self.duration_s:.0f} s of data, {self.estimates} estimates, "
                f"{self.speed:.1f}x real time)")


def usable_subjects(session: Session, modalities: tuple[str, ...]) -> list[str]:
    """Subjects with at least one stream of a modality the model uses."""
    return sorted({s.spec.subject for s in session.streams if s.spec.modality in modalities})


def check_scorable(session: Session, modalities: tuple[str, ...]) -> list[str]:
    """The subjects that can be scored; raises :class:`NothingToScoreError` (one line,
    naming what the model needs and what the file has) when there are none."""
    subjects = usable_subjects(session, modalities)
    if not subjects:
        found = sorted({s.spec.modality for s in session.streams}) or ["no signal streams"]
        raise NothingToScoreError(
            f"no stream of {session.path.name} is usable: the model needs {', '.join(modalities)}; "
            f"the file has {', '.join(found)}"
        )
    return subjects


def score_session(
    session: Session,
    engine_factory: Callable[[BufferHub], Engine],
    *,
    on_estimate: Callable[[Estimate, float], None] | None = None,
    on_marker: Callable[[Marker, float], None] | None = None,
    on_progress: Callable[[ScoringProgress], None] | None = None,
    start_s: float = 0.0,
    quiet_s: float = 1.5,
) -> ScoringProgress:
    """Score ``session`` offline; returns the final progress record.

    Args:
        session: the loaded recording.
        engine_factory: ``engine_factory(hub)`` -> an offline :class:`monitor.engine.Engine`
            (``realtime=False``) on that hub; built here so it listens to the replay's hub.
        on_estimate: ``on_estimate(estimate, t_s)`` for every estimate, in order per
            subject (engine worker thread); ``t_s``: seconds from the recording's start
            to the window's end.
        on_marker: ``on_marker(marker, t_s)`` for every marker of the file as it passes.
        on_progress: called every :data:`PROGRESS_FRACTION` of the recording or
            :data:`PROGRESS_EVERY_S` of wall time, and once at the end.
        start_s: seconds into the recording to begin at.
        quiet_s: after the replay ends, the engine is done once no window was cut or
            estimated for this long with an empty queue.
    """
    from devices.replay import ReplaySource
    from monitor.pipeline import Pipeline

    pipeline = Pipeline()
    hub = pipeline.hub
    engine = engine_factory(hub)
    if getattr(engine, "realtime", False):
        raise ValueError("offline scoring needs an engine built with realtime=False")
    subjects = check_scorable(session, engine.modalities)
    lock = threading.Lock()
    newest: dict[str, float] = {}  # newest estimated window end per scorable subject
    count = [0]
    source: ReplaySource | None = None

    lead_s = engine.window_s + 3.0 * engine.hop_s
    modalities = engine.modalities
    seen_progress = [(-1, -1)]
    progress_at = [time.monotonic()]

    def delivered(subject: str) -> tuple[float, float]:
        """(oldest first, newest last) timestamp the hub holds of the subject's modelled streams."""
        bufs = [b for m in modalities if (b := hub.buffer(subject, m)) is not None and len(b)]
        if not bufs:
            return math.nan, math.nan
        return min(b.first_timestamp for b in bufs), max(b.last_timestamp for b in bufs)

    def hold() -> bool:
        """Hold while a subject has data more than a window (+3 hops) beyond its newest
        estimate. A subject whose data stopped or pause holds nothing (nothing new was
        delivered), and an engine that made no progress for WATCHDOG_S while held is not
        waited for (logged): the replay can slow down, never stop."""
        with lock:
            done = dict(newest)
        waiting = False
        for s in subjects:
            first, last = delivered(s)
            if math.isfinite(last) and last - done.get(s, first) > lead_s:
                waiting = True
                break
        if not waiting:
            return False
        st = engine.stats()
        seen = (st.estimates, st.windows_cut)
        if seen != seen_progress[0]:
            seen_progress[0], progress_at[0] = seen, time.monotonic()
            return True
        if time.monotonic() - progress_at[0] > WATCHDOG_S:
            log.warning("offline engine made no progress for %.0f s; replay goes on", WATCHDOG_S)
            progress_at[0] = time.monotonic()
            return False
        return True

    source = ReplaySource(session, speed=0.0, hold=hold)
    if start_s:
        source.seek(start_s)

    def record(est: Estimate) -> None:
        with lock:
            if math.isfinite(est.t_end) and est.t_end > newest.get(est.subject, -math.inf):
                newest[est.subject] = est.t_end
            count[0] += 1
        if on_estimate is not None:
            on_estimate(est, seconds(est.t_end))

    def seconds(t: float) -> float:
        """Seconds from the recording's start of a replayed timestamp."""
        assert source is not None
        return source.from_clock(t)

    if on_marker is not None:
        hub.add_marker_listener(lambda m: on_marker(m, seconds(m.timestamp)))
    pipeline.add_listener(record)
    pipeline.set_engine(engine)
    pipeline.add_source(source)
    engine.start(warmup=True)
    engine.wait_warm(60)
    t0 = time.monotonic()

    def snapshot(finished: bool = False) -> ScoringProgress:
        with lock:
            t = min((newest.get(s, math.nan) for s in subjects), default=math.nan)
            n = count[0]
        done = seconds(t) if math.isfinite(t) else 0.0
        return ScoringProgress(max(0.0, done), session.duration, n, time.monotonic() - t0, finished)

    step = max(session.duration * PROGRESS_FRACTION, 1e-9)
    next_mark, next_wall = step, t0 + PROGRESS_EVERY_S

    def report() -> None:
        nonlocal next_mark, next_wall
        p = snapshot()
        if on_progress is not None and (p.data_s >= next_mark or time.monotonic() >= next_wall):
            on_progress(p)
            next_mark = (math.floor(p.data_s / step) + 1) * step
            next_wall = time.monotonic() + PROGRESS_EVERY_S

    pipeline.start()
    failed: list[str] = []
    try:
        while not source.finished.wait(0.2):
            report()
        failed = [h.status for h in source.health() if h.status.startswith("error")]
        if not failed:
            drain(engine, quiet_s, report)
    finally:
        pipeline.stop()
    if failed:
        raise PainMonError(f"replay of {session.path.name} failed: {failed[0]}")
    final = snapshot(finished=True)
    if on_progress is not None:
        on_progress(final)
    return final


def drain(engine, quiet_s: float, report: Callable[[], None] = lambda: None, limit_s: float = 300.0) -> None:
    """Let the engine finish the windows the replay has handed it: until its queue is
    empty and nothing was cut or estimated for ``quiet_s`` (at most ``limit_s``)."""
    end = time.monotonic() + limit_s
    last = (-1, -1)
    last_change = time.monotonic()
    while time.monotonic() < end:
        st = engine.stats()
        seen = (st.estimates, st.windows_cut)
        if seen != last:
            last, last_change = seen, time.monotonic()
        elif st.queue_depth == 0 and time.monotonic() - last_change >= quiet_s:
            return
        report()
        time.sleep(0.1)
