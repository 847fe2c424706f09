"""Record a session (raw streams, markers, estimates) to an XDF file while it runs.

Sources call the hub's listeners from their own threads, so those calls must be quick and
must never touch the disk: they only copy the chunk into an in-memory queue. One writer
thread drains the queue every ``flush_interval`` seconds (0.5 s by default) and appends
whole XDF chunks to the file, so a crash of the process loses at most the last interval.
``stop()`` drains what is left and writes the stream footers.

A write that fails (a full disk, a removed USB stick) ends the recording there: what was
flushed stays readable, :attr:`SessionRecorder.error` says why, and ``on_error`` (if given)
is called once with that one line, on the writer thread, so a dashboard or a service can
tell the user at once instead of the recording vanishing silently.

Every stream carries PainMon's metadata in its ``<desc>`` (subject, modality, units,
channel labels) so :func:`devices.xdf.load_session` maps it back to the same
subject/modality; other tools (pyxdf, MNE, EEGLAB) see an ordinary LabRecorder-like file.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from core import clock
from core.buffers import BufferHub, Marker
from core.estimate import Estimate
from core.modalities import canonical_name, get_modality
from core.streams import MARKERS, StreamSpec
from core.wire import (
    ESTIMATE_CHANNEL_LABELS,
    ESTIMATE_SOURCE_KIND,
    ESTIMATE_STREAM_TYPE,
    MODE_CODES,
    PRODUCT,
    STATE_CODES,
    estimate_stream_name,
    estimate_values,
    stream_source_id,
)
from core.worker import BackgroundWorker, WorkerStateError
from devices.xdf._format import FORMATS, XDFWriteError, channel_format_for
from devices.xdf._writer import StreamInfo, XDFWriter

log = logging.getLogger(__name__)

@dataclass
class RecordedStream:
    """Book-keeping of one stream in the file (owned by the writer thread)."""

    stream_id: int
    info: StreamInfo
    sample_count: int = 0
    first_timestamp: float = math.nan
    last_timestamp: float = math.nan
    clock_offsets: list[tuple[float, float]] = field(default_factory=list)
    cast_warned: bool = False


@dataclass
class RecorderStats:
    """A snapshot of what the recorder has done, for status bars and tests."""

    path: Path
    running: bool
    streams: int
    samples_written: dict[str, int]
    """Samples on disk per stream name."""
    pending: int
    """Chunks queued, not yet written."""
    rejected: int
    reject_reasons: Counter
    error: str | None


def failure_text(exc: BaseException) -> str:
    """A write failure in words: "disk full (No space left on device)" for ENOSPC and
    EFBIG (file size limit), else the OS's own message."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"disk full ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


def _data_desc(spec: StreamSpec) -> dict:
    units = spec.units
    if not units and canonical_name(spec.modality):
        units = get_modality(spec.modality).units
    return {
        "subject": spec.subject,
        "modality": spec.modality,
        "units": units,
        "source_name": spec.name,
        "channels": {
            "channel": [{"label": c, "unit": units, "type": spec.modality} for c in spec.channels]
        },
        "acquisition": {"manufacturer": PRODUCT},
    }


