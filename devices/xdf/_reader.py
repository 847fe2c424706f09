"""Load an XDF file (LabRecorder's or PainMon's own) into a :class:`Session` for replay.

pyxdf does the reading, clock synchronisation, clock-reset handling and dejittering; this
module turns its loosely typed result into PainMon records: every stream gets a
:class:`~core.streams.StreamSpec` (subject and canonical modality), numeric samples become
float64 (integer formats included), string streams become marker events, and empty streams
are dropped with a log line. Nothing here is fatal except a file that is not XDF at all.
"""

from __future__ import annotations

import datetime as _dt
import logging
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.buffers import Marker
from core.modalities import canonical_name, get_modality, match_modality
from core.streams import MARKERS, StreamSpec
from core.wire import ESTIMATE_STREAM_TYPE, PRODUCT
from devices.source import SourceError
from devices.xdf._check import check_chunks, open_bytes, readable_copy
from devices.xdf._format import MAGIC

log = logging.getLogger(__name__)


class SessionLoadError(SourceError):
    """The file is missing, not XDF, or too damaged to read."""


@dataclass
class SessionStream:
    """One stream of a session, timestamps on the recording's (synchronised) clock.

    ``values`` is a float64 array (n, channels) for numeric streams and a list of labels
    for marker streams (``spec.modality == MARKERS``).
    """

    spec: StreamSpec
    timestamps: np.ndarray
    values: Any
    stream_type: str = ""
    channel_format: str = "double64"
    desc: dict = field(default_factory=dict)
    """The stream's ``<desc>`` as nested dicts/lists of strings (for re-publishing)."""

    @property
    def is_marker(self) -> bool:
        return self.spec.modality == MARKERS

    @property
    def n_samples(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def known_modality(self) -> bool:
        """Whether the modality is one PainMon knows (the model may use it)."""
        return self.is_marker or canonical_name(self.spec.modality) is not None


@dataclass
class Session:
    """A loaded recording: its streams, markers and time span."""

    path: Path
    streams: list[SessionStream]
    """Numeric streams the pipeline can consume."""
    marker_streams: list[SessionStream] = field(default_factory=list)
    estimate_streams: list[SessionStream] = field(default_factory=list)
    """PainMon's recorded estimates (type PainIndex): kept for comparison, never replayed
    into the pipeline as if they were biosignals."""
    skipped: list[str] = field(default_factory=list)
    """Names of streams left out (empty), for the user to see why."""
    writer: str = ""
    recorded_at: _dt.datetime | None = None
    """Wall-clock time (timezone-aware) the file says recording began (its header's
    ``<datetime>``, written by LabRecorder and PainMon); None when it does not say."""
    t_start: float = 0.0
    """Earliest timestamp of any stream or marker."""
    duration: float = 0.0
    """Seconds from ``t_start`` to the last timestamp."""

    @property
    def markers(self) -> list[Marker]:
        """All marker events, in time order."""
        out = [
            Marker(s.spec.subject, float(t), label, s.spec.name)
            for s in self.marker_streams
            for t, label in zip(s.timestamps, s.values, strict=True)
        ]
        return sorted(out, key=lambda m: m.timestamp)

    @property
    def subjects(self) -> list[str]:
        return sorted({s.spec.subject for s in self.streams + self.marker_streams})

    @property
    def replayable(self) -> list[SessionStream]:
        """Numeric and marker streams: what a replay delivers."""
        return self.streams + self.marker_streams

    def stream(self, subject: str, modality: str) -> SessionStream | None:
        for s in self.replayable:
            if s.spec.key == (subject, modality):
                return s
        return None


# --- helpers over pyxdf's dict-of-lists structure --------------------------------------
def _first(d: Any, key: str, default: Any = None) -> Any:
    if not isinstance(d, dict):
        return default
    value = d.get(key)
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


def _text(d: Any, key: str) -> str:
    value = _first(d, key)
    return value.strip() if isinstance(value, str) else ""


def _plain(value: Any) -> Any:
    """Turn pyxdf's defaultdict(list) tree into plain dicts; one-element lists unwrapped."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, list):
                out[k] = _plain(v[0]) if len(v) == 1 else [_plain(x) for x in v]
            else:
                out[k] = _plain(v)
        return out
    return "" if value is None else value


def _channel_labels(desc: Any, n: int) -> tuple[str, ...]:
    items = _first(desc, "channels")
    chans = items.get("channel", []) if isinstance(items, dict) else []
    labels = [_text(c, "label") for c in chans]
    if len(labels) == n and all(labels) and len(set(labels)) == n:
        return tuple(labels)
    if labels:
        log.debug("channel labels %s unusable for %d channels", labels, n)
    return ("value",) if n == 1 else tuple(f"ch{i + 1}" for i in range(n))


def _channel_unit(desc: Any) -> str:
    chans = _first(desc, "channels")
    if isinstance(chans, dict):
        first = chans.get("channel", [])
        if first:
            return _text(first[0], "unit")
    return ""


def _check_magic(path: Path) -> None:
    if not path.exists():
        raise SessionLoadError(f"{path}: no such file")
    if path.is_dir():
        raise SessionLoadError(f"{path} is a folder, not an XDF file")
    if path.suffix == ".xdfz" or path.suffixes[-2:] == [".xdf", ".gz"]:
        return  # pyxdf checks the magic inside the gzip stream
    with open(path, "rb") as f:
        head = f.read(4)
    if head != MAGIC:
        raise SessionLoadError(
            f"{path} is not an XDF file (it starts with {head!r}, XDF files with {MAGIC!r})"
        )


MAX_FILE_BYTES = 8 * 1024**3
"""Largest (decompressed) XDF file read: beyond it the file is refused, not swapped in."""
MAX_SESSION_S = 7 * 86400.0
"""Longest plausible session: a span beyond this after dropping absurd timestamps means
the file's clock data are damaged, and a replay of it would never end."""
OUTLIER_MARGIN_S = 3600.0
"""Samples further than this (plus twice the inter-quartile range) outside the bulk of
their stream's timestamps are dropped as damaged."""


def _read_xdf(path: Path, dejitter: bool) -> tuple[list[dict], dict]:
    """Pyxdf's reading of ``path``, after :func:`check_chunks` made sure it cannot trip
    over the framing; pyxdf's own log is silenced (damage is summarised in one line)."""
    import pyxdf

    try:
        data = open_bytes(path, MAX_FILE_BYTES)
    except (OSError, ValueError, EOFError) as exc:
        raise SessionLoadError(f"{path}: cannot read XDF ({_reason(exc)})") from None
    check = check_chunks(data)
    if not check.good:
        raise SessionLoadError(f"{path}: no readable XDF chunk ({check.summary() or 'empty file'})")
    source: object = str(path)
    if check.damaged:
        log.warning("%s: damaged (%s); replaying what is readable", path.name, check.summary())
        source = readable_copy(data, check)
    pyxdf_log = logging.getLogger("pyxdf")
    level, pyxdf_log.level = pyxdf_log.level, logging.CRITICAL + 1
    try:
        return pyxdf.load_xdf(
            source,
            synchronize_clocks=True,
            handle_clock_resets=True,
            dejitter_timestamps=dejitter,
        )
    except Exception as exc:  # pyxdf raises bare Exception/IOError/ParseError for damage
        raise SessionLoadError(f"{path}: cannot read XDF ({_reason(exc)})") from None
    finally:
        pyxdf_log.level = level
        if isinstance(data, mmap.mmap):
            data.close()


def _reason(exc: BaseException) -> str:
    """One line for a reading failure, naming the kind of damage."""
    if isinstance(exc, MemoryError):
        return "a chunk claims an impossible size: the file is damaged"
    if isinstance(exc, KeyError):
        return f"data of stream {exc.args[0] if exc.args else '?'} without its header: the file is damaged"
    if isinstance(exc, (EOFError, struct.error)):
        return "the file ends in the middle of a chunk (truncated)"
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _file_datetime(header: dict | None) -> _dt.datetime | None:
    """The header's ``<datetime>`` as an aware datetime (naive ones are taken as UTC)."""
    info = header.get("info") if isinstance(header, dict) else None
    text = _text(info, "datetime")
    if not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        log.info("unreadable recording datetime %r", text)
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)


