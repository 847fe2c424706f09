"""Issue 12 (2): without a display the dashboard says so on one line and exits 1, instead of
Qt aborting the process (SIGABRT) with a misleading message about xcb-cursor0."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from helpers import REPO_ROOT

from monitor.gui.display import (
    XCB_LIBRARIES,
    NoDisplayError,
    check_display,
    missing_libraries,
    x_server_answers,
)


def _run_painmon(tmp_path, *argv: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PAINMON_SETTINGS=str(tmp_path / "settings.ini"))
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-m", "monitor", *argv], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _free_display() -> str:
    """An X display number nobody listens on (no socket, no TCP port)."""
    for n in range(240, 300):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", 6000 + n)) != 0:
                    return f":{n}"
    raise AssertionError("no free display number")


@pytest.mark.parametrize("command", [["demo", "--duration", "1"], ["monitor", "--duration", "1"]])
def test_no_display_is_one_line_and_exit_1_not_a_core_dump(tmp_path, command):
    proc = _run_painmon(tmp_path, *command, DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # SIGABRT would be -6
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"painmon {command[0]}: error: no display (DISPLAY is unset): "
                     "use --headless, or QT_QPA_PLATFORM=offscreen"]


def test_a_display_nobody_answers_on_is_one_line_too(tmp_path):
    display = _free_display()
    proc = _run_painmon(tmp_path, "demo", "--duration", "1", DISPLAY=display, QT_QPA_PLATFORM=None)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "QT_QPA_PLATFORM=offscreen" in lines[0]
    # either the X11 libraries are missing here (named with their package) or the server is
    assert f"cannot connect to X server {display}" in lines[0] or "apt-get install" in lines[0]


def test_check_display_rules():
    check_display({"QT_QPA_PLATFORM": "offscreen"}, "linux")  # nothing needed
    check_display({"QT_QPA_PLATFORM": "minimal:enable_fonts"}, "linux")
    check_display({}, "win32")
    check_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")  # Qt picks its Wayland plugin
    with pytest.raises(NoDisplayError, match="^no display \\(DISPLAY is unset\\): use --headless"):
        check_display({}, "linux")
    with pytest.raises(NoDisplayError, match="WAYLAND_DISPLAY is unset"):
        check_display({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux")
    with pytest.raises(NoDisplayError, match="no display"):
        check_display({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not x_server_answers(_free_display())


def test_missing_libraries_are_named_with_their_package():
    found = missing_libraries({"libc.so.6": "libc6", "libpainmon-absent.so.9": "painmon-absent"})
    assert found == {"libpainmon-absent.so.9": "painmon-absent"}


def test_readme_lists_every_package_the_x11_plugin_needs():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    missing = [pkg for pkg in XCB_LIBRARIES.values() if pkg not in readme]
    assert not missing, f"README does not list {missing}"
