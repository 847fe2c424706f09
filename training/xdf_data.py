"""Recorded sessions (XDF: LabRecorder's or PainMon's own) as labelled training data.

Files are read by :func:`devices.xdf.load_session` — the same reader replay uses,
so clock synchronisation, subjects and modality recognition are identical. The pain level
comes from marker streams: ``pain:no`` / ``pain:low`` / ``pain:high`` (also plain
``no``/``low``/``high``/``baseline``) set the level from their timestamp on. A marker
stream of one subject labels that subject; a marker stream whose subject has no signals
(e.g. an experimenter's stream) labels every subject of the file.

With ``labels="selfreport"`` the subject's own continuous rating (the dashboard's CoVAS
control, recorded as a :data:`core.streams.SELF_REPORT` stream) labels the data instead:
each rating is binned into no / low / high with the fixed bands of the index
(:data:`core.estimate.BAND_EDGES`), so a window's label is the band the subject reported
for most of it. Time before the first rating and after the last is unlabelled.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from core.estimate import band_of
from core.modalities import canonical_name
from core.streams import SELF_REPORT
from training.records import LEVEL_OF, UNLABELLED, LevelTrack, Recording, Signal

log = logging.getLogger(__name__)

_LEVEL_RE = re.compile(r"^(?:pain\s*[:=]\s*)?(no|none|baseline|low|high)$", re.IGNORECASE)
_ALIAS = {"none": "no", "baseline": "no"}
LABEL_SOURCES = ("markers", "selfreport")
"""Where the pain level of an XDF session comes from (``painmon train --labels``)."""


def marker_level(text: str) -> int | None:
    """Pain level of a marker string, or None for unrelated markers."""
    m = _LEVEL_RE.match(str(text).strip())
    if not m:
        return None
    name = m.group(1).lower()
    return LEVEL_OF[_ALIAS.get(name, name)]


def self_report_track(timestamps: np.ndarray, ratings: np.ndarray, rate: float = 0.0) -> LevelTrack | None:
    """Self-reported ratings (0-100) as a pain-level track: each rating's band from its
    time on, unlabelled after the last rating (plus one sample period) and across gaps
    longer than 5 s without a rating. None without a finite rating."""
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    rs = np.asarray(ratings, dtype=np.float64).reshape(-1)
    keep = np.isfinite(ts) & np.isfinite(rs)
    ts, rs = ts[keep], rs[keep]
    if ts.size == 0:
        return None
    order = np.argsort(ts, kind="stable")
    ts, rs = ts[order], rs[order]
    period = 1.0 / rate if rate > 0 else (float(np.median(np.diff(ts))) if ts.size > 1 else 1.0)
    times: list[float] = []
    levels: list[int] = []
    for i, (t, r) in enumerate(zip(ts, rs, strict=True)):
        level = LEVEL_OF[band_of(float(r)) or "no"]
        if i and t - ts[i - 1] > max(5.0, 3 * period) and levels[-1] != UNLABELLED:
            times.append(float(ts[i - 1] + period))
            levels.append(UNLABELLED)
        if not levels or levels[-1] != level:
            times.append(float(t))
            levels.append(level)
    times.append(float(ts[-1] + period))
    levels.append(UNLABELLED)
    return LevelTrack(np.array(times), np.array(levels))


def session_recordings(path: Path, labels: str = "markers") -> list[Recording]:
    """One :class:`Recording` per subject of one XDF file that has pain labels: markers, or
    the subject's self-report (``labels="selfreport"``)."""
    from devices.xdf import load_session

    if labels not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {labels!r}; use one of {', '.join(LABEL_SOURCES)}")
    session = load_session(path)
    signals: dict[str, dict[str, Signal]] = {}
    reports: dict[str, tuple[LevelTrack, Signal]] = {}
    for st in session.streams:
        if st.spec.modality == SELF_REPORT and st.n_samples:
            values = np.asarray(st.values, dtype=np.float64)
            values = values[:, 0] if values.ndim == 2 else values
            ts = np.asarray(st.timestamps, dtype=np.float64)
            track = self_report_track(ts, values, st.spec.nominal_rate)
            if track is not None:
                rate = st.spec.nominal_rate or (ts.size - 1) / max(1e-9, ts[-1] - ts[0])
                reports[st.spec.subject] = (track, Signal(values, ts, float(rate)))
    for st in session.streams:
        modality = canonical_name(st.spec.modality)
        if modality is None or st.n_samples == 0:
            continue
        values = np.asarray(st.values, dtype=np.float64)
        values = values[:, 0] if values.ndim == 2 else values
        ts = np.asarray(st.timestamps, dtype=np.float64)
        rate = st.spec.nominal_rate or (ts.size - 1) / max(1e-9, ts[-1] - ts[0])
        signals.setdefault(st.spec.subject, {})[modality] = Signal(values, ts, float(rate))
    marks: dict[str, list[tuple[float, int]]] = {}
    for marker in session.markers:
        level = marker_level(marker.label)
        if level is not None:
            marks.setdefault(marker.subject, []).append((float(marker.timestamp), level))
    orphan = sorted(p for s, ps in marks.items() if s not in signals for p in ps)
    out = []
    if labels == "selfreport":
        for subject, sigs in sorted(signals.items()):
            report = reports.get(subject)
            if report is None:
                log.warning("%s: subject %s has no self-report; not used for training", path.name, subject)
                continue
            track, ratings = report
            out.append(Recording(subject, sigs, track, id=f"xdf:{path.name}:{subject}:selfreport",
                                 source=f"XDF {path.name} (self-report)", ratings=ratings))
        return out
    for subject, sigs in sorted(signals.items()):
        mk = sorted(marks.get(subject, []) or orphan)
        if not mk:
            log.warning("%s: subject %s has no pain markers; not used for training", path.name, subject)
            continue
        track = LevelTrack(np.array([t for t, _ in mk]), np.array([lv for _, lv in mk]))
        out.append(Recording(subject, sigs, track, id=f"xdf:{path.name}:{subject}", source=f"XDF {path.name}"))
    return out


def load_xdf_sessions(paths: list[Path], labels: str = "markers") -> list[Recording]:
    """Recordings of every file; an error if none of them carries usable labels."""
    recordings = [r for p in paths for r in session_recordings(Path(p), labels)]
    if not recordings and labels == "selfreport":
        raise ValueError(
            f"no usable sessions in {[str(p) for p in paths]}: need EDA/BVP/RESP/SpO2 streams and a "
            f"{SELF_REPORT} stream of the same subject (the dashboard's self-report control records one)"
        )
    if not recordings:
        raise ValueError(
            f"no usable sessions in {[str(p) for p in paths]}: need EDA/BVP/RESP/SpO2 streams and a marker "
            "stream with 'pain:no' / 'pain:low' / 'pain:high' markers"
        )
    return recordings


def find_xdf(path: Path) -> list[Path]:
    """An XDF file itself, or every ``*.xdf`` below a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = sorted(path.rglob("*.xdf"))
    if not files:
        raise ValueError(f"no .xdf files in {path}")
    return files
