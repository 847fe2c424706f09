"""Work-around for reference-counting bugs of PySide6 6.12.0 on Python < 3.12.

That release (an ``abi3`` wheel that installs on Python 3.10+) returns ``None`` from
void methods and ``True`` from ``SignalInstance.emit`` without taking a reference. Every
``setText``, ``setData``, repaint or signal emission therefore lowers the reference count
of ``None`` or ``True`` by one; a dashboard redrawing at 30 fps drives one of them to zero
within a minute or two and CPython aborts with "none_dealloc: deallocating None" /
"bool_dealloc". Python >= 3.12 makes these objects immortal (no harm there) and 6.11.2 is
not affected. The proper fix is to exclude 6.12.0 in the dependencies; until then
:func:`guard_refcounts` detects each leak with a probe and, only where one is present,
gives the leaking singleton a reserve of references that no run can use up (2**40).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

RESERVE = 1 << 40
PROBES = 64
_guarded: set[str] = set()


def _leaks(obj: object, action) -> bool:
    before = sys.getrefcount(obj)
    for _ in range(PROBES):
        action()
    return before - sys.getrefcount(obj) >= PROBES


def leaking_singletons() -> list[str]:
    """Names of the singletons ("None", "True") this PySide6 leaks references to."""
    from PySide6 import QtCore

    class _Probe(QtCore.QObject):
        ping = QtCore.Signal()

    probe = _Probe()
    found = []
    if _leaks(None, lambda: probe.setObjectName("probe")):
        found.append("None")
    if _leaks(True, probe.ping.emit):
        found.append("True")
    return found


def guard_refcounts() -> list[str]:
    """Apply the reserve once per leaking singleton; returns the singletons guarded."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return []
    objects = {"None": None, "True": True}
    for name in leaking_singletons():
        if name in _guarded:
            continue
        # ob_refcnt is the first field of every CPython object
        ctypes.c_ssize_t.from_address(id(objects[name])).value += RESERVE
        _guarded.add(name)
        from PySide6 import __version__ as pyside_version

        log.warning("PySide6 %s leaks references to %s; reserve applied (use PySide6 != 6.12.0)",
                    pyside_version, name)
    return sorted(_guarded)
