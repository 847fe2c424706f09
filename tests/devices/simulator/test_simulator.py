"""Simulated wearable: schedules, profiles, physiology of the pain responses, determinism,
streaming == offline, dataset layout, and the in-process source."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
from scipy.signal import find_peaks

from core.buffers import BufferHub
from core.streams import MARKERS
from devices.simulator import (
    DEFAULT_RATES,
    PainSchedule,
    ScheduleError,
    SimulatedWearable,
    SimulatorSource,
    SubjectProfile,
    simulate,
    write_dataset,
)

# --- schedules ---------------------------------------------------------------------------


def test_schedule_parse_levels_and_cycle():
    s = PainSchedule.parse("no:30, low:20,HIGH:20,baseline:30")
    assert s.duration_s == 100
    assert [s.level_at(t) for t in (0, 29.9, 30, 49.9, 50, 69.9, 70, 99.9)] == [
        "no", "no", "low", "low", "high", "high", "no", "no"]
    assert s.level_at(130) == "low"  # repeats after its end
    assert PainSchedule.parse(s.to_text()) == s
    np.testing.assert_array_equal(s.codes_at(np.array([10.0, 35.0, 55.0])), [0, 1, 2])


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty schedule"),
    ("no:30,medium:10", "unknown pain level 'medium'"),
    ("no:30,low", "not LEVEL:SECONDS"),
    ("no:abc", "'abc' is not a number"),
    ("no:0", "must be positive"),
])
def test_schedule_parse_errors_are_specific(text, message):
    with pytest.raises(ScheduleError, match=message):
        PainSchedule.parse(text)


def test_schedule_changes_mark_start_and_each_change_only():
    s = PainSchedule.parse("no:10,no:5,high:5,no:10")  # two 'no' episodes in a row: one change
    assert s.changes(0, 30) == [(0.0, "no"), (15.0, "high"), (20.0, "no")]
    assert s.changes(15, 20) == [(15.0, "high")]
    assert s.changes(25, 50) == [(45.0, "high")]  # second cycle: 'no' continues across the wrap


def test_scripted_demo_rises_and_falls_early():
    s = PainSchedule.scripted_demo()
    levels = [s.level_at(t) for t in range(0, 120)]
    assert set(levels[:40]) == {"no"}
    assert "low" in levels[40:90] and "high" in levels and levels.index("high") < 120
    assert "no" in levels[levels.index("low"):]


def test_random_schedule_is_seeded_and_alternates_rest_and_pain():
    a, b, c = PainSchedule.random(300, 4), PainSchedule.random(300, 4), PainSchedule.random(300, 5)
    assert a == b and a != c
    assert a.duration_s == pytest.approx(300)
    levels = [e.level for e in a.episodes]
    assert levels[0] == "no" and all(lvl != "no" for lvl in levels[1::2]) and set(levels[::2]) == {"no"}


# --- profiles ----------------------------------------------------------------------------


def test_profile_random_is_seeded_and_plausible():
    assert SubjectProfile.random(3) == SubjectProfile.random(3)
    profiles = [SubjectProfile.random(i) for i in range(20)]
    assert len({p.heart_rate for p in profiles}) > 10
    assert all(50 <= p.heart_rate <= 90 and 95 <= p.spo2 <= 100 and 9 <= p.breathing_rate <= 20 for p in profiles)


def test_profile_rejects_implausible_values():
    with pytest.raises(ValueError, match="heart_rate=400"):
        SubjectProfile(heart_rate=400)


# --- physiology --------------------------------------------------------------------------

NO, HIGH = slice(30, 120), slice(150, 240)  # steady parts of "no:120,high:120"


@pytest.fixture(scope="module")
def pain_recordings():
    """Three typical subjects, 2 min without pain then 2 min of high pain."""
    sched = PainSchedule.parse("no:120,high:120")
    return [simulate(SubjectProfile(heart_rate=hr, scl=scl, breathing_rate=br), sched, 240, seed=seed)
            for seed, (hr, scl, br) in enumerate([(62, 3.0, 13), (70, 5.0, 15), (78, 8.0, 17)])]


def _part(rec, modality, sl):
    values, fs = rec.signals[modality]
    return values[int(sl.start * fs): int(sl.stop * fs)], fs


def _rate_per_min(x, fs, min_period_s, prominence):
    peaks, _ = find_peaks(x, distance=max(1, int(min_period_s * fs)), prominence=prominence)
    return len(peaks) / (len(x) / fs) * 60, peaks


def test_heart_rate_rises_and_pulse_amplitude_falls_with_pain(pain_recordings):
    for rec in pain_recordings:
        amp = rec.profile.ppg_amplitude
        (x_no, fs), (x_hi, _) = _part(rec, "BVP", NO), _part(rec, "BVP", HIGH)
        hr_no, _ = _rate_per_min(x_no, fs, 0.33, 0.3 * amp)
        hr_hi, _ = _rate_per_min(x_hi, fs, 0.33, 0.3 * amp)
        assert abs(hr_no - rec.profile.heart_rate) < 6, (hr_no, rec.profile)
        assert hr_hi > hr_no + 8
        p2p = lambda x: np.percentile(x, 95) - np.percentile(x, 5)  # noqa: E731
        assert p2p(x_hi) < 0.85 * p2p(x_no)  # vasoconstriction


def test_breathing_gets_faster_and_more_irregular(pain_recordings):
    irregular_no, irregular_hi = [], []
    for rec in pain_recordings:
        (x_no, fs), (x_hi, _) = _part(rec, "RESP", NO), _part(rec, "RESP", HIGH)
        br_no, pk_no = _rate_per_min(x_no, fs, 1.5, 0.5)
        br_hi, pk_hi = _rate_per_min(x_hi, fs, 1.5, 0.5)
        assert abs(br_no - rec.profile.breathing_rate) < 2.5
        assert br_hi > br_no + 2.5
        for pk, out in ((pk_no, irregular_no), (pk_hi, irregular_hi)):
            q1, q3 = np.percentile(np.diff(pk), [25, 75])
            out.append((q3 - q1) / np.median(np.diff(pk)))  # robust to an artefact's extra peak
    assert np.mean(irregular_hi) > 1.3 * np.mean(irregular_no)


def test_skin_conductance_responses_more_frequent_and_larger(pain_recordings):
    for rec in pain_recordings:
        (x_no, _fs), (x_hi, _) = _part(rec, "EDA", NO), _part(rec, "EDA", HIGH)
        pk_no, pr_no = find_peaks(x_no, prominence=0.03)
        pk_hi, pr_hi = find_peaks(x_hi, prominence=0.03)
        assert len(pk_hi) > len(pk_no)
        assert np.median(pr_hi["prominences"]) > 2 * np.median(pr_no["prominences"])
        assert x_hi.mean() > x_no.mean() + 0.5  # tonic level up


def test_spo2_stays_plausible_and_signals_are_finite(pain_recordings):
    for rec in pain_recordings:
        spo2, fs = rec.signals["SpO2"]
        assert fs == 1.0 and spo2.max() <= 100.0 and np.median(spo2) == pytest.approx(rec.profile.spo2, abs=1.0)
        for values, _ in rec.signals.values():
            assert values.dtype == np.float32 and np.isfinite(values).all()


def test_motion_artefacts_disturb_the_signals():
    sched = PainSchedule.parse("no:120")
    calm = simulate(SubjectProfile(artefact_rate=0.0), sched, 120, seed=1)
    moving = simulate(SubjectProfile(artefact_rate=10.0), sched, 120, seed=1)
    assert moving.signals["SpO2"][0].min() < calm.signals["SpO2"][0].min() - 1.0  # false desaturations
    assert np.abs(moving.signals["BVP"][0]).max() > 1.5 * np.abs(calm.signals["BVP"][0]).max()


# --- recordings, determinism, rates ------------------------------------------------------


def test_simulate_record_shapes_labels_and_markers():
    rec = simulate(SubjectProfile.random(2), PainSchedule.parse("no:5,low:3,high:2.5"), 12.5, seed=7)
    for m, fs in DEFAULT_RATES.items():
        values, got_fs = rec.signals[m]
        assert got_fs == fs and values.shape == (int(np.ceil(12.5 * fs)),)
    assert rec.t0 == 0
    assert rec.levels_per_second == ["no"] * 5 + ["low"] * 3 + ["high"] * 2 + ["no"] * 3
    assert rec.markers == [(0.0, "pain:no"), (5.0, "pain:low"), (8.0, "pain:high"), (10.5, "pain:no")]
    np.testing.assert_allclose(rec.times("BVP")[:3], [0, 1 / 64, 2 / 64])


def test_simulate_is_deterministic_per_seed_and_rates_configurable():
    prof, sched = SubjectProfile.random(1), PainSchedule.parse("no:5,high:5")
    a = simulate(prof, sched, 10, seed=3, rates={"EDA": 32})
    b = simulate(prof, sched, 10, seed=3, rates={"EDA": 32})
    c = simulate(prof, sched, 10, seed=4, rates={"EDA": 32})
    assert a.signals["EDA"][1] == 32 and a.signals["EDA"][0].size == 320
    for m in a.signals:
        np.testing.assert_array_equal(a.signals[m][0], b.signals[m][0])
    assert not np.array_equal(a.signals["BVP"][0], c.signals["BVP"][0])
    with pytest.raises(ValueError, match="cannot simulate 'ECG'"):
        simulate(prof, sched, 10, rates={"ECG": 250})
    with pytest.raises(ValueError, match="duration_s must be positive"):
        simulate(prof, sched, 0)


def test_streaming_chunks_equal_offline_simulation():
    sched = PainSchedule.parse("no:3,high:4,low:3")
    w = SimulatedWearable(2, seed=9, schedule=sched)
    rng = np.random.default_rng(0)
    chunks, t = [], 0.0
    while t < 10:
        t = min(10.0, t + rng.uniform(0.005, 0.4))  # irregular wake-ups, as a real thread
        chunks += w.advance(t)
    assert w.advance(t) == []  # time did not move: nothing new
    for subject in w.subjects:
        offline = simulate(w.profile(subject), sched, 10, seed=w.subject_seed(subject))
        for m, (values, fs) in offline.signals.items():
            mine = [c for c in chunks if c.subject == subject and c.modality == m]
            times = np.concatenate([c.times for c in mine])
            np.testing.assert_allclose(np.diff(times), 1 / fs)  # continuous, no repeats
            np.testing.assert_array_equal(np.concatenate([c.values for c in mine]), values)
        markers = [(float(t_), lab) for c in chunks if c.subject == subject and c.modality == MARKERS
                   for t_, lab in zip(c.times, c.labels, strict=True)]
        assert markers == offline.markers
    p1, p2 = w.profile("sim-1"), w.profile("sim-2")
    assert p1 != p2  # each subject has its own baseline


def test_subjects_are_stable_across_subject_counts():
    one, three = SimulatedWearable(1, seed=2), SimulatedWearable(3, seed=2)
    assert three.subjects == ["sim-1", "sim-2", "sim-3"]
    assert one.profile("sim-1") == three.profile("sim-1")
    a, b = one.advance(2.0), three.advance(2.0)
    np.testing.assert_array_equal(a[1].values, b[1].values)


def test_ten_minute_subject_is_generated():
    """Correctness of a long run (speed is measured in the benchmark, not asserted here)."""
    rec = simulate(SubjectProfile.random(5), PainSchedule.random(600, 5), 600, seed=5)
    assert rec.signals["BVP"][0].size == 600 * 64 and len(rec.levels_per_second) == 600
    assert {"no", "low", "high"} >= set(rec.levels_per_second) and len(set(rec.levels_per_second)) >= 2


# --- dataset -----------------------------------------------------------------------------


def test_write_dataset_ai4pain_layout(tmp_path):
    recs = write_dataset(tmp_path, n_subjects=2, duration_s=60, seed=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Bvp", "Eda", "Resp", "SpO2", "dataset.json"]
    meta = json.loads((tmp_path / "dataset.json").read_text())
    assert meta["fs"] == 100 and [s["subject"] for s in meta["subjects"]] == ["sim-1", "sim-2"]
    for rec in recs:
        episodes = rec.schedule.episodes
        for folder, modality in (("Bvp", "BVP"), ("Eda", "EDA"), ("Resp", "RESP"), ("SpO2", "SpO2")):
            with open(tmp_path / folder / f"{rec.subject}.csv", newline="") as fh:
                rows = list(csv.reader(fh))
            header = rows[0]
            assert header == [{"no": "baseline"}.get(e.level, e.level) for e in episodes]
            longest = max(e.duration_s for e in episodes)
            assert len(rows) - 1 == int(round(longest * 100))
            values, fs = rec.signals[modality]
            assert fs == 100
            for j, e in enumerate(episodes):
                col = [r[j] for r in rows[1:]]
                n = int(round(e.duration_s * 100))
                assert all(v == "" for v in col[n:])  # padded with empty cells
                got = np.array(col[:n], dtype=float)
                np.testing.assert_allclose(
                    got, values[int(e.start_s * 100) : int(e.start_s * 100) + n], rtol=1e-5, atol=1e-5
                )


def test_write_dataset_readable_by_training_loader(tmp_path):
    """The training side's AI4PAIN reader (engineer F) loads what the simulator writes."""
    from devices.simulator._dataset import segments
    from training.ai4pain import load_ai4pain

    recs = write_dataset(tmp_path, n_subjects=2, duration_s=60, seed=1, segment_s=10)
    expected = [(rec.subject, seg) for rec in recs for seg in segments(rec, 10)]
    recordings = load_ai4pain(tmp_path, rest="no")
    assert len(recordings) == len(expected) >= 10
    assert sorted({r.subject for r in recordings}) == ["sim-1", "sim-2"]
    for (subject, (_level, start, end)), r in zip(expected, recordings, strict=True):
        assert r.subject == subject
        assert r.signals["BVP"].values.size == int(round((end - start) * 100))


