"""The window fed by real sources: an LSL outlet on this machine and a shared XDF replay."""

import uuid

import numpy as np
import pytest
from helpers import PulseOutlet


def test_window_shows_a_stream_from_a_real_lsl_outlet(qtbot, window):
    from devices.lsl import LSLSource

    subject = f"gui-{uuid.uuid4().hex[:8]}"
    name = f"{subject} BVP"
    with PulseOutlet(subject, name):
        assert window.add_source(LSLSource(name=name))
        qtbot.waitUntil(lambda: subject in window.panels and "BVP" in window.panels[subject].rows, timeout=10000)
        row = window.panels[subject].rows["BVP"]
        qtbot.waitUntil(lambda: row.point_count() >= 64 * 2, timeout=10000)
        window._on_slow()
        assert row.quality_dot.level == "good"
        assert "BVP" in window.status.streams_label.text() and "/64 Hz" in window.status.streams_label.text()
        assert "LSL" in window.status.sources_label.text()
        # the plotted samples are the outlet's wave, not zeros or a copy of one value
        _, data = row.curves[0].getData()
        assert np.nanmax(data) > 0.8 and np.nanmin(data) < -0.5


def test_window_replays_a_shared_xdf_file(qtbot, window, xdf_dir):
    path = xdf_dir / "clock_resets.xdf"
    assert window.open_recording(path)
    replay = window.session.replay
    assert replay is not None and window.replay_bar.source is replay
    assert not window.replay_bar.isHidden()
    assert "clock_resets.xdf" in window.replay_bar.name_label.text()
    qtbot.waitUntil(
        lambda: "clock_resets" in window.panels and "EEG" in window.panels["clock_resets"].rows, timeout=10000
    )
    row = window.panels["clock_resets"].rows["EEG"]
    qtbot.waitUntil(lambda: row.point_count() >= 50, timeout=10000)
    assert len(row.curves) == 4  # 8 channels, at most 4 drawn
    # pause / seek / resume through the replay bar
    window.replay_bar.toggle()
    assert replay.paused and window.replay_bar.play_button.text() == "Play"
    window.replay_bar.seek_fraction(0.5)  # restarts the replay there, on a clean session
    old, replay = replay, window.session.replay
    assert replay is not old and old.state == "stopped" and replay.paused
    assert window.replay_bar.source is replay
    assert replay.position == pytest.approx(0.5 * replay.duration, abs=2.0)
    window._on_slow()
    assert window.replay_bar.slider.value() == pytest.approx(500, abs=5)
    window.replay_bar.toggle()
    assert not replay.paused
    window.replay_bar.loop_box.setChecked(True)
    assert replay.loop is True
    window.replay_bar.speed_box.setCurrentIndex(window.replay_bar.speed_box.findData(2.0))
    assert replay.speed == 2.0


def test_opening_a_bad_recording_reports_and_keeps_running(qtbot, window, tmp_path):
    bad = tmp_path / "not.xdf"
    bad.write_text("hello")
    assert not window.open_recording(bad)
    assert window.session.sources == []
    assert "not.xdf" in window.statusBar().currentMessage()
