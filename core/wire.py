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

import math
from collections.abc import Callable

from core.estimate import CLASS_NAMES, MODES, STATES, Estimate
from core.streams import MARKERS, SELF_REPORT

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
    ("state", "code"),
    ("mode", "code"),
    ("hop", "s"),
)
"""(label, unit) of each channel of an estimate stream, in order. LSL and XDF estimate
streams are numeric, so ``state`` and ``mode`` travel as codes: the position of the name
in :data:`STATE_CODES` / :data:`MODE_CODES` (every sample carries them, so a reader that
starts anywhere knows what the numbers may be trusted for). ``hop``: seconds between the
subject's estimates when it was made (longer than configured while the engine is
degraded, see :mod:`monitor.engine.capacity`)."""
ESTIMATE_CHANNEL_LABELS: tuple[str, ...] = tuple(label for label, _ in ESTIMATE_CHANNELS)
STATE_CODES: tuple[str, ...] = STATES
"""``state`` channel value k means ``STATE_CODES[k]``."""
MODE_CODES: tuple[str, ...] = MODES
"""``mode`` channel value k means ``MODE_CODES[k]``."""


def estimate_values(est: Estimate) -> list[float]:
    """The channel values of an estimate, in :data:`ESTIMATE_CHANNELS` order: the one row
    builder of LSL outlets and recordings (NaN where nothing was measured)."""
    quality = est.quality_overall if est.quality else math.nan
    return [
        float(est.index),
        float(est.smoothed),
        *(float(p) for p in est.probs),
        float(quality),
        float(STATE_CODES.index(est.state)) if est.state in STATE_CODES else math.nan,
        float(MODE_CODES.index(est.mode)) if est.mode in MODE_CODES else math.nan,
        float(est.hop_s),
    ]


# --- offline scoring (painmon replay --csv) -------------------------------------------
CSV_COLUMNS: tuple[str, ...] = (
    "t_s", "wall_time", "subject", "state", "mode", "index", "smoothed",
    *(f"p_{name}" for name in CLASS_NAMES), "quality", "missing",
)
"""Columns of an estimate CSV, in order (:mod:`monitor.estimate_csv`)."""


def estimate_stream_name(subject: str) -> str:
    """Name of a subject's estimate stream, e.g. ``PainMon-sim-1``."""
    return f"{PRODUCT}-{subject}"


