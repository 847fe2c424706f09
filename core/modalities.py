"""Registry of biosignal modalities.

Everything downstream (sources, preprocessing, the model, the dashboard) refers to a
modality by its canonical name (``"EDA"``, ``"BVP"``, ``"RESP"``, ``"SpO2"``, ...). The
registry holds what each of them needs to know about it in one place, so adding a modality
is one entry here plus, where needed, its preprocessing chain.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.limits import (
    BAD_FORMAT,
    BAD_RATE,
    MAX_CHANNELS,
    MAX_RATE_HZ,
    MIN_RATE_HZ,
    TOO_MANY_CHANNELS,
    DeclarationError,
)
from core.streams import MARKERS


@dataclass(frozen=True)
class Modality:
    """Static facts about one kind of biosignal."""

    name: str
    """Canonical name used as a key everywhere (topic names, checkpoints, GUI)."""
    label: str
    """Human-readable name for the dashboard."""
    units: str
    value_range: tuple[float, float]
    """Physically plausible range; samples outside it are treated as artefacts."""
    pattern: str
    """Case-insensitive regex matched against LSL stream types / channel labels."""
    working_rate: float = 100.0
    """Rate (Hz) the model sees; sources at other rates are resampled to it."""
    typical_rate: float = 100.0
    """A realistic device rate, used by the simulator and as a default."""
    rate_range: tuple[float, float] = (1.0, 1000.0)
    """Plausible device rates (Hz); a stream declaring another rate is refused before any
    buffer is sized for it (:func:`rate_range`, overridable with ``PAINMON_RATE_RANGES``)."""
    max_channels: int = 8
    """Most channels one stream of this modality may declare (at most
    :data:`core.limits.MAX_CHANNELS`)."""

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text, flags=re.IGNORECASE) is not None


REGISTRY: dict[str, Modality] = {
    m.name: m
    for m in (
        Modality("EDA", "Electrodermal activity", "µS", (0.0, 100.0), r"\b(eda|gsr)\b|^(eda|gsr)",
                 typical_rate=4.0, rate_range=(1.0, 1000.0)),
        Modality("BVP", "Blood volume pulse", "a.u.", (-1e6, 1e6), r"\b(bvp|ppg)\b|^(bvp|ppg)",
                 typical_rate=64.0, rate_range=(10.0, 2000.0)),
        Modality("RESP", "Respiration", "a.u.", (-1e6, 1e6), r"\b(resp|respiration)\b|^resp",
                 typical_rate=25.0, rate_range=(1.0, 2000.0)),
        Modality("SpO2", "Oxygen saturation", "%", (50.0, 100.0), r"spo2|oxygen",
                 typical_rate=1.0, rate_range=(0.2, 100.0)),
        Modality("ECG", "Electrocardiogram", "mV", (-20.0, 20.0), r"\b(ecg|ekg)\b|^(ecg|ekg)",
                 typical_rate=250.0, rate_range=(50.0, 10000.0), max_channels=16),
        Modality("EMG", "Electromyogram", "mV", (-50.0, 50.0), r"\bemg\b|^emg",
                 typical_rate=1000.0, rate_range=(100.0, 10000.0), max_channels=16),
        Modality("TEMP", "Skin temperature", "°C", (20.0, 45.0), r"\b(temp|temperature)\b|^temp",
                 typical_rate=4.0, rate_range=(0.1, 100.0)),
    )
}

DEFAULT_MODALITIES: tuple[str, ...] = ("EDA", "BVP", "RESP", "SpO2")
"""The four modalities of the AI4PAIN recordings and of the default model."""


RATE_RANGES_ENV = "PAINMON_RATE_RANGES"
"""Override of the plausible rate ranges, e.g. ``EDA=0.5-2000,SpO2=0.1-200`` (a site with
an unusual device); read by :func:`rate_range` each time, so tests and services can set it."""


def rate_range(modality: str, overrides: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float]:
    """Plausible ``(low, high)`` device rate of ``modality`` in Hz: ``overrides``, else the
    ``PAINMON_RATE_RANGES`` environment variable, else the registry's ``rate_range``.
    Unknown modalities get the generic bounds of :mod:`core.limits`. Raises ValueError for a
    malformed override."""
    if overrides and modality in overrides:
        return overrides[modality]
    env = parse_rate_ranges(os.environ.get(RATE_RANGES_ENV, ""))
    if modality in env:
        return env[modality]
    mod = REGISTRY.get(modality)
    return mod.rate_range if mod is not None else (MIN_RATE_HZ, MAX_RATE_HZ)


def check_declared(
    modality: str | None,
    rate: float,
    n_channels: int,
    *,
    irregular_ok: bool = False,
    rate_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """Refuse a stream declaration that PainMon will not size anything for.

    Every source calls this with what a sender *declares*, before a buffer, an inlet or a
    slot exists for the stream, so a declaration can cost at most what a plausible device
    costs. ``modality`` is the canonical name, :data:`core.streams.MARKERS`, or None while
    it is not known yet (then only the generic bounds of :mod:`core.limits` apply).
    ``irregular_ok``: a rate of 0 (LSL's "irregular") is accepted; marker streams always
    may be irregular. ``rate_ranges`` overrides :func:`rate_range` per modality.

    Raises :class:`core.limits.DeclarationError` with a countable reason and a detail that
    says what was declared and what is allowed.
    """
    what = modality or "stream"
    limit = REGISTRY[modality].max_channels if modality in REGISTRY else MAX_CHANNELS
    if n_channels < 1:
        raise DeclarationError(BAD_FORMAT, f"{what} declares {n_channels} channels")
    if n_channels > limit:
        raise DeclarationError(TOO_MANY_CHANNELS, f"{n_channels} {what} channels > {limit}")
    if not math.isfinite(rate) or rate < 0:
        raise DeclarationError(BAD_RATE, f"{what} at {rate:g} Hz is not a rate")
    if rate == 0:
        if irregular_ok or modality == MARKERS:
            return
        raise DeclarationError(BAD_RATE, f"{what} declares no rate (irregular)")
    if modality is None or modality == MARKERS:
        low, high = MIN_RATE_HZ, MAX_RATE_HZ
    else:
        low, high = rate_range(modality, rate_ranges)
    if not (low <= rate <= high):
        raise DeclarationError(BAD_RATE, f"{what} at {rate:g} Hz outside the plausible {low:g}-{high:g} Hz")


def parse_rate_ranges(text: str) -> dict[str, tuple[float, float]]:
    """Parse ``EDA=0.5-2000,SpO2=0.1-200`` into ``{"EDA": (0.5, 2000.0), ...}``.

    A range may be widened down to any positive rate but not above
    :data:`core.limits.MAX_RATE_HZ`: buffers and inlets are sized by the rate, and that cap
    is what keeps them bounded."""
    out: dict[str, tuple[float, float]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, span = item.partition("=")
        low, _, high = span.partition("-")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise ValueError(f"bad rate range {item!r}: expected MODALITY=LOW-HIGH in Hz") from None
        if not (0 < lo <= hi) or not math.isfinite(hi):
            raise ValueError(f"bad rate range {item!r}: need 0 < LOW <= HIGH")
        if hi > MAX_RATE_HZ:
            raise ValueError(f"bad rate range {item!r}: HIGH above the {MAX_RATE_HZ:g} Hz every buffer is sized for")
        out[get_modality(name).name] = (lo, hi)
    return out


class UnknownModalityError(KeyError):
    """Raised when a name does not resolve to a registered modality."""


def get_modality(name: str) -> Modality:
    """Look up a modality by canonical name, case-insensitively."""
    found = canonical_name(name)
    if found is None:
        raise UnknownModalityError(
            f"unknown modality {name!r}; known: {', '.join(REGISTRY)}"
        )
    return REGISTRY[found]


def canonical_name(name: str) -> str | None:
    """Return the canonical spelling of ``name`` (``"spo2"`` -> ``"SpO2"``), or None."""
    lowered = name.strip().lower()
    for key in REGISTRY:
        if key.lower() == lowered:
            return key
    return None


def match_modality(
    stream_type: str,
    channel_labels: Iterable[str] = (),
    stream_name: str = "",
    overrides: Mapping[str, str] | None = None,
) -> str | None:
    """Guess the modality of a stream from its type, name and channel labels.

    ``overrides`` maps a stream type or name (exact, case-insensitive) to a modality name
    and wins over the patterns, so a site can fix an odd device naming in configuration.
    The stream type is tried first because it is the LSL field meant for this; channel
    labels and the stream name only break ties when the type says nothing.
    """
    if overrides:
        lowered = {k.lower(): v for k, v in overrides.items()}
        for key in (stream_type, stream_name):
            if key and key.lower() in lowered:
                return get_modality(lowered[key.lower()]).name
    for text in (stream_type, *channel_labels, stream_name):
        if not text:
            continue
        exact = canonical_name(text)
        if exact is not None:
            return exact
        for modality in REGISTRY.values():
            if modality.matches(text):
                return modality.name
    return None
