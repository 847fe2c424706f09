"""The ward at a glance: one tile per subject, the same for the desktop overview and the web.

:class:`WardState` listens to a pipeline (estimates) and an :class:`monitor.alarms.AlarmMonitor`
(transitions) and keeps, per subject, a bounded history of estimates; :meth:`WardState.tile`
builds what a tile shows (headline, band, state, 15-min sparkline, per-modality health,
active alarms, the instance serving it), as plain JSON-ready dicts. The desktop overview
(:mod:`monitor.gui.overview`) and the web API (:mod:`monitor.web`) both draw these, so a
subject cannot look one way on the screen and another in the browser.

Thread safety: estimates arrive on the engine's worker thread, alarms on whichever thread
caused them, readers call from the GUI thread or the web server's loop; one lock guards it
all and every reader gets copies.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import clock
from core.alarms import AlarmEvent
from core.estimate import Estimate, band_of
from monitor.outputs import estimate_to_dict

SPARK_MIN = 15.0
"""Minutes of history a tile's sparkline shows."""
SPARK_STEP_S = 5.0
"""A sparkline keeps one point per this many seconds (180 over 15 min)."""
MAX_PER_SUBJECT = 4 * 3600
"""Estimates kept per subject for the API (4 h at one a second; the recording has all)."""
MAX_PAGE = 1000
"""Most estimates one API page returns."""
STATE_TEXT = {
    "calibrating": "calibrating",
    "ok": "ok",
    "low_quality": "low quality",
    "stale": "stale",
    "uncertain": "uncertain",
}
"""The state as a tile writes it (readable without colour)."""


@dataclass(frozen=True)
class Instance:
    """Which process serves these subjects (a sharded ward runs several)."""

    host: str
    pid: int
    shard: str = "1/1"

    @classmethod
    def here(cls, shard: str = "1/1") -> Instance:
        return cls(socket.gethostname(), os.getpid(), shard)

    @property
    def label(self) -> str:
        """``host:pid shard K/N``, as the estimates' ``origin`` says it."""
        return f"{self.host}:{self.pid} shard {self.shard}"

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "shard": self.shard, "label": self.label}


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


class _History:
    """One subject's estimates, oldest first, with end times for bisection."""

    def __init__(self, maxlen: int):
        self.items: deque[Estimate] = deque(maxlen=maxlen)
        self.t: deque[float] = deque(maxlen=maxlen)
        self.spark: deque[list[float | None]] = deque()
        """[t_end, headline], one per :data:`SPARK_STEP_S` bucket (its newest), last 15 min:
        the sparkline, kept ready so 32 tiles a second cost a copy, not a scan."""

    def add(self, est: Estimate) -> None:
        if self.t and est.t_end < self.t[-1]:  # a replay that jumped back: start over
            self.items.clear()
            self.t.clear()
            self.spark.clear()
        self.items.append(est)
        self.t.append(est.t_end)
        point = [est.t_end, _finite(est.smoothed)]
        if self.spark and est.t_end // SPARK_STEP_S == self.spark[-1][0] // SPARK_STEP_S:  # type: ignore[operator]
            self.spark[-1] = point
        else:
            self.spark.append(point)
        while self.spark and self.spark[0][0] < est.t_end - SPARK_MIN * 60.0:  # type: ignore[operator]
            self.spark.popleft()

    def since(self, t: float) -> int:
        """Index of the first estimate with ``t_end > t``."""
        return bisect.bisect_right(self.t, t)


