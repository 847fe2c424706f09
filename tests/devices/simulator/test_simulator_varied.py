"""The varied simulator: wide subjects and random measuring devices, seeded, defaults untouched."""

from __future__ import annotations

import numpy as np

from devices.simulator import PainSchedule, SensorSettings, SubjectProfile, simulate
from devices.simulator._sensor import RATE_CHOICES
from training.sim_data import first_rest_s, simulate_subject

SCHED = PainSchedule.parse("no:30,high:20,no:10")


def test_an_ideal_device_changes_nothing():
    plain = simulate(SubjectProfile(), SCHED, 60, seed=3)
    ideal = simulate(SubjectProfile(), SCHED, 60, seed=3, sensor=SensorSettings.ideal())
    for m in plain.signals:
        np.testing.assert_array_equal(plain.signals[m][0], ideal.signals[m][0])
    assert SensorSettings.ideal().is_ideal and not SensorSettings.random(1).is_ideal


def test_devices_and_subjects_are_seeded_and_varied():
    assert SensorSettings.random(7) == SensorSettings.random(7)
    assert SubjectProfile.varied(7) == SubjectProfile.varied(7)
    devices = [SensorSettings.random(s) for s in range(60)]
    for m, choices in RATE_CHOICES.items():
        seen = {d.rates[m] for d in devices}
        assert seen <= set(choices) and (len(seen) > 1 or len(choices) == 1)
    gains = np.array([d.gain["BVP"] for d in devices])
    assert (gains < 0).any() and np.abs(gains).max() / np.abs(gains).min() > 20  # inverted and wide-ranging
    assert {d.noise_tau_s["RESP"] > 0 for d in devices} == {True, False}  # white and coloured noise
    hr = [SubjectProfile.varied(s).heart_rate for s in range(60)]
    assert min(hr) < 60 and max(hr) > 90


def test_a_device_applies_its_gain_offset_rate_and_drift():
    dev = SensorSettings(gain={"EDA": 1.0, "BVP": -5.0, "RESP": 1.0, "SpO2": 1.0},
                         offset={"EDA": 0.0, "BVP": 100.0, "RESP": 0.0, "SpO2": 0.0},
                         drift={"EDA": 0.3, "BVP": 0.0, "RESP": 0.0, "SpO2": 0.0})
    base = simulate(SubjectProfile(), SCHED, 60, seed=4)
    rec = simulate(SubjectProfile(), SCHED, 60, seed=4, sensor=dev)
    bvp = rec.signals["BVP"][0]
    assert abs(float(bvp.mean()) - 100.0) < 5 and bvp.std() > 3 * base.signals["BVP"][0].std()
    # the same body through an inverting device with gain 5
    np.testing.assert_allclose(bvp, 100.0 - 5.0 * base.signals["BVP"][0], rtol=1e-5, atol=1e-3)
    eda = rec.signals["EDA"][0] - base.signals["EDA"][0]
    assert 0.02 < eda.std() and np.abs(np.diff(eda)).max() < 0.1  # a slow wander, not noise
    assert rec.extra["sensor"]["gain"]["BVP"] == -5.0
    fast = simulate(SubjectProfile(), SCHED, 60, seed=4,
                    sensor=SensorSettings(rates={"EDA": 32.0, "BVP": 128.0, "RESP": 10.0, "SpO2": 1.0}))
    assert fast.signals["BVP"][1] == 128.0
    assert fast.signals["EDA"][0].size == 60 * 32 and fast.signals["RESP"][0].size == 600


def test_breathing_pauses_and_sighs_shape_the_respiration():
    calm = SubjectProfile(artefact_rate=0.0)
    paused = SubjectProfile(artefact_rate=0.0, breath_pause=0.35, sigh_rate=3.0)
    a = simulate(calm, SCHED, 60, seed=5).signals["RESP"][0]
    b = simulate(paused, SCHED, 60, seed=5).signals["RESP"][0]
    assert np.abs(b).max() > 1.5 * np.abs(a).max()  # sighs: deeper breaths
    lo = np.percentile(b, 5)
    assert np.mean(b < lo + 0.1 * (b.max() - lo)) > np.mean(a < np.percentile(a, 5) + 0.1 * (a.max() - a.min()))


def test_varied_training_subjects_start_with_a_long_rest():
    rec = simulate_subject(3, 150.0, seed=0, variant="varied")
    from training.sim_data import subject_seed

    rest = first_rest_s(subject_seed(0, 3))
    assert 70 <= rest <= 100 and rec.levels.times[1] == rest and rec.levels.levels[0] == 0
    assert rec.id.startswith("sim-varied:")
