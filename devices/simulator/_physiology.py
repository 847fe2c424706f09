"""Block-wise generator of EDA, BVP, RESP and SpO2 for one simulated subject.

Why block-wise: the offline :func:`devices.simulator.simulate` and the real-time
:class:`devices.simulator.SimulatedWearable` must produce the same signals, so both call
:meth:`SubjectGenerator.next_block` on the same fixed blocks (``BLOCK_S`` = 5 s, aligned
to multiples of 5 s; large enough that per-block Python overhead stays small).
Within a block everything is vectorised numpy; state that must be continuous (pulse and
breathing phases, slow physiological variability, skin-conductance responses and motion
artefacts still in progress) is carried from block to block.

Physiology (pain drives the sympathetic nervous system):

* a pain *drive* follows the schedule (no 0, low 0.55, high 1, times the subject's
  responsiveness) through first-order lags (4 s for cardiorespiratory, 12 s for tonic EDA);
* heart rate rises (+16 bpm at full drive) with respiratory sinus arrhythmia and slow HRV;
  the BVP pulse is a systolic + diastolic wave whose amplitude falls with the drive
  (vasoconstriction, up to -35 %);
* breathing gets faster (+5 breaths/min) and more irregular in rate (sd 0.5 -> 3 breaths/min)
  and depth;
* skin conductance: the tonic level rises, and skin-conductance responses (bi-exponential,
  rise 0.75 s, decay ~3 s) come more often (+6/min) and larger;
* SpO2 barely moves (a wrist oximeter at 1 Hz with 0.1 % resolution);
* sensor noise everywhere and occasional motion artefacts (0.5-3 s bursts that hit all four
  sensors of the wrist at once: pulse-wave distortion, electrode contact change, false
  desaturation);
* the pulse-wave and breath shapes, end-expiratory pauses and sighs come from the
  :class:`SubjectProfile`; the measuring device (gain, offset, rate, coloured noise, drift)
  from an optional :class:`devices.simulator.SensorSettings`. Both draw from their own
  random streams, so a subject with the default shape and an ideal device produces exactly
  the signals it always did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.signal import lfilter

from devices.simulator._profile import SubjectProfile
from devices.simulator._schedule import PainSchedule
from devices.simulator._sensor import SensorChannel, SensorSettings

DEFAULT_RATES: dict[str, float] = {"EDA": 4.0, "BVP": 64.0, "RESP": 25.0, "SpO2": 1.0}
"""Realistic wrist/chest device rates (Hz) used unless a caller asks for others."""

UNITS: dict[str, str] = {"EDA": "µS", "BVP": "a.u.", "RESP": "a.u.", "SpO2": "%"}
CHANNEL_LABELS: dict[str, str] = {"EDA": "EDA", "BVP": "BVP", "RESP": "RESP", "SpO2": "SpO2"}

LEVEL_DRIVE = np.array([0.0, 0.55, 1.0])
"""Pain drive per level code (no, low, high) before the subject's responsiveness."""

CTRL_FS = 20.0
"""Rate (Hz) of the slow physiological variables; signals interpolate them."""
BLOCK_S = 5.0

_NEEDS = {"BVP": ("amp", "bvp_phase", "resp_phase"), "RESP": ("depth", "resp_phase"),
          "EDA": ("scl",), "SpO2": ("spo2",)}


def validate_rates(rates: dict[str, float] | None) -> dict[str, float]:
    """Defaults completed with ``rates``; unknown modalities or bad rates raise ValueError."""
    out = dict(DEFAULT_RATES)
    for name, fs in (rates or {}).items():
        if name not in DEFAULT_RATES:
            raise ValueError(f"the simulator makes {', '.join(DEFAULT_RATES)}; cannot simulate {name!r}")
        if not (0.1 <= float(fs) <= 2000.0):
            raise ValueError(f"rate for {name} must be within 0.1-2000 Hz, got {fs!r}")
        out[name] = float(fs)
    return out


def _ar1(white: np.ndarray, prev: float, tau_s: float, fs: float) -> np.ndarray:
    """Unit-variance AR(1) (Ornstein-Uhlenbeck) noise with time constant ``tau_s``, continuing from ``prev``."""
    a = np.exp(-1.0 / (tau_s * fs))
    return lfilter([np.sqrt(1 - a * a)], [1.0, -a], white, zi=[a * prev])[0]


