"""The XDF 1.0 container format: magic, chunk tags, value formats and chunk framing.

Shared by the writer (:mod:`devices.xdf._writer`) and the reader's quick header check
(:mod:`devices.xdf._reader`). Layout (spec: https://github.com/sccn/xdf/wiki/Specifications):

``"XDF:"`` then chunks ``[NumLengthBytes][Length][Tag u16][Content]`` where Length counts
the tag and the content and is a variable-length integer (1 byte giving the width 1, 4 or 8,
then the value little-endian). Tags: FileHeader=1, StreamHeader=2, Samples=3,
ClockOffset=4, Boundary=5, StreamFooter=6. All but FileHeader and Boundary begin their
content with the 4-byte stream id.
"""

from __future__ import annotations

import struct

import numpy as np

from core.errors import PainMonError

MAGIC = b"XDF:"
TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6

BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
"""The 16 bytes a reader scans for to resynchronise after a corrupt chunk."""

FORMATS: dict[str, np.dtype | None] = {
    "float32": np.dtype("<f4"),
    "double64": np.dtype("<f8"),
    "int8": np.dtype("<i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "string": None,
}
"""XDF channel formats and the little-endian dtype of each sample value."""


class XDFWriteError(PainMonError, RuntimeError):
    """Raised for data that cannot be written as declared (wrong shape or format)."""


def channel_format_for(dtype: np.dtype) -> str:
    """The XDF channel format that holds ``dtype`` without loss (strings -> "string")."""
    dtype = np.dtype(dtype)
    if dtype.kind in "USO":
        return "string"
    if dtype.kind == "b":
        return "int8"
    if dtype.kind in "iu":
        if dtype.kind == "u" and dtype.itemsize >= 4:
            return "int64"
        size = dtype.itemsize * (2 if dtype.kind == "u" else 1)
        return {1: "int8", 2: "int16", 4: "int32"}.get(size, "int64")
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return "float32"
    return "double64"


def varlen_int(value: int) -> bytes:
    """Encode a non-negative integer as XDF's variable-length integer."""
    if value < 0:
        raise ValueError(f"varlen int must be non-negative, got {value}")
    if value < 256:
        return b"\x01" + struct.pack("<B", value)
    if value < 2**32:
        return b"\x04" + struct.pack("<I", value)
    return b"\x08" + struct.pack("<Q", value)


def chunk(tag: int, content: bytes, stream_id: int | None = None) -> bytes:
    """One complete chunk: length prefix, tag, optional stream id, content."""
    body = struct.pack("<H", tag)
    if stream_id is not None:
        body += struct.pack("<I", stream_id)
    body += content
    return varlen_int(len(body)) + body
