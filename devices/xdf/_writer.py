"""A small XDF 1.0 writer (the format of LabRecorder, read by pyxdf, MNE and EEGLAB).

We write our own instead of depending on LabRecorder because a recording must be written
from inside PainMon, incrementally, with whole chunks only: every call here appends one
complete chunk with a single ``write`` so a process killed between calls leaves a file
whose every chunk parses. The container layout is in :mod:`devices.xdf._format`.

This module only encodes; threading and buffering live in :mod:`devices.xdf._recorder`.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

import numpy as np

from core.wire import PRODUCT
from devices.xdf._format import (
    BOUNDARY_UUID,
    FORMATS,
    MAGIC,
    TAG_BOUNDARY,
    TAG_CLOCK_OFFSET,
    TAG_FILE_HEADER,
    TAG_SAMPLES,
    TAG_STREAM_FOOTER,
    TAG_STREAM_HEADER,
    XDFWriteError,
    chunk,
    varlen_int,
)

log = logging.getLogger(__name__)

def _xml_text(value: object) -> str:
    return escape(str(value))


def _xml_element(tag: str, value: object) -> str:
    """``<tag>value</tag>``; dicts nest, lists repeat the tag's singular children."""
    if isinstance(value, dict):
        inner = "".join(_xml_element(k, v) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, (list, tuple)):
        return "".join(_xml_element(tag, v) for v in value)
    return f"<{tag}>{_xml_text(value)}</{tag}>"


@dataclass
class StreamInfo:
    """What a stream header declares. ``desc`` is nested dicts/lists of strings -> XML."""

    name: str
    type: str
    channel_count: int
    nominal_srate: float
    channel_format: str
    source_id: str = ""
    desc: dict = field(default_factory=dict)
    created_at: float = 0.0
    hostname: str = ""

    def __post_init__(self) -> None:
        if self.channel_format not in FORMATS:
            raise XDFWriteError(
                f"unknown channel format {self.channel_format!r}; known: {', '.join(FORMATS)}"
            )
        if self.channel_count < 1:
            raise XDFWriteError(f"stream {self.name!r}: channel_count must be >= 1")

    def header_xml(self) -> str:
        """The StreamHeader XML, as LabRecorder writes it (fields pyxdf requires first)."""
        fields = (
            ("name", self.name),
            ("type", self.type),
            ("channel_count", self.channel_count),
            ("nominal_srate", repr(float(self.nominal_srate))),
            ("channel_format", self.channel_format),
            ("source_id", self.source_id),
            ("version", "1.1000000000000001"),
            ("created_at", repr(float(self.created_at))),
            ("uid", ""),
            ("session_id", "default"),
            ("hostname", self.hostname),
        )
        body = "".join(_xml_element(k, v) for k, v in fields)
        body += _xml_element("desc", self.desc) if self.desc else "<desc />"
        return f'<?xml version="1.0"?><info>{body}</info>'


def encode_numeric_samples(values: np.ndarray, timestamps: np.ndarray, fmt: str) -> bytes:
    """Samples-chunk content (after the stream id) of a numeric stream.

    Every sample carries its full 8-byte timestamp: XDF allows omitting it for regular
    streams, but then a reader reconstructs it from the nominal rate, which would not give
    back the exact times a device delivered.
    """
    dtype = FORMATS[fmt]
    assert dtype is not None
    n, nch = values.shape
    rows = np.empty(n, dtype=[("flag", "u1"), ("ts", "<f8"), ("v", dtype, (nch,))])
    rows["flag"] = 8
    rows["ts"] = timestamps
    rows["v"] = values
    return varlen_int(n) + rows.tobytes()


def encode_string_samples(values: Sequence[Sequence[str]], timestamps: np.ndarray) -> bytes:
    """Samples-chunk content of a string stream: each value as varlen length + UTF-8."""
    parts = [varlen_int(len(values))]
    for row, ts in zip(values, timestamps, strict=True):
        parts.append(b"\x08" + struct.pack("<d", float(ts)))
        for value in row:
            raw = str(value).encode("utf-8")
            parts.append(varlen_int(len(raw)) + raw)
    return b"".join(parts)


