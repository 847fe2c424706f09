"""One row of the signals column: a scrolling plot of one modality with its quality dot
and derived vital.

The plot's x axis is "seconds before the newest sample of the session" (-span .. 0), so
all rows of a subject scroll together and a stream that stops visibly falls behind the
others. Redraws read the ring buffer only when it received new rows since the last one
(``RingBuffer.total``), and hand pyqtgraph contiguous numpy arrays with peak-preserving
downsampling and clipping to the view, so a 250 Hz ECG at a 120 s span stays cheap.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.buffers import RingBuffer
from core.modalities import REGISTRY
from core.vitals import Vital
from monitor.gui.quality import ChannelQuality
from monitor.gui.theme import GREYED, MODALITY_COLOURS, QUALITY_COLOURS

MAX_CURVES = 4
"""Channels drawn per modality (a 16-channel device would be unreadable in one row)."""


def break_gaps(x: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN row wherever samples are missing, so the plot shows a gap instead of
    a straight line bridging it (the buffers never fill gaps, neither does the plot)."""
    if x.size < 3:
        return x, data
    dt = np.diff(x)
    step = float(np.median(dt))
    cuts = np.flatnonzero(dt > max(3.0 * step, 0.25)) + 1
    if cuts.size == 0:
        return x, data
    x = np.insert(x, cuts, np.nan)
    data = np.insert(data.astype(np.float64), cuts, np.nan, axis=0)
    return x, data


class EdgeSafeAxis(pg.AxisItem):
    """A value axis that leaves out a tick whose label would be cut at the plot's top or
    bottom edge (an autoscaled range often puts a "nice" value right at the edge, and
    its text was drawn half outside the plot)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        levels = super().tickValues(minVal, maxVal, size)
        if maxVal <= minVal or size <= 0:
            return levels
        half_text = QtGui.QFontMetrics(self.font() if self.style.get("tickFont") is None
                                       else self.style["tickFont"]).height() / 2.0
        margin = half_text * (maxVal - minVal) / size
        return [(spacing, [v for v in values if minVal + margin <= v <= maxVal - margin])
                for spacing, values in levels]


class QualityDot(QtWidgets.QLabel):
    """A coloured disc with the verdict as tooltip and accessible text."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setFixedSize(14, 14)
        self.level = ""
        self.set_quality(ChannelQuality("unknown", "no data yet"))

    def set_quality(self, quality: ChannelQuality) -> None:
        if quality.level == self.level and self.toolTip().endswith(quality.reason):
            return
        self.level = quality.level
        colour = QUALITY_COLOURS.get(quality.level, QUALITY_COLOURS["unknown"])
        self.setStyleSheet(f"background-color: {colour}; border-radius: 7px;")
        text = quality.level + (f": {quality.reason}" if quality.reason else "")
        self.setToolTip(text)
        self.setAccessibleName(text)


