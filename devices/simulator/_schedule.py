"""Pain schedules: when a simulated subject is in no / low / high pain.

A schedule is the ground truth of a simulation: it drives the autonomic responses of the
generator and it is what the marker stream and the dataset labels carry. Schedules repeat
cyclically past their end, so a real-time simulator can run for as long as it is left on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from core.errors import PainMonError

LEVELS: tuple[str, ...] = ("no", "low", "high")
"""Pain levels in the order of :data:`core.estimate.CLASS_NAMES`."""

_ALIASES = {
    "no": "no", "none": "no", "baseline": "no", "rest": "no", "0": "no",
    "low": "low", "mild": "low", "1": "low",
    "high": "high", "severe": "high", "2": "high",
}


class ScheduleError(PainMonError, ValueError):
    """A schedule text or episode list is malformed."""


def normalize_level(text: str) -> str:
    """Canonical level name for ``text`` (``"Baseline"`` -> ``"no"``)."""
    level = _ALIASES.get(str(text).strip().lower())
    if level is None:
        raise ScheduleError(f"unknown pain level {text!r}; use one of no, low, high (or baseline)")
    return level


@dataclass(frozen=True)
class Episode:
    """One stretch of constant pain level, ``start_s <= t < end_s``."""

    start_s: float
    end_s: float
    level: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class PainSchedule:
    """Contiguous episodes of no / low / high pain starting at t = 0 (seconds).

    Past the last episode the schedule starts over (``level_at(t)`` uses ``t % duration``),
    so the demo's script loops forever.
    """

    def __init__(self, episodes: list[tuple[float, float, str]] | list[Episode]):
        eps = [e if isinstance(e, Episode) else Episode(float(e[0]), float(e[1]), normalize_level(e[2]))
               for e in episodes]
        if not eps:
            raise ScheduleError("a schedule needs at least one episode")
        t = 0.0
        for e in eps:
            if abs(e.start_s - t) > 1e-9:
                raise ScheduleError(
                    f"episodes must be contiguous from 0 s: gap or overlap at {e.start_s} s (expected {t} s)"
                )
            if not e.end_s > e.start_s:
                raise ScheduleError(f"episode {e} has no positive duration")
            t = e.end_s
        self.episodes: tuple[Episode, ...] = tuple(eps)
        self._ends = np.array([e.end_s for e in eps])
        self._codes = np.array([LEVELS.index(e.level) for e in eps])

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_durations(cls, items: list[tuple[str, float]]) -> PainSchedule:
        """Episodes from (level, seconds) pairs laid end to end."""
        eps, t = [], 0.0
        for level, dur in items:
            if not dur > 0:
                raise ScheduleError(f"episode duration must be positive, got {dur!r} for {level!r}")
            eps.append(Episode(t, t + float(dur), normalize_level(level)))
            t += float(dur)
        return cls(eps)

    @classmethod
    def parse(cls, text: str) -> PainSchedule:
        """Parse ``--schedule`` text: comma-separated ``LEVEL:SECONDS`` items.

        Example ``"no:30,low:20,high:20,no:30"``. Levels are ``no`` (alias ``baseline``),
        ``low``, ``high``; seconds may be fractional. ``demo`` gives
        :meth:`scripted_demo`, ``random:SECONDS[:SEED]`` a random schedule.
        """
        text = (text or "").strip()
        if not text:
            raise ScheduleError("empty schedule; expected e.g. 'no:30,low:20,high:20,no:30'")
        if text.lower() == "demo":
            return cls.scripted_demo()
        m = re.fullmatch(r"random:(\d+(?:\.\d*)?)(?::(\d+))?", text.lower())
        if m:
            return cls.random(float(m.group(1)), int(m.group(2) or 0))
        items = []
        for part in text.split(","):
            level, sep, dur = part.strip().partition(":")
            if not sep:
                raise ScheduleError(f"schedule item {part.strip()!r} is not LEVEL:SECONDS (e.g. 'low:20')")
            try:
                seconds = float(dur)
            except ValueError:
                raise ScheduleError(f"schedule item {part.strip()!r}: {dur!r} is not a number of seconds") from None
            items.append((level, seconds))
        return cls.from_durations(items)

    @classmethod
    def scripted_demo(cls) -> PainSchedule:
        """The demo's script: 40 s without pain, then low, rest, high, rest, ... (200 s, looping).

        Short enough that a newcomer sees the index rise and fall within the first two minutes.
        """
        return cls.from_durations([
            ("no", 40), ("low", 25), ("no", 20), ("high", 30), ("no", 25), ("high", 20), ("low", 20), ("no", 20),
        ])

    @classmethod
    def random(cls, duration_s: float, seed: int = 0, min_s: float = 15.0, max_s: float = 35.0,
               *, first_rest_s: float | None = None) -> PainSchedule:
        """A random protocol covering ``duration_s``: rest episodes alternating with low or high pain.

        Like a stimulation protocol, every pain episode is followed by a rest, and the first
        episode is a rest (a baseline to compare against); ``first_rest_s`` fixes its length
        (e.g. long enough for a subject's baseline to be learnt before the first pain).
        """
        if not duration_s > 0:
            raise ScheduleError(f"duration must be positive, got {duration_s}")
        rng = np.random.default_rng(seed)
        items: list[tuple[str, float]] = []
        t, pain_next = 0.0, False
        while t < duration_s:
            level = str(rng.choice(["low", "high"])) if pain_next else "no"
            dur = float(np.round(rng.uniform(min_s, max_s)))
            if t == 0.0 and first_rest_s is not None:
                dur = float(first_rest_s)
            dur = min(dur, duration_s - t)
            items.append((level, dur))
            t += dur
            pain_next = not pain_next
        return cls.from_durations(items)

    # --- queries --------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        return float(self._ends[-1])

    def level_at(self, t: float) -> str:
        """The pain level at ``t`` seconds (cyclic past the end)."""
        return LEVELS[int(self.codes_at(np.asarray([t], dtype=float))[0])]

    def codes_at(self, t: np.ndarray) -> np.ndarray:
        """Level codes (0 no, 1 low, 2 high) at many times at once (vectorised)."""
        tt = np.mod(np.asarray(t, dtype=float), self.duration_s)
        idx = np.searchsorted(self._ends, tt, side="right")
        return self._codes[np.minimum(idx, len(self._codes) - 1)]

    def changes(self, t0: float, t1: float) -> list[tuple[float, str]]:
        """Times in ``[t0, t1)`` where the level changes (cyclic), with the new level."""
        out: list[tuple[float, str]] = []
        dur = self.duration_s
        cycle = int(np.floor(t0 / dur))
        while cycle * dur < t1:
            for i, e in enumerate(self.episodes):
                t = cycle * dur + e.start_s
                if t < t0 or t >= t1:
                    continue
                prev = self.episodes[i - 1].level  # for i == 0: last episode of the previous cycle
                if t > 0 and prev == e.level:
                    continue
                out.append((t, e.level))
            cycle += 1
        return out

    def to_text(self) -> str:
        """The ``--schedule`` text that parses back to this schedule."""
        return ",".join(f"{e.level}:{e.duration_s:g}" for e in self.episodes)

    def __repr__(self) -> str:
        return f"PainSchedule({self.to_text()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PainSchedule) and self.episodes == other.episodes
