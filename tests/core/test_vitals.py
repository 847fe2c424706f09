"""Derived vitals on synthetic signals with known rates (and the ways they must refuse)."""

import math

import numpy as np
import pytest

from core.vitals import (
    breathing_rate,
    heart_rate,
    skin_conductance_level,
    spo2,
    vital_for,
)


def _pulse(bpm: float, seconds: float, fs: float, noise: float = 0.0, seed: int = 0):
    """A PPG-like wave: sharp systolic peak plus dicrotic bump, with jittered timestamps."""
    rng = np.random.default_rng(seed)
    t = 1000.0 + np.arange(int(seconds * fs)) / fs
    phase = 2 * np.pi * bpm / 60.0 * t
    x = np.sin(phase) + 0.35 * np.sin(2 * phase + 0.8) + noise * rng.standard_normal(t.size)
    return x.astype(np.float32), t + rng.uniform(-0.002, 0.002, t.size)


@pytest.mark.parametrize(("bpm", "fs"), [(48, 64.0), (72, 64.0), (130, 128.0)])
def test_heart_rate_recovers_known_rate(bpm, fs):
    x, t = _pulse(bpm, 12, fs, noise=0.05)
    v = heart_rate(x, t)
    assert v.reliable, v.reason
    assert v.value == pytest.approx(bpm, abs=2.0)
    assert v.text().startswith("HR ") and v.text().endswith("bpm")


def test_heart_rate_accepts_two_dimensional_buffer_rows():
    x, t = _pulse(90, 12, 64.0)
    assert heart_rate(x[:, None], t).value == pytest.approx(90, abs=2.0)


def test_heart_rate_refuses_noise_gaps_and_short_history():
    rng = np.random.default_rng(1)
    t = np.arange(640) / 64.0
    assert not heart_rate(rng.standard_normal(640), t).reliable  # pure noise: erratic "beats"
    x, t = _pulse(72, 12, 64.0)
    gap = np.r_[t[:300], t[400:]]
    v = heart_rate(np.r_[x[:300], x[400:]], gap)
    assert not v.reliable and v.reason == "gap in signal"
    v = heart_rate(x[:200], t[:200])  # ~3 s
    assert not v.reliable and math.isnan(v.value) and v.text() == "HR --"
    assert heart_rate(np.zeros(640), np.arange(640) / 64.0).reason == "flat signal"


def test_heart_rate_is_stale_when_stream_stopped():
    x, t = _pulse(72, 12, 64.0)
    assert heart_rate(x, t, now=t[-1] + 1).reliable
    v = heart_rate(x, t, now=t[-1] + 30)
    assert not v.reliable and v.reason == "stale signal"


def test_heart_rate_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="timestamps"):
        heart_rate(np.zeros(10), np.zeros(9))


@pytest.mark.parametrize("brpm", [8, 15, 24])
def test_breathing_rate_recovers_known_rate(brpm):
    fs = 25.0
    t = 50.0 + np.arange(int(32 * fs)) / fs
    rng = np.random.default_rng(2)
    x = np.sin(2 * np.pi * brpm / 60 * t) + 0.05 * rng.standard_normal(t.size)
    v = breathing_rate(x, t)
    assert v.reliable, v.reason
    assert v.value == pytest.approx(brpm, abs=1.0)


def test_breathing_rate_needs_history():
    t = np.arange(int(8 * 25)) / 25.0
    v = breathing_rate(np.sin(2 * np.pi * 0.25 * t), t)
    assert not v.reliable and v.reason == "not enough history"


def test_skin_conductance_level_is_tonic_median():
    fs = 4.0
    t = np.arange(int(12 * fs)) / fs
    x = np.full(t.size, 3.0)
    x[20:24] += 2.0  # a phasic response must not move the tonic level
    v = skin_conductance_level(x, t)
    assert v.reliable and v.value == pytest.approx(3.0)
    assert v.text() == "SCL 3.0 µS"
    off = skin_conductance_level(np.full(t.size, 0.001), t)
    assert not off.reliable and "range" in off.reason


def test_spo2_last_plausible_reading_and_staleness():
    t = np.arange(10.0)
    x = np.array([97, 97, 96, 96, 98, 97, 97, 96, 97, 20.0])  # last one is an artefact
    v = spo2(x, t)
    assert v.reliable and v.value == 97
    assert not spo2(x, t, now=t[-1] + 20).reliable
    assert spo2(np.array([20.0, 30.0]), np.array([0.0, 1.0])).reason == "implausible reading"
    assert spo2(np.array([]), np.array([])).reason == "no reading"


def test_vital_for_maps_modalities():
    x, t = _pulse(60, 12, 64.0)
    assert vital_for("BVP", x, t).name == "HR"
    assert vital_for("SpO2", np.array([95.0]), np.array([1.0])).name == "SpO2"
    assert vital_for("ECG", x, t) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vitals_match_simulated_subject(seed):
    """On the simulator's realistic signals (dicrotic notch, noise) the derived rates match
    the subject's resting physiology. Motion artefacts are switched off here: a window
    with one is rightly reported unreliable (next test)."""
    import dataclasses

    from devices.simulator import PainSchedule, SubjectProfile, simulate

    profile = dataclasses.replace(SubjectProfile.random(seed), artefact_rate=0.0)
    rec = simulate(profile, PainSchedule.parse("no:40"), 40, seed=seed)
    x, fs = rec.signals["BVP"]
    t = np.arange(len(x)) / fs
    hr = heart_rate(x, t)
    assert hr.reliable, hr.reason
    assert hr.value == pytest.approx(profile.heart_rate, rel=0.08)
    x, fs = rec.signals["RESP"]
    br = breathing_rate(x, np.arange(len(x)) / fs)
    assert br.reliable, br.reason
    assert br.value == pytest.approx(profile.breathing_rate, rel=0.12)
    x, fs = rec.signals["EDA"]
    scl = skin_conductance_level(x, np.arange(len(x)) / fs)
    assert scl.reliable and scl.value == pytest.approx(profile.scl, rel=0.5)


def test_heart_rate_flags_windows_with_motion_artefacts():
    """With artefacts on, every window either reports the true rate or says it is unreliable."""
    from devices.simulator import PainSchedule, SubjectProfile, simulate

    profile = SubjectProfile.random(1)
    rec = simulate(profile, PainSchedule.parse("no:60"), 60, seed=1)
    x, fs = rec.signals["BVP"]
    t = np.arange(len(x)) / fs
    verdicts = [heart_rate(x[t < end], t[t < end]) for end in range(12, 61, 2)]
    reliable = [v for v in verdicts if v.reliable]
    assert len(reliable) >= len(verdicts) // 2
    assert all(v.value == pytest.approx(profile.heart_rate, rel=0.08) for v in reliable)
