"""The dashboard's CoVAS control (issue 12 item 10), real widgets offscreen: mouse and keys
set the rating, it is sampled into the hub and recorded, and the trend history has it."""

from __future__ import annotations

import numpy as np
from helpers import wait_until
from PySide6 import QtCore

from core.streams import SELF_REPORT
from core.wire import self_report_stream_name
from devices.xdf import load_session
from monitor.gui.self_report import NOT_RATED, SelfReportWidget

Key = QtCore.Qt.Key


def test_every_subject_panel_has_a_self_report_control_driven_by_keys_and_mouse(qtbot, window, tmp_path):
    path = tmp_path / "covas.xdf"
    assert window.start_recording(path)
    panel = window.panel("sim-1")
    widget = panel.self_report
    assert isinstance(widget, SelfReportWidget) and widget.channel.subject == "sim-1"
    assert widget.value_label.text() == NOT_RATED and widget.rating is None
    slider = widget.slider
    slider.setFocus()

    def press(key):  # a rating is sampled 10 times a second: hold each a little
        qtbot.keyClick(slider, key)
        qtbot.wait(250)

    press(Key.Key_End)
    assert widget.rating == 100.0 and widget.value_label.text() == "100 / 100"
    press(Key.Key_Home)
    assert widget.rating == 0.0
    press(Key.Key_PageUp)
    assert widget.rating == 10.0
    press(Key.Key_Right)
    press(Key.Key_Up)
    assert widget.rating == 12.0
    press(Key.Key_PageDown)
    assert widget.rating == 2.0
    # the mouse: a click jumps to the point of the scale under it (not a page towards it)
    x_mid = slider.width() // 2
    qtbot.mouseClick(slider, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x_mid, slider.height() // 2))
    assert 40.0 <= widget.rating <= 60.0, widget.rating
    x_far = int(slider.width() * 0.9)
    qtbot.mousePress(slider, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x_mid, slider.height() // 2))
    qtbot.mouseMove(slider, pos=QtCore.QPoint(x_far, slider.height() // 2))
    qtbot.mouseRelease(slider, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x_far, slider.height() // 2))
    assert widget.rating >= 80.0, widget.rating
    final = widget.rating
    hub = window.session.hub
    assert wait_until(lambda: hub.buffer("sim-1", SELF_REPORT) is not None
                      and hub.buffer("sim-1", SELF_REPORT).snapshot()[0][-1, 0] == final, 3.0)
    qtbot.wait(600)
    t, r = window.self_reports.trend("sim-1")
    assert r.size >= 1 and r[-1] == final
    window.close()  # stops the sampling and finishes the recording
    (stream,) = [s for s in load_session(path).streams if s.spec.modality == SELF_REPORT]
    assert stream.spec.name == self_report_stream_name("sim-1")
    values = np.asarray(stream.values).reshape(-1)
    assert {100.0, 0.0, 10.0, 12.0, 2.0, final} <= set(values.tolist())  # held ones, in order:
    firsts = [int(np.argmax(values == v)) for v in (100.0, 0.0, 10.0, 12.0, 2.0)]
    assert firsts == sorted(firsts)


def test_with_a_broker_the_rating_is_published_there_as_json(qtbot, window, mosquitto_broker):
    import json
    import threading

    from mqtt_broker import paho_client, paho_close

    from core.wire import self_report_topic
    from devices.mqtt import MQTTConfig, MQTTSource

    source = MQTTSource(MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port))
    assert window.add_source(source)
    assert source.wait_connected(5.0)  # subscribed: it will see the rating come back
    got: list[dict] = []
    arrived = threading.Event()
    client = paho_client(mosquitto_broker)
    client.on_message = lambda _c, _u, msg: (got.append(json.loads(msg.payload)), arrived.set())
    client.subscribe(self_report_topic("painmon", "ward-7"), qos=0)
    try:
        qtbot.wait(300)  # the subscription is in place
        panel = window.panel("ward-7")
        panel.self_report.slider.setFocus()
        qtbot.keyClick(panel.self_report.slider, Key.Key_End)
        assert arrived.wait(5.0)
    finally:
        paho_close(client)
    assert got[0]["subject"] == "ward-7" and got[0]["rating"] == 100.0 and got[0]["scale"] == "VAS 0-100"
    # the source sees the rating come back (maybe a moment after our client did) and leaves it
    assert wait_until(lambda: source.status().ignored >= 1, 5.0), source.status()
    assert window.session.hub.subjects() == ["ward-7"]  # not read back in by the MQTT source
