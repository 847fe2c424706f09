"""The dashboard's replay bar drives a ReplaySource (real Qt widgets, offscreen)."""

from __future__ import annotations

import time

import pytest

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