class WardState:
    """Per-subject estimates and alarms of one instance; see the module docstring.

    Args:
        instance: who serves these subjects (default: this process, shard 1/1).
        alarms: the alarm monitor whose active alarms tiles show (optional).
        hub: the pipeline's hub, for per-modality sample ages (optional).
        health: returns the pipeline's stream health (optional; :meth:`monitor.pipeline.Pipeline.stream_health`).
        now: the shared clock.
    """

    def __init__(self, *, instance: Instance | None = None, alarms: Any = None, hub: Any = None,
                 health: Callable[[], list] | None = None, now: Callable[[], float] = clock.now,
                 max_per_subject: int = MAX_PER_SUBJECT):
        self.instance = instance or Instance.here()
        self.alarms = alarms
        self.hub = hub
        self._health = health
        self._now = now
        self._max = max_per_subject
        self._lock = threading.Lock()
        self._subjects: dict[str, _History] = {}
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.version = 0
        """Incremented on every change (the overview redraws only when it moved)."""
        if alarms is not None:
            alarms.add_listener(self.on_alarm)

    def start_clean(self, hub: Any) -> None:
        """Follow a new session's ``hub``: every subject's history starts empty."""
        with self._lock:
            self.hub = hub
            self._subjects.clear()
            self.version += 1

    # --- inputs (any thread) -------------------------------------------------------------
    def on_estimate(self, est: Estimate) -> None:
        """A pipeline listener (:meth:`monitor.pipeline.Pipeline.add_listener`)."""
        with self._lock:
            hist = self._subjects.get(est.subject)
            if hist is None:
                hist = self._subjects[est.subject] = _History(self._max)
            hist.add(est)
            self.version += 1
        self._notify("estimate", self.estimate_dict(est))

    def on_alarm(self, event: AlarmEvent) -> None:
        from monitor.alarms import alarm_to_dict

        with self._lock:
            self._subjects.setdefault(event.subject, _History(self._max))
            self.version += 1
        self._notify("alarm", alarm_to_dict(event, self.instance.label))

    def add_listener(self, fn: Callable[[str, dict[str, Any]], None]) -> None:
        """``fn(kind, payload)`` for every estimate (``"estimate"``) and alarm transition
        (``"alarm"``), on the thread that delivered it (the web server's live feed)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[str, dict[str, Any]], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _notify(self, kind: str, payload: dict[str, Any]) -> None:
        for fn in list(self._listeners):
            fn(kind, payload)

    # --- reading -------------------------------------------------------------------------
    def subjects(self) -> list[str]:
        """Subjects with estimates or alarms, and (with a hub) those whose signals arrive
        but have no estimate yet (the engine is still filling their first window)."""
        with self._lock:
            names = set(self._subjects)
        if self.hub is not None:
            names |= {s for s in self.hub.subjects() if self.hub.modalities(s)}
        return sorted(names)

    def __contains__(self, subject: str) -> bool:
        with self._lock:
            if subject in self._subjects:
                return True
        return self.hub is not None and bool(self.hub.modalities(subject))

    def latest(self, subject: str) -> Estimate | None:
        with self._lock:
            hist = self._subjects.get(subject)
            return hist.items[-1] if hist and hist.items else None

    def estimate_dict(self, est: Estimate) -> dict[str, Any]:
        """An estimate as the API sends it: the MQTT JSON plus headline, band, state, mode."""
        d = estimate_to_dict(est, self.instance.label)
        d.update(headline=_finite(est.smoothed), band=band_of(est.smoothed), state=est.state, mode=est.mode)
        return d

    def estimates(self, subject: str, since: float = -math.inf, limit: int = MAX_PAGE) -> tuple[list[Estimate], bool]:
        """Estimates with ``t_end > since``, oldest first, at most ``limit``; and whether
        more follow (ask again with ``since`` = the last one's ``t_end``)."""
        limit = max(1, min(int(limit), MAX_PAGE))
        with self._lock:
            hist = self._subjects.get(subject)
            if hist is None:
                return [], False
            start = hist.since(since)
            end = min(len(hist.items), start + limit)
            page = list(itertools.islice(hist.items, start, end))
            return page, end < len(hist.items)

    def sparkline(self, subject: str) -> list[list[float | None]]:
        """``[[t_end, headline], ...]`` of the last :data:`SPARK_MIN` minutes, one point per
        :data:`SPARK_STEP_S` seconds (headline None where it had no value)."""
        with self._lock:
            hist = self._subjects.get(subject)
            # the points are never changed in place (a newer one replaces them): share them
            return list(hist.spark) if hist is not None else []

    def stream_health(self) -> list:
        """The sources' stream health (empty without a health callable)."""
        return list(self._health()) if self._health is not None else []

    def modality_health(self, subject: str, health: list | None = None) -> dict[str, str]:
        """Good / poor / lost / unknown per modality: sample age and rate from the hub and
        the source, signal quality from the latest estimate (:mod:`monitor.gui.quality`'s rule).
        ``health``: :meth:`stream_health`, when the caller already has it (one call per ward)."""
        from monitor.gui.quality import classify

        latest = self.latest(subject)
        quality = latest.quality if latest is not None else {}
        if health is None:
            health = self.stream_health()
        streams = {h.spec.modality: h for h in health if h.spec.subject == subject}
        modalities = set(quality)
        if self.hub is not None:
            modalities |= set(self.hub.modalities(subject))
        now = self._now()
        out: dict[str, str] = {}
        for modality in sorted(modalities):
            age, rate = math.nan, 0.0
            if self.hub is not None:
                buf = self.hub.buffer(subject, modality)
                spec = self.hub.spec(subject, modality)
                if buf is not None and math.isfinite(buf.last_timestamp):
                    age = now - buf.last_timestamp
                rate = spec.nominal_rate if spec is not None else 0.0
            elif modality in quality and latest is not None:
                age = 0.0  # no hub (a remote view): the estimate's window had it
            h = streams.get(modality)
            verdict = classify(age, rate, connected=h.connected if h is not None else True,
                               effective_rate=h.effective_rate if h is not None and h.samples else None,
                               signal_quality=quality.get(modality))
            out[modality] = verdict.level
        return out

    def active_alarms(self, subject: str | None = None) -> list[dict[str, Any]]:
        if self.alarms is None:
            return []
        from monitor.alarms import active_to_dict

        return [active_to_dict(a) for a in self.alarms.active(subject)]

    def tile(self, subject: str, health: list | None = None) -> dict[str, Any]:
        """Everything one tile shows (JSON-ready)."""
        latest = self.latest(subject)
        headline = latest.smoothed if latest is not None else math.nan
        state = latest.state if latest is not None else "calibrating"
        return {
            "subject": subject,
            "instance": self.instance.to_dict(),
            "headline": _finite(headline),
            "band": band_of(headline),
            "state": state,
            "state_text": STATE_TEXT.get(state, state),
            "mode": latest.mode if latest is not None else None,
            "t_end": latest.t_end if latest is not None else None,
            "sparkline": self.sparkline(subject),
            "health": self.modality_health(subject, health),
            "alarms": self.active_alarms(subject),
        }

    def tiles(self) -> list[dict[str, Any]]:
        """Every subject's tile, by name."""
        health = self.stream_health()
        return [self.tile(s, health) for s in self.subjects()]

    def alarm_history(self, subject: str) -> list[dict[str, Any]]:
        if self.alarms is None:
            return []
        from monitor.alarms import alarm_to_dict

        return [alarm_to_dict(e, self.instance.label) for e in self.alarms.history(subject)]
