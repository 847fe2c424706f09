"""Connect dialog: live LSL discovery with an editable mapping, and an MQTT broker
(a real outlet on this machine and a real mosquitto)."""

import uuid

import numpy as np
import pylsl
import pytest
from PySide6 import QtCore

from monitor.gui.connect_dialog import UNMAPPED, ConnectDialog
from monitor.gui.main_window import MainWindow
from monitor.gui.session import Session
from monitor.gui.settings import GuiSettings


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PAINMON_SETTINGS", str(tmp_path / "settings.ini"))
    w = MainWindow(Session(), GuiSettings())
    qtbot.addWidget(w)
    yield w
    w.close()


def _row_of(dialog: ConnectDialog, name: str) -> int:
    for r in range(dialog.table.rowCount()):
        if dialog.table.item(r, 1).text() == name:
            return r
    raise AssertionError(f"{name} not listed")


def test_lsl_discovery_mapping_is_editable_and_used(qtbot, window):
    tag = uuid.uuid4().hex[:8]
    name = f"pleth-{tag}"
    # a device with an unusual type and no subject in its description
    info = pylsl.StreamInfo(name, "Pleth", 1, 50.0, pylsl.cf_float32, f"dev-{tag}")
    outlet = pylsl.StreamOutlet(info)
    dialog = ConnectDialog(GuiSettings(), window, auto_refresh=False)
    qtbot.addWidget(dialog)
    dialog.refresh()
    qtbot.waitUntil(lambda: any(dialog.table.item(r, 1).text() == name for r in range(dialog.table.rowCount())),
                    timeout=15000)
    r = _row_of(dialog, name)
    combo = dialog.table.cellWidget(r, 4)
    assert combo.currentText() == UNMAPPED  # "Pleth" is not a known modality name
    assert dialog.table.item(r, 0).checkState() == QtCore.Qt.CheckState.Unchecked
    # other streams on the network (other tests) are left out; ours is mapped by hand
    for other in range(dialog.table.rowCount()):
        dialog.table.item(other, 0).setCheckState(QtCore.Qt.CheckState.Unchecked)
    dialog.table.item(r, 0).setCheckState(QtCore.Qt.CheckState.Checked)
    combo.setCurrentText("BVP")
    dialog.table.item(r, 3).setText(f"bed-{tag}")
    [choice] = dialog.choices()
    assert (choice.subject, choice.modality, choice.name) == (f"bed-{tag}", "BVP", name)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    [source] = dialog.sources()
    assert window.add_source(source)
    t = pylsl.local_clock() + np.arange(100) / 50.0
    for k in range(40):
        outlet.push_chunk([[float(np.sin(k + i / 10))] for i in range(10)], float(t[k]))
        qtbot.wait(25)
        if f"bed-{tag}" in window.panels:
            break
    qtbot.waitUntil(lambda: f"bed-{tag}" in window.panels, timeout=10000)
    # the panel opens with the subject's first chunk; its signal rows with the next refresh
    qtbot.waitUntil(lambda: list(window.panels[f"bed-{tag}"].rows) == ["BVP"], timeout=10000)
    spec = window.session.hub.spec(f"bed-{tag}", "BVP")
    assert spec.nominal_rate == 50.0 and spec.name == name


def test_connect_refuses_an_empty_selection_and_a_bad_broker(qtbot, window):
    dialog = ConnectDialog(GuiSettings(), window, auto_refresh=False)
    qtbot.addWidget(dialog)
    dialog.accept()
    assert "select at least one stream" in dialog.error_label.text()
    assert dialog.result() != dialog.DialogCode.Accepted
    dialog.tabs.setCurrentIndex(1)
    dialog.mqtt_host.setText("")
    dialog.accept()
    assert "host" in dialog.error_label.text().lower()
    dialog.mqtt_host.setText("localhost")
    dialog.mqtt_prefix.setText("bad/#/prefix")
    dialog.accept()
    assert dialog.error_label.text() and dialog.result() != dialog.DialogCode.Accepted


def test_mqtt_broker_from_the_dialog_feeds_the_window(qtbot, window, mosquitto_broker):
    from devices.mqtt import MQTTConfig
    from devices.simulator import MQTTSimulator, SimulatedWearable

    prefix = f"gui{uuid.uuid4().hex[:6]}"
    settings = GuiSettings()
    dialog = ConnectDialog(settings, window, auto_refresh=False)
    qtbot.addWidget(dialog)
    dialog.tabs.setCurrentIndex(1)
    dialog.mqtt_host.setText(mosquitto_broker.host)
    dialog.mqtt_port.setValue(mosquitto_broker.port)
    dialog.mqtt_prefix.setText(prefix)
    dialog.accept()
    [source] = dialog.sources()
    assert (settings.mqtt_port, settings.mqtt_prefix) == (mosquitto_broker.port, prefix)  # remembered
    assert window.add_source(source)
    sim = MQTTSimulator(SimulatedWearable(1, seed=2),
                        MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port, prefix=prefix))
    sim.start()
    try:
        qtbot.waitUntil(lambda: "sim-1" in window.panels and len(window.panels["sim-1"].rows) == 4, timeout=15000)
        window._on_slow()
        assert "mqtt" in window.status.sources_label.text().lower()
    finally:
        sim.stop()
