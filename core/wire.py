"""Every name PainMon puts on the wire or into a file, defined once.

Outputs (LSL outlets, MQTT topics, JSON payloads) and recordings (XDF streams) build their
names from here, and readers (replay, the MQTT source, tests, the README) look them up
here, so a channel cannot be called one thing when published and another when recorded.

Where the first version disagreed with itself, the name chosen here wins:

* the smoothed-index channel is ``smoothed`` everywhere (the LSL outlet used to say
  ``smoothed_index``; recordings, MQTT JSON and :class:`core.estimate.Estimate` say
  ``smoothed``);
* topic builders take ``(prefix, subject)`` in that order, like the topic itself.
"""

from __future__ import annotations

from core.estimate import CLASS_NAMES
from core.streams import MARKERS

# --- identity ------------------------------------------------------------------------
PRODUCT = "PainMon"
"""Writer of recordings (XDF ``<writer>``), manufacturer in stream metadata."""
DEFAULT_TOPIC_PREFIX = "painmon"
"""Default first MQTT topic level and LSL ``source_id`` prefix."""

# --- estimate streams (LSL outlets and recorded XDF streams) --------------------------
ESTIMATE_STREAM_TYPE = "PainIndex"
"""LSL / XDF stream type of estimates (one stream per subject)."""
ESTIMATE_CHANNELS: tuple[tuple[str, str], ...] = (
    ("index", "percent"),
    ("smoothed", "percent"),
    *((f"p_{name}", "probability") for name in CLASS_NAMES),
    ("quality", "fraction"),
)
"""(label, unit) of each channel of an estimate stream, in order."""
ESTIMATE_CHANNEL_LABELS: tuple[str, ...] = tuple(label for label, _ in ESTIMATE_CHANNELS)


def estimate_stream_name(subject: str) -> str:
    """Name of a subject's estimate stream, e.g. ``PainMon-sim-1``."""
    return f"{PRODUCT}-{subject}"


def stream_source_id(subject: str, what: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """LSL/XDF ``source_id`` of one of PainMon's streams, e.g. ``painmon:sim-1:estimate``
    (stable across restarts, so LSL inlets recover after the service restarts)."""
    return f"{prefix}:{subject}:{what}"


ESTIMATE_SOURCE_KIND = "estimate"
"""The ``what`` of :func:`stream_source_id` for estimate streams."""

# --- MQTT topics: <prefix>/<subject>/<leaf> -------------------------------------------
MARKERS_LEAF = "markers"
ESTIMATE_LEAF = "estimate"
MARKER_STREAM_TYPE = MARKERS
"""LSL / XDF stream type of event markers."""


# --- baseline markers (event labels in a subject's marker stream and in recordings) -------
BASELINE_START = "baseline:start"
"""Marker: the subject's baseline interval starts here (e.g. resting, before a procedure)."""
BASELINE_END = "baseline:end"
"""Marker: the baseline interval that :data:`BASELINE_START` opened ends here; the baseline is
learnt from the windows that end inside the interval."""
BASELINE_SET = "baseline:set"
"""Prefix of the marker the engine writes when a subject's baseline takes effect:
``baseline:set:<payload>`` (:meth:`core.baseline.BaselineStats.encode`). A recording keeps it,
and replay installs it, so replayed estimates use the very baseline the live ones did."""


def check_prefix(prefix: str) -> str:
    """Refuse prefixes that would break subscription or parsing (wildcards, empty levels)."""
    if not prefix or any(ch in prefix for ch in "+#\0") or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"invalid MQTT topic prefix {prefix!r}: non-empty, no wildcards, no leading/trailing '/'")
    if "" in prefix.split("/"):
        raise ValueError(f"invalid MQTT topic prefix {prefix!r}: empty level")
    return prefix


def check_level(value: str, what: str) -> str:
    """Refuse a subject or modality that cannot be one MQTT topic level."""
    if not value or "/" in value or any(ch in value for ch in "+#\0"):
        raise ValueError(f"invalid {what} {value!r} for an MQTT topic level")
    return value


def sample_topic(prefix: str, subject: str, modality: str) -> str:
    """Topic of a sample stream, e.g. ``painmon/sim-1/EDA``."""
    return f"{check_prefix(prefix)}/{check_level(subject, 'subject')}/{check_level(modality, 'modality')}"


def marker_topic(prefix: str, subject: str) -> str:
    """Topic of a subject's event markers, e.g. ``painmon/sim-1/markers``."""
    return f"{check_prefix(prefix)}/{check_level(subject, 'subject')}/{MARKERS_LEAF}"


def estimate_topic(prefix: str, subject: str) -> str:
    """Topic of a subject's estimates, e.g. ``painmon/sim-1/estimate``."""
    return f"{check_prefix(prefix)}/{check_level(subject, 'subject')}/{ESTIMATE_LEAF}"


def subscription(prefix: str) -> str:
    """The one filter a source subscribes to: every leaf of every subject."""
    return f"{check_prefix(prefix)}/+/+"