def _file_writer(header: dict | None) -> str:
    info = header.get("info") if isinstance(header, dict) else None
    return _text(info, "writer")


# --- the loader ---------------------------------------------------------------------
def _stream_identity(info: dict, default_subject: str) -> tuple[str, str, str]:
    """(subject, modality, units) of a stream from its header."""
    desc = _first(info, "desc")
    stype = _text(info, "type")
    name = _text(info, "name")
    n = int(_text(info, "channel_count") or 1)
    subject = _text(desc, "subject") or default_subject
    units = _text(desc, "units") or _channel_unit(desc)
    declared = _text(desc, "modality")
    if _text(info, "channel_format") == "string" or stype.lower() in ("markers", "marker"):
        return subject, MARKERS, ""
    if declared == ESTIMATE_STREAM_TYPE or stype == ESTIMATE_STREAM_TYPE:
        return subject, ESTIMATE_STREAM_TYPE, units
    modality = canonical_name(declared) if declared else None
    if modality is None:
        modality = match_modality(stype, _channel_labels(desc, n), name)
    if modality is None:
        modality = declared or stype or name or "unknown"
        log.info(
            "stream %r (type %r): no known modality; kept as %r, the model will not use it",
            name, stype, modality,
        )
    if not units and canonical_name(modality):
        units = get_modality(modality).units
    return subject, modality, units


