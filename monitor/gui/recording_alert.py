"""Telling the user, at once, that a recording stopped by itself (a full disk).

The recorder fails on its writer thread; :class:`RecordingAlert` carries its one-line
message to the GUI thread as a queued Qt signal and there resets the Record action, clears
the REC label, puts the message in the status bar (until the next message) and opens a
warning box. The box is window-modal but opened with ``open()``, not ``exec()``: the
dashboard keeps drawing behind it, and a scripted (offscreen) run is never blocked by it.
"""

from __future__ import annotations

import logging

from PySide6 import QtCore, QtWidgets

log = logging.getLogger(__name__)

TITLE = "Recording stopped"
START_TEXT = "Start recording…"


class RecordingAlert(QtCore.QObject):
    """Shows recording failures of one main window (``window`` has ``record_action`` and a
    :class:`monitor.gui.status_bar.StatusBar` as ``status``)."""

    failed = QtCore.Signal(str)

    def __init__(self, window: QtWidgets.QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.box: QtWidgets.QMessageBox | None = None
        """The last warning box shown (tests look at it)."""
        self.failed.connect(self._show, QtCore.Qt.ConnectionType.QueuedConnection)

    def post(self, message: str) -> None:
        """The recorder's ``on_error``: callable from any thread."""
        self.failed.emit(message)

    @QtCore.Slot(str)
    def _show(self, message: str) -> None:
        window = self.window
        action = getattr(window, "record_action", None)
        if action is not None:
            action.setText(START_TEXT)
        status = getattr(window, "status", None)
        if status is not None and hasattr(status, "set_recording"):
            status.set_recording(None)
        window.statusBar().showMessage(f"⚠ {message}")  # stays until the next message
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, TITLE, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, window)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.box = box