class XDFWriter:
    """Appends whole XDF chunks to a file. Not thread-safe: one thread owns a writer.

    Chunks are collected in memory and ``flush()`` hands them to the OS in one unbuffered
    ``write``, so the file only ever grows by whole chunks (a buffered file could be cut
    inside a stream header, which pyxdf cannot skip). After ``flush()`` the data survives
    the death of this process; ``sync()`` also asks the OS to put it on disk (power loss).
    """

    def __init__(self, path: str | os.PathLike, writer_name: str = PRODUCT):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise XDFWriteError(f"folder {self.path.parent} does not exist")
        self._f: BinaryIO = open(self.path, "wb", buffering=0)  # noqa: SIM115 - held open until close()
        self._streams: dict[int, StreamInfo] = {}
        self._pending: list[bytes] = [MAGIC]
        created = _dt.datetime.now(_dt.UTC).astimezone().isoformat()
        header = (
            '<?xml version="1.0"?><info><version>1.0</version>'
            f"<datetime>{_xml_text(created)}</datetime>"
            f"<writer>{_xml_text(writer_name)}</writer></info>"
        )
        self._pending.append(chunk(TAG_FILE_HEADER, header.encode("utf-8")))
        self.flush()

    @property
    def closed(self) -> bool:
        return self._f.closed

    def add_stream(self, stream_id: int, info: StreamInfo) -> None:
        """Write the header of a new stream; its samples may follow in any later chunk."""
        if stream_id in self._streams:
            raise XDFWriteError(f"stream id {stream_id} already declared")
        self._streams[stream_id] = info
        self._write(chunk(TAG_STREAM_HEADER, info.header_xml().encode("utf-8"), stream_id))

    def write_samples(self, stream_id: int, values, timestamps) -> int:
        """Write one Samples chunk; returns the number of samples written.

        Numeric ``values`` are (n, channels) (or (n,) for one channel) and are cast to the
        declared format; string ``values`` are a list of rows of strings (or of strings for
        one channel).
        """
        info = self._streams.get(stream_id)
        if info is None:
            raise XDFWriteError(f"samples for undeclared stream id {stream_id}")
        timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if info.channel_format == "string":
            rows = [[v] if isinstance(v, str) else list(v) for v in values]
            if any(len(r) != info.channel_count for r in rows):
                raise XDFWriteError(
                    f"stream {info.name!r}: string samples must have {info.channel_count} values"
                )
            n = len(rows)
            self._check_count(info, n, timestamps)
            content = None if n == 0 else encode_string_samples(rows, timestamps)
        else:
            arr = np.asarray(values)
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1) if info.channel_count == 1 else arr.reshape(1, -1)
            if arr.ndim != 2 or arr.shape[1] != info.channel_count:
                raise XDFWriteError(
                    f"stream {info.name!r}: samples of shape {np.shape(values)} do not match "
                    f"{info.channel_count} channels"
                )
            n = arr.shape[0]
            self._check_count(info, n, timestamps)
            content = None if n == 0 else encode_numeric_samples(arr, timestamps, info.channel_format)
        if content is not None:
            self._write(chunk(TAG_SAMPLES, content, stream_id))
        return n

    @staticmethod
    def _check_count(info: StreamInfo, n: int, timestamps: np.ndarray) -> None:
        if n != timestamps.shape[0]:
            raise XDFWriteError(
                f"stream {info.name!r}: {n} samples but {timestamps.shape[0]} timestamps"
            )

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Record the measured offset of a stream's clock (0 for streams on our clock)."""
        self._write(chunk(TAG_CLOCK_OFFSET, struct.pack("<dd", collection_time, offset), stream_id))

    def write_boundary(self) -> None:
        """A resynchronisation point for readers that meet a corrupt chunk."""
        self._write(chunk(TAG_BOUNDARY, BOUNDARY_UUID))

    def write_footer(
        self,
        stream_id: int,
        first_timestamp: float,
        last_timestamp: float,
        sample_count: int,
        clock_offsets: Sequence[tuple[float, float]] = (),
    ) -> None:
        """Close a stream with its summary (what LabRecorder writes at the end)."""
        offsets = "".join(
            f"<offset><time>{t!r}</time><value>{v!r}</value></offset>" for t, v in clock_offsets
        )
        xml = (
            '<?xml version="1.0"?><info>'
            f"<first_timestamp>{float(first_timestamp)!r}</first_timestamp>"
            f"<last_timestamp>{float(last_timestamp)!r}</last_timestamp>"
            f"<sample_count>{int(sample_count)}</sample_count>"
            f"<clock_offsets>{offsets}</clock_offsets></info>"
        )
        self._write(chunk(TAG_STREAM_FOOTER, xml.encode("utf-8"), stream_id))

    def _write(self, data: bytes) -> None:
        if self._f.closed:
            raise XDFWriteError(f"{self.path} is closed")
        self._pending.append(data)

    def flush(self) -> None:
        """Hand every complete chunk written so far to the OS in one write."""
        if self._f.closed or not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        good = self._f.tell()
        try:
            while data:
                written = self._f.write(data)
                data = data[written:]
        except OSError:
            # a full disk may take part of the write: cut the file back to its last whole
            # chunk so it stays readable (truncating needs no free space)
            try:
                self._f.truncate(good)
                self._f.seek(good)
            except OSError:
                log.debug("could not cut %s back to %d bytes", self.path, good, exc_info=True)
            raise

    def sync(self) -> None:
        """Flush and fsync (survives power loss, not only a crash of this process)."""
        if self._f.closed:
            return
        self.flush()
        try:
            os.fsync(self._f.fileno())
        except (OSError, io.UnsupportedOperation):  # e.g. some network filesystems
            log.debug("fsync not supported for %s", self.path)

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()
