"""The main window with real widgets (offscreen): signals, vitals, quality, estimates,
events, screenshot, settings, recording and shutdown."""

import threading
import time

import numpy as np
import pytest
import pyxdf
from PySide6 import QtCore, QtGui

from core import clock
from core.estimate import Estimate
from core.streams import StreamSpec
from monitor.gui.main_window import MainWindow
from monitor.gui.session import Session
from monitor.gui.settings import GuiSettings, load_settings
from monitor.gui.theme import BAND_COLOURS, GREYED

RATES = {"EDA": 4.0, "BVP": 64.0, "RESP": 25.0, "SpO2": 1.0}


@pytest.fixture
def gui_settings(tmp_path, monkeypatch):
    """Settings in a temporary INI file, never the user's."""
    monkeypatch.setenv("PAINMON_SETTINGS", str(tmp_path / "settings.ini"))
    return tmp_path / "settings.ini"


@pytest.fixture
def window(qtbot, gui_settings):
    w = MainWindow(Session(), GuiSettings())
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def push_signals(session: Session, subject: str = "sim-1", seconds: float = 32.0, end: float | None = None,
                 modalities=tuple(RATES)) -> None:
    """Known signals ending at ``end`` (default now): HR 72 bpm, 15 breaths/min, SCL 3 µS, SpO2 97 %."""
    end = clock.now() if end is None else end
    for modality in modalities:
        rate = RATES[modality]
        t = end - seconds + np.arange(int(seconds * rate)) / rate
        x = {
            "EDA": 3.0 + 0.05 * np.sin(t / 3),
            "BVP": np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(4 * np.pi * 1.2 * t + 0.8),
            "RESP": np.sin(2 * np.pi * 0.25 * t),
            "SpO2": np.full(t.size, 97.0),
        }[modality]
        spec = StreamSpec(subject, modality, nominal_rate=rate)
        session.hub.push(spec, x.astype(np.float32), t)


def estimate(subject: str, t_end: float, index: float, valid: bool = True) -> Estimate:
    p_high = index / 100.0
    return Estimate(subject, t_end, index, (1 - p_high, 0.0, p_high), smoothed=index, smoothed_long=index,
                    quality={"BVP": 0.9 if valid else 0.1}, valid=valid, model="test-model",
                    latency={"total": 0.08}, created=t_end + 0.3)


def test_window_opens_empty_with_notice_menus_and_shortcuts(window):
    assert window.stack.currentWidget() is window.empty_label
    assert "not a clinical device" in window.notice.text()
    assert window.pain_action.shortcut().toString() == "Ctrl+P"
    assert window.medication_action.shortcut().toString() == "Ctrl+M"
    assert window.note_action.shortcut().toString() == "Ctrl+E"
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Events", "&View", "&Settings"]
    assert not window.replay_bar.isVisible()


def test_signals_vitals_and_quality_from_the_hub(qtbot, window):
    push_signals(window.session)
    qtbot.waitUntil(lambda: "sim-1" in window.panels and len(window.panels["sim-1"].rows) == 4, timeout=3000)
    panel = window.panels["sim-1"]
    box = panel.signals_box
    shown = [box.itemAt(i).widget().modality for i in range(box.count()) if box.itemAt(i).widget()]
    assert shown == ["EDA", "BVP", "RESP", "SpO2"]  # the usual order, whatever came first
    qtbot.waitUntil(lambda: all(r.point_count() > 0 for r in panel.rows.values()), timeout=3000)
    # 30 s span (+1 s margin) at 64 Hz
    assert 30 * 64 <= panel.rows["BVP"].point_count() <= 32 * 64
    window._on_slow()
    texts = {m: r.vital_label.text() for m, r in panel.rows.items()}
    assert texts == {"EDA": "SCL 3.0 µS", "BVP": "HR 72 bpm", "RESP": "BR 15 /min", "SpO2": "SpO2 97 %"}
    assert {r.quality_dot.level for r in panel.rows.values()} == {"good"}
    # no engine: the index says so instead of pretending to warm up
    assert panel.estimate_view.state == "unavailable"


