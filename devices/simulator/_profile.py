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

    def __post_init__(self) -> None:
        checks = {
            "heart_rate": (30.0, 200.0), "scl": (0.05, 60.0), "breathing_rate": (4.0, 40.0),
            "spo2": (80.0, 100.0), "responsiveness": (0.0, 5.0), "noise": (0.0, 10.0),
            "artefact_rate": (0.0, 30.0), "ppg_amplitude": (1e-3, 1e3), "scr_rate": (0.0, 30.0),
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

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