def stream_source_id(subject: str, what: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """LSL/XDF ``source_id`` of one of PainMon's streams, e.g. ``painmon:sim-1:estimate``
    (stable across restarts, so LSL inlets recover after the service restarts)."""
    return f"{prefix}:{subject}:{what}"


ESTIMATE_SOURCE_KIND = "estimate"
"""The ``what`` of :func:`stream_source_id` for estimate streams."""

# --- self-report streams (CoVAS: a subject's own continuous pain rating) ---------------
SELF_REPORT_STREAM_TYPE = SELF_REPORT
"""LSL / XDF stream type of self-reports (one stream per subject)."""
SELF_REPORT_CHANNEL = "rating"
"""The one channel of a self-report stream: 0 (no pain) to 100 (worst pain imaginable)."""
SELF_REPORT_UNITS = "VAS 0-100"
SELF_REPORT_RANGE: tuple[float, float] = (0.0, 100.0)
SELF_REPORT_RATE = 10.0
"""Samples per second of a self-report stream: the control's value is sampled steadily, as
CoVAS devices do, so a held rating is recorded as held."""
SELF_REPORT_SOURCE_KIND = "selfreport"
"""The ``what`` of :func:`stream_source_id` for self-report streams."""


def self_report_stream_name(subject: str) -> str:
    """Name of a subject's self-report stream, e.g. ``PainMon-SelfReport-sim-1``."""
    return f"{PRODUCT}-{SELF_REPORT}-{subject}"


# --- MQTT topics: <prefix>/<subject>/<leaf> -------------------------------------------
MARKERS_LEAF = "markers"
ESTIMATE_LEAF = "estimate"
SELF_REPORT_LEAF = "selfreport"
"""JSON ``{"t": <unix seconds>, "rating": <0-100>, "subject": ..., "scale": ...}``."""
MARKER_STREAM_TYPE = MARKERS
"""LSL / XDF stream type of event markers."""
ALARM_LEAF = "alarm"
"""MQTT leaf of alarm transitions (JSON with :data:`ALARM_FIELDS`)."""
OUTPUT_LEAVES: tuple[str, ...] = (ESTIMATE_LEAF, SELF_REPORT_LEAF, ALARM_LEAF)
"""MQTT leaves of what PainMon publishes as output (not signals): the MQTT source passes
them over (counted as ignored), so a ``monitor --mqtt`` on a ``serve``'s broker never
reads them back in nor counts them as rejected."""


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


def shown_label(label: str) -> str:
    """A marker label as people see it (trend, console): a recorded baseline
    (``baseline:set:<statistics>``, some kilobytes) reads as just ``baseline:set``."""
    return BASELINE_SET if label.startswith(BASELINE_SET + ":") else label


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


def self_report_topic(prefix: str, subject: str) -> str:
    """Topic of a subject's self-reports, e.g. ``painmon/sim-1/selfreport``."""
    return f"{check_prefix(prefix)}/{check_level(subject, 'subject')}/{SELF_REPORT_LEAF}"


def alarm_topic(prefix: str, subject: str) -> str:
    """Topic of a subject's alarm transitions, e.g. ``painmon/sim-1/alarm``."""
    return f"{check_prefix(prefix)}/{check_level(subject, 'subject')}/{ALARM_LEAF}"


def subscription(prefix: str) -> str:
    """The one filter a source subscribes to: every leaf of every subject."""
    return f"{check_prefix(prefix)}/+/+"


# --- alarms (core.alarms): LSL marker streams, MQTT JSON, web API ----------------------
ALARM_STREAM_TYPE = "PainAlarm"
"""LSL stream type of a subject's alarm stream: one string channel, each sample the JSON
of one transition. Not ``Markers``, so PainMon's own LSL inputs never read it back."""
ALARM_SOURCE_KIND = "alarm"
"""The ``what`` of :func:`stream_source_id` for alarm streams."""
ALARM_MARKER_SOURCE = "alarm"
"""``source`` of the hub markers alarm transitions become (recorded into XDF, drawn on the trend)."""
ALARM_MARKER_PREFIX = "alarm:"
"""Marker labels of alarm transitions: ``alarm:<kind>:<transition>``."""
ALARM_FIELDS: tuple[str, ...] = (
    "subject", "kind", "transition", "alarm_id", "t", "value", "threshold", "message", "by", "origin",
)
"""Keys of an alarm transition's JSON, in order (the README documents each)."""


def alarm_stream_name(subject: str) -> str:
    """Name of a subject's alarm stream, e.g. ``PainMon-sim-1-alarms``."""
    return f"{PRODUCT}-{subject}-alarms"


# --- PainMon's own LSL outputs (not signals) ------------------------------------------
OUTPUT_STREAMS: tuple[tuple[str, str, Callable[[str], str]], ...] = (
    (ESTIMATE_SOURCE_KIND, ESTIMATE_STREAM_TYPE, estimate_stream_name),
    (ALARM_SOURCE_KIND, ALARM_STREAM_TYPE, alarm_stream_name),
    (SELF_REPORT_SOURCE_KIND, SELF_REPORT_STREAM_TYPE, self_report_stream_name),
)
"""``(kind, stream type, name of a subject's stream)`` of every LSL stream PainMon publishes
as an output: estimates, alarm transitions, self-reports. A ``painmon monitor --lsl`` on the
network of a ``painmon serve`` sees these next to the wearables' streams; LSL discovery
(:mod:`devices.lsl`) looks them up here and passes them over, so an output is never read
back in as if it were a signal (the MQTT source does the same with the output leaves)."""


def own_output_kind(stream_type: str, name: str, subject: str = "") -> str:
    """The kind (:data:`OUTPUT_STREAMS`) of the PainMon output a stream is, or ``""`` for
    any other stream: its type is an output type (case-insensitive; what PainMon publishes
    always has it), or its name is exactly the output name of its own ``subject`` (that name
    is PainMon's too: a relay that re-labels the type does not make the stream a signal)."""
    lowered = stream_type.strip().lower()
    for kind, output_type, name_of in OUTPUT_STREAMS:
        if lowered == output_type.lower() or (subject and name == name_of(subject)):
            return kind
    return ""
