"""The index trend over the last minutes, its smoothed values and event markers.

x is minutes relative to the newest data of the session (-span .. 0). It is redrawn when
an estimate or marker arrives and at most about once a second otherwise: at trend scale a
sub-second shift is invisible, and redrawing minutes of history at 30 fps would be waste.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from core.buffers import Marker
from monitor.gui.estimate_log import TrendArrays
from monitor.gui.theme import BAND_COLOURS, BAND_EDGES, GREYED, event_colour

MAX_MARKER_LINES = 200
"""Event lines drawn at most (the newest); beyond that the plot is unreadable anyway."""


def marker_text(label: str) -> str:
    """Short on-plot text for a marker label ("pain:high" -> "high", "note:x" -> "x")."""
    kind, _, rest = label.partition(":")
    if kind == "user":
        return {"pain-reported": "pain reported", "medication": "medication"}.get(rest, rest)
    return rest or kind


class TrendPlot(pg.PlotWidget):
    """Index points (greyed when invalid), short and long smoothed lines, marker lines."""

    def __init__(self, span_min: float = 15.0, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.span_min = span_min
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setYRange(0, 100, padding=0.02)
        self.setLabel("bottom", "minutes")
        self.setLabel("left", "index")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(5, 5), labelTextSize="8pt")
        for edge in BAND_EDGES:
            self.addItem(pg.InfiniteLine(edge, angle=0, pen=pg.mkPen("#bbbbbb", style=pg.QtCore.Qt.PenStyle.DotLine)))
        # a thin line, not symbols: an hour of estimates is 3600 points, and symbols would
        # cost ~35 ms per redraw on the GUI thread; invalid estimates are few, drawn as dots
        self.getPlotItem().setDownsampling(auto=True, mode="peak")
        self.getPlotItem().setClipToView(True)
        self.index_valid = self.plot(pen=pg.mkPen(BAND_COLOURS[2], width=1), name="index")
        self.index_invalid = self.plot(pen=None, symbol="o", symbolSize=4, symbolBrush=GREYED, symbolPen=None)
        self.smoothed = self.plot(pen=pg.mkPen("#1f5fbf", width=2.5), name="trend")
        self.smoothed_long = self.plot(
            pen=pg.mkPen("#6a3d9a", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine), name="slow trend"
        )
        self.marker_lines: list[tuple[Marker, pg.InfiniteLine]] = []
        self.setXRange(-span_min, 0, padding=0)

    def set_span(self, span_min: float) -> None:
        self.span_min = span_min
        self.setXRange(-span_min, 0, padding=0)

    def update_trend(self, arrays: TrendArrays, markers: list[Marker], t_ref: float) -> None:
        """Draw estimates and markers relative to ``t_ref`` (shared-clock seconds)."""
        if math.isnan(t_ref):
            return
        x = (arrays.t - t_ref) / 60.0
        valid = arrays.valid
        self.index_valid.setData(x, np.where(valid, arrays.index, np.nan), connect="finite")
        self.index_invalid.setData(x[~valid], arrays.index[~valid])
        self.smoothed.setData(x, arrays.smoothed, connect="finite")
        self.smoothed_long.setData(x, arrays.smoothed_long, connect="finite")
        self._update_markers(markers[-MAX_MARKER_LINES:], t_ref)

    def _update_markers(self, markers: list[Marker], t_ref: float) -> None:
        keep = {id(m) for m in markers}
        for marker, line in list(self.marker_lines):
            if id(marker) not in keep:
                self.removeItem(line)
                self.marker_lines.remove((marker, line))
        drawn = {id(m) for m, _ in self.marker_lines}
        for marker in markers:
            if id(marker) in drawn:
                continue
            colour = event_colour(marker.label)
            line = pg.InfiniteLine(
                angle=90,
                pen=pg.mkPen(colour, width=1.5),
                label=marker_text(marker.label),
                labelOpts={"position": 0.92, "color": colour, "rotateAxis": (1, 0), "anchors": [(0, 0), (0, 0)]},
            )
            self.addItem(line)
            self.marker_lines.append((marker, line))
        for marker, line in self.marker_lines:
            line.setPos((marker.timestamp - t_ref) / 60.0)

    def drawn_points(self) -> int:
        """Estimates currently drawn, valid and invalid (for tests)."""
        _, y = self.index_valid.getData()
        valid = 0 if y is None else int(np.isfinite(y).sum())
        x_invalid, _ = self.index_invalid.getData()
        return valid + (0 if x_invalid is None else int(np.size(x_invalid)))