class SessionRecorder:
    """Writes everything a :class:`~core.buffers.BufferHub` receives to one XDF file.

    ``start()`` subscribes to the hub (when given) and launches the writer thread;
    :meth:`record_chunk`, :meth:`record_markers` and :meth:`record_estimate` may also be
    called directly, from any thread. ``stop()`` is idempotent and loses nothing that was
    handed over before it. One file, one run: a second ``start()`` raises
    :class:`core.worker.WorkerStateError`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        hub: BufferHub | None = None,
        *,
        flush_interval: float = 0.5,
        clock_offset_interval: float = 5.0,
        on_error: Callable[[str], None] | None = None,
    ):
        if flush_interval <= 0 or flush_interval > 1.0:
            raise ValueError(f"flush_interval must be in (0, 1] s, got {flush_interval}")
        self.path = Path(path)
        self.hub = hub
        self.flush_interval = flush_interval
        self.clock_offset_interval = clock_offset_interval
        self._queue: list[tuple] = []
        self._lock = threading.Lock()
        self._accepting = False
        self._started = False
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._worker = BackgroundWorker(self._run, name="painmon-recorder")
        self._writer: XDFWriter | None = None
        self._streams: dict[tuple, RecordedStream] = {}
        self._rejected: Counter = Counter()
        self._error: str | None = None
        self.on_error = on_error
        """Called once, on the writer thread, with :attr:`error` when a write fails."""
        self._last_offsets = -math.inf

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> SessionRecorder:
        """Open the file, subscribe to the hub and start the writer thread."""
        if self._started:
            raise WorkerStateError(f"recorder for {self.path} was already started")
        try:
            self._writer = XDFWriter(self.path, writer_name=PRODUCT)
        except (OSError, XDFWriteError) as exc:
            raise OSError(f"cannot record to {self.path}: {exc}") from exc
        self._started = True
        self._accepting = True
        if self.hub is not None:
            self.hub.add_listener(self.record_chunk)
            self.hub.add_marker_listener(self._on_marker)
        self._worker.start()
        log.info("recording to %s", self.path)
        return self

    def stop(self) -> None:
        """Stop accepting data, write everything queued, the footers, and close the file."""
        with self._stop_lock:  # two threads stopping at once: one does the work
            if not self._started or self._stopped:
                return
            self._stopped = True
        with self._lock:
            self._accepting = False
        if self.hub is not None:
            self.hub.remove_listener(self.record_chunk)
            self.hub.remove_marker_listener(self._on_marker)
        self._worker.stop(timeout=None)  # everything handed over is written before this returns
        log.info("recording %s closed (%d streams)", self.path, len(self._streams))

    @property
    def running(self) -> bool:
        return self._accepting

    @property
    def error(self) -> str | None:
        """Why the recording stopped early (one line), or None while it is fine."""
        return self._error

    def __enter__(self) -> Self:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- input (any thread) -------------------------------------------------------
    def _reject(self, reason: str, what: str) -> None:
        with self._lock:
            self._rejected[reason] += 1
            first = self._rejected[reason] == 1
        (log.warning if first else log.debug)("recorder rejected %s: %s", what, reason)

    def _enqueue(self, item: tuple) -> bool:
        with self._lock:
            if not self._accepting:
                return False
            self._queue.append(item)
            return True

    def record_chunk(self, spec: StreamSpec, data, timestamps) -> None:
        """Queue a chunk of a numeric stream (this is the hub listener)."""
        data = np.array(data, copy=True)
        ts = np.array(timestamps, dtype=np.float64, copy=True).reshape(-1)
        if data.ndim == 1:
            data = data.reshape(-1, 1) if spec.n_channels == 1 else data.reshape(1, -1)
        if data.ndim != 2 or data.shape[1] != spec.n_channels:
            self._reject("channel count mismatch", f"{spec.name or spec.key} chunk {np.shape(data)}")
            return
        if data.shape[0] != ts.shape[0]:
            self._reject("sample/timestamp count mismatch", f"{spec.name or spec.key}")
            return
        if not np.all(np.isfinite(ts)):
            self._reject("non-finite timestamps", f"{spec.name or spec.key}")
            return
        if data.dtype.kind not in "biuf":
            self._reject(f"non-numeric dtype {data.dtype}", f"{spec.name or spec.key}")
            return
        if data.shape[0]:
            self._enqueue(("data", spec, data, ts))

    def record_markers(self, subject: str, labels, timestamps, source: str = "") -> None:
        """Queue events of one subject (also fed from the hub's marker listener)."""
        labels = [str(label) for label in labels]
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if len(labels) != ts.shape[0]:
            self._reject("label/timestamp count mismatch", f"markers of {subject}")
            return
        if not np.all(np.isfinite(ts)):
            self._reject("non-finite timestamps", f"markers of {subject}")
            return
        if labels:
            self._enqueue(("markers", subject, labels, ts))

    def _on_marker(self, marker: Marker) -> None:
        self.record_markers(marker.subject, [marker.label], [marker.timestamp], marker.source)

    def record_estimate(self, est: Estimate) -> None:
        """Queue one estimate into the subject's estimate stream (names from :mod:`core.wire`)."""
        if not math.isfinite(est.t_end):
            self._reject("non-finite timestamps", f"estimate of {est.subject}")
            return
        row = np.array([estimate_values(est)], dtype=np.float64)
        if row.shape[1] != len(ESTIMATE_CHANNEL_LABELS):
            self._reject("estimate with wrong number of probabilities", f"estimate of {est.subject}")
            return
        self._enqueue(("estimate", est.subject, row, np.array([est.t_end])))

    # --- writer thread ------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        writer = self._writer
        assert writer is not None
        try:
            while not stop.wait(self.flush_interval):
                self._write_pending(writer)
            self._write_pending(writer)
            self._write_offsets(writer, force=True)
            for rec in self._streams.values():
                writer.write_footer(
                    rec.stream_id,
                    rec.first_timestamp if rec.sample_count else 0.0,
                    rec.last_timestamp if rec.sample_count else 0.0,
                    rec.sample_count,
                    rec.clock_offsets,
                )
            writer.close()
        except Exception as exc:  # disk full, permissions: keep what is on disk, say why
            with self._lock:
                self._accepting = False
                self._queue = []  # nothing more can be written: do not hold it in memory
            self._error = f"recording to {self.path} stopped: {failure_text(exc)}; data up to the last flush is kept"
            log.error("%s", self._error)
            try:
                writer.close()
            except Exception:
                log.debug("closing %s after failure also failed", self.path, exc_info=True)
            if self.on_error is not None:
                try:
                    self.on_error(self._error)
                except Exception:
                    log.exception("the recorder's on_error callback failed")

    def _write_pending(self, writer: XDFWriter) -> None:
        with self._lock:
            items, self._queue = self._queue, []
        for item in items:
            kind = item[0]
            if kind == "data":
                _, spec, data, ts = item
                rec = self._stream_for_data(writer, spec, data.dtype)
            elif kind == "markers":
                _, subject, data, ts = item
                rec = self._stream_for(writer, ("markers", subject), self._marker_info(subject))
            else:
                _, subject, data, ts = item
                rec = self._stream_for(writer, ("estimate", subject), self._estimate_info(subject))
            self._write_samples(writer, rec, data, ts)
        self._write_offsets(writer)
        writer.flush()

    def _write_samples(self, writer: XDFWriter, rec: RecordedStream, data, ts: np.ndarray) -> None:
        declared = FORMATS[rec.info.channel_format]
        if declared is not None and not rec.cast_warned and not np.can_cast(data.dtype, declared, "safe"):
            rec.cast_warned = True
            log.warning(
                "stream %r is recorded as %s but a chunk came as %s: values are cast",
                rec.info.name, rec.info.channel_format, data.dtype,
            )
        n = writer.write_samples(rec.stream_id, data, ts)
        if n:
            if rec.sample_count == 0:
                rec.first_timestamp = float(ts[0])
            rec.last_timestamp = float(ts[-1])
            rec.sample_count += n

    def _write_offsets(self, writer: XDFWriter, force: bool = False) -> None:
        """Clock offsets (all 0: every stream is on our one clock) as LabRecorder writes
        them, so readers that synchronise clocks have measurements to work with."""
        t = clock.now()
        if not force and t - self._last_offsets < self.clock_offset_interval:
            return
        self._last_offsets = t
        for rec in self._streams.values():
            writer.write_clock_offset(rec.stream_id, t, 0.0)
            rec.clock_offsets.append((t, 0.0))
        if self._streams:
            writer.write_boundary()

    def _stream_for(self, writer: XDFWriter, key: tuple, info_factory) -> RecordedStream:
        rec = self._streams.get(key)
        if rec is None:
            info = info_factory() if callable(info_factory) else info_factory
            rec = RecordedStream(len(self._streams) + 1, info)
            writer.add_stream(rec.stream_id, info)
            t = clock.now()
            writer.write_clock_offset(rec.stream_id, t, 0.0)
            rec.clock_offsets.append((t, 0.0))
            with self._lock:
                self._streams[key] = rec
            log.info("recording stream %r (%s)", info.name, info.type)
        return rec

    def _stream_for_data(self, writer: XDFWriter, spec: StreamSpec, dtype: np.dtype) -> RecordedStream:
        key = ("data", spec.subject, spec.modality, spec.channels)

        def info() -> StreamInfo:
            return StreamInfo(
                name=spec.name or f"{spec.subject} {spec.modality}",
                type=spec.modality,
                channel_count=spec.n_channels,
                nominal_srate=spec.nominal_rate,
                channel_format=channel_format_for(dtype),
                source_id=spec.source_id or stream_source_id(spec.subject, spec.modality),
                desc=_data_desc(spec),
                created_at=clock.now(),
            )

        return self._stream_for(writer, key, info)

    @staticmethod
    def _marker_info(subject: str) -> StreamInfo:
        return StreamInfo(
            name=f"{subject} {MARKERS}",
            type=MARKERS,
            channel_count=1,
            nominal_srate=0.0,
            channel_format="string",
            source_id=stream_source_id(subject, MARKERS),
            desc={"subject": subject, "modality": MARKERS, "acquisition": {"manufacturer": PRODUCT}},
            created_at=clock.now(),
        )

    @staticmethod
    def _estimate_info(subject: str) -> StreamInfo:
        return StreamInfo(
            name=estimate_stream_name(subject),
            type=ESTIMATE_STREAM_TYPE,
            channel_count=len(ESTIMATE_CHANNEL_LABELS),
            nominal_srate=0.0,
            channel_format="double64",
            source_id=stream_source_id(subject, ESTIMATE_SOURCE_KIND),
            desc={
                "subject": subject,
                "modality": ESTIMATE_STREAM_TYPE,
                "channels": {"channel": [{"label": c} for c in ESTIMATE_CHANNEL_LABELS]},
                "state_codes": ",".join(STATE_CODES),
                "mode_codes": ",".join(MODE_CODES),
                "acquisition": {"manufacturer": PRODUCT},
            },
            created_at=clock.now(),
        )

    # --- status -------------------------------------------------------------------
    def stats(self) -> RecorderStats:
        with self._lock:
            pending = len(self._queue)
            rejected = Counter(self._rejected)
            streams = list(self._streams.values())
        return RecorderStats(
            path=self.path,
            running=self._accepting,
            streams=len(streams),
            samples_written={r.info.name: r.sample_count for r in streams},
            pending=pending,
            rejected=sum(rejected.values()),
            reject_reasons=rejected,
            error=self._error,
        )