# --- in-process source -------------------------------------------------------------------


def test_simulator_source_feeds_hub_on_shared_clock():
    from core import clock

    w = SimulatedWearable(1, seed=1, schedule=PainSchedule.parse("no:1,high:1"))
    src = SimulatorSource(w, chunk_interval=0.02, speed=10.0)
    hub = BufferHub(seconds=30)
    before = clock.now()
    src.start(hub)
    time.sleep(0.6)
    src.stop()
    after = clock.now()
    assert {s.modality for s in src.streams()} == {"EDA", "BVP", "RESP", "SpO2", MARKERS}
    data, ts = hub.buffer("sim-1", "BVP").snapshot()
    assert data.shape[0] >= 64 * 3  # >= 3 simulated seconds in 0.6 s at 10x
    assert before - 0.01 <= ts[0] and ts[-1] <= after + 0.01
    np.testing.assert_allclose(np.diff(ts), 1 / 64 / 10, rtol=1e-6)
    labels = [m.label for m in hub.markers("sim-1")]
    assert labels[:3] == ["pain:no", "pain:high", "pain:no"]
    health = {h.spec.modality: h for h in src.health()}
    assert health["BVP"].samples == data.shape[0] and not health["BVP"].connected


def test_simulate_command_writes_a_dataset(tmp_path, capsys):
    from monitor.cli import main

    out = tmp_path / "ds"
    assert main(["simulate", "--write-dataset", str(out), "--subjects", "2", "--duration", "40",
                 "--seed", "5", "--schedule", "no:10,high:10", "--segment", "5"]) == 0
    assert "wrote 2 subject(s)" in capsys.readouterr().out
    header = (out / "Eda" / "sim-2.csv").read_text().splitlines()[0]
    assert header == ",".join(["baseline"] * 2 + ["high"] * 2 + ["baseline"] * 2 + ["high"] * 2)
    assert json.loads((out / "dataset.json").read_text())["subjects"][1]["seed"] == 5002
