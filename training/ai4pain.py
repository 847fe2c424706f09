"""Reader for the AI4PAIN 2025 physiological data layout, as given to challenge participants.

Layout (every part matched case-insensitively)::

    ROOT/[split/]Bvp/<subject>.csv   ROOT/[split/]Eda/...   Resp/...   SpO2/...

Each CSV holds one subject: one column per segment, padded with empty cells / NaN to the
longest segment, 100 Hz. The column header names the condition: ``baseline`` -> no pain,
``low`` -> low, ``high`` -> high, ``rest`` -> skipped or treated as no pain (option). The
reader is tolerant (case, ``,``/``;``/tab separators, a missing modality folder) and, when the
layout is wrong, says exactly what it expected and what it found.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.modalities import match_modality
from training.records import LevelTrack, Recording, Signal

log = logging.getLogger(__name__)

AI4PAIN_RATE = 100.0
FOLDER_NAMES = {
    "bvp": "BVP",
    "ppg": "BVP",
    "eda": "EDA",
    "gsr": "EDA",
    "resp": "RESP",
    "respiration": "RESP",
    "spo2": "SpO2",
}
CONDITIONS = {"baseline": 0, "low": 1, "high": 2}
REST_OPTIONS = ("skip", "no")

EXPECTED = (
    "expected the AI4PAIN layout: ROOT/[split/]<Modality>/<subject>.csv with modality folders "
    "named Bvp, Eda, Resp, SpO2 (any case), one column per segment whose header contains "
    "baseline, low, high or rest, values at 100 Hz"
)


class DatasetLayoutError(ValueError):
    """The dataset folder is not in the expected layout; the message says what was expected."""


@dataclass(frozen=True)
class _Column:
    header: str
    condition: str
    values: np.ndarray


_COND_RE = re.compile(r"(?<![a-z])(baseline|low|high|rest)(?![a-z])", re.IGNORECASE)


def condition_of(header: str) -> str | None:
    """Condition named in a column header (``"1_LOW_3"`` -> ``"low"``), or None."""
    found = {m.group(1).lower() for m in _COND_RE.finditer(header.strip())}
    if len(found) == 1:
        return found.pop()
    return None


def find_modality_folders(root: Path) -> dict[Path, dict[str, Path]]:
    """Modality folders grouped by their parent (a parent per split), searched 4 levels deep."""
    groups: dict[Path, dict[str, Path]] = {}
    candidates = [p for depth in range(1, 5) for p in sorted(root.glob("/".join(["*"] * depth))) if p.is_dir()]
    for d in candidates:
        name = FOLDER_NAMES.get(d.name.lower())
        if name is None:
            guess = match_modality(d.name)
            name = guess if guess in ("BVP", "EDA", "RESP", "SpO2") else None
        if name:
            groups.setdefault(d.parent, {})[name] = d
    return groups


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_subject_csv(path: Path) -> list[_Column]:
    """Columns of one subject file, NaN padding stripped; raises with the offending header."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DatasetLayoutError(f"{path}: empty file; {EXPECTED}")
    rows = list(csv.reader(lines, delimiter=_sniff_delimiter(lines[0])))
    headers = [h.strip() for h in rows[0]]
    data_rows = rows[1:]
    columns = []
    unknown = []
    for j, header in enumerate(headers):
        if not header and all((len(r) <= j or not r[j].strip()) for r in data_rows):
            continue  # trailing separator / fully empty column
        cond = condition_of(header)
        if cond is None:
            unknown.append(header or f"<empty header, column {j + 1}>")
            continue
        vals = np.full(len(data_rows), np.nan)
        for i, r in enumerate(data_rows):
            if j < len(r) and r[j].strip():
                try:
                    vals[i] = float(r[j])
                except ValueError:
                    raise DatasetLayoutError(
                        f"{path}: row {i + 2}, column {header!r}: {r[j]!r} is not a number"
                    ) from None
        finite = np.flatnonzero(np.isfinite(vals))
        vals = vals[: finite[-1] + 1] if finite.size else vals[:0]
        columns.append(_Column(header, cond, vals))
    if unknown:
        raise DatasetLayoutError(
            f"{path}: column header(s) {unknown[:5]} name no condition; each header must contain "
            f"exactly one of baseline, low, high, rest (e.g. '1_Baseline_1', 'HIGH-3'); {EXPECTED}"
        )
    return columns


