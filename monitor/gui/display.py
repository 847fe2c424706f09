"""Can a window be shown at all? Checked before the QApplication exists.

Without a display Qt does not fail politely: the xcb platform plugin aborts the process
(SIGABRT, a core dump) with a message about ``xcb-cursor0`` that sends users hunting for
the wrong package. :func:`check_display` answers the question first and raises one
:class:`NoDisplayError` naming what is missing (the command line prints it on one line and
exits 1): no display at all, a display nobody answers on, or a system library the X11
plugin needs, with the Debian package that provides it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

from core.errors import PainMonError

NO_WINDOW_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"})
"""Qt platforms that need no window system (the check has nothing to say about them)."""

XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
}
"""The shared libraries Qt's xcb plugin (``libqxcb.so``, ``libQt6XcbQpa.so.6``) links
against (``ldd``), with the Debian/Ubuntu package of each. The README lists the packages."""

NO_DISPLAY_HINT = "use --headless, or QT_QPA_PLATFORM=offscreen"


class NoDisplayError(PainMonError, RuntimeError):
    """No window can be shown: no display, an unreachable one, or missing X11 libraries."""


def qt_platform(env: Mapping[str, str]) -> str:
    """The platform plugin Qt will be asked for ("" = its default), without options."""
    return env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].split(";", 1)[0].strip().lower()


def missing_libraries(sonames: Mapping[str, str] | None = None) -> dict[str, str]:
    """The libraries of ``sonames`` (default :data:`XCB_LIBRARIES`) that the dynamic
    loader cannot load, with their packages."""
    missing = {}
    for soname, package in (sonames or XCB_LIBRARIES).items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing[soname] = package
    return missing


class XProbe:
    """A connection to an X server, made the way Qt will make its own (libxcb).

    Kept open until Qt has connected (:meth:`close` after the QApplication exists): a bare
    X server (Xvfb without a window manager) resets when its last client leaves and
    refuses connections meanwhile, so a probe closed just before Qt connects made Qt abort.
    """

    def __init__(self, display: str) -> None:
        self._xcb = None
        self._conn = None
        try:
            xcb = ctypes.CDLL("libxcb.so.1")
        except OSError:
            return
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
        self._xcb = xcb
        self._conn = xcb.xcb_connect(display.encode(), None)

    @property
    def ok(self) -> bool:
        return bool(self._conn) and self._xcb is not None and self._xcb.xcb_connection_has_error(self._conn) == 0

    def close(self) -> None:
        if self._conn and self._xcb is not None:
            self._xcb.xcb_disconnect(self._conn)
        self._conn = None


def x_server_answers(display: str) -> bool:
    """Whether an X server accepts a connection on ``display`` (False when libxcb itself
    is missing)."""
    probe = XProbe(display)
    try:
        return probe.ok
    finally:
        probe.close()


def check_display(env: Mapping[str, str] | None = None, platform: str | None = None) -> XProbe | None:
    """Raise :class:`NoDisplayError` when Qt could not open a window here.

    Only Linux/BSD window systems are checked (Windows and macOS always have one); a
    platform that needs no window system (:data:`NO_WINDOW_PLATFORMS`) always passes.
    Returns the open X connection of the check (None when there was none to make): close
    it once Qt has connected (see :class:`XProbe`).
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return None
    qpa = qt_platform(env)
    if qpa in NO_WINDOW_PLATFORMS:
        return None
    display, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if qpa == "wayland":
        if not wayland:
            raise NoDisplayError(f"no display: QT_QPA_PLATFORM=wayland but WAYLAND_DISPLAY is unset; {NO_DISPLAY_HINT}")
        return None
    if qpa not in ("", "xcb"):
        return None  # another plugin: Qt reports its own problems
    if not display:
        if wayland and qpa == "":
            return None  # a Wayland session: Qt picks its Wayland plugin
        raise NoDisplayError(f"no display (DISPLAY is unset): {NO_DISPLAY_HINT}")
    missing = missing_libraries()
    if missing:
        raise NoDisplayError(
            f"cannot open a window on {display}: missing {', '.join(missing)} "
            f"(apt-get install {' '.join(sorted(set(missing.values())))}); or {NO_DISPLAY_HINT}"
        )
    probe = XProbe(display)
    if not probe.ok:
        probe.close()
        raise NoDisplayError(f"no display: cannot connect to X server {display}; {NO_DISPLAY_HINT}")
    return probe
