"""All estimates of the session, per subject: the trend plot's data and the CSV export.

Kept in plain Python (no Qt) so exports are tested without a window. Bounded per subject
(:data:`MAX_PER_SUBJECT`, 24 h at one estimate per second) so a monitor left running for
days does not grow without limit; the recording, not this log, is the complete record.
"""

from __future__ import annotations

import bisect
import csv
import math
import os
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from core.estimate import CLASS_NAMES, Estimate

MAX_PER_SUBJECT = 24 * 3600


@dataclass
class TrendArrays:
    """Columns of one subject's estimates, for plotting."""

    t: np.ndarray
    index: np.ndarray
    smoothed: np.ndarray
    smoothed_long: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class SourceTime:
    """Where an estimate's window ends on the clocks a reader can match it to."""

    wall: float = math.nan
    """Wall-clock time (Unix seconds) of a live window's end; NaN for a replay, whose
    windows did not happen now."""
    source: float = math.nan
    """The window's end on the source's own clock: the recorded timestamp for a replay,
    the shared LSL clock for live streams."""
    file: float = math.nan
    """Seconds into the recording (replay only)."""


@dataclass
class _SubjectLog:
    """One subject's estimates plus their end times, kept sorted for bisection."""

    items: list[Estimate] = field(default_factory=list)
    t: list[float] = field(default_factory=list)
    times: list[SourceTime] = field(default_factory=list)
    ordered: bool = True
    """False once an estimate arrived out of time order (a replay that restarted)."""


@dataclass
class _SourceRun:
    """The estimates of one clean session (one source, or one seek of a replay)."""

    source_id: int
    label: str
    subjects: dict[str, _SubjectLog] = field(default_factory=dict)


MAX_SOURCES = 20
"""Earlier sessions kept for export (the oldest are dropped beyond that)."""