def test_stream_that_stopped_is_shown_lost(qtbot, window):
    now = clock.now()
    push_signals(window.session, modalities=("BVP",), end=now)
    push_signals(window.session, modalities=("EDA",), end=now - 10.0)
    qtbot.waitUntil(lambda: "sim-1" in window.panels and len(window.panels["sim-1"].rows) == 2, timeout=3000)
    window._on_slow()
    rows = window.panels["sim-1"].rows
    assert rows["BVP"].quality_dot.level == "good"
    assert rows["EDA"].quality_dot.level == "lost"
    assert "no data for 10 s" in rows["EDA"].quality_dot.toolTip()
    assert "unreliable" in rows["EDA"].vital_label.toolTip()  # stale SCL is greyed


class ThreadRecorder(QtCore.QObject):
    """Records on which thread a queued signal is delivered."""

    def __init__(self):
        super().__init__()
        self.threads = []

    @QtCore.Slot(object)
    def record(self, _est):
        self.threads.append(threading.get_ident())


def test_estimates_from_a_worker_thread_are_shown_on_the_gui_thread(qtbot, window):
    session = window.session
    push_signals(session)
    recorder = ThreadRecorder()
    session.bridge.estimate.connect(recorder.record)
    t0 = clock.now() - 20
    # the engine calls Session._on_estimate on its worker thread; do exactly that
    worker = threading.Thread(
        target=lambda: [session._on_estimate(estimate("sim-1", t0 + k, 10.0 + 3 * k)) for k in range(20)]
    )
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(window.log) == 20, timeout=3000)
    assert set(recorder.threads) == {threading.get_ident()}
    view = window.panels["sim-1"].estimate_view
    assert view.state == "valid" and view.index_label.text() == "67"
    assert view.bars["high"].value() == 67 and view.bars["no"].value() == 33
    # 67 is past 66.7: word and colour both say high (core.estimate.band_of), not amber
    assert BAND_COLOURS[2] in view.index_label.styleSheet() and view.class_label.text() == "high pain"
    window._on_slow()
    assert window.panels["sim-1"].trend.drawn_points() == 20


def test_invalid_estimate_is_greyed_and_explained(qtbot, window):
    push_signals(window.session)
    window.session._on_estimate(estimate("sim-1", clock.now(), 90.0, valid=False))
    qtbot.waitUntil(lambda: len(window.log) == 1, timeout=3000)
    view = window.panels["sim-1"].estimate_view
    assert view.state == "invalid"
    assert GREYED in view.index_label.styleSheet()
    assert "not reliable" in view.state_label.text() and "BVP" not in view.state_label.text()


def test_a_view_without_estimates_for_6_s_greys_itself(qtbot, window, monkeypatch):
    import monitor.gui.estimate_view as ev

    push_signals(window.session)
    window.session._on_estimate(estimate("sim-1", clock.now() - 30, 50.0))
    qtbot.waitUntil(lambda: len(window.log) == 1, timeout=3000)
    window._on_slow()
    view = window.panels["sim-1"].estimate_view
    assert view.state == "valid"  # old data timestamps alone do not make it stale
    monkeypatch.setattr(ev, "NO_ESTIMATE_AFTER_S", 0.2)  # the engine stopped delivering
    qtbot.wait(300)
    window._on_slow()
    assert view.state == "stale" and "no new estimate" in view.state_label.text()
    assert GREYED in view.index_label.styleSheet()


