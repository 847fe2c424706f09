"""XDF files: PainMon's recordings and LabRecorder's, written and read.

What this package offers:

* reading — :func:`load_session` turns an XDF file (PainMon's or LabRecorder's) into a
  :class:`Session` of :class:`SessionStream` records; :class:`SessionLoadError` for a
  missing, non-XDF or unreadable file;
* recording — :class:`SessionRecorder` writes everything a hub receives (raw streams,
  markers, estimates) to one XDF file while a session runs; :class:`RecorderStats`;
* writing — :class:`XDFWriter` appends whole XDF chunks (crash-safe), :class:`StreamInfo`
  declares a stream, :class:`XDFWriteError` refuses data that cannot be written as declared;
* the format — :data:`MAGIC`, :data:`FORMATS` (channel formats), :func:`channel_format_for`,
  :func:`varlen_int`.

Stream names, types and channel labels of what PainMon records come from :mod:`core.wire`.
"""

from devices.xdf._format import (
    FORMATS,
    MAGIC,
    XDFWriteError,
    channel_format_for,
    varlen_int,
)
from devices.xdf._reader import Session, SessionLoadError, SessionStream, load_session
from devices.xdf._recorder import RecorderStats, SessionRecorder
from devices.xdf._writer import StreamInfo, XDFWriter

__all__ = [
    "FORMATS",
    "MAGIC",
    "RecorderStats",
    "Session",
    "SessionLoadError",
    "SessionRecorder",
    "SessionStream",
    "StreamInfo",
    "XDFWriteError",
    "XDFWriter",
    "channel_format_for",
    "load_session",
    "varlen_int",
]
