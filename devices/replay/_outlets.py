"""LSL outlets that mirror the streams of an XDF session (used by replay's re-publishing).

Imported only when re-publishing starts, so that replay into the pipeline never needs liblsl.
The outlet copies the stream's name, type, channel count, rate, format, source id and
``<desc>`` tree, and adds PainMon's ``<subject>`` when the file had none, so PainMon's own
LSL inlet maps the re-published stream to the same subject and modality.
"""

from __future__ import annotations

import logging
from typing import Any

from core.streams import MARKERS
from core.wire import stream_source_id
from devices.xdf._reader import SessionStream

log = logging.getLogger(__name__)

LSL_FORMATS = ("float32", "double64", "string", "int32", "int16", "int8", "int64")


def _append_desc(element: Any, tree: Any) -> None:
    """Rebuild a plain dict/list/str tree under an LSL XMLElement."""
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                _append_desc(element.append_child(key), item)
            else:
                element.append_child_value(key, "" if item is None else str(item))


def stream_info_for(stream: SessionStream):
    """A ``pylsl.StreamInfo`` describing ``stream`` as it was recorded."""
    import pylsl

    spec = stream.spec
    fmt = "string" if stream.is_marker else stream.channel_format
    if fmt not in LSL_FORMATS:
        fmt = "double64"
    n_channels = 1 if stream.is_marker else spec.n_channels
    info = pylsl.StreamInfo(
        name=spec.name or f"{spec.subject} {spec.modality}",
        type=stream.stream_type or spec.modality,
        channel_count=n_channels,
        nominal_srate=spec.nominal_rate,
        channel_format=fmt,
        source_id=spec.source_id or stream_source_id(spec.subject, spec.modality),
    )
    desc = dict(stream.desc) if isinstance(stream.desc, dict) else {}
    desc.setdefault("subject", spec.subject)
    if not stream.is_marker and "channels" not in desc:
        desc["channels"] = {"channel": [{"label": c, "unit": spec.units} for c in spec.channels]}
    if stream.is_marker and spec.modality == MARKERS:
        desc.setdefault("modality", MARKERS)
    _append_desc(info.desc(), desc)
    return info


def make_outlet(stream: SessionStream, chunk_size: int = 0):
    """Open an outlet for ``stream``; it is visible to resolvers as soon as it exists."""
    import pylsl

    outlet = pylsl.StreamOutlet(stream_info_for(stream), chunk_size=chunk_size)
    log.debug("LSL outlet %r (%s) open", stream.spec.name, stream.stream_type)
    return outlet