def load_session(path: str | os.PathLike, dejitter: bool | None = None) -> Session:
    """Read an XDF file into a :class:`Session`.

    ``dejitter`` None (default) means: dejitter files from other recorders (LabRecorder
    stores raw arrival times) but not PainMon's own recordings, whose timestamps are the
    ones the live sources delivered and must replay exactly. Raises
    :class:`SessionLoadError` for a missing, non-XDF or unreadable file, or one without any
    samples.
    """
    path = Path(path)
    _check_magic(path)
    if dejitter is None:
        # the file header comes first; read it alone to decide before parsing samples
        dejitter = _header_writer(path) != PRODUCT
    raw_streams, header = _read_xdf(path, dejitter)
    writer = _file_writer(header)
    session = Session(path=path, streams=[], writer=writer, recorded_at=_file_datetime(header))
    taken: set[tuple[str, str]] = set()
    for raw in raw_streams:
        info = raw.get("info", {})
        name = _text(info, "name") or f"stream {info.get('stream_id')}"
        stamps = np.asarray(raw.get("time_stamps", []), dtype=np.float64).reshape(-1)
        keep = _plausible(stamps)
        if keep is not None:
            log.warning(
                "%s: stream %r: dropped %d of %d samples with absurd timestamps (damaged file)",
                path.name, name, int((~keep).sum()), stamps.shape[0],
            )
            raw = {**raw, "time_series": _select(raw.get("time_series", []), keep)}
            stamps = stamps[keep]
        if stamps.shape[0] == 0:
            log.info("%s: stream %r has no samples; skipped", path.name, name)
            session.skipped.append(name)
            continue
        subject, modality, units = _stream_identity(info, path.stem)
        desc = _first(info, "desc")
        fmt = _text(info, "channel_format")
        n_ch = int(_text(info, "channel_count") or 1)
        values: list[str] | np.ndarray
        if modality == MARKERS:
            values = [" | ".join(str(v) for v in row) for row in raw["time_series"]]
        else:
            samples = np.asarray(raw["time_series"], dtype=np.float64).reshape(len(stamps), -1)
            n_ch = samples.shape[1]
            values = samples
        key = (subject, modality)
        if modality != MARKERS and key in taken:
            k = 2
            while (subject, f"{modality}#{k}") in taken:
                k += 1
            log.warning(
                "%s: a second %s stream of %r (%r) is replayed as %s#%d",
                path.name, modality, subject, name, modality, k,
            )
            modality = f"{modality}#{k}"
            key = (subject, modality)
        taken.add(key)
        spec = StreamSpec(
            subject=subject,
            modality=modality,
            channels=("label",) if modality == MARKERS else _channel_labels(desc, n_ch),
            nominal_rate=float(_text(info, "nominal_srate") or 0.0),
            units=units,
            name=name,
            source_id=_text(info, "source_id"),
        )
        stream = SessionStream(
            spec=spec,
            timestamps=stamps,
            values=values,
            stream_type=_text(info, "type"),
            channel_format=fmt,
            desc=_plain(desc) if isinstance(desc, dict) else {},
        )
        if modality == MARKERS:
            session.marker_streams.append(stream)
        elif modality == ESTIMATE_STREAM_TYPE:
            session.estimate_streams.append(stream)
        else:
            session.streams.append(stream)
    everything = session.replayable + session.estimate_streams
    if not everything:
        raise SessionLoadError(
            f"{path}: no stream has any samples"
            + (f" (empty: {', '.join(session.skipped)})" if session.skipped else "")
        )
    _drop_far_streams(session, path)
    everything = session.replayable + session.estimate_streams
    session.t_start = min(float(s.timestamps.min()) for s in everything)
    session.duration = max(float(s.timestamps.max()) for s in everything) - session.t_start
    if session.duration > MAX_SESSION_S:
        raise SessionLoadError(
            f"{path}: timestamps span {session.duration:.3g} s (more than {MAX_SESSION_S / 86400:g} days): "
            "the file's clock data are damaged"
        )
    return session


