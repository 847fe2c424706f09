"""Checking an XDF file's chunk structure before pyxdf reads it.

pyxdf trusts the file: a damaged length makes it allocate what the length claims
(``MemoryError``), a sample chunk of a stream without header ends in ``KeyError``, and its
recovery paths log full tracebacks. :func:`check_chunks` walks the chunks first, verifying
every length against the bytes left, every tag, every stream id against the headers seen,
every XML header, and every sample chunk against its stream's channel count and format.
A damaged chunk is left out (counted by kind); where the framing itself is lost (a length
running past the end, an impossible length width) the walk jumps to the next boundary
chunk, as pyxdf would, or stops there: everything before stays readable.

When nothing is wrong pyxdf reads the file itself; otherwise it reads an in-memory copy of
the good chunks only, which cannot make it allocate beyond the file's size.
"""

from __future__ import annotations

import io
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, fromstring

import numpy as np

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
)

MAX_CHANNELS = 4096
"""More channels than this in one stream header is damage, not a device."""
_WIDTHS = {1: "<B", 4: "<I", 8: "<Q"}
Buffer = memoryview | bytes | mmap.mmap


@dataclass
class ChunkCheck:
    """What :func:`check_chunks` found."""

    good: list[tuple[int, int]] = field(default_factory=list)
    """(start, end) byte ranges of the chunks kept."""
    problems: Counter = field(default_factory=Counter)
    """Damage by kind (``truncated``, ``bad length``, ``bad tag``, ``orphan chunk``, ...)."""
    chunks: int = 0

    @property
    def damaged(self) -> bool:
        return bool(self.problems)

    def summary(self) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.problems.items()))


@dataclass
class _Stream:
    channels: int
    value_size: int | None
    """Bytes per value; None for strings."""