def test_event_shortcuts_and_buttons_store_markers(qtbot, window):
    push_signals(window.session)
    qtbot.waitUntil(lambda: "sim-1" in window.panels, timeout=3000)
    window.activateWindow()
    window.pain_action.trigger()  # what Ctrl+P does
    qtbot.keyClick(window, QtCore.Qt.Key.Key_M, QtCore.Qt.KeyboardModifier.ControlModifier)
    window.panels["sim-1"].pain_button.click()
    labels = [m.label for m in window.session.hub.markers("sim-1")]
    assert labels.count("user:pain-reported") == 2
    assert labels.count("user:medication") == 1  # Ctrl+M as a key press
    markers = window.session.hub.markers("sim-1")
    assert all(abs(m.timestamp - clock.now()) < 5 for m in markers)
    window._on_slow()
    assert len(window.panels["sim-1"].trend.marker_lines) == len(markers)


def test_screenshot_is_not_blank(qtbot, window, tmp_path):
    push_signals(window.session)
    window.session._on_estimate(estimate("sim-1", clock.now(), 30.0))
    qtbot.waitUntil(lambda: len(window.log) == 1, timeout=3000)
    path = tmp_path / "shot.png"
    assert window.save_screenshot(path)
    image = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format.Format_RGB32)
    assert image.width() >= 800 and image.height() >= 500
    ptr = image.constBits()
    pixels = np.frombuffer(ptr, dtype=np.uint8).reshape(image.height(), image.bytesPerLine())[:, : image.width() * 4]
    assert pixels.std() > 20  # plots, text and the colour band, not a flat fill
    colours = np.unique(pixels.reshape(-1, 4)[::7, :3], axis=0)
    assert len(colours) > 50


def test_view_choices_persist_between_runs(qtbot, window, gui_settings):
    push_signals(window.session)
    qtbot.waitUntil(lambda: "sim-1" in window.panels and bool(window.panels["sim-1"].rows), timeout=3000)
    [act] = [a for a in window.span_group.actions() if a.text() == "60 s"]
    act.trigger()
    [act] = [a for a in window.trend_group.actions() if a.text() == "15 min"]
    act.trigger()
    row = window.panels["sim-1"].rows["BVP"]
    assert row.plot.viewRange()[0][0] == pytest.approx(-60.0)
    loaded = load_settings()
    assert loaded.plot_span_s == 60.0 and loaded.trend_span_min == 15.0
    fresh = MainWindow(Session(), loaded)
    qtbot.addWidget(fresh)
    assert [a.text() for a in fresh.span_group.actions() if a.isChecked()] == ["60 s"]


def test_closing_stops_source_and_recorder_and_loses_nothing(qtbot, window, tmp_path):
    from devices.simulator import SimulatedWearable, SimulatorSource

    path = tmp_path / "session.xdf"
    assert window.start_recording(path)
    source = SimulatorSource(SimulatedWearable(1, seed=3))
    assert window.add_source(source)
    qtbot.waitUntil(lambda: "sim-1" in window.panels and len(window.panels["sim-1"].rows) == 4, timeout=5000)
    qtbot.wait(1200)
    for k in range(5):
        window.session._on_estimate(estimate("sim-1", clock.now() - 5 + k, 20.0 + k))
    hub = window.session.hub
    window.close()
    assert window.session.sources == [] and window.session.recorder is None
    assert not window.frame_timer.isActive()
    totals = {m: hub.buffer("sim-1", m).total for m in RATES}
    time.sleep(0.3)  # a source still running would keep pushing
    assert {m: hub.buffer("sim-1", m).total for m in RATES} == totals
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False, synchronize_clocks=False)
    recorded = {s["info"]["type"][0]: len(s["time_stamps"]) for s in streams}
    for modality, total in totals.items():
        assert recorded[modality] == total, modality  # every sample the hub received
    assert recorded["PainIndex"] == 5


