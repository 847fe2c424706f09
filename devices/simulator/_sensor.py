"""The measuring device between a simulated body and its streams: gains, offsets, rates, noise, drift.

Why separate from the physiology: real wearables of one kind differ in calibration
(gain and offset), in how fast they sample, in the colour of their noise and in how much
their baseline wanders, independently of the person wearing them. A model trained on one
ideal device learns that device. :class:`SensorSettings` describes one device;
:meth:`SensorSettings.ideal` changes nothing (the live demo's default), and
:meth:`SensorSettings.random` draws a plausible device from a seed.

Values stay in each modality's canonical unit of :mod:`core.modalities` (EDA µS, SpO2 %,
BVP and RESP arbitrary units): the hub does not convert units, so a device reporting mS
would be a gain of 1000 on a mislabelled stream, which is a configuration error rather
than a device property. Calibration errors within the canonical unit (EDA gain
0.7-1.4, offset -0.3..+0.5 µS; SpO2 bias ±1.5 %) and arbitrary-unit scales (BVP gain
0.05-20 with a DC offset, possibly inverted; RESP gain 0.1-10 with an offset) are simulated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

RATE_CHOICES: dict[str, tuple[float, ...]] = {
    "EDA": (4.0, 8.0, 15.0, 32.0),
    "BVP": (25.0, 50.0, 64.0, 100.0, 128.0),
    "RESP": (10.0, 25.0, 32.0, 50.0, 100.0),
    "SpO2": (1.0,),
}
"""Device rates (Hz) :meth:`SensorSettings.random` draws from (wristbands, chest belts, oximeters)."""


def _per_modality(value: float) -> dict[str, float]:
    return {m: value for m in RATE_CHOICES}


@dataclass(frozen=True)
class SensorSettings:
    """One simulated device per modality: ``out = gain * (body + drift + coloured noise) + offset``.

    ``noise`` is extra sensor noise in units of each modality's typical signal scale (BVP
    pulse amplitude, RESP depth, 1 µS of EDA, 1 % SpO2), coloured by an AR(1) filter with
    time constant ``noise_tau_s`` (0 = white; 0.05-0.5 s pinkish, seconds = brownian-like);
    ``drift`` is the standard deviation of a slow baseline wander (AR(1), ``drift_tau_s``)
    in the same units. ``rates`` overrides the device rates (None = the caller's).
    """

    gain: dict[str, float] = field(default_factory=lambda: _per_modality(1.0))
    offset: dict[str, float] = field(default_factory=lambda: _per_modality(0.0))
    noise: dict[str, float] = field(default_factory=lambda: _per_modality(0.0))
    noise_tau_s: dict[str, float] = field(default_factory=lambda: _per_modality(0.0))
    drift: dict[str, float] = field(default_factory=lambda: _per_modality(0.0))
    drift_tau_s: float = 60.0
    rates: dict[str, float] | None = None

    @classmethod
    def ideal(cls) -> SensorSettings:
        """Unit gain, no offset, no extra noise or drift: the signals as the physiology makes them."""
        return cls()

    @property
    def is_ideal(self) -> bool:
        """True when applying these settings changes nothing."""
        return (all(v == 1.0 for v in self.gain.values()) and not any(self.offset.values())
                and not any(self.noise.values()) and not any(self.drift.values()))

    @classmethod
    def random(cls, seed: int) -> SensorSettings:
        """A plausible device from ``seed`` (see the module docstring for the ranges)."""
        rng = np.random.default_rng([seed, 0x5E1502])

        def log_uniform(lo: float, hi: float) -> float:
            return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

        def tau() -> float:
            return 0.0 if rng.random() < 0.3 else log_uniform(0.02, 5.0)

        bvp_sign = -1.0 if rng.random() < 0.15 else 1.0
        gain = {"EDA": log_uniform(0.7, 1.4), "BVP": bvp_sign * log_uniform(0.05, 20.0),
                "RESP": log_uniform(0.1, 10.0), "SpO2": 1.0}
        offset = {"EDA": float(rng.uniform(-0.3, 0.5)), "BVP": float(rng.uniform(-50, 50)),
                  "RESP": float(rng.uniform(-5, 5)), "SpO2": float(rng.uniform(-1.5, 1.5))}
        noise = {"EDA": log_uniform(0.002, 0.05), "BVP": log_uniform(0.005, 0.15),
                 "RESP": log_uniform(0.005, 0.15), "SpO2": log_uniform(0.05, 0.5)}
        drift = {"EDA": log_uniform(0.01, 0.5), "BVP": log_uniform(0.01, 1.0),
                 "RESP": log_uniform(0.01, 1.0), "SpO2": log_uniform(0.05, 0.5)}
        rates = {m: float(rng.choice(choices)) for m, choices in RATE_CHOICES.items()}
        return cls(gain=gain, offset=offset, noise=noise, noise_tau_s={m: tau() for m in RATE_CHOICES},
                   drift=drift, drift_tau_s=log_uniform(20.0, 150.0), rates=rates)

    def to_dict(self) -> dict:
        return asdict(self)


class SensorChannel:
    """Applies one modality's device settings block by block (noise and drift continue across blocks)."""

    def __init__(self, settings: SensorSettings, modality: str, fs: float, rng: np.random.Generator):
        self.gain = float(settings.gain.get(modality, 1.0))
        self.offset = float(settings.offset.get(modality, 0.0))
        self.noise = float(settings.noise.get(modality, 0.0))
        self.noise_tau = float(settings.noise_tau_s.get(modality, 0.0))
        self.drift = float(settings.drift.get(modality, 0.0))
        self.drift_tau = float(settings.drift_tau_s)
        self.fs = float(fs)
        self._rng = rng
        self._noise_state = float(rng.standard_normal())
        self._drift_state = float(rng.standard_normal())

    def apply(self, values: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """The device's reading of ``values``; ``scale`` is the modality's typical signal size."""
        from devices.simulator._physiology import _ar1

        n = values.size
        if n == 0:
            return values
        extra = np.zeros(n)
        if self.noise:
            white = self._rng.standard_normal(n)
            if self.noise_tau > 0:
                col = _ar1(white, self._noise_state, self.noise_tau, self.fs)
                self._noise_state = float(col[-1])
            else:
                col = white
            extra += self.noise * scale * col
        if self.drift:
            wander = _ar1(self._rng.standard_normal(n), self._drift_state, self.drift_tau, self.fs)
            self._drift_state = float(wander[-1])
            extra += self.drift * scale * wander
        return self.gain * (values + extra) + self.offset