def _lag(x: np.ndarray, prev: float, tau_s: float, fs: float) -> np.ndarray:
    """First-order low-pass (physiological response lag) continuing from ``prev``."""
    a = np.exp(-1.0 / (tau_s * fs))
    return lfilter([1 - a], [1.0, -a], x, zi=[a * prev])[0]


def _pulse_shape(phase: np.ndarray, width: float = 0.07, ratio: float = 0.4, delay: float = 0.27) -> np.ndarray:
    """One PPG beat per unit phase: systolic peak and a smaller diastolic (reflected) wave."""
    p = np.mod(phase, 1.0)
    return np.exp(-(((p - 0.18) / width) ** 2)) + ratio * np.exp(-(((p - 0.18 - delay) / 0.10) ** 2)) - 0.3


def _breath_shape(phase: np.ndarray, asymmetry: float = 0.18, pause: float = 0.0) -> np.ndarray:
    """Chest expansion per unit phase: quicker inhalation than exhalation, and an optional
    end-expiratory pause (the chest rests at its lowest point for ``pause`` of each breath)."""
    if pause > 0:
        p = np.mod(phase, 1.0)
        active = 1.0 - pause
        low = 0.75 * active  # the sine's trough: end of exhalation
        phase = np.where(p < low, p / active, np.where(p < low + pause, 0.75, (p - pause) / active))
    w = 2 * np.pi * phase
    return np.sin(w) + asymmetry * np.sin(2 * w + 0.6)


@dataclass
class _Events:
    """Discrete events still influencing the signal: onset, duration/decay and parameters."""

    onset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    length: np.ndarray = field(default_factory=lambda: np.zeros(0))
    amp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    extra: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))

    def add(self, onset, length, amp, extra) -> None:
        self.onset = np.concatenate([self.onset, onset])
        self.length = np.concatenate([self.length, length])
        self.amp = np.concatenate([self.amp, amp])
        self.extra = np.concatenate([self.extra, extra])

    def keep(self, mask: np.ndarray) -> None:
        self.onset, self.length, self.amp, self.extra = (
            self.onset[mask], self.length[mask], self.amp[mask], self.extra[mask])