class _Damage(Exception):
    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def _varlen(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _Damage("truncated")
    fmt = _WIDTHS.get(buf[pos])
    if fmt is None:
        raise _Damage("bad length")
    size = struct.calcsize(fmt)
    if pos + 1 + size > end:
        raise _Damage("truncated")
    return struct.unpack_from(fmt, buf, pos + 1)[0], pos + 1 + size


def _header(xml: bytes) -> Element:
    try:
        return fromstring(xml.decode("utf-8", "replace"))
    except (ParseError, ValueError):
        raise _Damage("bad header") from None


def _stream_of(root: Element) -> _Stream:
    try:
        channels = int((root.findtext("channel_count") or "").strip())
    except ValueError:
        raise _Damage("bad header") from None
    fmt = (root.findtext("channel_format") or "").strip()
    if not (1 <= channels <= MAX_CHANNELS) or fmt not in FORMATS:
        raise _Damage("bad header")
    dtype = FORMATS[fmt]
    return _Stream(channels, None if dtype is None else dtype.itemsize)


def _check_samples(buf: Buffer, pos: int, end: int, stream: _Stream) -> None:
    """A sample chunk's content (after the stream id) must fill ``pos:end`` exactly."""
    n, pos = _varlen(buf, pos, end)
    remaining = end - pos
    per_sample_min = 1 + (stream.channels * (stream.value_size or 2))
    if n * per_sample_min > remaining:  # also catches an absurd count before any loop
        raise _Damage("bad sample count")
    if stream.value_size is not None and n > 0:  # numeric: every sample stamped, or none
        values = stream.channels * stream.value_size
        for stamp in (8, 0):
            stride = 1 + stamp + values
            if n * stride == remaining:
                flags = np.frombuffer(buf[pos:end], dtype=np.uint8)[::stride]
                if bool((flags == stamp).all()):
                    return
    for _ in range(n):
        if pos >= end:
            raise _Damage("bad sample")
        stamp = buf[pos]
        if stamp not in (0, 8):
            raise _Damage("bad sample")
        pos += 1 + stamp
        if stream.value_size is not None:
            pos += stream.channels * stream.value_size
        else:
            for _ in range(stream.channels):
                length, pos = _varlen(buf, pos, end)
                pos += length
        if pos > end:
            raise _Damage("bad sample")
    if pos != end:
        raise _Damage("bad sample")


def _scan_boundary(buf: Buffer, pos: int, data: bytes | mmap.mmap) -> int | None:
    """Start of the chunk holding the next boundary UUID after ``pos``, or None."""
    found = data.find(BOUNDARY_UUID, pos)
    if found < 0:
        return None
    # the boundary chunk: [width 1][len 18][tag 5 u16][uuid]: its start is 4 bytes before
    start = found - 4
    return start if start > pos and buf[start] == 1 and buf[start + 1] == 18 else None


def check_chunks(data: bytes | mmap.mmap) -> ChunkCheck:
    """Walk the chunks of an XDF file's bytes; see the module docstring."""
    buf = memoryview(data) if isinstance(data, bytes) else data
    size = len(data)
    result = ChunkCheck()
    if size < 4 or bytes(buf[:4]) != MAGIC:
        result.problems["not XDF"] += 1
        return result
    streams: dict[int, _Stream] = {}
    pos = 4
    while pos < size:
        start = pos
        try:
            length, pos = _varlen(buf, pos, size)
            if length < 2:
                raise _Damage("bad length")
            end = pos + length
            if end > size:
                raise _Damage("truncated" if _scan_boundary(buf, pos, data) is None else "bad length")
        except _Damage as exc:
            result.problems[exc.kind] += 1
            resume = _scan_boundary(buf, start + 1, data)
            if resume is None:
                break
            pos = resume
            continue
        pos = end
        result.chunks += 1
        try:
            _check_chunk(buf, start, end - length, end, streams)
        except _Damage as exc:
            result.problems[exc.kind] += 1
            continue
        result.good.append((start, end))
    return result


def _check_chunk(buf: Buffer, start: int, body: int, end: int, streams: dict[int, _Stream]) -> None:
    tag = struct.unpack_from("<H", buf, body)[0]
    content = body + 2
    if tag == TAG_FILE_HEADER:
        _header(bytes(buf[content:end]))
        return
    if tag == TAG_BOUNDARY:
        return
    if tag not in (TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_STREAM_FOOTER):
        raise _Damage("bad tag")
    if end - content < 4:
        raise _Damage("bad length")
    stream_id = struct.unpack_from("<I", buf, content)[0]
    content += 4
    if tag == TAG_STREAM_HEADER:
        if stream_id in streams:
            raise _Damage("repeated stream header")
        streams[stream_id] = _stream_of(_header(bytes(buf[content:end])))
        return
    stream = streams.get(stream_id)
    if stream is None:
        raise _Damage("orphan chunk")
    if tag == TAG_CLOCK_OFFSET:
        if end - content != 16:
            raise _Damage("bad clock offset")
    elif tag == TAG_STREAM_FOOTER:
        _header(bytes(buf[content:end]))
    else:
        _check_samples(buf, content, end, stream)


def readable_copy(data: bytes | mmap.mmap, check: ChunkCheck) -> io.BytesIO:
    """The magic and the good chunks only, for pyxdf to read."""
    out = io.BytesIO()
    out.write(MAGIC)
    for start, end in check.good:
        out.write(data[start:end])
    out.seek(0)
    return out


def open_bytes(path: Path, max_bytes: int) -> bytes | mmap.mmap:
    """The file's bytes (an mmap for plain files, decompressed bytes for .xdfz / .xdf.gz,
    at most ``max_bytes`` of them)."""
    if path.suffix == ".xdfz" or path.suffixes[-2:] == [".xdf", ".gz"]:
        import gzip

        with gzip.open(path, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"decompresses to more than {max_bytes} bytes")
        return data
    with open(path, "rb") as f:
        if path.stat().st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
