"""The PainMon main window: one tab per subject, menus, status bar, replay controls.

Two timers drive the display and nothing else touches the data on the GUI thread:

* the **frame timer** (~33 Hz) redraws the signal plots of the visible subject from the
  ring buffers, only those whose buffer changed;
* the **slow timer** (2 Hz) updates vitals, quality dots, warm-up/stale state, the trend,
  the status bar and the replay position.

Estimates and markers arrive as queued Qt signals from :class:`GuiBridge`, so no widget is
touched from another thread. Inference, I/O and model loading all run elsewhere
(:mod:`monitor.gui.session`), so the window never waits on them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core import clock
from core.buffers import Marker
from core.estimate import Estimate
from monitor.gui.estimate_log import EstimateLog, SourceTime
from monitor.gui.folders import open_folder, save_folder
from monitor.gui.overview import OverviewTab
from monitor.gui.recording_alert import RecordingAlert
from monitor.gui.replay_bar import ReplayBar
from monitor.gui.self_report import attach_self_report
from monitor.gui.session import EngineConfig, Session
from monitor.gui.settings import (
    PLOT_SPANS_S,
    THEME_NAMES,
    TREND_SPANS_MIN,
    GuiSettings,
    save_settings,
)
from monitor.gui.status_bar import StatusBar, format_engine, format_streams
from monitor.gui.subject_panel import EVENT_MEDICATION, EVENT_PAIN, NOTE_PREFIX, SubjectPanel
from monitor.gui.theme import apply_theme, style_plot

log = logging.getLogger(__name__)

FRAME_INTERVAL_MS = 30
SLOW_INTERVAL_MS = 500
NOT_CLINICAL = "Research use only — not a clinical device."


def model_notice(model: str, info: dict | None) -> tuple[str, str]:
    """Banner text and tooltip naming the model and what it was trained on."""
    if not info:
        return f"{NOT_CLINICAL}   Model: {model}", NOT_CLINICAL
    trained = info.get("trained_on", "")
    short = trained.split("(")[0].split(":")[0].strip()
    text = f"{NOT_CLINICAL}   Model: {info.get('name') or model}" + (f", trained on {short}" if short else "")
    tip = "\n".join(x for x in (info.get("not_clinical"), info.get("description"), trained) if x)
    return text, tip


class MainWindow(QtWidgets.QMainWindow):
    """The dashboard of one :class:`Session`."""

    def __init__(self, session: Session, settings: GuiSettings | None = None,
                 store: QtCore.QSettings | None = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.settings = settings or GuiSettings()
        self.store = store
        self.log = EstimateLog()
        self.panels: dict[str, SubjectPanel] = {}
        self.frame_times: list[float] = []
        """perf_counter() of each frame (the GUI benchmark reads it)."""
        self._closed = False
        self.engine_overrides: dict[str, Any] = {}
        """Command-line model options for this run (model_path, encoder_path, device,
        precision, backend, threads; never saved; Settings… replaces them)."""
        app = QtWidgets.QApplication.instance()
        if isinstance(app, QtWidgets.QApplication):  # instance() is typed as QCoreApplication | None
            apply_theme(app, self.settings.theme)  # before any plot exists

        self.setWindowTitle("PainMon — pain monitor (research use only)")
        # 1400 x 860, or the screen's free area on a smaller (1366 x 768 laptop) screen
        screen = QtGui.QGuiApplication.primaryScreen()
        free = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1400, 860)
        self.resize(min(1400, free.width()), min(860, free.height()))
        self.notice = QtWidgets.QLabel(NOT_CLINICAL)
        self.notice.setObjectName("notice")
        self.notice.setStyleSheet("QLabel#notice { background: #fff3cd; color: #664d03; padding: 3px; }")
        self.notice.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.tabs = QtWidgets.QTabWidget()
        # first tab: every subject at a glance (one subject opens on its own tab, a ward on this)
        self.overview = OverviewTab(session.ward, session.alarms)
        self.overview.subject_clicked.connect(self.show_subject)
        self.tabs.addTab(self.overview, "Overview")
        self.tabs.tabBarClicked.connect(lambda _i: setattr(self, "_tab_chosen", True))
        self._tab_chosen = False
        self.tabs.currentChanged.connect(lambda _i: self._on_slow())
        self.empty_label = QtWidgets.QLabel(
            "No signals yet. Use File → Connect… (Ctrl+K) or File → Open recording… (Ctrl+O)."
        )
        self.empty_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(self.tabs)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notice)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.replay_bar = ReplayBar(self)
        self.replay_bar.seek_handler = self.seek_replay
        self.addToolBar(QtCore.Qt.ToolBarArea.BottomToolBarArea, self.replay_bar)
        self.replay_bar.bind(None)
        self._build_menus()
        self.recording_alert = RecordingAlert(self)

        session.bridge.estimate.connect(self.on_estimate)
        session.bridge.marker.connect(self.on_marker)
        session.bridge.error.connect(self.on_error)

        self.frame_timer = QtCore.QTimer(self)
        self.frame_timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.frame_timer.setInterval(FRAME_INTERVAL_MS)
        self.frame_timer.timeout.connect(self._on_frame)
        self.slow_timer = QtCore.QTimer(self)
        self.slow_timer.setInterval(SLOW_INTERVAL_MS)
        self.slow_timer.timeout.connect(self._on_slow)
        self.frame_timer.start()
        self.slow_timer.start()

    # --- menus -----------------------------------------------------------------------
    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut: str | None = None,
                checkable: bool = False) -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        if shortcut:
            act.setShortcut(QtGui.QKeySequence(shortcut))
            # the main window's shortcuts: Space or Ctrl+E must not fire inside a dialog
            act.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.connect_action = self._action(file_menu, "Connect…", self.show_connect_dialog, "Ctrl+K")
        self.open_action = self._action(file_menu, "Open recording…", self.open_recording_dialog, "Ctrl+O")
        file_menu.addSeparator()
        self.record_action = self._action(file_menu, "Start recording…", self.toggle_recording, "Ctrl+R")
        file_menu.addSeparator()
        self._action(file_menu, "Export screenshot…", self.export_screenshot_dialog, "Ctrl+Shift+S")
        self._action(file_menu, "Export estimates (CSV)…", self.export_csv_dialog, "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, "Ctrl+Q")

        events = bar.addMenu("&Events")
        self.pain_action = self._action(events, "Patient reports pain", lambda: self.add_event(EVENT_PAIN), "Ctrl+P")
        self.medication_action = self._action(
            events, "Medication given", lambda: self.add_event(EVENT_MEDICATION), "Ctrl+M"
        )
        self.note_action = self._action(events, "Note…", lambda: self.ask_note(self.current_subject()), "Ctrl+E")

        # The View menu edits the same GuiSettings as the Settings dialog, through
        # apply_settings; its ticks are always redrawn from the settings (_sync_view_menu).
        view = bar.addMenu("&View")
        self.span_group = self._choice_menu(view.addMenu("Signal window"), "plot_span_s", PLOT_SPANS_S, "{:g} s")
        self.trend_group = self._choice_menu(view.addMenu("Trend window"), "trend_span_min", TREND_SPANS_MIN,
                                             "{:g} min")
        self.theme_group = self._choice_menu(view.addMenu("Theme"), "theme", THEME_NAMES, "{}")
        self._sync_view_menu()
        self.replay_toggle_action = self._action(view, "Play / pause replay", self.replay_bar.toggle, "Space")

        settings_menu = bar.addMenu("&Settings")
        self._action(settings_menu, "Settings…", self.show_settings_dialog, "Ctrl+,")

    def _choice_menu(self, menu: QtWidgets.QMenu, key: str, values, fmt: str) -> QtGui.QActionGroup:
        """Exclusive, checkable choices of one setting; choosing one applies it."""
        group = QtGui.QActionGroup(self)
        for value in values:
            act = self._action(menu, fmt.format(value),
                               lambda _c=False, k=key, v=value: self.apply_settings(
                                   dataclasses.replace(self.settings, **{k: v})),
                               checkable=True)
            act.setData(value)
            group.addAction(act)
        group.setProperty("setting", key)
        return group

    def _sync_view_menu(self) -> None:
        """Tick, in each View menu group, the value the settings hold (none when the
        settings hold a value the menu does not offer)."""
        for group in (self.span_group, self.trend_group, self.theme_group):
            current = getattr(self.settings, group.property("setting"))
            for act in group.actions():
                act.setChecked(act.data() == current)

    # --- subjects --------------------------------------------------------------------
    def current_subject(self) -> str | None:
        panel = self.tabs.currentWidget()
        return panel.subject if isinstance(panel, SubjectPanel) else None

    def panel(self, subject: str) -> SubjectPanel:
        """The subject's panel, created (as a new tab) on first use."""
        panel = self.panels.get(subject)
        if panel is None:
            panel = SubjectPanel(subject, self.settings.plot_span_s, self.settings.trend_span_min)
            panel.event_requested.connect(lambda s, label: self.add_event(label, s))
            panel.note_requested.connect(self.ask_note)
            attach_self_report(self, panel)  # CoVAS slider under the trend (monitor/gui/self_report.py)
            self.panels[subject] = panel
            self.tabs.addTab(panel, subject)
            self.stack.setCurrentWidget(self.tabs)
            if len(self.panels) == 1 or (len(self.panels) == 2 and not self._tab_chosen):
                self.tabs.setCurrentWidget(panel if len(self.panels) == 1 else self.overview)
        return panel

    def show_subject(self, subject: str) -> None:
        """Bring the subject's tab to the front (a click on its overview tile)."""
        self._tab_chosen = True
        self.tabs.setCurrentWidget(self.panel(subject))

    def _sync_subjects(self) -> None:
        for subject in self.session.hub.subjects():
            if self.session.hub.modalities(subject):
                self.panel(subject)

    # --- timers ----------------------------------------------------------------------
    def _on_frame(self) -> None:
        self.frame_times.append(time.perf_counter())
        if len(self.frame_times) > 10000:
            del self.frame_times[:5000]
        self._sync_subjects()
        panel = self.tabs.currentWidget()
        if isinstance(panel, SubjectPanel):
            panel.refresh_signals(self.session.hub, self.session.newest_time())

    def _on_slow(self) -> None:
        if self._closed:
            return
        self._sync_subjects()
        session = self.session
        health = session.health()
        t_ref = session.newest_time()
        now = clock.now()
        replay = session.replay
        ended = replay is not None and replay.finished.is_set()
        live = not session.paused and not ended
        subject = self.current_subject()
        panel = self.panels.get(subject) if subject else None
        if panel is not None:
            by_modality = {h.spec.modality: h for h in health if h.spec.subject == subject}
            window_s = session.engine.window_s if session.engine is not None else self.settings.window_s
            panel.refresh_slow(session.hub, self.log, by_modality, t_ref, now, live, window_s, session.engine_state)
        self._update_status(health, subject)
        self.replay_bar.update_position()

    def _update_status(self, health, subject: str | None) -> None:
        session = self.session
        sources = session.source_label()
        replay = session.replay
        if replay is not None and replay.finished.is_set():
            sources = "end of file — " + sources
        self.status.set_text(self.status.sources_label, sources)
        short, tip = format_streams(health, subject)
        self.status.set_text(self.status.streams_label, short, tip)
        engine = session.engine
        stats = engine.stats() if engine is not None else None
        latest = self.log.latest(subject) if subject else None
        delay = file_time = math.nan
        speed = 1.0
        if latest is not None and replay is not None:
            # a replay's timestamps are the file's, shifted (and at 8x running ahead of
            # the clock): "delay" means nothing there; where in the file the estimate is does
            file_time = replay.from_clock(latest.t_end)
            speed = math.inf if replay.asap else float(replay.speed)
        elif latest is not None:
            delay = latest.created - latest.t_end
        text, why = format_engine(session.engine_state, stats, delay, file_time=file_time, speed=speed,
                                  hop_s=engine.hop_s if engine is not None else 1.0, explain=True)
        self.status.set_text(self.status.engine_label, text, why)
        if stats is not None:
            self.status.set_text(self.status.device_label, f"device {stats.device}")
            text, tip = model_notice(stats.model, session.model_info)
            self.notice.setText(text)
            self.notice.setToolTip(tip)
        self.status.set_recording(str(session.recorder.path) if session.recording else None)

    # --- incoming (GUI thread, via the bridge) ---------------------------------------
    @QtCore.Slot(object)
    def on_estimate(self, est: Estimate) -> None:
        if self._closed:
            return
        self.log.add(est, self.source_time(est))
        panel = self.panel(est.subject)
        panel.show_estimate(est)
        if panel is self.tabs.currentWidget():
            panel.refresh_trend(self.session.hub, self.log, self.session.newest_time())

    def source_time(self, est: Estimate) -> SourceTime:
        """The window's end on the wall clock (live), or in the replayed file."""
        replay = self.session.replay
        if replay is not None:
            file_s = replay.from_clock(est.t_end)
            return SourceTime(source=replay.session.t_start + file_s, file=file_s)
        return SourceTime(wall=time.time() - (clock.now() - est.t_end), source=est.t_end)

    @QtCore.Slot(object)
    def on_marker(self, marker: Marker) -> None:
        if self._closed:
            return
        panel = self.panels.get(marker.subject)
        if panel is not None and panel is self.tabs.currentWidget():
            panel.refresh_trend(self.session.hub, self.log, self.session.newest_time())

    @QtCore.Slot(str)
    def on_error(self, message: str) -> None:
        log.error("%s", " ".join(message.split()))  # one line in the terminal; the box has the detail
        self.statusBar().showMessage(" ".join(message.split()), 15000)
        # a modal box needs someone to click it: not on the offscreen (scripted) platform
        if QtGui.QGuiApplication.platformName() != "offscreen":
            QtWidgets.QMessageBox.warning(self, "PainMon", message)

    # --- events ----------------------------------------------------------------------
    def add_event(self, label: str, subject: str | None = None) -> Marker | None:
        """Stamp and store an event for ``subject`` (default: the visible tab)."""
        subject = subject or self.current_subject()
        if subject is None:
            self.statusBar().showMessage("no subject to attach the event to", 5000)
            return None
        marker = self.session.add_event(subject, label)
        self.statusBar().showMessage(f"event '{label}' for {subject}", 5000)
        return marker

    def ask_note(self, subject: str | None) -> None:
        if subject is None:
            return
        text, ok = QtWidgets.QInputDialog.getText(self, "Note", f"Note for {subject}:")
        if ok and text.strip():
            self.add_event(NOTE_PREFIX + text.strip(), subject)

    # --- view ------------------------------------------------------------------------
    def set_plot_span(self, span_s: float) -> None:
        self.apply_settings(dataclasses.replace(self.settings, plot_span_s=span_s))

    def set_trend_span(self, span_min: float) -> None:
        self.apply_settings(dataclasses.replace(self.settings, trend_span_min=span_min))

    def set_theme(self, name: str) -> None:
        self.apply_settings(dataclasses.replace(self.settings, theme=name))

    def _show_plot_span(self, span_s: float) -> None:
        for panel in self.panels.values():
            panel.set_plot_span(span_s)

    def _show_trend_span(self, span_min: float) -> None:
        for panel in self.panels.values():
            panel.set_trend_span(span_min)
        self._on_slow()

    def _show_theme(self, name: str) -> None:
        """Apply a theme; existing plots, bars and labels are restyled in place."""
        theme = apply_theme(QtWidgets.QApplication.instance(), name)
        for panel in self.panels.values():
            for row in panel.rows.values():
                style_plot(row.plot, theme)
            panel.trend.apply_theme(theme)
            panel.update()

    # --- file actions ----------------------------------------------------------------
    def _dir(self) -> str:
        return save_folder(self.settings.last_dir)  # never inside the package (monitor/gui/folders.py)

    def _remember_dir(self, path: str) -> None:
        self.settings.last_dir = str(Path(path).parent)
        self._save()

    def show_connect_dialog(self) -> None:
        from monitor.gui.connect_dialog import ConnectDialog

        dialog = ConnectDialog(self.settings, self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self._save()
            sources = dialog.sources()
            if self.session.replay is not None:  # live data after a recording: a new session
                self.start_clean(sources)
                return
            for source in sources:
                self.add_source(source)

    def add_source(self, source) -> bool:
        """Start a source; a failure is shown, not raised (the window keeps running)."""
        try:
            self.session.add_source(source)
        except Exception as exc:
            self.on_error(f"Could not start {source.describe()}:\n{exc}")
            return False
        self.log.set_label(self.session.source_label())
        self._bind_replay()
        return True

    def _bind_replay(self) -> None:
        replay = self.session.replay
        if replay is None:
            self.replay_bar.bind(None)
        elif self.replay_bar.source is not replay:
            self.replay_bar.bind(replay, replay.session.path.name)

    def start_clean(self, sources: list) -> bool:
        """Switch to ``sources`` on a clean session: nothing of the previous source (its
        buffers, windows, trends, baselines, estimates, tabs) is joined to theirs. The
        estimates of earlier sources stay in the log for the CSV export, labelled."""
        try:
            saved = self.session.start_clean(sources)
        except Exception as exc:
            self.on_error(f"Could not start {', '.join(s.describe() for s in sources)}:\n{exc}")
            sources = []
            saved = None
        self.log.begin_source(self.session.source_id, self.session.source_label())
        for subject in list(self.panels):
            panel = self.panels.pop(subject)
            self.tabs.removeTab(self.tabs.indexOf(panel))
            panel.deleteLater()
        if not self.panels and self.tabs.count() == 0:
            self.stack.setCurrentWidget(self.empty_label)
        if saved is not None:
            self.record_action.setText("Start recording…")
            self.statusBar().showMessage(f"source changed: recording saved to {saved}", 15000)
        self._bind_replay()
        self._on_slow()
        return bool(sources)

    def seek_replay(self, seconds: float) -> None:
        """Jump in the recording: the replay restarts at ``seconds`` on a clean session
        (windows and trends spanning the jump would splice two moments of the file)."""
        from devices.replay import ReplaySource

        old = self.session.replay
        if old is None:
            return
        source = ReplaySource(old.session, speed=old.speed, loop=old.loop)
        source.seek(seconds)
        if old.paused:
            source.pause()
        self.start_clean([source])

    def open_recording_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open recording", open_folder(self.settings.last_dir), "XDF recordings (*.xdf *.xdfz);;All files (*)"
        )
        if path:
            self._remember_dir(path)
            self.open_recording(path)

    def open_recording(self, path: str | os.PathLike, speed: float = 1.0, loop: bool = False) -> bool:
        """Replay an XDF / PainMon recording on a clean session (the current sources stop;
        nothing of theirs is joined to the recording's)."""
        from devices.replay import ReplaySource

        try:
            source = ReplaySource(path, speed=speed, loop=loop)
        except Exception as exc:  # the current session keeps running
            self.on_error(f"Cannot open {path}:\n{exc}")
            return False
        return self.start_clean([source])

    def toggle_recording(self) -> None:
        if self.session.recording:
            saved = self.session.stop_recording()
            self.record_action.setText("Start recording…")
            self.statusBar().showMessage(f"recording saved to {saved}", 10000)
            return
        default = str(Path(self._dir()) / time.strftime("painmon-%Y%m%d-%H%M%S.xdf"))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Record session to", default, "XDF (*.xdf)")
        if path:
            self._remember_dir(path)
            self.start_recording(path)

    def start_recording(self, path: str | os.PathLike) -> bool:
        try:
            self.session.start_recording(path, on_error=self.recording_alert.post)
        except Exception as exc:
            self.on_error(f"Cannot record to {path}:\n{exc}")
            return False
        self.record_action.setText("Stop recording")
        self.status.set_recording(str(path))
        return True

    def export_screenshot_dialog(self) -> None:
        default = str(Path(self._dir()) / time.strftime("painmon-%Y%m%d-%H%M%S.png"))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", default, "PNG (*.png)")
        if path:
            self._remember_dir(path)
            self.save_screenshot(path)

    def save_screenshot(self, path: str | os.PathLike) -> bool:
        """Render the whole window to an image file (works offscreen too)."""
        self._on_frame()
        self._on_slow()
        ok = self.grab().save(str(path))
        if not ok:
            self.on_error(f"Could not write screenshot {path}")
        return ok

    def export_csv_dialog(self) -> None:
        default = str(Path(self._dir()) / time.strftime("painmon-estimates-%Y%m%d-%H%M%S.csv"))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export estimates", default, "CSV (*.csv)")
        if path:
            self._remember_dir(path)
            try:
                n = self.log.to_csv(path)
                self.statusBar().showMessage(f"{n} estimates written to {path}", 10000)
            except OSError as exc:
                self.on_error(f"Cannot write {path}:\n{exc}")

    def show_settings_dialog(self) -> None:
        from monitor.gui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: GuiSettings) -> None:
        """Adopt new settings: the one way settings change (Settings dialog and View
        menu alike), so the display, the View menu's ticks, the dialog (built from
        :attr:`settings` when opened) and the saved file never disagree. The engine
        restarts only when its configuration changed."""
        old = self.settings
        engine_keys = ("window_s", "hop_s", "model_path", "device")
        restart = any(getattr(old, k) != getattr(new, k) for k in engine_keys)
        self.settings = dataclasses.replace(new)
        if restart:
            self.engine_overrides.clear()  # the user chose explicitly now
        if new.theme != old.theme:
            self._show_theme(new.theme)
        if new.plot_span_s != old.plot_span_s:
            self._show_plot_span(new.plot_span_s)
        if new.trend_span_min != old.trend_span_min:
            self._show_trend_span(new.trend_span_min)
        self._sync_view_menu()
        self._save()
        if restart and self.session.engine_state != "off":
            self.start_engine()

    def start_engine(self) -> None:
        """(Re)start the engine with the current settings, off the GUI thread."""
        s = self.settings
        o = self.engine_overrides
        config = EngineConfig(
            model_path=o.get("model_path") or s.model_path or None,
            encoder_path=o.get("encoder_path"),
            device=o.get("device") or s.device,
            precision=o.get("precision") or "auto",
            backend=o.get("backend"),
            window_s=s.window_s,
            hop_s=s.hop_s,
        )
        if o.get("threads"):
            config.threads = int(o["threads"])
        self.session.start_engine(config)

    # --- lifecycle -------------------------------------------------------------------
    def _save(self) -> None:
        save_settings(self.settings, self.store)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        """Stop timers, then sources, engine and recorder (nothing recorded is lost)."""
        if not self._closed:
            self._closed = True
            self.frame_timer.stop()
            self.slow_timer.stop()
            self.session.close()  # settings were saved when changed; nothing to write here
        super().closeEvent(event)
