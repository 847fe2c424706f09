"""Write simulated subjects as a labelled dataset in the AI4PAIN 2025 layout.

Layout (what :func:`write_dataset` produces and engineer F's loader reads)::

    <path>/
      Bvp/sim-1.csv  Eda/sim-1.csv  Resp/sim-1.csv  SpO2/sim-1.csv   (one CSV per subject)
      ...
      dataset.json   (seed, rate, subjects' profiles and schedules: provenance, not needed to load)

Each CSV has one column per segment; the header row names each column's condition:
``baseline`` (no pain), ``low`` or ``high`` (names repeat; read by position). Values are at
``fs`` Hz (100 Hz, like AI4PAIN), one sample per row from the segment start; shorter
columns are padded with empty cells. Segments of a subject are in time order, and the four
modality files of a subject have the same columns in the same order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from devices.simulator._offline import SimulatedRecording, simulate
from devices.simulator._profile import SubjectProfile
from devices.simulator._schedule import PainSchedule
from devices.simulator._wearable import subject_id, subject_seed

FOLDERS: dict[str, str] = {"BVP": "Bvp", "EDA": "Eda", "RESP": "Resp", "SpO2": "SpO2"}
"""Modality -> AI4PAIN folder name."""
CONDITIONS: dict[str, str] = {"no": "baseline", "low": "low", "high": "high"}
"""Pain level -> column header."""


def segments(rec: SimulatedRecording, segment_s: float | None = None) -> list[tuple[str, float, float]]:
    """(level, start_s, end_s) of each segment: every schedule episode within the recording,
    cut into pieces of ``segment_s`` when given (the last, shorter piece is kept if >= half)."""
    out = []
    dur = rec.schedule.duration_s
    cycle = 0
    while cycle * dur < rec.duration_s:
        for e in rec.schedule.episodes:
            a, b = cycle * dur + e.start_s, min(cycle * dur + e.end_s, rec.duration_s)
            if a >= rec.duration_s:
                break
            step = segment_s or (b - a)
            t = a
            while t < b - 1e-9:
                end = min(t + step, b)
                if end - t >= 0.5 * step or end - t == b - a:
                    out.append((e.level, t, end))
                t = end
        cycle += 1
    return out


def _column(values: np.ndarray, fs: float, start: float, end: float) -> np.ndarray:
    return values[round(start * fs): round(end * fs)]


def write_subject_csvs(path: Path, rec: SimulatedRecording, segment_s: float | None = None) -> list[str]:
    """Write one subject's four CSVs; returns the column headers."""
    segs = segments(rec, segment_s)
    headers = [CONDITIONS[level] for level, _, _ in segs]
    for modality, folder in FOLDERS.items():
        values, fs = rec.signals[modality]
        cols = [_column(values, fs, a, b) for _, a, b in segs]
        n_rows = max(c.size for c in cols)
        table = np.full((n_rows, len(cols)), "", dtype=object)
        for j, c in enumerate(cols):
            table[: c.size, j] = [f"{v:.6g}" for v in c.tolist()]
        (path / folder).mkdir(parents=True, exist_ok=True)
        lines = [",".join(headers)] + [",".join(row) for row in table.tolist()]
        (path / folder / f"{rec.subject}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return headers


def write_dataset(
    path: str | Path,
    n_subjects: int,
    duration_s: float,
    seed: int = 0,
    *,
    fs: float = 100.0,
    schedule: PainSchedule | None = None,
    segment_s: float | None = None,
) -> list[SimulatedRecording]:
    """Simulate ``n_subjects`` subjects for ``duration_s`` each and write them to ``path``.

    Each subject gets its own random profile and (unless ``schedule`` is given) its own
    random schedule, both from ``seed``. Returns the recordings (for checks and tests).
    """
    if n_subjects < 1:
        raise ValueError(f"need at least one subject, got {n_subjects}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    recs, meta = [], []
    for i in range(n_subjects):
        sseed = subject_seed(seed, i)
        sched = schedule or PainSchedule.random(duration_s, sseed)
        profile = SubjectProfile.random(sseed)
        rec = simulate(profile, sched, duration_s, sseed, rates={m: fs for m in FOLDERS}, subject=subject_id(i))
        headers = write_subject_csvs(root, rec, segment_s)
        recs.append(rec)
        meta.append({"subject": rec.subject, "seed": sseed, "profile": profile.to_dict(),
                     "schedule": sched.to_text(), "columns": headers})
    (root / "dataset.json").write_text(json.dumps({
        "generator": "painmon simulator", "layout": "AI4PAIN 2025", "fs": fs, "seed": seed,
        "duration_s": duration_s, "segment_s": segment_s, "subjects": meta}, indent=1), encoding="utf-8")
    return recs
