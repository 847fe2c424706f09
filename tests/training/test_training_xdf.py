"""XDF sessions as training data: a simulated session recorded by PainMon's own recorder."""

from __future__ import annotations

import numpy as np
import pytest

from core.streams import StreamSpec
from training.recording_windows import WindowSettings, cut_recording
from training.sim_data import simulate_subject
from training.xdf_data import find_xdf, load_xdf_sessions, marker_level


def _record(path, rec, with_markers=True):
    from devices.xdf import SessionRecorder

    recorder = SessionRecorder(path).start()
    for m, s in rec.signals.items():
        spec = StreamSpec(rec.subject, m, nominal_rate=s.rate, name=f"{rec.subject} {m}",
                          source_id=f"painmon:{rec.subject}:{m}")
        half = s.values.size // 2  # two chunks, as a live stream would arrive
        recorder.record_chunk(spec, s.values[:half, None], s.timestamps[:half] + 1000.0)
        recorder.record_chunk(spec, s.values[half:, None], s.timestamps[half:] + 1000.0)
    if with_markers:
        names = {0: "pain:no", 1: "pain:low", 2: "pain:high"}
        recorder.record_markers(rec.subject, [names[int(v)] for v in rec.levels.levels], rec.levels.times + 1000.0)
    recorder.stop()


def test_recorded_session_round_trips_into_training_windows(tmp_path):
    rec = simulate_subject(2, 60.0, seed=4)
    _record(tmp_path / "s.xdf", rec)
    (loaded,) = load_xdf_sessions(find_xdf(tmp_path))
    assert loaded.subject == "sim-2" and set(loaded.signals) == {"EDA", "BVP", "RESP", "SpO2"}
    assert np.allclose(loaded.signals["BVP"].values, rec.signals["BVP"].values, atol=1e-5)
    assert loaded.signals["BVP"].rate == 64.0
    assert np.allclose(loaded.levels.times - 1000.0, rec.levels.times, atol=1e-6)
    assert np.array_equal(loaded.levels.levels, rec.levels.levels)
    a = cut_recording(rec, WindowSettings(("EDA", "BVP", "RESP", "SpO2"), stride_s=10.0))
    b = cut_recording(loaded, WindowSettings(("EDA", "BVP", "RESP", "SpO2"), stride_s=10.0))
    assert np.array_equal(a.labels, b.labels)
    assert np.allclose(a.signals, b.signals, atol=1e-3)


def test_session_without_markers_is_explained(tmp_path):
    rec = simulate_subject(1, 20.0, seed=4)
    _record(tmp_path / "plain.xdf", rec, with_markers=False)
    with pytest.raises(ValueError, match="pain:no"):
        load_xdf_sessions([tmp_path / "plain.xdf"])
    with pytest.raises(ValueError, match="no .xdf files"):
        find_xdf(tmp_path / "nothing-here") if (tmp_path / "nothing-here").mkdir() is None else None


def test_marker_vocabulary():
    assert [marker_level(s) for s in ("pain:no", "PAIN:High", "low", "baseline", "pain = low", "start")] == [
        0, 2, 1, 0, 1, None]
