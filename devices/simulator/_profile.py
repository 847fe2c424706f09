"""Simulated subjects: each has its own resting physiology and its own reactivity to pain."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SubjectProfile:
    """Baseline physiology and pain responsiveness of one simulated subject.

    The ranges of :meth:`random` follow healthy adults at rest: HR 55-85 bpm, skin
    conductance level 1-12 µS, 11-18 breaths/min, SpO2 96-99 %. ``responsiveness`` scales
    every pain response (1 = typical; some people respond little, some strongly), which is
    what makes pain estimation subject-dependent in real data too.
    """

    heart_rate: float = 70.0
    """Resting heart rate, beats/min."""
    scl: float = 4.0
    """Resting skin conductance level, µS."""
    breathing_rate: float = 14.0
    """Resting breaths/min."""
    spo2: float = 97.5
    """Resting oxygen saturation, %."""
    responsiveness: float = 1.0
    """Gain of all pain responses (0 = none, 1 = typical, 2 = strong)."""
    noise: float = 1.0
    """Scale of sensor noise (1 = typical wrist device)."""
    artefact_rate: float = 0.5
    """Motion artefacts per minute."""
    ppg_amplitude: float = 1.0
    """Resting BVP pulse amplitude, a.u."""
    scr_rate: float = 2.0
    """Spontaneous skin-conductance responses per minute at rest."""
    systolic_width: float = 0.07
    """Width (fraction of a beat) of the systolic peak of the pulse wave."""
    diastolic_ratio: float = 0.4
    """Height of the diastolic (reflected) wave relative to the systolic peak."""
    diastolic_delay: float = 0.27
    """Delay (fraction of a beat) of the diastolic wave after the systolic peak."""
    breath_asymmetry: float = 0.18
    """Second-harmonic share of a breath (inhalation quicker than exhalation)."""
    breath_pause: float = 0.0
    """Share of each breath spent in an end-expiratory pause (0 = none)."""
    sigh_rate: float = 0.0
    """Sighs (one breath about twice as deep) per minute."""

    def __post_init__(self) -> None:
        checks = {
            "heart_rate": (30.0, 200.0), "scl": (0.05, 60.0), "breathing_rate": (4.0, 40.0),
            "spo2": (80.0, 100.0), "responsiveness": (0.0, 5.0), "noise": (0.0, 10.0),
            "artefact_rate": (0.0, 30.0), "ppg_amplitude": (1e-3, 1e3), "scr_rate": (0.0, 30.0),
            "systolic_width": (0.02, 0.2), "diastolic_ratio": (0.0, 1.0), "diastolic_delay": (0.1, 0.5),
            "breath_asymmetry": (0.0, 0.6), "breath_pause": (0.0, 0.5), "sigh_rate": (0.0, 6.0),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (lo <= value <= hi):
                raise ValueError(f"SubjectProfile.{name}={value!r} outside the plausible range [{lo}, {hi}]")

    @classmethod
    def random(cls, seed: int) -> SubjectProfile:
        """A plausible random subject, the same for the same seed."""
        rng = np.random.default_rng([seed, 0x5EED])
        return cls(
            heart_rate=float(np.round(rng.uniform(55, 85), 1)),
            scl=float(np.round(np.exp(rng.uniform(np.log(1.0), np.log(12.0))), 2)),
            breathing_rate=float(np.round(rng.uniform(11, 18), 1)),
            spo2=float(np.round(rng.uniform(96.0, 99.0), 1)),
            responsiveness=float(np.round(rng.uniform(0.6, 1.5), 2)),
            noise=float(np.round(rng.uniform(0.6, 1.4), 2)),
            artefact_rate=float(np.round(rng.uniform(0.2, 1.0), 2)),
            ppg_amplitude=float(np.round(rng.uniform(0.6, 1.6), 2)),
            scr_rate=float(np.round(rng.uniform(1.0, 3.0), 2)),
        )

    @classmethod
    def varied(cls, seed: int) -> SubjectProfile:
        """A subject from much wider ranges than :meth:`random` (training data that carries over).

        Resting HR 48-105 bpm, skin conductance 0.3-25 µS, 7-24 breaths/min, SpO2 94-99.5 %,
        responsiveness 0.3-1.8, noise 0.4-2.5, 0-4 motion artefacts/min, PPG amplitude
        0.3-3, 0.5-5 spontaneous SCRs/min, and random pulse-wave and breathing shapes
        (systolic width, diastolic wave height and delay, inhale/exhale asymmetry,
        end-expiratory pauses up to 35 % of a breath, up to 2 sighs/min).
        """
        rng = np.random.default_rng([seed, 0x7A41ED])

        def log_uniform(lo: float, hi: float) -> float:
            return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

        return cls(
            heart_rate=float(np.round(rng.uniform(48, 105), 1)),
            scl=float(np.round(log_uniform(0.3, 25.0), 2)),
            breathing_rate=float(np.round(rng.uniform(7, 24), 1)),
            spo2=float(np.round(rng.uniform(94.0, 99.5), 1)),
            responsiveness=float(np.round(rng.uniform(0.3, 1.8), 2)),
            noise=float(np.round(log_uniform(0.4, 2.5), 2)),
            artefact_rate=float(np.round(rng.uniform(0.0, 4.0), 2)),
            ppg_amplitude=float(np.round(log_uniform(0.3, 3.0), 2)),
            scr_rate=float(np.round(rng.uniform(0.5, 5.0), 2)),
            systolic_width=float(np.round(rng.uniform(0.05, 0.11), 3)),
            diastolic_ratio=float(np.round(rng.uniform(0.1, 0.7), 2)),
            diastolic_delay=float(np.round(rng.uniform(0.18, 0.38), 2)),
            breath_asymmetry=float(np.round(rng.uniform(0.0, 0.4), 2)),
            breath_pause=float(np.round(rng.uniform(0.0, 0.35) if rng.random() < 0.6 else 0.0, 2)),
            sigh_rate=float(np.round(rng.uniform(0.0, 2.0), 2)),
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
