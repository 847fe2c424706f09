"""Recorded sessions (XDF: LabRecorder's or PainMon's own) as labelled training data.

Files are read by :func:`devices.xdf.load_session` — the same reader replay uses,
so clock synchronisation, subjects and modality recognition are identical. The pain level
comes from marker streams: ``pain:no`` / ``pain:low`` / ``pain:high`` (also plain
``no``/``low``/``high``/``baseline``) set the level from their timestamp on. A marker
stream of one subject labels that subject; a marker stream whose subject has no signals
(e.g. an experimenter's stream) labels every subject of the file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from core.modalities import canonical_name
from training.records import LEVEL_OF, LevelTrack, Recording, Signal

log = logging.getLogger(__name__)

_LEVEL_RE = re.compile(r"^(?:pain\s*[:=]\s*)?(no|none|baseline|low|high)$", re.IGNORECASE)
_ALIAS = {"none": "no", "baseline": "no"}


def marker_level(text: str) -> int | None:
    """Pain level of a marker string, or None for unrelated markers."""
    m = _LEVEL_RE.match(str(text).strip())
    if not m:
        return None
    name = m.group(1).lower()
    return LEVEL_OF[_ALIAS.get(name, name)]


def session_recordings(path: Path) -> list[Recording]:
    """One :class:`Recording` per subject of one XDF file that has pain markers."""
    from devices.xdf import load_session

    session = load_session(path)
    signals: dict[str, dict[str, Signal]] = {}
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
    for subject, sigs in sorted(signals.items()):
        mk = sorted(marks.get(subject, []) or orphan)
        if not mk:
            log.warning("%s: subject %s has no pain markers; not used for training", path.name, subject)
            continue
        track = LevelTrack(np.array([t for t, _ in mk]), np.array([lv for _, lv in mk]))
        out.append(Recording(subject, sigs, track, id=f"xdf:{path.name}:{subject}", source=f"XDF {path.name}"))
    return out


def load_xdf_sessions(paths: list[Path]) -> list[Recording]:
    """Recordings of every file; an error if none of them carries usable labels."""
    recordings = [r for p in paths for r in session_recordings(Path(p))]
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
