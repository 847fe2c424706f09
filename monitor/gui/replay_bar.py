"""Replay controls: play / pause, speed, seek slider, loop.

Talks to the replay source through the small control surface E's
``devices.replay.ReplaySource`` offers (pause, resume, seek, position, duration, speed,
loop). The slider follows the position from the main window's slow timer and does not
fight the user: while it is being dragged, only releasing it seeks.

Times are the file's own (minutes:seconds into the recording). At the end of the file the
bar says so and offers Play, which starts the recording again; a seek, like a restart,
goes through :attr:`ReplayBar.seek_handler` so the window can begin a clean session
rather than splice two moments of the file together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

log = logging.getLogger(__name__)

SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0)
SLIDER_STEPS = 1000


def _read(obj, name: str, default=math.nan):
    """An attribute that may be a property or a getter method."""
    value = getattr(obj, name, default)
    return value() if callable(value) else value


class ReplayBar(QtWidgets.QToolBar):
    """A toolbar bound to one replay source (``bind``); hidden when there is none."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__("Replay", parent)
        self.setObjectName("replayBar")
        self.source = None
        self.seek_handler: Callable[[float], None] | None = None
        """Called with the target second instead of ``source.seek`` (the main window
        restarts the replay there on a clean session)."""
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setText("Pause")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.toggle)
        self.speed_box = QtWidgets.QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}×", s)
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_box.currentIndexChanged.connect(self._speed_changed)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setMinimumWidth(250)
        self.slider.sliderReleased.connect(self._seek_released)
        self.position_label = QtWidgets.QLabel("0:00 / 0:00")
        self.loop_box = QtWidgets.QCheckBox("loop")
        self.loop_box.toggled.connect(self._loop_changed)
        self.name_label = QtWidgets.QLabel("")
        for w in (self.name_label, self.play_button, self.speed_box, self.slider, self.position_label, self.loop_box):
            self.addWidget(w)

    def bind(self, source, name: str = "") -> None:
        """Attach to ``source`` (None hides the bar)."""
        self.source = source
        self.setVisible(source is not None)
        if source is None:
            return
        self.name_label.setText(name + "  ")
        self.loop_box.blockSignals(True)
        self.loop_box.setChecked(bool(_read(source, "loop", False)))
        self.loop_box.blockSignals(False)
        speed = float(_read(source, "speed", 1.0) or 1.0)
        idx = self.speed_box.findData(speed)
        if idx < 0:
            self.speed_box.addItem(f"{speed:g}×", speed)
            idx = self.speed_box.count() - 1
        self.speed_box.blockSignals(True)
        self.speed_box.setCurrentIndex(idx)
        self.speed_box.blockSignals(False)
        self.update_position()

    # --- user actions ----------------------------------------------------------------
    @property
    def at_end(self) -> bool:
        """The replay reached the end of the file (and does not loop)."""
        finished = getattr(self.source, "finished", None)
        return bool(finished is not None and finished.is_set())

    def toggle(self) -> None:
        """Pause / resume; at the end of the file, play it again from the start."""
        if self.source is None:
            return
        if self.at_end:
            self.seek_seconds(0.0)
            if self.source is not None and bool(_read(self.source, "paused", False)):
                self.source.resume()
        elif bool(_read(self.source, "paused", False)):
            self.source.resume()
        else:
            self.source.pause()
        self.update_position()

    def _speed_changed(self, _index: int) -> None:
        if self.source is None:
            return
        speed = float(self.speed_box.currentData())
        setter = getattr(self.source, "set_speed", None)
        if callable(setter):
            setter(speed)
        else:
            self.source.speed = speed

    def _loop_changed(self, checked: bool) -> None:
        if self.source is None:
            return
        setter = getattr(self.source, "set_loop", None)
        if callable(setter):
            setter(checked)
        else:
            self.source.loop = checked

    def _seek_released(self) -> None:
        self.seek_fraction(self.slider.value() / SLIDER_STEPS)

    def seek_fraction(self, fraction: float) -> None:
        """Jump to ``fraction`` (0-1) of the recording."""
        if self.source is None:
            return
        duration = float(_read(self.source, "duration"))
        if math.isfinite(duration) and duration > 0:
            self.seek_seconds(max(0.0, min(1.0, fraction)) * duration)

    def seek_seconds(self, seconds: float) -> None:
        """Jump to ``seconds`` into the recording (through :attr:`seek_handler` if set)."""
        if self.source is None:
            return
        if self.seek_handler is not None:
            self.seek_handler(seconds)
        else:
            self.source.seek(seconds)
        self.update_position()

    # --- display ---------------------------------------------------------------------
    def update_position(self) -> None:
        if self.source is None:
            return
        at_end = self.at_end
        paused = bool(_read(self.source, "paused", False))
        self.play_button.setText("Play" if paused or at_end else "Pause")
        self.play_button.setToolTip("Play from the start (Space)" if at_end else "Play / pause (Space)")
        pos = float(_read(self.source, "position"))
        duration = float(_read(self.source, "duration"))
        if math.isfinite(pos) and math.isfinite(duration) and duration > 0:
            if not self.slider.isSliderDown():
                self.slider.blockSignals(True)
                self.slider.setValue(int(round(SLIDER_STEPS * pos / duration)))
                self.slider.blockSignals(False)
            state = "end of file" if at_end else "paused at file" if paused else "file"
            self.position_label.setText(f"{state} {_clock(pos)} / {_clock(duration)}")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
