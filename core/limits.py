"""What a sender may declare about a stream: one definition of each limit, for every source.

A stream's declaration (its rate, channel count and sample format) sizes what PainMon
allocates for it before a single sample has arrived: ring buffers, liblsl's inlet queue,
pull buffers, the resampler's output. A declaration is other people's data, so it is
checked against these limits *before* anything is sized for it, by the MQTT source (on
every message) and the LSL source (when a stream is discovered, before an inlet is opened).
Per-modality plausible rates and channel counts live in the modality registry
(:func:`core.modalities.check_declared` applies them together with these caps); a site with
an unusual device widens a modality's range there (``PAINMON_RATE_RANGES``), never here.

The reason strings are the vocabulary of ``StreamHealth.reject_reasons`` and of the MQTT
source's counters, so a refusal reads the same whichever way the stream came in.
"""

from __future__ import annotations

from core.errors import PainMonError

MAX_CHANNELS = 64
"""Most channels of any one stream (a modality may allow fewer, see ``Modality.max_channels``):
buffers and pull chunks grow with the channel count a sender declares."""
MIN_RATE_HZ = 0.1
"""Lowest declared rate of a stream whose modality is not known (yet): slower than any
wearable's (skin temperature every 10 s). A tiny declared rate stretches gap thresholds and
silence limits towards infinity and makes resampling a long span allocate without bound."""
MAX_RATE_HZ = 10_000.0
"""Highest plausible sampling rate of a wearable biosignal (EMG goes to a few kHz): liblsl
sizes an inlet's queue by rate x buffer length, so 1 MHz would cost gigabytes up front."""

BAD_RATE = "bad_rate"
"""The declared rate is outside the plausible range of the stream's modality."""
TOO_MANY_CHANNELS = "too_many_channels"
"""More channels than the modality (or any stream) may have."""
BAD_FORMAT = "bad_format"
"""A sample format that cannot carry the declared kind of data (text for a biosignal)."""


class DeclarationError(PainMonError, ValueError):
    """A stream declares something PainMon will not allocate for.

    ``reason`` is one of the short, countable strings above; ``detail`` says what exactly
    was declared and what is allowed, for the one log line that reports the refusal.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