def load_ai4pain(root: str | Path, rest: str = "skip", modalities: tuple[str, ...] | None = None) -> list[Recording]:
    """All segments under ``root`` as single-label :class:`Recording` objects.

    ``rest="skip"`` drops rest segments; ``rest="no"`` labels them no pain. Segments are
    joined across modality files by column position *and* header, so a file whose columns
    disagree with its sibling modality is reported instead of silently mislabelled.
    """
    if rest not in REST_OPTIONS:
        raise ValueError(f"rest={rest!r}; choose one of {REST_OPTIONS}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {EXPECTED}")
    groups = find_modality_folders(root)
    if not groups:
        found = sorted(p.name for p in root.iterdir())[:10]
        raise DatasetLayoutError(f"no modality folders under {root} (found {found}); {EXPECTED}")
    multi = len(groups) > 1
    recordings: list[Recording] = []
    for parent, mods in sorted(groups.items()):
        wanted = {m: d for m, d in mods.items() if modalities is None or m in modalities}
        missing = sorted({"BVP", "EDA", "RESP", "SpO2"} - set(mods))
        if missing:
            log.warning("%s: no folder for %s; those modalities will be marked absent", parent, missing)
        subjects = sorted({f.stem for d in wanted.values() for f in d.glob("*.csv")})
        if not subjects:
            raise DatasetLayoutError(f"no CSV files in {sorted(str(d) for d in wanted.values())}; {EXPECTED}")
        for subject in subjects:
            sid = f"{parent.name}/{subject}" if multi else subject
            recordings += _subject_segments(sid, {m: d / f"{subject}.csv" for m, d in wanted.items()}, rest)
    log.info("AI4PAIN %s: %d segments of %d subjects", root, len(recordings), len({r.subject for r in recordings}))
    return recordings


def _find_csv(path: Path) -> Path | None:
    if path.is_file():
        return path
    for f in path.parent.glob("*"):
        if f.stem.lower() == path.stem.lower() and f.suffix.lower() == ".csv":
            return f
    return None


def _subject_segments(subject: str, files: dict[str, Path], rest: str) -> list[Recording]:
    per_mod: dict[str, list[_Column]] = {}
    for modality, path in files.items():
        found = _find_csv(path)
        if found is None:
            log.warning("subject %s has no %s file (%s); %s marked absent", subject, modality, path, modality)
            continue
        per_mod[modality] = read_subject_csv(found)
    if not per_mod:
        return []
    n_seg = {m: len(c) for m, c in per_mod.items()}
    if len(set(n_seg.values())) != 1:
        raise DatasetLayoutError(f"subject {subject}: modalities have different segment counts {n_seg}")
    out = []
    ref_mod = next(iter(per_mod))
    for k in range(n_seg[ref_mod]):
        conds = {m: per_mod[m][k].condition for m in per_mod}
        if len(set(conds.values())) != 1:
            headers = {m: per_mod[m][k].header for m in per_mod}
            raise DatasetLayoutError(
                f"subject {subject}: segment {k + 1} has different conditions per modality {headers}"
            )
        cond = conds[ref_mod]
        if cond == "rest" and rest == "skip":
            continue
        level = 0 if cond == "rest" else CONDITIONS[cond]
        signals = {m: Signal.regular(per_mod[m][k].values, AI4PAIN_RATE) for m in per_mod if per_mod[m][k].values.size}
        if not signals:
            continue
        out.append(
            Recording(
                subject=subject, signals=signals, levels=LevelTrack.constant(level, 0.0),
                id=f"ai4pain:{subject}:{k}", source=f"AI4PAIN {per_mod[ref_mod][k].header}",
                whole_segment=True, info={"condition": cond},
            )
        )
    return out
