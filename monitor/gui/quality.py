"""Per-channel quality verdict shown as a coloured dot: good / poor / lost.

Three independent facts decide it, strongest first: the stream stopped delivering
(lost), it delivers too slowly or the engine rated its last window's signal poorly (poor),
otherwise good. Kept free of Qt so the rule is tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOST_AFTER_S = 3.0
"""Silence after which a stream counts as lost (or three sample periods for slow streams)."""
POOR_RATE_RATIO = 0.7
"""Effective rate below this fraction of the nominal rate: samples are being lost."""
POOR_SIGNAL_QUALITY = 0.5
"""Engine quality score (0-1) below which the window's signal counts as poor."""


@dataclass(frozen=True)
class ChannelQuality:
    """Verdict of the status panel on one channel, with the reason shown next to it."""
    level: str
    """"good", "poor", "lost" or "unknown" (no data yet)."""
    reason: str = ""


def lost_after(nominal_rate: float) -> float:
    """Silence (s) that means lost: 3 s, or three sample periods for streams slower than 1 Hz."""
    if nominal_rate > 0:
        return max(LOST_AFTER_S, 3.0 / nominal_rate)
    return LOST_AFTER_S


def classify(
    age_s: float,
    nominal_rate: float,
    connected: bool = True,
    effective_rate: float | None = None,
    signal_quality: float | None = None,
) -> ChannelQuality:
    """Verdict for one channel.

    ``age_s``: seconds since the stream last delivered (NaN when it never did);
    ``effective_rate``: measured samples/s (None when the source does not say);
    ``signal_quality``: the engine's 0-1 score of the latest window (None before one).
    """
    if math.isnan(age_s):
        return ChannelQuality("unknown", "no data yet")
    if not connected:
        return ChannelQuality("lost", "disconnected")
    if age_s > lost_after(nominal_rate):
        return ChannelQuality("lost", f"no data for {age_s:.0f} s")
    if effective_rate is not None and nominal_rate > 0 and effective_rate < POOR_RATE_RATIO * nominal_rate:
        return ChannelQuality("poor", f"rate {effective_rate:.1f} of {nominal_rate:g} Hz")
    if signal_quality is not None and signal_quality < POOR_SIGNAL_QUALITY:
        return ChannelQuality("poor", f"signal quality {signal_quality:.2f}")
    return ChannelQuality("good")
