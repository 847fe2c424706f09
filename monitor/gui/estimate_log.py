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


@dataclass
class _SubjectLog:
    """One subject's estimates plus their end times, kept sorted for bisection."""

    items: list[Estimate] = field(default_factory=list)
    t: list[float] = field(default_factory=list)
    ordered: bool = True
    """False once an estimate arrived out of time order (a replay that restarted)."""


class EstimateLog:
    """Estimates in arrival order per subject, with a change counter for cheap redraws.

    The trend asks for "the last N minutes" twice a second; with a day of estimates a scan
    would cost tens of milliseconds on the GUI thread, so the end times are kept in a list
    and the start of the range is found by bisection.
    """

    def __init__(self, max_per_subject: int = MAX_PER_SUBJECT):
        self._by_subject: dict[str, _SubjectLog] = {}
        self._max = max_per_subject
        self.version = 0
        """Incremented on every change; plots redraw only when it moved."""

    def add(self, est: Estimate) -> None:
        log = self._by_subject.setdefault(est.subject, _SubjectLog())
        if log.t and est.t_end < log.t[-1]:
            log.ordered = False
        log.items.append(est)
        log.t.append(est.t_end)
        if len(log.items) > self._max + self._max // 10:  # trim in batches, not per estimate
            drop = len(log.items) - self._max
            del log.items[:drop], log.t[:drop]
            log.ordered = all(a <= b for a, b in zip(log.t, log.t[1:], strict=False))
        self.version += 1

    def subjects(self) -> list[str]:
        return sorted(self._by_subject)

    def latest(self, subject: str) -> Estimate | None:
        log = self._by_subject.get(subject)
        return log.items[-1] if log and log.items else None

    def estimates(self, subject: str | None = None) -> list[Estimate]:
        if subject is not None:
            log = self._by_subject.get(subject)
            return list(log.items) if log else []
        out = [e for log in self._by_subject.values() for e in log.items]
        return sorted(out, key=lambda e: (e.t_end, e.subject))

    def __len__(self) -> int:
        return sum(len(v.items) for v in self._by_subject.values())

    def trend(self, subject: str, since: float = -math.inf) -> TrendArrays:
        """Arrays of the estimates with ``t_end >= since``."""
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

    def to_csv(self, path: str | os.PathLike, subject: str | None = None) -> int:
        """Write estimates (one subject or all) as CSV; returns the number of rows.

        One column per modality quality seen in any estimate, so a file mixing subjects
        with different sensors still has a fixed header.
        """
        rows = self.estimates(subject)
        modalities = sorted({m for e in rows for m in e.quality})
        header = (
            ["subject", "t_end", "index"]
            + [f"p_{c}" for c in CLASS_NAMES]
            + ["smoothed", "smoothed_long", "valid"]
            + [f"quality_{m}" for m in modalities]
            + ["missing", "model", "latency_total_s"]
        )
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for e in rows:
                writer.writerow(
                    [e.subject, f"{e.t_end:.6f}", f"{e.index:.3f}"]
                    + [f"{p:.6f}" for p in e.probs]
                    + [_num(e.smoothed), _num(e.smoothed_long), int(bool(e.valid))]
                    + [_num(e.quality.get(m, math.nan)) for m in modalities]
                    + [";".join(e.missing), e.model, _num(e.latency.get("total", math.nan), 6)]
                )
        return len(rows)


def _num(x: float, digits: int = 3) -> str:
    """A number for CSV, empty for NaN (spreadsheets read empty as missing, 'nan' as text)."""
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
