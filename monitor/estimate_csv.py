"""Estimates as CSV rows (``painmon replay FILE --csv OUT.csv``), columns :data:`core.wire.CSV_COLUMNS`.

One row per estimate, in the order the engine delivers them. ``t_s`` is seconds from the
recording's start; ``wall_time`` is ISO 8601 UTC, present when the file says when it was
recorded (the XDF header's ``<datetime>``, taken as the wall time of the recording's first
sample); a number that was not measured (NaN: a ``low_quality`` window, a ``stale``
status) is an empty cell, never ``nan``; ``missing`` lists the absent modalities joined by
``;``. The file is flushed after every row, so an interrupted export keeps what it wrote.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import threading
from typing import TextIO

from core.estimate import Estimate
from core.wire import CSV_COLUMNS


def _number(x: float, digits: int) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and math.isfinite(x) else ""


def csv_row(est: Estimate, t_s: float, recorded_at: dt.datetime | None) -> list[str]:
    """The cells of one estimate, in :data:`core.wire.CSV_COLUMNS` order."""
    wall = ""
    if recorded_at is not None and math.isfinite(t_s):
        wall = (recorded_at + dt.timedelta(seconds=t_s)).astimezone(dt.UTC).isoformat(timespec="milliseconds")
        wall = wall.replace("+00:00", "Z")
    quality = est.quality_overall if est.quality else math.nan
    return [
        _number(t_s, 3),
        wall,
        est.subject,
        est.state,
        est.mode,
        _number(est.index, 2),
        _number(est.smoothed, 2),
        *(_number(p, 4) for p in est.probs),
        _number(quality, 3),
        ";".join(est.missing),
    ]


class EstimateCSV:
    """A CSV file of estimates, written row by row (thread-safe)."""

    def __init__(self, path: str | os.PathLike, recorded_at: dt.datetime | None = None):
        self._f: TextIO = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._writer = csv.writer(self._f)
        self._writer.writerow(CSV_COLUMNS)
        self._recorded_at = recorded_at
        self._lock = threading.Lock()
        self.rows = 0

    def write(self, est: Estimate, t_s: float) -> None:
        """Append ``est``, whose window ended ``t_s`` seconds into the recording."""
        row = csv_row(est, t_s, self._recorded_at)
        with self._lock:
            if self._f.closed:
                return
            self._writer.writerow(row)
            self._f.flush()
            self.rows += 1

    def close(self) -> None:
        with self._lock:
            self._f.close()