def _plausible(stamps: np.ndarray) -> np.ndarray | None:
    """Which samples have believable timestamps (finite, near the bulk of the stream);
    None when all do."""
    finite = np.isfinite(stamps)
    if stamps.shape[0] == 0:
        return None
    if finite.any():
        q1, q3 = np.percentile(stamps[finite], [25, 75])
        margin = 2.0 * (q3 - q1) + OUTLIER_MARGIN_S
        keep = finite & (stamps >= q1 - margin) & (stamps <= q3 + margin)
    else:
        keep = finite
    return None if bool(keep.all()) else keep


def _select(series: Any, keep: np.ndarray) -> Any:
    if isinstance(series, np.ndarray):
        return series[keep]
    return [row for row, k in zip(series, keep, strict=False) if k]


def _drop_far_streams(session: Session, path: Path) -> None:
    """Leave out whole streams whose time lies far from the others' (damaged clock
    offsets shift a whole stream)."""
    groups = (session.streams, session.marker_streams, session.estimate_streams)
    medians = [float(np.median(s.timestamps)) for g in groups for s in g]
    if len(medians) < 2:
        return
    centre = sorted(medians)[(len(medians) - 1) // 2]  # a real stream's time, even of two
    for group in groups:
        for stream in list(group):
            if abs(float(np.median(stream.timestamps)) - centre) > MAX_SESSION_S:
                log.warning("%s: stream %r lies %.3g s away from the others (damaged clock); left out",
                            path.name, stream.spec.name, float(np.median(stream.timestamps)) - centre)
                group.remove(stream)
                session.skipped.append(stream.spec.name)
    if not (session.replayable or session.estimate_streams):
        raise SessionLoadError(f"{path}: no stream with plausible timestamps")


def _header_writer(path: Path) -> str:
    """``<writer>`` of the file header: the first chunk, so only a few bytes are read."""
    import gzip
    import struct
    from xml.etree.ElementTree import ParseError, fromstring

    opener = gzip.open if path.suffix == ".xdfz" or path.suffixes[-2:] == [".xdf", ".gz"] else open
    try:
        with opener(path, "rb") as f:
            if f.read(4) != MAGIC:
                return ""
            width = f.read(1)
            fmt = {b"\x01": "<B", b"\x04": "<I", b"\x08": "<Q"}.get(width)
            if fmt is None:
                return ""
            length = struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
            body = f.read(min(length, 1 << 20))
            if struct.unpack("<H", body[:2])[0] != 1:
                return ""
            root = fromstring(body[2:].decode("utf-8", "replace"))
            return (root.findtext("writer") or "").strip()
    except (OSError, struct.error, ParseError, EOFError):
        return ""
