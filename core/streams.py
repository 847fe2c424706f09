"""Records that describe streams and their health; shared by sources, engine and GUI."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MARKERS = "Markers"
"""Pseudo-modality of event/marker streams (string samples)."""
SELF_REPORT = "SelfReport"
"""Pseudo-modality of a subject's continuous self-reported pain (CoVAS, 0-100): stored in
the hub and recorded like a signal, never an input of the model, and not a registered
modality, so LSL/MQTT sources do not follow it (a dashboard following ``--lsl`` must not
read its own self-report outlet back in a second time)."""


@dataclass(frozen=True)
class StreamSpec:
    """What a source offers: one stream of one subject.

    Timestamps of every stream are on one clock: the LSL local clock
    (``pylsl.local_clock()``, i.e. the monotonic clock of this machine). Sources whose
    devices use another clock (MQTT senders, files) map their times onto it.
    """

    subject: str
    modality: str
    """Canonical modality name from :mod:`core.modalities`, or :data:`MARKERS`."""
    channels: tuple[str, ...] = ("value",)
    nominal_rate: float = 0.0
    """Samples per second the device promises; 0 for irregular (marker) streams."""
    units: str = ""
    name: str = ""
    """Human-readable origin, e.g. the LSL stream name or MQTT topic."""
    source_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.modality)

    @property
    def n_channels(self) -> int:
        return len(self.channels)


@dataclass
class StreamHealth:
    """Live health of one stream, as a source reports it (a snapshot, safe to hand to the GUI)."""

    spec: StreamSpec
    connected: bool = False
    samples: int = 0
    effective_rate: float = 0.0
    """Measured samples/s over the recent past."""
    gaps: int = 0
    """Interruptions longer than a few nominal sample periods (a lost and resumed stream counts one)."""
    dropped: int = 0
    """Samples known lost (sequence jumps, overflow)."""
    rejected: int = 0
    """Samples or messages refused as malformed."""
    reject_reasons: Counter = field(default_factory=Counter)
    last_timestamp: float = float("nan")
    last_received: float = float("nan")
    """Local clock time when the last chunk arrived."""
    status: str = ""
    """Short free text: 'connected', 'lost 3.2 s ago', 'reconnecting', ..."""
