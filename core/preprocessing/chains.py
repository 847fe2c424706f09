"""Per-modality preprocessing chains (what to filter, clip and flag for each signal).

The registry in :mod:`core.modalities` says *what* a signal is; this module says *how to
clean it* before it is cut into windows. A chain is plain data (:class:`ChainSpec`) so a
new modality (ECG, EMG, TEMP, ...) is one entry in :data:`CHAINS`, and a site can pass its
own spec to :class:`core.preprocessing.StreamPreprocessor` without touching code.

All filters are causal Butterworth designs in second-order sections, run at the model's
working rate (100 Hz by default) after resampling, so one design per modality serves
every device rate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import signal as sps

from core.modalities import get_modality

log = logging.getLogger(__name__)

FilterKind = Literal["lowpass", "highpass", "bandpass"]


@dataclass(frozen=True)
class FilterSpec:
    """One Butterworth filter: kind, cutoff(s) in Hz and order (per band edge)."""

    kind: FilterKind
    cutoff: float | tuple[float, float]
    order: int = 2

    def design(self, fs: float) -> np.ndarray | None:
        """Second-order sections at sampling rate ``fs``.

        A cutoff at or above 95 % of Nyquist cannot be realised at ``fs``; rather than
        failing (a low working rate is a legitimate configuration) the band edge is dropped:
        a low-pass disappears, a band-pass becomes a high-pass. Returns None when nothing
        is left to filter.
        """
        nyq = fs / 2.0
        kind: str = self.kind
        cutoff = self.cutoff
        if kind == "bandpass":
            lo, hi = cutoff  # type: ignore[misc]
            if hi >= 0.95 * nyq:
                log.info("band-pass %s Hz above Nyquist at %g Hz: using high-pass %g Hz", cutoff, fs, lo)
                kind, cutoff = "highpass", lo
        if kind == "lowpass" and float(cutoff) >= 0.95 * nyq:  # type: ignore[arg-type]
            log.info("low-pass %s Hz not realisable at %g Hz: skipped", cutoff, fs)
            return None
        if kind == "highpass" and float(cutoff) >= 0.95 * nyq:  # type: ignore[arg-type]
            raise ValueError(f"high-pass cutoff {cutoff} Hz is above Nyquist of {fs} Hz")
        return sps.butter(self.order, cutoff, btype=kind, fs=fs, output="sos")


@dataclass(frozen=True)
class ChainSpec:
    """How one modality is cleaned. Plain data; see :data:`CHAINS` for the defaults."""

    filters: tuple[FilterSpec, ...] = ()
    clip: tuple[float, float] | None = None
    """Output is clipped to this physical range (e.g. SpO2 to 0-100 %)."""
    valid_range: tuple[float, float] | None = None
    """Input samples outside it are artefacts (dropped, bridged, flagged).
    None: the modality's ``value_range`` from the registry."""
    flat_max_s: float | None = None
    """A run of identical raw values longer than this is a disconnected/stuck sensor;
    samples beyond it are flagged. None: flat signals are normal (SpO2, temperature)."""
    clip_min_s: float | None = None
    """A plateau of identical raw values at the stream's running maximum or minimum
    lasting this long is clipping (sensor or converter at its rail); samples beyond it are
    flagged. None: not checked (SpO2 sits at its 100 % maximum legitimately)."""
    max_gap_s: float = 1.0
    """Gaps up to this long are bridged by interpolation (and flagged); longer ones stay
    gaps. Never less than 2.5 input sample periods (a 1 Hz oximeter must not break at
    every sample)."""
    notes: str = field(default="", compare=False)

    def design(self, fs: float) -> np.ndarray | None:
        """All filters of the chain cascaded into one SOS array at rate ``fs``."""
        parts = [s for s in (f.design(fs) for f in self.filters) if s is not None]
        return np.vstack(parts) if parts else None


CHAINS: dict[str, ChainSpec] = {
    "EDA": ChainSpec(
        filters=(FilterSpec("lowpass", 1.5, 2),),
        flat_max_s=10.0,
        notes="tonic+phasic skin conductance lives below ~1 Hz; removes quantisation and motion spikes",
    ),
    "BVP": ChainSpec(
        filters=(FilterSpec("bandpass", (0.5, 8.0), 2),),
        flat_max_s=2.0,
        clip_min_s=0.1,
        notes="cardiac band: 30-240 bpm fundamental plus harmonics; removes baseline wander",
    ),
    "RESP": ChainSpec(
        filters=(FilterSpec("bandpass", (0.08, 1.0), 2),),
        flat_max_s=10.0,
        clip_min_s=0.5,
        notes="breathing 5-60 breaths/min; removes belt drift and cardiac/motion ripple",
    ),
    "SpO2": ChainSpec(
        clip=(0.0, 100.0),
        max_gap_s=3.0,
        notes="slow 1 Hz readings: no filtering, clipped to the physical 0-100 %",
    ),
    "ECG": ChainSpec(
        filters=(FilterSpec("bandpass", (0.5, 40.0), 2),),
        flat_max_s=1.0,
        clip_min_s=0.05,
        notes="diagnostic-ish band; needs a working rate above 84 Hz for the 40 Hz edge",
    ),
    "EMG": ChainSpec(
        filters=(FilterSpec("bandpass", (20.0, 450.0), 2),),
        flat_max_s=1.0,
        clip_min_s=0.05,
        notes="surface EMG; meaningful only with a working rate of ~1 kHz",
    ),
    "TEMP": ChainSpec(
        filters=(FilterSpec("lowpass", 0.1, 2),),
        notes="skin temperature changes over tens of seconds",
    ),
}


def chain_for(modality: str) -> ChainSpec:
    """The default chain of a modality (canonical or any spelling the registry accepts).

    A registered modality without an entry gets an empty chain (resampling, gap handling
    and range checks only) rather than an error, so adding a modality to the registry
    first is harmless.
    """
    name = get_modality(modality).name
    return CHAINS.get(name, ChainSpec())
