"""PainMon's LSL stream metadata conventions: building and reading ``StreamInfo``.

One place for the conventions every LSL producer and consumer of PainMon shares:
name ``"<subject> <modality>"``, type = modality, source_id
``"painmon:<subject>:<modality>"``, and in the description ``<subject>`` plus one
``<channels><channel><label/><unit/><type/></channel></channels>`` per channel (the XDF
meta-data convention, so LabRecorder files keep them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pylsl

from core.streams import MARKERS, StreamSpec
from core.wire import DEFAULT_TOPIC_PREFIX, stream_source_id

SOURCE_ID_PREFIX = f"{DEFAULT_TOPIC_PREFIX}:"
"""How PainMon's source ids begin (:func:`core.wire.stream_source_id`)."""


def stream_info(spec: StreamSpec, channel_format: int | None = None) -> pylsl.StreamInfo:
    """A ``StreamInfo`` for ``spec`` following PainMon's conventions."""
    is_markers = spec.modality == MARKERS
    fmt = channel_format if channel_format is not None else (pylsl.cf_string if is_markers else pylsl.cf_float32)
    info = pylsl.StreamInfo(
        name=spec.name or f"{spec.subject} {spec.modality}",
        type=spec.modality,
        channel_count=spec.n_channels,
        nominal_srate=0.0 if is_markers else float(spec.nominal_rate),
        channel_format=fmt,
        source_id=spec.source_id or stream_source_id(spec.subject, spec.modality),
    )
    desc = info.desc()
    desc.append_child_value("subject", spec.subject)
    channels = desc.append_child("channels")
    for label in spec.channels:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", spec.units)
        ch.append_child_value("type", spec.modality)
    return info


@dataclass(frozen=True)
class InfoFields:
    """What PainMon reads from a ``StreamInfo`` (plain values, safe to keep after the info is gone)."""

    name: str
    type: str
    source_id: str
    uid: str
    hostname: str
    channel_count: int
    nominal_rate: float
    channel_format: int
    channel_labels: tuple[str, ...]
    units: str
    subject_in_desc: str

    @property
    def is_string(self) -> bool:
        return self.channel_format == pylsl.cf_string


def read_info(info: pylsl.StreamInfo) -> InfoFields:
    """Copy the fields of ``info`` (a resolved or full info) into an :class:`InfoFields`."""
    desc = info.desc()
    labels: list[str] = []
    units = ""
    ch = desc.child("channels").child("channel")
    while not ch.empty() and len(labels) < info.channel_count():
        labels.append(ch.child_value("label") or f"ch{len(labels) + 1}")
        units = units or ch.child_value("unit")
        ch = ch.next_sibling("channel")
    if len(labels) != info.channel_count():
        labels = [f"ch{i + 1}" for i in range(info.channel_count())] if info.channel_count() > 1 else ["value"]
    return InfoFields(
        name=info.name(),
        type=info.type(),
        source_id=info.source_id(),
        uid=info.uid(),
        hostname=info.hostname(),
        channel_count=info.channel_count(),
        nominal_rate=float(info.nominal_srate()),
        channel_format=info.channel_format(),
        channel_labels=tuple(labels),
        units=units,
        subject_in_desc=desc.child_value("subject").strip(),
    )


def subject_from_source_id(source_id: str) -> str:
    """``"painmon:sim-1:EDA"`` -> ``"sim-1"``; empty for other source ids."""
    if source_id.startswith(SOURCE_ID_PREFIX):
        parts = source_id[len(SOURCE_ID_PREFIX):].split(":")
        if len(parts) >= 2 and parts[0]:
            return parts[0]
    return ""
