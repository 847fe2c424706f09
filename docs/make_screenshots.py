"""Retake the dashboard screenshots under docs/ (the README shows them).

Run ``QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py`` (about three minutes on
a CPU): the demo (simulated wearable over LSL, the bundled model) runs for two minutes
while a user enters a few events close together, then the window is saved in the light
and the dark theme, with its trend on its own (crowded markers), and once more 8 s after the
wearable's streams stopped (the stale state). Last, the bundled sample session is replayed to its end.
A script, not a library module; it writes nothing but the PNG files.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6 import QtCore, QtWidgets

from monitor.gui import app
from monitor.gui.main_window import MainWindow
from monitor.gui.subject_panel import EVENT_MEDICATION, EVENT_PAIN, NOTE_PREFIX

log = logging.getLogger("screenshots")

DOCS = Path(__file__).resolve().parent
SAMPLE = DOCS.parent / "assets" / "sessions" / "sample-sim.xdf"
SIZE = (1400, 860)


def wait(seconds: float) -> None:
    """Run the event loop for ``seconds`` (the window keeps updating)."""
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def save(window: MainWindow, name: str, widget: QtWidgets.QWidget | None = None) -> None:
    """Bring the window up to date and save it (or one of its widgets) under docs/."""
    window._on_frame()
    window._on_slow()
    QtWidgets.QApplication.processEvents()
    path = DOCS / name
    (widget or window).grab().save(str(path))
    log.info("saved %s", path)


def demo_shots(seconds: float) -> None:
    """Light, dark, crowded trend and stale screenshots of one demo run."""
    sources, background = app.demo_sources(subjects=1, seed=0)
    window = app.build_window(sources, background=background)
    window.resize(*SIZE)
    window.show()
    events = {seconds - 34: EVENT_PAIN, seconds - 31: EVENT_MEDICATION,
              seconds - 29: NOTE_PREFIX + "repositioned", seconds - 12: NOTE_PREFIX + "gave water"}
    elapsed = 0.0
    for at, label in sorted(events.items()):
        wait(at - elapsed)
        elapsed = at
        window.add_event(label, "sim-1")
    wait(seconds - elapsed)
    save(window, "screenshot-demo.png")
    save(window, "screenshot-light.png")
    save(window, "screenshot-trend-markers.png", window.panels["sim-1"].trend)
    window.apply_settings(dataclasses.replace(window.settings, theme="dark"))
    save(window, "screenshot-dark.png")
    window.apply_settings(dataclasses.replace(window.settings, theme="light"))
    window.session.stop_sources()  # the wearable is lost: after 5 s without samples the subject is stale
    wait(8.0)
    save(window, "screenshot-stale.png")
    window.close()


def replay_end_shot(start_s: float, speed: float) -> None:
    """The sample session replayed from ``start_s`` to its end."""
    window = app.build_window(replay_path=SAMPLE)
    window.resize(*SIZE)
    window.show()
    window.replay_bar.speed_box.setCurrentIndex(window.replay_bar.speed_box.findData(speed))
    window.seek_replay(start_s)
    replay = window.session.replay
    while not replay.finished.is_set():
        wait(0.5)
    window.show_subject("sim-1")  # the file has two subjects: the overview would be in front
    wait(2.0)
    save(window, "screenshot-replay-end.png")
    window.close()


def main(argv: list[str] | None = None) -> int:
    """Take every screenshot; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=125.0, help="demo time before the screenshots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PAINMON_SETTINGS", str(Path(tempfile.mkdtemp()) / "settings.ini"))
    app.application()
    demo_shots(args.seconds)
    replay_end_shot(start_s=90.0, speed=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
