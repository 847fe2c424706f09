"""Issue 12 item 7: failures the dashboard must report, not hide (real widgets, offscreen).

* an unreachable broker: the status bar says "broker unreachable since HH:MM:SS";
* a full disk during a recording: a warning box and a status message, the Record action
  back to "Start recording…" (before: the REC label just vanished);
* a model that cannot load: the dialog/status says so, the terminal gets one line, not a
  traceback.
"""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest
from full_disk import full_disk
from mqtt_broker import free_port

from core import clock
from core.streams import StreamSpec
from devices.mqtt import MQTTConfig, MQTTSource
from monitor.gui.recording_alert import START_TEXT, TITLE


def test_an_unreachable_broker_is_named_with_its_time_in_the_status_bar(qtbot, window):
    before = time.time()
    config = MQTTConfig(host="127.0.0.1", port=free_port(), reconnect_min=0.1, reconnect_max=0.2)
    source = MQTTSource(config)
    assert window.add_source(source)
    window._on_slow()
    qtbot.waitUntil(lambda: (window._on_slow(), "unreachable" in window.status.sources_label.text())[1],
                    timeout=10000)
    text = window.status.sources_label.text()
    match = re.search(r"broker unreachable since (\d\d:\d\d:\d\d)", text)
    assert match, text
    since = time.strptime(match.group(1), "%H:%M:%S")
    shown = since.tm_hour * 3600 + since.tm_min * 60 + since.tm_sec
    t = time.localtime(before)
    started = t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec
    assert 0 <= (shown - started) % 86400 <= 10  # the time it became unreachable, not "now" each refresh
    time.sleep(1.2)
    window._on_slow()
    assert match.group(1) in window.status.sources_label.text()


@pytest.mark.allow_thread_errors
def test_a_full_disk_during_a_recording_shows_a_dialog_and_a_status_message(qtbot, window, tmp_path):
    spec = StreamSpec("sim-1", "BVP", channels=("a", "b", "c", "d"), nominal_rate=64.0, name="sim-1 BVP")
    hub = window.session.hub
    hub.register(spec)
    with full_disk(tmp_path / "disk") as folder:
        path = folder / "ward.xdf"
        assert window.start_recording(path)
        window._on_slow()
        assert window.record_action.text() == "Stop recording" and "REC" in window.status.recording_label.text()
        t0 = clock.now()
        for k in range(400):  # 4 KiB a chunk: a 64 KiB disk fills within a few flushes
            hub.push(spec, np.full((256, 4), float(k), np.float32), t0 + (k * 256 + np.arange(256)) / 64.0)
            qtbot.wait(10)
            if window.recording_alert.box is not None:
                break
        qtbot.waitUntil(lambda: window.recording_alert.box is not None, timeout=5000)
    box = window.recording_alert.box
    assert box.isVisible() and box.windowTitle() == TITLE
    assert "disk full" in box.text() and "ward.xdf" in box.text()
    assert "disk full" in window.statusBar().currentMessage()
    assert window.record_action.text() == START_TEXT
    window._on_slow()  # the periodic refresh keeps it so
    assert window.status.recording_label.text() == ""
    assert not window.session.recording
    box.close()


@pytest.mark.allow_thread_errors
def test_a_model_that_cannot_load_logs_one_line_not_a_traceback(qtbot, window, tmp_path, caplog):
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a model\n")
    window.engine_overrides["model_path"] = str(bad)
    with caplog.at_level(logging.ERROR):
        window.start_engine()
        qtbot.waitUntil(lambda: window.session.engine_state.startswith("error"), timeout=20000)
        qtbot.waitUntil(lambda: "notes.txt" in window.statusBar().currentMessage(), timeout=5000)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("monitor.gui")]
    assert errors, caplog.text
    for record in errors:
        assert record.exc_info is None and "Traceback" not in record.getMessage()
        assert "\n" not in record.getMessage()
    assert any("notes.txt" in r.getMessage() for r in errors)
