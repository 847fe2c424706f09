"""Hands results from worker and source threads to the GUI thread.

The engine calls its callbacks on its worker thread and the hub calls marker listeners on
source threads; Qt widgets may only be touched on the GUI thread. Emitting a signal of a
QObject that lives on the GUI thread from another thread queues the call into the GUI
event loop, which is exactly the hand-over needed, without locks in the widgets.
"""

from __future__ import annotations

from PySide6 import QtCore

from core.buffers import Marker
from core.estimate import Estimate


class GuiBridge(QtCore.QObject):
    """Thread-safe entry points (``post_*``) that re-emit on the GUI thread."""

    estimate = QtCore.Signal(object)
    """An :class:`core.estimate.Estimate`."""
    marker = QtCore.Signal(object)
    """A :class:`core.buffers.Marker`."""
    error = QtCore.Signal(str)
    """A message for the user from a background component."""

    def post_estimate(self, est: Estimate) -> None:
        self.estimate.emit(est)

    def post_marker(self, marker: Marker) -> None:
        self.marker.emit(marker)

    def post_error(self, message: str) -> None:
        self.error.emit(message)
