"""PainMon's MQTT topic scheme ``<prefix>/<subject>/<leaf>`` in one place.

``<leaf>`` is a modality (``EDA``, ``BVP``, ``RESP``, ``SpO2``; aliases like ``ppg`` or
``gsr`` are recognised), ``markers`` for events, or ``estimate`` for PainMon's own output.
Publishers (simulator, engine outputs) and the source build and parse topics here so the
scheme cannot drift between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.modalities import canonical_name, match_modality
from core.streams import MARKERS
from devices.mqtt_schema import PayloadError

DEFAULT_PREFIX = "painmon"
MARKERS_LEAF = "markers"
ESTIMATE_LEAF = "estimate"


class TopicError(PayloadError):
    """A topic outside the scheme: rejected and counted exactly like a bad payload."""


@dataclass(frozen=True)
class Topic:
    """A parsed topic. ``kind`` is "samples", "markers" or "estimate"."""

    subject: str
    kind: str
    modality: str
    """Canonical modality, :data:`core.streams.MARKERS` for markers, "" for estimates."""


def check_prefix(prefix: str) -> str:
    """Refuse prefixes that would break subscription or parsing (wildcards, empty levels)."""
    if not prefix or any(ch in prefix for ch in "+#\0") or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"invalid MQTT topic prefix {prefix!r}: non-empty, no wildcards, no leading/trailing '/'")
    if "" in prefix.split("/"):
        raise ValueError(f"invalid MQTT topic prefix {prefix!r}: empty level")
    return prefix


def _check_level(value: str, what: str) -> str:
    if not value or "/" in value or any(ch in value for ch in "+#\0"):
        raise ValueError(f"invalid {what} {value!r} for an MQTT topic level")
    return value


def sample_topic(prefix: str, subject: str, modality: str) -> str:
    """Topic of a sample stream, e.g. ``painmon/sim-1/EDA``."""
    return f"{check_prefix(prefix)}/{_check_level(subject, 'subject')}/{_check_level(modality, 'modality')}"


def marker_topic(prefix: str, subject: str) -> str:
    return f"{check_prefix(prefix)}/{_check_level(subject, 'subject')}/{MARKERS_LEAF}"


def estimate_topic(prefix: str, subject: str) -> str:
    return f"{check_prefix(prefix)}/{_check_level(subject, 'subject')}/{ESTIMATE_LEAF}"


def subscription(prefix: str) -> str:
    """The one filter a source subscribes to: every leaf of every subject."""
    return f"{check_prefix(prefix)}/+/+"


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
    if lowered == ESTIMATE_LEAF:
        return Topic(subject, "estimate", "")
    if lowered == MARKERS_LEAF:
        return Topic(subject, "markers", MARKERS)
    modality = canonical_name(leaf) or match_modality(leaf)
    if modality is None:
        raise TopicError("unknown_modality", f"{leaf!r} in {topic!r}")
    return Topic(subject, "samples", modality)
