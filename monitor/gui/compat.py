"""Work-around for a reference-counting bug of PySide6 6.12.0 on Python < 3.12.

In that release ``SignalInstance.emit`` returns ``True`` without taking a reference to
it, so every signal emission lowers ``True``'s reference count by one. pyqtgraph emits
several signals per curve update, so a dashboard redrawing at 30 fps drives the count to
zero within about a minute and CPython aborts with "bool_dealloc: deallocating True or
False" (found while building this dashboard; 6.11.2 is not affected and Python >= 3.12
makes ``True`` immortal). The proper fix is to avoid that release in the dependencies;
until then :func:`guard_signal_refcount` detects the leak with a probe and, only if it is
present, gives ``True`` a reserve of references no run can use up (2**40 emissions).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

RESERVE = 1 << 40
_applied = False


def signal_emit_leaks() -> bool:
    """True when emitting a Qt signal lowers the reference count of ``True``."""
    from PySide6 import QtCore

    class _Probe(QtCore.QObject):
        ping = QtCore.Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(64):
        probe.ping.emit()
    return before - sys.getrefcount(True) >= 64


def guard_signal_refcount() -> bool:
    """Apply the reserve once if this PySide6 leaks; returns whether it was applied."""
    global _applied
    if _applied:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not signal_emit_leaks():
        return False
    # ob_refcnt is the first field of every CPython object
    ctypes.c_ssize_t.from_address(id(True)).value += RESERVE
    _applied = True
    from PySide6 import __version__ as pyside_version

    log.warning("PySide6 %s leaks a reference to True per signal emission; reserve applied", pyside_version)
    return True
