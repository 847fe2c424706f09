"""All estimates of the session, per subject: the trend plot's data and the CSV export.

Kept in plain Python (no Qt) so exports are tested without a window. Bounded per subject
(:data:`MAX_PER_SUBJECT`, 24 h at one estimate per second) so a monitor left running for
days does not grow without limit; the recording, not this log, is the complete record.
"""

from __future__ import annotations

import csv
import math
import os
from collections import deque
from dataclasses import dataclass

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


class EstimateLog:
    """Estimates in arrival order per subject, with a change counter for cheap redraws."""

    def __init__(self, max_per_subject: int = MAX_PER_SUBJECT):
        self._by_subject: dict[str, deque[Estimate]] = {}
        self._max = max_per_subject
        self.version = 0
        """Incremented on every change; plots redraw only when it moved."""

    def add(self, est: Estimate) -> None:
        self._by_subject.setdefault(est.subject, deque(maxlen=self._max)).append(est)
        self.version += 1

    def subjects(self) -> list[str]:
        return sorted(self._by_subject)

    def latest(self, subject: str) -> Estimate | None:
        items = self._by_subject.get(subject)
        return items[-1] if items else None

    def estimates(self, subject: str | None = None) -> list[Estimate]:
        if subject is not None:
            return list(self._by_subject.get(subject, ()))
        out = [e for items in self._by_subject.values() for e in items]
        return sorted(out, key=lambda e: (e.t_end, e.subject))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_subject.values())

    def trend(self, subject: str, since: float = -math.inf) -> TrendArrays:
        """Arrays of the estimates with ``t_end >= since``."""
        items = [e for e in self._by_subject.get(subject, ()) if e.t_end >= since]
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
