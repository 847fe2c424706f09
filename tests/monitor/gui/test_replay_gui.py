"""The dashboard's replay bar drives a ReplaySource (real Qt widgets, offscreen)."""

from __future__ import annotations

import time

import pytest
from helpers import REPO_ROOT

from devices.replay import ReplaySource
from monitor.gui import app


def test_replay_bar_controls_the_source(qtbot, xdf_dir):
    source = ReplaySource(xdf_dir / "clock_resets.xdf", speed=1.0)
    window = app.build_window(sources=[source], engine=False)
    qtbot.addWidget(window)
    try:
        bar = window.replay_bar
        assert bar.source is source
        assert bar.name_label.text().strip() == "clock_resets.xdf"
        bar.speed_box.setCurrentIndex(bar.speed_box.findData(4.0))
        assert source.speed == 4.0
        bar.loop_box.setChecked(True)
        assert source.loop is True
        bar.toggle()
        assert source.paused
        bar.seek_fraction(0.5)  # a seek restarts the replay there, on a clean session
        old, source = source, bar.source
        assert source is not old and old.state == "stopped"
        assert source.position == pytest.approx(source.duration / 2, abs=0.01)
        assert source.paused and source.speed == 4.0 and source.loop
        bar.toggle()
        assert not source.paused
        time.sleep(0.3)
        assert source.position > source.duration / 2 + 0.5  # 4x from the middle
        bar.update_position()
        assert 500 < bar.slider.value() < 600
        assert bar.position_label.text().startswith("file ")
    finally:
        window.close()
        source.stop()


SAMPLE = REPO_ROOT / "assets" / "sessions" / "sample-sim.xdf"


def test_replay_end_is_end_of_file_not_sensor_loss_and_play_restarts(qtbot, window):
    assert window.open_recording(SAMPLE, speed=4.0)
    bar = window.replay_bar
    bar.seek_fraction(0.98)  # 3.6 s before the end
    source = bar.source
    qtbot.waitUntil(lambda: source.finished.is_set(), timeout=15000)
    window.show_subject("sim-1")  # two subjects in the file: the overview is in front
    window._on_frame()
    window._on_slow()
    panel = window.panels["sim-1"]
    # the file ended: the button offers Play, the bar and the status bar say where we are
    assert bar.play_button.text() == "Play"
    assert bar.position_label.text() == "end of file 2:59 / 2:59"  # the file's own time
    assert window.status.sources_label.text().startswith("end of file — replay sample-sim.xdf")
    # ... and no quality dot turns red: a replay that ended is not a lost sensor
    levels = {m: row.quality_dot.level for m, row in panel.rows.items()}
    assert levels and "lost" not in levels.values(), levels
    assert "lost" not in window.status.streams_label.text()
    # Play at the end plays the recording again, from the start, on a clean session
    bar.toggle()
    again = bar.source
    assert again is not source and not again.finished.is_set() and not again.paused
    assert again.position < 0.1 * again.duration and bar.play_button.text() == "Pause"  # near the start
    qtbot.waitUntil(lambda: window.session.hub.buffer("sim-1", "EDA") is not None, timeout=5000)


def test_fast_replay_shows_file_time_never_a_negative_delay(qtbot, window):
    from monitor.engine import EngineStats
    from monitor.gui.status_bar import format_engine

    # what the engine label says for a replay that runs ahead of the clock
    stats = EngineStats(running=True, warm=True, device="cpu", model="m", subjects=1, windows_cut=300,
                        estimates=39, skipped=261, queue_depth=0, errors=0, rejected_chunks=0,
                        mean_total_latency=0.4)
    text, why = format_engine("running", stats, -131.0, file_time=83.0, speed=8.0, explain=True)
    assert "delay" not in text and "estimate at file 1:23" in text
    assert "skipped 261 (replay too fast)" in text
    assert "8×" in why and "8 windows/s" in why and "2.5 windows/s" in why and "lower speed" in why
    live, _ = format_engine("running", stats, -0.2, explain=True)  # clocks a hair apart
    assert "delay 0.0 s" in live and "replay too fast" not in live
    # and in the window: the replay bar and the status bar show the file's time
    assert window.open_recording(SAMPLE, speed=8.0)
    window._on_slow()
    assert window.replay_bar.position_label.text().startswith("file 0:0")
