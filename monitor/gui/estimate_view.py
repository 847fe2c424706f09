"""The current pain estimate: the headline on its colour band, the class probabilities, the
mode, and the state behind it (warming up, calibrating, low quality, uncertain, stale).

The big number is the **headline**: the engine's causal smoothed index (``smoothed``; see
:mod:`monitor.engine.smoothing`), falling back to the raw index only before a trend
exists. The class word and the colour band both come from that number through
:func:`core.estimate.band_of` (fixed bands no < 33.3 <= low < 66.7 <= high), so word and
colour can never disagree; the three probabilities of the raw window are still shown.

What each state of the engine (:mod:`monitor.engine.states`) looks like:

* ``ok`` — headline on its band colour, "raw 42" beside it;
* ``calibrating`` — the headline greyed, "learning the baseline 40 %";
* ``uncertain`` — the headline greyed, "uncertain: signals unlike the training data";
* ``low_quality`` — no number ("--"), greyed, "signal quality too low — not reliable";
* ``stale`` — the last number kept but greyed, "no signal for 7 s".

No NaN ever reaches a widget: a number that was not measured is shown as "--" and a
probability that was not measured as an empty bar. The view also greys itself when no
estimate of any kind has arrived for :data:`NO_ESTIMATE_AFTER_S` (an engine that stopped
delivering), whatever the data timestamps say.
"""

from __future__ import annotations

import math
import time

from PySide6 import QtCore, QtWidgets

from core.estimate import CLASS_NAMES, Estimate, band_of
from monitor.gui.probability_bar import ProbabilityBar
from monitor.gui.theme import BAND_COLOURS, GREYED, band_colour

NO_ESTIMATE_AFTER_S = 6.0
"""Grey the view when no estimate (not even a stale status) arrived for this long (wall clock)."""
MODE_TEXT = {"relative": "relative to this person's baseline", "absolute": "population model (no baseline)"}

def headline_of(est: Estimate) -> float:
    """The number the dashboard shows big: the smoothed index, else the raw one, else NaN."""
    if math.isfinite(est.smoothed):
        return float(est.smoothed)
    return float(est.index) if math.isfinite(est.index) else math.nan


def _percent(p: float) -> int:
    return int(round(100 * p)) if isinstance(p, (int, float)) and math.isfinite(p) else 0


class EstimateView(QtWidgets.QFrame):
    """Big index + probability bars + one line of state."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.state = "waiting"
        """"waiting", "warmup", "unavailable", "valid", "invalid", "calibrating", "uncertain"
        or "stale" (read by tests)."""
        self.engine_state = ""
        """The newest estimate's state (:data:`core.estimate.STATES`), empty before one."""
        self.received_at = math.nan
        """Monotonic wall time the newest estimate (of any state) arrived."""
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
        self.mode_label = QtWidgets.QLabel("")
        self.mode_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.mode_label.setObjectName("estimateMode")

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
        layout.addWidget(self.mode_label)
        self._paint_band(GREYED)
        self.last: Estimate | None = None
        """The newest estimate that was computed from a window (not a stale status)."""

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
        """Show an estimate of any state (see the module docstring)."""
        self.received_at = time.monotonic()
        self.engine_state = est.state
        self.mode_label.setText(f"mode: {est.mode} — {MODE_TEXT.get(est.mode, est.mode)}")
        if est.state == "stale":
            self._show_stale(est.silent_s)
            return
        self.last = est
        headline = headline_of(est)
        for name, p in zip(CLASS_NAMES, est.probs, strict=True):
            self.bars[name].setValue(_percent(p))
        measured = est.valid and est.state != "low_quality" and math.isfinite(headline)
        self.index_label.setText(f"{headline:.0f}" if measured else "--")
        band = band_of(headline) if measured else None
        self.class_label.setText(f"{band} pain" if band else "")
        raw = f"raw {est.index:.0f}" if math.isfinite(est.index) else ""
        if not measured:
            self.state = "invalid"
            self._paint_band(GREYED)
            missing = f" (missing: {', '.join(est.missing)})" if est.missing else ""
            self.state_label.setText(f"signal quality too low — not reliable{missing}")
        elif est.state == "calibrating":
            self.state = "calibrating"
            self._paint_band(GREYED)
            learnt = f" {100 * est.calibration:.0f} %" if math.isfinite(est.calibration) else ""
            self.state_label.setText(f"learning the baseline{learnt} — {raw}")
        elif est.state == "uncertain":
            self.state = "uncertain"
            self._paint_band(GREYED)
            self.state_label.setText(f"uncertain: signals unlike the training data — {raw}")
        else:
            self.state = "valid"
            self._paint_band(band_colour(headline))
            self.state_label.setText(raw)
        self.class_label.setStyleSheet("" if self.state == "valid" else f"color: {GREYED};")
        self.setToolTip(self._tooltip(est))

    def _show_stale(self, silent_s: float) -> None:
        """Keep the last number, greyed, and say for how long nothing came."""
        self.state = "stale"
        self._paint_band(GREYED)
        self.class_label.setStyleSheet(f"color: {GREYED};")
        how_long = f" for {silent_s:.0f} s" if math.isfinite(silent_s) else ""
        self.state_label.setText(f"no signal{how_long} — last value greyed")

    def check_stale(self, _t_ref: float = math.nan) -> None:
        """Grey the display when no estimate of any kind arrived for
        :data:`NO_ESTIMATE_AFTER_S` by the wall clock (an engine that stopped delivering;
        a subject whose signals stopped gets ``stale`` estimates from the engine instead)."""
        if self.last is None or not math.isfinite(self.received_at):
            return
        age = time.monotonic() - self.received_at
        if age > NO_ESTIMATE_AFTER_S:
            self.state = "stale"
            self._paint_band(GREYED)
            self.class_label.setStyleSheet(f"color: {GREYED};")
            self.state_label.setText(f"no new estimate for {age:.0f} s")

    @staticmethod
    def _tooltip(est: Estimate) -> str:
        q = ", ".join(f"{m} {v:.2f}" for m, v in sorted(est.quality.items()))
        lat = est.latency.get("total")
        lat_text = f"{1000 * lat:.0f} ms" if lat is not None else "n/a"
        return f"model: {est.model or 'n/a'}\nquality: {q or 'n/a'}\ninference: {lat_text}"
