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
    """Thread-safe entry points (``post_*``) that re-emit on the GUI thread.

    Everything posted carries the :attr:`generation` it was posted in; when the dashboard
    starts a clean session (a recording opened over a live one, a seek) it bumps the
    generation, and what the previous sources and engine posted but the GUI had not yet
    received is dropped instead of being spliced into the new session.
    """

    estimate = QtCore.Signal(object)
    """An :class:`core.estimate.Estimate`."""
    marker = QtCore.Signal(object)
    """A :class:`core.buffers.Marker`."""
    error = QtCore.Signal(str)
    """A message for the user from a background component."""
    _posted = QtCore.Signal(int, str, object)
    """(generation, kind, payload), queued to the GUI thread when posted elsewhere."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = 0
        self.dropped = 0
        """Items of an earlier generation dropped on arrival (read by tests)."""
        self._posted.connect(self._deliver)

    def new_generation(self) -> int:
        """Drop, from now on, whatever earlier sources and engines posted (GUI thread)."""
        self.generation += 1
        return self.generation

    def post_estimate(self, est: Estimate) -> None:
        self._posted.emit(self.generation, "estimate", est)

    def post_marker(self, marker: Marker) -> None:
        self._posted.emit(self.generation, "marker", marker)

    @QtCore.Slot(int, str, object)
    def _deliver(self, generation: int, kind: str, payload: object) -> None:
        if generation != self.generation:
            self.dropped += 1
            return
        (self.estimate if kind == "estimate" else self.marker).emit(payload)

    def post_error(self, message: str) -> None:
        self.error.emit(message)