def test_settings_dialog_validates_then_applies_and_persists(qtbot, window):
    from monitor.gui.settings_dialog import SettingsDialog

    push_signals(window.session)
    qtbot.waitUntil(lambda: "sim-1" in window.panels and len(window.panels["sim-1"].rows) == 4, timeout=3000)
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.window_box.setValue(8.0)
    dialog.hop_box.setValue(9.0)  # longer than the window
    dialog.accept()
    assert "hop" in dialog.error_label.text() and dialog.result() != dialog.DialogCode.Accepted
    dialog.hop_box.setValue(0.5)
    dialog.theme_box.setCurrentText("dark")
    dialog.span_box.setCurrentIndex(dialog.span_box.findData(120.0))
    dialog.device_box.setCurrentText("cpu")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    window.apply_settings(dialog.result_settings())
    saved = load_settings()
    assert (saved.window_s, saved.hop_s, saved.theme, saved.plot_span_s, saved.device) == (
        8.0,
        0.5,
        "dark",
        120.0,
        "cpu",
    )
    row = window.panels["sim-1"].rows["EDA"]
    assert row.plot.viewRange()[0][0] == pytest.approx(-120.0)
    assert row.plot.backgroundBrush().color().name() == "#151515"  # dark theme applied in place
    assert window.session.engine_state == "off"  # no engine was running: none is started


def test_free_text_note_becomes_a_marker(qtbot, window):
    from PySide6 import QtWidgets

    push_signals(window.session)
    qtbot.waitUntil(lambda: "sim-1" in window.panels, timeout=3000)

    def answer():
        dialog = QtWidgets.QApplication.activeModalWidget()
        assert isinstance(dialog, QtWidgets.QInputDialog)
        dialog.setTextValue("  gave water  ")
        dialog.accept()

    QtCore.QTimer.singleShot(50, answer)
    window.note_action.trigger()  # Ctrl+E: blocks in the dialog until answer() accepts it
    assert [m.label for m in window.session.hub.markers("sim-1")] == ["note:gave water"]


def test_record_stop_from_the_menu_finishes_the_file(qtbot, window, tmp_path):
    path = tmp_path / "rec.xdf"
    assert window.start_recording(path)
    assert window.record_action.text() == "Stop recording"
    window._on_slow()
    assert window.status.recording_label.text() == "● REC"
    push_signals(window.session, modalities=("BVP",), seconds=5.0)
    window.add_event("user:medication", "sim-1")
    window.toggle_recording()  # recording: the action stops it (no dialog)
    assert window.session.recorder is None and window.record_action.text() == "Start recording…"
    window._on_slow()
    assert window.status.recording_label.text() == ""
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False, synchronize_clocks=False)
    by_type = {s["info"]["type"][0]: s for s in streams}
    assert len(by_type["BVP"]["time_stamps"]) == 5 * 64
    assert [row[0] for row in by_type["Markers"]["time_series"]] == ["user:medication"]


def test_one_tab_per_subject_and_only_the_visible_one_is_drawn(qtbot, window):
    push_signals(window.session, "sim-1", modalities=("BVP",))
    push_signals(window.session, "sim-2", modalities=("BVP", "EDA"))
    qtbot.waitUntil(lambda: set(window.panels) == {"sim-1", "sim-2"}, timeout=3000)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Overview", "sim-1", "sim-2"]
    assert window.tabs.currentWidget() is window.overview  # two subjects: the ward at a glance first
    first, second = window.panels["sim-1"], window.panels["sim-2"]
    window.show_subject("sim-1")
    qtbot.waitUntil(lambda: "BVP" in first.rows and first.rows["BVP"].point_count() > 0, timeout=3000)
    qtbot.wait(100)
    assert second.rows == {}  # hidden tab: not even built until shown
    window.tabs.setCurrentWidget(second)
    qtbot.waitUntil(lambda: len(second.rows) == 2 and all(r.point_count() > 0 for r in second.rows.values()),
                    timeout=3000)
    window.add_event("user:pain-reported")  # events go to the visible subject
    assert [m.subject for m in window.session.hub.markers()] == ["sim-2"]