class SignalRow(QtWidgets.QWidget):
    """Label column (name, units, quality, vital) beside a pyqtgraph plot of one stream."""

    def __init__(self, modality: str, units: str = "", span_s: float = 30.0,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.modality = modality
        info = REGISTRY.get(modality)
        self.units = units or (info.units if info else "")
        self.span_s = span_s
        self._seen_total = -1
        self._seen_buffer: RingBuffer | None = None
        self._last_ref = np.nan
        self._times = np.empty(0)
        self._data = np.empty((0, 1), dtype=np.float32)

        self.name_label = QtWidgets.QLabel(f"<b>{modality}</b>")
        self.units_label = QtWidgets.QLabel(self.units)
        self.quality_dot = QualityDot()
        self.vital_label = QtWidgets.QLabel("")
        self.vital_label.setMinimumWidth(110)
        font = self.vital_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.vital_label.setFont(font)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.quality_dot)
        top.addWidget(self.name_label)
        top.addStretch(1)
        side = QtWidgets.QVBoxLayout()
        side.addLayout(top)
        side.addWidget(self.units_label)
        side.addWidget(self.vital_label)
        side.addStretch(1)
        side_box = QtWidgets.QWidget()
        side_box.setLayout(side)
        side_box.setFixedWidth(130)

        self.plot = pg.PlotWidget(axisItems={"left": EdgeSafeAxis("left")})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        # no grid: grid lines belong to the axes, which would then be repainted (with
        # their text) on every curve update, ~4x the cost of a frame
        self.plot.setLabel("left", units=None, text=self.units)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # "a.u. (x0.001)" confuses readers
        self.plot.getPlotItem().setClipToView(True)
        self.plot.getPlotItem().setDownsampling(auto=True, mode="peak")
        self.plot.disableAutoRange()
        self._y_range = (np.nan, np.nan)
        self.plot.setXRange(-span_s, 0, padding=0)
        self.plot.setMinimumHeight(70)
        colour = MODALITY_COLOURS.get(modality, "#444444")
        self._pen = pg.mkPen(colour, width=1.5)
        self.curves: list[pg.PlotDataItem] = [self.plot.plot(pen=self._pen)]

        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(side_box)
        layout.addWidget(self.plot, 1)

    # --- configuration ---------------------------------------------------------------
    def show_time_axis(self, visible: bool) -> None:
        """Only the bottom row of a subject shows the (shared) time axis."""
        self.plot.getPlotItem().showAxis("bottom", visible)
        if visible:
            self.plot.setLabel("bottom", "seconds")

    def set_span(self, span_s: float) -> None:
        self.span_s = span_s
        self.plot.setXRange(-span_s, 0, padding=0)
        self._seen_total = -1  # force a re-read of the longer/shorter history

    # --- updates ---------------------------------------------------------------------
    def refresh(self, buf: RingBuffer | None, t_ref: float) -> bool:
        """Redraw from ``buf`` relative to ``t_ref``; False when nothing changed."""
        if buf is None or np.isnan(t_ref):
            return False
        changed = buf is not self._seen_buffer or buf.total != self._seen_total
        if changed:
            self._seen_buffer, self._seen_total = buf, buf.total
            # a little more than the span so the left edge never shows a ragged start
            self._data, self._times = buf.latest(self.span_s + 1.0)
        elif t_ref == self._last_ref:
            return False
        self._last_ref = t_ref
        self._draw(t_ref)
        return True

    def _draw(self, t_ref: float) -> None:
        x, data = break_gaps(self._times - t_ref, self._data)
        n_ch = min(data.shape[1], MAX_CURVES)
        while len(self.curves) < n_ch:
            self.curves.append(self.plot.plot(pen=self._pen))
        for i, curve in enumerate(self.curves):
            if i < n_ch:
                # connect="finite" keeps NaN samples (and only those) as breaks in the line
                curve.setData(x, data[:, i], connect="finite")
            else:
                curve.setData([], [])
        visible = data[x >= -self.span_s, :n_ch] if data.size else data
        self._autoscale(visible)

    def _autoscale(self, visible: np.ndarray) -> None:
        """Per-channel autoscale with hysteresis: the y range changes only when the data
        leaves it or fills less than half of it. Rescaling every frame would re-layout
        and repaint the axis (its text is the costliest part of a frame) and make the
        trace jitter."""
        finite = visible[np.isfinite(visible)]
        if finite.size == 0:
            return
        lo, hi = float(finite.min()), float(finite.max())
        cur_lo, cur_hi = self._y_range
        inside = cur_lo <= lo and hi <= cur_hi
        span = hi - lo
        if inside and span >= 0.5 * (cur_hi - cur_lo):
            return
        pad = max(0.1 * span, 1e-3 * max(abs(lo), abs(hi), 1.0))
        self._y_range = (lo - pad, hi + pad)
        self.plot.setYRange(*self._y_range, padding=0)

    def set_quality(self, quality: ChannelQuality) -> None:
        self.quality_dot.set_quality(quality)

    def set_vital(self, vital: Vital | None) -> None:
        if vital is None:
            self.vital_label.setText("")
            return
        self.vital_label.setText(vital.text())
        colour = "" if vital.reliable else f"color: {GREYED};"
        self.vital_label.setStyleSheet(colour)
        self.vital_label.setToolTip("reliable" if vital.reliable else f"unreliable: {vital.reason}")

    def point_count(self) -> int:
        """Samples currently drawn (for tests and the benchmark)."""
        return int(self._times.size)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt naming)
        return QtCore.QSize(600, 110)
