"""The current pain estimate: a large index on its colour band, the class probabilities,
and the state behind it (warming up, greyed for low quality, stale).

An estimate the engine flags invalid (too little usable signal) is still shown, greyed
and labelled, because hiding it would look like a frozen monitor; a clinician sees both
the number and that it is not to be trusted.
"""

from __future__ import annotations

import math

from PySide6 import QtCore, QtWidgets

from core.estimate import CLASS_NAMES, Estimate
from monitor.gui.probability_bar import ProbabilityBar
from monitor.gui.theme import BAND_COLOURS, GREYED, band_colour

STALE_AFTER_S = 5.0
"""An estimate older than this (relative to the newest data) is marked stale."""


class EstimateView(QtWidgets.QFrame):
    """Big index + probability bars + one line of state."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.state = "waiting"
        """"waiting", "warmup", "unavailable", "valid", "invalid" or "stale" (read by tests)."""
        self.index_label = QtWidgets.QLabel("--")
        self.index_label.setObjectName("painIndex")
        self.index_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.index_label.setMinimumSize(170, 110)
        font = self.index_label.font()
        font.setPointSize(48)
        font.setBold(True)
        self.index_label.setFont(font)
        self.class_label = QtWidgets.QLabel("")
        self.class_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        cfont = self.class_label.font()
        cfont.setPointSize(13)
        cfont.setBold(True)
        self.class_label.setFont(cfont)
        self.state_label = QtWidgets.QLabel("waiting for signals")
        self.state_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.state_label.setWordWrap(True)

        self.bars: dict[str, QtWidgets.QProgressBar] = {}
        grid = QtWidgets.QGridLayout()
        for row, (name, colour) in enumerate(zip(CLASS_NAMES, BAND_COLOURS, strict=True)):
            bar = ProbabilityBar(colour)  # text light on the fill, themed on the track
            grid.addWidget(QtWidgets.QLabel(f"{name}"), row, 0)
            grid.addWidget(bar, row, 1)
            self.bars[name] = bar

        layout = QtWidgets.QVBoxLayout(self)
        title = QtWidgets.QLabel("<b>Pain index</b> (0–100)")
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(title)
        layout.addWidget(self.index_label)
        layout.addWidget(self.class_label)
        layout.addLayout(grid)
        layout.addWidget(self.state_label)
        self._paint_band(GREYED)
        self.last: Estimate | None = None

    def _paint_band(self, colour: str) -> None:
        self.index_label.setStyleSheet(
            f"QLabel#painIndex {{ background-color: {colour}; color: white; border-radius: 10px; }}"
        )

    def show_warmup(self, have_s: float, need_s: float) -> None:
        """Before the first full window: how much signal is there of how much is needed."""
        if self.last is not None:
            return
        self.state = "warmup"
        self.index_label.setText("…")
        self._paint_band(GREYED)
        self.state_label.setText(f"warming up: {min(have_s, need_s):.0f} / {need_s:.0f} s of signal")

    def show_unavailable(self, reason: str) -> None:
        """No model running (failed to load, or none configured): say so instead of
        pretending to warm up."""
        if self.last is not None:
            return
        self.state = "unavailable"
        self.index_label.setText("--")
        self._paint_band(GREYED)
        self.state_label.setText(reason)

    def show_estimate(self, est: Estimate) -> None:
        self.last = est
        self.index_label.setText(f"{est.index:.0f}" if math.isfinite(est.index) else "--")
        for name, p in zip(CLASS_NAMES, est.probs, strict=True):
            self.bars[name].setValue(int(round(100 * p)))
        top = CLASS_NAMES[max(range(len(est.probs)), key=lambda i: est.probs[i])]
        self.class_label.setText(f"{top} pain")
        if est.valid:
            self.state = "valid"
            self._paint_band(band_colour(est.index))
            smoothed = f"trend {est.smoothed:.0f}" if math.isfinite(est.smoothed) else ""
            self.state_label.setText(smoothed)
        else:
            self.state = "invalid"
            self._paint_band(GREYED)
            missing = f" (missing: {', '.join(est.missing)})" if est.missing else ""
            self.state_label.setText(f"signal quality too low — not reliable{missing}")
        self.setToolTip(self._tooltip(est))

    def check_stale(self, t_ref: float) -> None:
        """Grey the display when no estimate arrived for a while (engine stalled, data gone)."""
        if self.last is None or math.isnan(t_ref):
            return
        age = t_ref - self.last.t_end
        if age > STALE_AFTER_S and self.state != "stale":
            self.state = "stale"
            self._paint_band(GREYED)
            self.state_label.setText(f"no new estimate for {age:.0f} s")

    @staticmethod
    def _tooltip(est: Estimate) -> str:
        q = ", ".join(f"{m} {v:.2f}" for m, v in sorted(est.quality.items()))
        lat = est.latency.get("total")
        lat_text = f"{1000 * lat:.0f} ms" if lat is not None else "n/a"
        return f"model: {est.model or 'n/a'}\nquality: {q or 'n/a'}\ninference: {lat_text}"
