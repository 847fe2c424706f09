"""Dataset windowing through the real preprocessing, and simulated datasets on disk."""

from __future__ import annotations

import numpy as np
import pytest

from training.recording_windows import WindowSettings, cut_recording, window_ends
from training.records import LevelTrack, Recording, Signal
from training.sim_data import sim_dataset, simulate_subject

MODS = ("EDA", "BVP", "RESP", "SpO2")


def test_simulated_subject_windows_match_the_engine_grid_and_labels():
    rec = simulate_subject(1, 90.0, seed=5)
    assert {m: s.rate for m, s in rec.signals.items()} == {"EDA": 4.0, "BVP": 64.0, "RESP": 25.0, "SpO2": 1.0}
    wb = cut_recording(rec, WindowSettings(MODS, stride_s=5.0))
    assert wb.signals.shape == (len(wb), 4, 1000) and wb.signals.dtype == np.float32
    assert np.isfinite(wb.signals).all() and wb.present.all()
    assert np.allclose(np.diff(wb.t_end), 5.0) and wb.t_end[0] == pytest.approx(10.0)
    for i, t in enumerate(wb.t_end):
        levels = rec.levels.level_at(np.arange(t - 10, t, 0.1) + 0.05)
        if wb.labels[i] >= 0:  # clean label: the level of at least 80 % of the window
            assert (levels == wb.labels[i]).mean() >= 0.8
        else:
            assert np.bincount(levels).max() / levels.size < 0.8
        assert wb.level_end[i] == rec.levels.level_at(t)
    # the BVP window is the cardiac band-passed pulse at 100 Hz: zero-mean, pulsatile
    bvp = wb.signals[3, 1]
    spec = np.abs(np.fft.rfft(bvp - bvp.mean()))
    peak_hz = np.fft.rfftfreq(1000, 0.01)[np.argmax(spec)]
    assert 0.7 < peak_hz < 3.0


def test_absent_and_gappy_modalities_are_marked_not_filled():
    t = np.arange(0, 40, 1 / 64)
    bvp = np.sin(2 * np.pi * 1.2 * t)
    keep = (t < 12) | (t > 30)  # 18 s hole in the middle
    rec = Recording("x", {"BVP": Signal(bvp[keep], t[keep], 64.0)}, LevelTrack.constant(1, 0.0), id="x")
    wb = cut_recording(rec, WindowSettings(MODS, stride_s=2.0))
    assert not wb.present[:, [0, 2, 3]].any()
    in_gap = (wb.t_end > 22) & (wb.t_end < 30)
    assert in_gap.sum() == 0 or not wb.present[in_gap, 1].any()  # no usable window inside the hole
    assert wb.present[wb.t_end <= 12, 1].all()
    assert (wb.labels == 1).all()


def test_segment_windows_anchor_at_the_end():
    seg = Recording("s", {"EDA": Signal.regular(np.ones(2300), 100.0)}, LevelTrack.constant(2, 0.0), id="s",
                    whole_segment=True)
    ends = window_ends(seg, WindowSettings(MODS, stride_s=5.0))
    assert ends.tolist() == pytest.approx([12.99, 17.99, 22.99])


def test_sim_dataset_is_stored_and_reloaded_identically(tmp_path):
    a = sim_dataset(tmp_path / "d", 2, 30.0, seed=1)
    b = sim_dataset(tmp_path / "d", 2, 30.0, seed=1)
    assert [r.subject for r in a] == ["sim-1", "sim-2"]
    for ra, rb in zip(a, b, strict=True):
        assert np.allclose(ra.signals["BVP"].values, rb.signals["BVP"].values, atol=1e-5)
        assert np.array_equal(ra.levels.levels, rb.levels.levels)
    with pytest.raises(ValueError, match="use another folder"):
        sim_dataset(tmp_path / "d", 3, 30.0, seed=1)
    held_out = sim_dataset(tmp_path / "t", 1, 30.0, seed=1, first=3)
    assert held_out[0].subject == "sim-3"
    assert not np.allclose(held_out[0].signals["EDA"].values[:100], a[0].signals["EDA"].values[:100])


def test_training_subjects_never_coincide_with_demo_subjects():
    from devices.simulator import subject_seed as live_seed
    from training.sim_data import subject_seed

    live = {live_seed(s, i) for s in range(20) for i in range(50)}
    trained = {subject_seed(s, k) for s in range(20) for k in range(1, 1100)}
    assert not live & trained


@pytest.mark.parametrize("rates", [{"EDA": 4.0, "BVP": 128.0, "RESP": 25.0, "SpO2": 1.0},
                                   {"EDA": 15.0, "BVP": 25.0, "RESP": 50.0, "SpO2": 1.0}])
def test_training_windows_are_the_windows_the_engine_cuts_from_the_same_samples(rates):
    """No train/serve skew: the same samples, cut by training and by the live engine (fed in
    half-second chunks, cut as soon as the window's data are in), give the same windows.
    Training used to interpolate on to a sample at the window's end where the engine holds
    the newest sample before it (the last second of every 1 Hz SpO2 window differed)."""
    from core.buffers import BufferHub
    from core.streams import StreamSpec
    from devices.simulator import PainSchedule, SensorSettings, SubjectProfile, simulate
    from monitor.engine.ingest import StreamIngest
    from training.sim_data import recording_from_simulation

    sim = simulate(SubjectProfile.varied(11), PainSchedule.random(40.0, seed=11), 40.0, seed=11, rates=rates,
                   subject="s", sensor=SensorSettings.random(11))
    rec = recording_from_simulation(sim, "parity")
    t0 = 1000.0  # on a clock of its own, like a replay
    rec.signals = {m: Signal(s.values, s.timestamps + t0, s.rate) for m, s in rec.signals.items()}
    rec.levels = LevelTrack(rec.levels.times + t0, rec.levels.levels)
    settings = WindowSettings(MODS, stride_s=2.5)
    wb = cut_recording(rec, settings)
    assert len(wb) >= 10 and wb.present.all()

    hub = BufferHub()
    ingest = StreamIngest(MODS, window_s=settings.window_s)
    hub.add_listener(ingest.listener)
    specs = {m: StreamSpec(subject="s", modality=m, nominal_rate=s.rate) for m, s in rec.signals.items()}
    engine = np.zeros_like(wb.signals)
    todo = list(enumerate(wb.t_end))
    for lo in np.arange(t0, t0 + 40.0, 0.5):
        for m, s in rec.signals.items():
            sel = (s.timestamps >= lo) & (s.timestamps < lo + 0.5)
            if sel.any():
                hub.push(specs[m], s.values[sel], s.timestamps[sel])
        ingest.drain()
        while todo and todo[0][1] <= lo + 0.5:  # every modality has a sample within a period of the end
            i, t_end = todo.pop(0)
            cut = ingest.cut("s", float(t_end), settings.window_s)
            for j, m in enumerate(MODS):
                assert cut[m].valid
                engine[i, j] = cut[m].signal
    assert not todo
    for j, m in enumerate(MODS):
        np.testing.assert_allclose(wb.signals[:, j], engine[:, j], rtol=0, atol=1e-5, err_msg=m)