class EstimateLog:
    """Estimates per source and subject, with a change counter for cheap redraws.

    Estimates are kept apart by the clean session (:meth:`begin_source`) they belong to:
    the trend and the headline only ever see the current one, so a recording opened over a
    live session is never joined to it; the CSV export writes every session kept, each
    row saying which source it came from.

    The trend asks for "the last N minutes" twice a second; with a day of estimates a scan
    would cost tens of milliseconds on the GUI thread, so the end times are kept in a list
    and the start of the range is found by bisection.
    """

    def __init__(self, max_per_subject: int = MAX_PER_SUBJECT):
        self._runs: list[_SourceRun] = [_SourceRun(1, "")]
        self._max = max_per_subject
        self.version = 0
        """Incremented on every change; plots redraw only when it moved."""

    @property
    def _by_subject(self) -> dict[str, _SubjectLog]:
        return self._runs[-1].subjects

    @property
    def source_id(self) -> int:
        return self._runs[-1].source_id

    def begin_source(self, source_id: int, label: str) -> None:
        """Start a new clean session: later estimates go to it, the current view is empty."""
        if self._runs and not self._runs[-1].subjects:
            self._runs.pop()  # nothing was estimated on the previous one
        self._runs.append(_SourceRun(source_id, label))
        del self._runs[:-MAX_SOURCES]
        self.version += 1

    def set_label(self, label: str) -> None:
        """Name the current session's source (once its sources are known)."""
        self._runs[-1].label = label

    def add(self, est: Estimate, when: SourceTime | None = None) -> None:
        log = self._by_subject.setdefault(est.subject, _SubjectLog())
        if log.t and est.t_end < log.t[-1]:
            log.ordered = False
        log.items.append(est)
        log.t.append(est.t_end)
        log.times.append(when or SourceTime())
        if len(log.items) > self._max + self._max // 10:  # trim in batches, not per estimate
            drop = len(log.items) - self._max
            del log.items[:drop], log.t[:drop], log.times[:drop]
            log.ordered = all(a <= b for a, b in zip(log.t, log.t[1:], strict=False))
        self.version += 1

    def subjects(self) -> list[str]:
        return sorted(self._by_subject)

    def latest(self, subject: str) -> Estimate | None:
        log = self._by_subject.get(subject)
        return log.items[-1] if log and log.items else None

    def estimates(self, subject: str | None = None) -> list[Estimate]:
        """The current session's estimates (of one subject, or all in time order)."""
        if subject is not None:
            log = self._by_subject.get(subject)
            return list(log.items) if log else []
        out = [e for log in self._by_subject.values() for e in log.items]
        return sorted(out, key=lambda e: (e.t_end, e.subject))

    def __len__(self) -> int:
        return sum(len(v.items) for v in self._by_subject.values())

    def trend(self, subject: str, since: float = -math.inf) -> TrendArrays:
        """Arrays of the current session's estimates with ``t_end >= since``."""
        log = self._by_subject.get(subject) or _SubjectLog()
        if log.ordered:
            items = log.items[bisect.bisect_left(log.t, since):]
        else:
            items = [e for e in log.items if e.t_end >= since]
        return TrendArrays(
            t=np.array([e.t_end for e in items], dtype=np.float64),
            index=np.array([e.index for e in items], dtype=np.float64),
            smoothed=np.array([e.smoothed for e in items], dtype=np.float64),
            smoothed_long=np.array([e.smoothed_long for e in items], dtype=np.float64),
            valid=np.array([e.valid for e in items], dtype=bool),
        )

    def _rows(self, subject: str | None) -> list[tuple[_SourceRun, Estimate, SourceTime]]:
        out = []
        for run in self._runs:
            rows = [(run, e, w) for name, log in run.subjects.items() if subject in (None, name)
                    for e, w in zip(log.items, log.times, strict=True)]
            out.extend(sorted(rows, key=lambda r: (r[1].t_end, r[1].subject)))
        return out

    def to_csv(self, path: str | os.PathLike, subject: str | None = None) -> int:
        """Write estimates (one subject or all, of every session kept) as CSV; returns
        the number of rows.

        Each row says which source it came from (``source_id``, ``source``) and when its
        window ended on three clocks: ``wall_time`` (ISO 8601 with the UTC offset, live
        data only), ``source_time`` (the source's own clock: the recorded timestamp for a
        replay) with ``file_time_s`` (seconds into a replayed file), and ``t_end`` (the
        shared monotonic clock the engine runs on). Missing values are empty cells. One
        column per modality quality seen in any estimate, so a file mixing subjects with
        different sensors still has a fixed header.
        """
        rows = self._rows(subject)
        modalities = sorted({m for _, e, _ in rows for m in e.quality})
        header = (
            ["source_id", "source", "subject", "wall_time", "source_time", "file_time_s", "t_end", "index"]
            + [f"p_{c}" for c in CLASS_NAMES]
            + ["smoothed", "smoothed_long", "valid", "state", "mode"]
            + [f"quality_{m}" for m in modalities]
            + ["missing", "model", "latency_total_s"]
        )
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for run, e, when in rows:
                writer.writerow(
                    [run.source_id, run.label, e.subject, iso_time(when.wall), _num(when.source, 6),
                     _num(when.file, 3), _num(e.t_end, 6), _num(e.index)]
                    + [_num(p, 6) for p in e.probs]
                    + [_num(e.smoothed), _num(e.smoothed_long), int(bool(e.valid)), e.state, e.mode]
                    + [_num(e.quality.get(m, math.nan)) for m in modalities]
                    + [";".join(e.missing), e.model, _num(e.latency.get("total", math.nan), 6)]
                )
        return len(rows)


def iso_time(unix_s: float) -> str:
    """ISO 8601 local time with its UTC offset, to the millisecond ("" for NaN)."""
    if unix_s is None or not math.isfinite(unix_s):
        return ""
    return datetime.fromtimestamp(unix_s).astimezone().isoformat(timespec="milliseconds")


def _num(x: float | None, digits: int = 3) -> str:
    """A number for CSV, empty for NaN or inf (spreadsheets read empty as missing, 'nan'
    as text)."""
    if x is None:
        return ""
    x = float(x)
    return f"{x:.{digits}f}" if math.isfinite(x) else ""
