"""Offline simulation: a whole labelled recording of one subject at once (for training and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devices.simulator._physiology import BLOCK_S, SubjectGenerator
from devices.simulator._profile import SubjectProfile
from devices.simulator._schedule import PainSchedule
from devices.simulator._sensor import SensorSettings


@dataclass
class SimulatedRecording:
    """Signals of one simulated subject with their ground truth.

    ``signals[modality] = (values (n,) float32, fs)``; sample ``k`` is at ``t0 + k / fs``
    seconds. ``levels_per_second[s]`` is the true level during second ``[s, s + 1)``;
    ``markers`` are ``(t, "pain:<level>")`` at the start and at every change.
    """

    signals: dict[str, tuple[np.ndarray, float]]
    levels_per_second: list[str]
    markers: list[tuple[float, str]]
    duration_s: float
    profile: SubjectProfile
    schedule: PainSchedule
    subject: str = "sim-1"
    t0: float = 0.0
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def times(self, modality: str) -> np.ndarray:
        """Sample times (s) of one modality."""
        values, fs = self.signals[modality]
        return self.t0 + np.arange(values.size) / fs

    def level_codes(self, modality: str) -> np.ndarray:
        """True level code (0 no, 1 low, 2 high) of every sample of one modality."""
        return self.schedule.codes_at(self.times(modality) - self.t0)


def simulate(
    profile: SubjectProfile,
    schedule: PainSchedule,
    duration_s: float,
    seed: int = 0,
    rates: dict[str, float] | None = None,
    subject: str = "sim-1",
    *,
    sensor: SensorSettings | None = None,
) -> SimulatedRecording:
    """Simulate ``duration_s`` seconds of EDA, BVP, RESP and SpO2 for one subject.

    Deterministic for a given (profile, schedule, seed, rates): the values equal what
    :class:`devices.simulator.SimulatedWearable` streams for the same arguments.
    ``sensor`` describes the measuring device (default: ideal); its ``rates`` apply when
    ``rates`` is None.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be positive, got {duration_s!r}")
    gen = SubjectGenerator(profile, schedule, seed, rates, sensor=sensor)
    n_blocks = int(np.ceil(duration_s / BLOCK_S - 1e-9))
    parts: dict[str, list[np.ndarray]] = {m: [] for m in gen.rates}
    for _ in range(n_blocks):
        for m, (_, values) in gen.next_block().items():
            parts[m].append(values)
    signals = {}
    for m, fs in gen.rates.items():
        n = int(np.ceil(duration_s * fs - 1e-9))
        signals[m] = (np.concatenate(parts[m])[:n], fs)
    seconds = np.arange(int(np.ceil(duration_s - 1e-9))) + 0.5
    levels = [("no", "low", "high")[c] for c in schedule.codes_at(seconds)]
    markers = [(t, f"pain:{lvl}") for t, lvl in schedule.changes(0.0, duration_s)]
    return SimulatedRecording(signals=signals, levels_per_second=levels, markers=markers,
                              duration_s=float(duration_s), profile=profile, schedule=schedule,
                              subject=subject, seed=seed,
                              extra={"sensor": gen.sensor.to_dict()} if not gen.sensor.is_ideal else {})