class SubjectGenerator:
    """Produces one subject's signals block by block, deterministically from ``seed``."""

    _SLOW = ("hrv", "brv", "ampv", "depthv", "drift", "spo2v")
    _TAUS: ClassVar[dict[str, float]] = {
        "hrv": 6.0, "brv": 4.0, "ampv": 8.0, "depthv": 5.0, "drift": 60.0, "spo2v": 10.0,
    }

    def __init__(self, profile: SubjectProfile, schedule: PainSchedule, seed: int,
                 rates: dict[str, float] | None = None, *, sensor: SensorSettings | None = None):
        self.profile = profile
        self.schedule = schedule
        self.sensor = sensor or SensorSettings.ideal()
        self.rates = validate_rates(rates if rates is not None else self.sensor.rates)
        self._rng = np.random.default_rng(seed)
        # device noise and sighs draw from their own stream: the body's signals stay the same
        self._xrng = np.random.default_rng([seed, 0xC0105])
        self._channels = {m: SensorChannel(self.sensor, m, fs, self._xrng) for m, fs in self.rates.items()}
        self._sighs = np.zeros(0)
        self._block = 0
        self._counts = {m: 0 for m in self.rates}
        # state at the end of the previous block (= control point j = 0 of the next)
        r = self._rng
        self._state: dict[str, float] = {k: float(r.standard_normal()) for k in self._SLOW}
        drive0 = LEVEL_DRIVE[schedule.codes_at(np.array([0.0]))[0]] * profile.responsiveness
        self._state.update(
            fast=drive0, slow=drive0, drift_s=self._state["drift"],
            bvp_phase=float(r.random()), resp_phase=float(r.random()),
        )
        self._last = self._derive(self._state_arrays(self._state))  # control values at t = 0
        self._scr = _Events()
        self._art = _Events()

    @property
    def t_generated(self) -> float:
        """Seconds of signal generated so far."""
        return self._block * BLOCK_S

    # --- slow variables on the control grid -------------------------------------------
    @staticmethod
    def _state_arrays(state: dict[str, float]) -> dict[str, np.ndarray]:
        return {k: np.array([v]) for k, v in state.items()}

    def _derive(self, s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Physiological variables from drives and noises (all on the same grid)."""
        p = self.profile
        df, ds = s["fast"], s["slow"]
        rsa = 0.04 * p.heart_rate * np.sin(2 * np.pi * s["resp_phase"])
        return {
            "fast": df,
            "slow": ds,
            "hr": p.heart_rate + 16.0 * df + 2.5 * s["hrv"] + rsa,
            "br": np.maximum(4.0, p.breathing_rate + 5.0 * df + (0.5 + 2.5 * df) * s["brv"]),
            "amp": p.ppg_amplitude * np.clip(1 - 0.35 * df, 0.2, None) * (1 + 0.06 * s["ampv"]),
            "depth": np.clip((1 - 0.12 * df) * (1 + (0.08 + 0.22 * df) * s["depthv"]), 0.1, None),
            "scl": np.maximum(0.05, p.scl * (1 + 0.05 * s["drift_s"]) + (0.6 + 0.2 * p.scl) * ds),
            "spo2": np.minimum(100.0, p.spo2 + 0.4 * s["spo2v"] - 0.2 * df),
            "bvp_phase": s["bvp_phase"],
            "resp_phase": s["resp_phase"],
        }

    def _control_block(self, t0: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Control-grid times (including the carried point at ``t0``) and variables."""
        n = round(BLOCK_S * CTRL_FS)
        t = t0 + np.arange(1, n + 1) / CTRL_FS
        p, st, r = self.profile, self._state, self._rng
        u = LEVEL_DRIVE[self.schedule.codes_at(t)] * p.responsiveness
        s: dict[str, np.ndarray] = {
            "fast": _lag(u, st["fast"], 4.0, CTRL_FS),
            "slow": _lag(u, st["slow"], 12.0, CTRL_FS),
        }
        for k in self._SLOW:
            s[k] = _ar1(r.standard_normal(n), st[k], self._TAUS[k], CTRL_FS)
        s["drift_s"] = _lag(s["drift"], st["drift_s"], 8.0, CTRL_FS)  # tonic level drifts smoothly
        # breathing first (heart rate depends on it through RSA), then the pulse phase
        s["resp_phase"] = np.zeros(n)
        s["bvp_phase"] = np.zeros(n)
        br = self._derive(s)["br"]
        s["resp_phase"] = st["resp_phase"] + np.cumsum(br) / 60.0 / CTRL_FS
        hr = self._derive(s)["hr"]
        s["bvp_phase"] = st["bvp_phase"] + np.cumsum(hr) / 60.0 / CTRL_FS
        for k in s:
            st[k] = float(s[k][-1])
        new = self._derive(s)
        values = {k: np.concatenate([self._last[k], new[k]]) for k in new}
        # phases restart near 0 each block (whole cycles dropped) to keep float precision
        for k in ("resp_phase", "bvp_phase"):
            st[k] -= np.floor(st[k])
        self._last = {k: v[-1:] for k, v in new.items()}
        self._last["resp_phase"] = np.array([st["resp_phase"]])
        self._last["bvp_phase"] = np.array([st["bvp_phase"]])
        return np.concatenate([[t0], t]), values

    # --- discrete events ------------------------------------------------------------
    def _spawn_events(self, t0: float, ct: np.ndarray, cv: dict[str, np.ndarray]) -> None:
        p, r = self.profile, self._rng
        df = cv["fast"][1:]
        # skin-conductance responses: Poisson, more frequent and larger with the drive
        rate = (p.scr_rate + 6.0 * df) / 60.0 / CTRL_FS
        hit = r.random(df.size) < rate
        k = int(hit.sum())
        onset = ct[1:][hit] - r.random(k) / CTRL_FS
        amp = (0.04 + 0.25 * df[hit]) * np.sqrt(p.scl) * r.lognormal(0.0, 0.35, k)
        decay = r.uniform(2.0, 4.0, k)
        self._scr.add(onset, decay, amp, np.zeros((k, 6)))
        # motion artefacts: Poisson per block, each with its own oscillation
        k = int(r.poisson(p.artefact_rate / 60.0 * BLOCK_S))
        self._art.add(t0 + r.random(k) * BLOCK_S, r.uniform(0.5, 3.0, k), r.lognormal(0.0, 0.5, k),
                      np.column_stack([r.uniform(0.5, 4.0, (k, 3)), r.uniform(0, 2 * np.pi, (k, 3))]))
        if p.sigh_rate > 0:
            k = int(self._xrng.poisson(p.sigh_rate / 60.0 * BLOCK_S))
            self._sighs = np.concatenate([self._sighs, t0 + self._xrng.random(k) * BLOCK_S])

    def _sigh_gain(self, t: np.ndarray) -> np.ndarray:
        """Breath-depth multiplier of the sighs around ``t`` (about twice as deep for one breath)."""
        if self._sighs.size == 0:
            return np.ones_like(t)
        return 1.0 + (np.exp(-(((t[None, :] - self._sighs[:, None]) / 1.5) ** 2))).sum(axis=0)

    def _scr_at(self, t: np.ndarray) -> np.ndarray:
        """Sum of skin-conductance responses (bi-exponential, peak = amplitude)."""
        e = self._scr
        if e.onset.size == 0:
            return np.zeros_like(t)
        dt = t[None, :] - e.onset[:, None]
        tau_r, tau_d = 0.75, e.length[:, None]
        tp = tau_d * tau_r / (tau_d - tau_r) * np.log(tau_d / tau_r)
        peak = np.exp(-tp / tau_d) - np.exp(-tp / tau_r)
        shape = np.where(dt > 0, (np.exp(-dt / tau_d) - np.exp(-dt / tau_r)) / peak, 0.0)
        return (e.amp[:, None] * shape).sum(axis=0)

    def _artefacts_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(envelope, oscillation) of the motion artefacts at times ``t``; zero outside them."""
        e = self._art
        env = np.zeros_like(t)
        osc = np.zeros_like(t)
        for onset, dur, amp, ex in zip(e.onset, e.length, e.amp, e.extra, strict=True):
            inside = (t >= onset) & (t < onset + dur)
            if not inside.any():
                continue
            x = t[inside] - onset
            w = amp * np.sin(np.pi * x / dur) ** 2
            env[inside] += w
            osc[inside] += w * np.sin(2 * np.pi * ex[:3, None] * x + ex[3:, None]).sum(axis=0) / 1.7
        return env, osc

    # --- signals --------------------------------------------------------------------
    def next_block(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The next block of every modality: ``{modality: (times_s, values float32)}``."""
        t0 = self._block * BLOCK_S
        t1 = t0 + BLOCK_S
        ct, cv = self._control_block(t0)
        self._spawn_events(t0, ct, cv)
        p, r = self.profile, self._rng
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for m, fs in self.rates.items():
            k0 = self._counts[m]
            k1 = int(np.ceil(t1 * fs - 1e-9))
            t = np.arange(k0, k1) / fs
            self._counts[m] = k1
            at = {name: np.interp(t, ct, cv[name]) for name in _NEEDS[m]}
            env, osc = self._artefacts_at(t)
            noise = r.standard_normal(t.size) * p.noise
            dev = self._channels[m]
            if m == "BVP":
                pulse = _pulse_shape(at["bvp_phase"], p.systolic_width, p.diastolic_ratio, p.diastolic_delay)
                v = at["amp"] * (pulse + 0.08 * np.sin(2 * np.pi * at["resp_phase"]))
                v += 0.02 * p.ppg_amplitude * noise + 1.2 * p.ppg_amplitude * osc
                v = dev.apply(v, p.ppg_amplitude)
            elif m == "RESP":
                depth = at["depth"] * self._sigh_gain(t) if p.sigh_rate > 0 else at["depth"]
                v = depth * _breath_shape(at["resp_phase"], p.breath_asymmetry, p.breath_pause)
                v = dev.apply(v + 0.03 * noise + 0.8 * osc)
            elif m == "EDA":
                v = at["scl"] + self._scr_at(t) + 0.004 * noise + p.scl * (0.02 * osc - 0.1 * env)
                v = np.maximum(dev.apply(v), 0.01)
            else:  # SpO2: 0.1 % resolution, false desaturation under motion
                v = np.round(np.minimum(100.0, dev.apply(at["spo2"] + 0.15 * noise - 3.0 * env)), 1)
            out[m] = (t, v.astype(np.float32))
        self._block += 1
        self._scr.keep(self._scr.onset > t1 - 40.0)
        self._art.keep(self._art.onset + self._art.length > t1)
        self._sighs = self._sighs[self._sighs > t1 - 10.0]
        return out
