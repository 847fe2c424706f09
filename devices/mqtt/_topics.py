"""Parsing received topics of PainMon's MQTT scheme ``<prefix>/<subject>/<leaf>``.

``<leaf>`` is a modality (``EDA``, ``BVP``, ``RESP``, ``SpO2``; aliases like ``ppg`` or
``gsr`` are recognised), ``markers`` for events, or one of PainMon's own outputs
(:data:`core.wire.OUTPUT_LEAVES`: ``estimate``, ``selfreport``, ``alarm``).
Topics are *built* by :mod:`core.wire` (one definition of every name on the wire); parsing
lives here because a topic outside the scheme is rejected like a bad payload
(:class:`TopicError` is a :class:`~devices.mqtt.PayloadError`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.modalities import canonical_name, match_modality
from core.streams import MARKERS
from core.wire import MARKERS_LEAF, OUTPUT_LEAVES
from devices.mqtt._schema import PayloadError


class TopicError(PayloadError):
    """A topic outside the scheme: rejected and counted exactly like a bad payload."""


@dataclass(frozen=True)
class Topic:
    """A parsed topic. ``kind`` is "samples", "markers", or the leaf of one of PainMon's own
    outputs (:data:`core.wire.OUTPUT_LEAVES`: "estimate", "selfreport", "alarm")."""

    subject: str
    kind: str
    modality: str
    """Canonical modality, :data:`core.streams.MARKERS` for markers, "" for outputs."""

    @property
    def is_output(self) -> bool:
        """One of PainMon's own outputs: not a signal, never ingested."""
        return self.kind in OUTPUT_LEAVES


def parse_topic(prefix: str, topic: str) -> Topic:
    """Split a received topic; raise :class:`TopicError` ("bad_topic", "unknown_modality")."""
    head = prefix + "/"
    if not topic.startswith(head):
        raise TopicError("bad_topic", f"{topic!r} not under {prefix!r}")
    parts = topic[len(head) :].split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise TopicError("bad_topic", f"{topic!r} is not {prefix}/<subject>/<modality>")
    subject, leaf = parts
    lowered = leaf.lower()
    if lowered in OUTPUT_LEAVES:  # a serve's or a dashboard's output: not a signal
        return Topic(subject, lowered, "")
    if lowered == MARKERS_LEAF:
        return Topic(subject, "markers", MARKERS)
    modality = canonical_name(leaf) or match_modality(leaf)
    if modality is None:
        raise TopicError("unknown_modality", f"{leaf!r} in {topic!r}")
    return Topic(subject, "samples", modality)
