"""The index trend over the last minutes, its smoothed values and event markers.

x is minutes relative to the newest data of the session (-span .. 0). It is redrawn when
an estimate or marker arrives and at most about once a second otherwise: at trend scale a
sub-second shift is invisible, and redrawing minutes of history at 30 fps would be waste.

What is drawn, so that each thing reads as what it is:

* the raw 1-s index as a thin light trace, the headline (``smoothed``, the number the
  panel shows) as the thick line and the slow trend dashed, in the theme's trend colours
  (never the red/amber/green of the bands, never an event colour);
* event markers as dotted vertical lines in their own colours, labelled in a strip above
  the 0-100 range, where no trace runs; labels are laid out in rows so they never overlap
  and never run past the right edge (:func:`layout_labels`); a label with no room left is
  not drawn, and its line's tooltip names it;
* the x axis grows with the data (at least 30 s) until it reaches the chosen span, so the
  first minutes are not squeezed into the right tenth of the plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.buffers import Marker
from core.estimate import BAND_EDGES
from monitor.gui.estimate_log import TrendArrays
from monitor.gui.theme import GREYED, Theme, current_theme, event_colour, style_plot

MAX_MARKER_LINES = 200
"""Event lines drawn at most (the newest); beyond that the plot is unreadable anyway."""
LABEL_ROWS = 3
"""Rows of marker labels at most in the strip above the index range (the strip is as tall
as the rows in use, one at least)."""
LABEL_GAP_PX = 6
"""Horizontal room kept between two labels of one row."""
MIN_SPAN_MIN = 0.5
"""The x axis never shows less than this many minutes."""
Y_TOP = 100.0


def marker_text(label: str) -> str:
    """Short on-plot text for a marker label ("pain:high" -> "high", "note:x" -> "x")."""
    kind, _, rest = label.partition(":")
    if kind == "baseline":  # "baseline:set" reads "baseline set", not a bare "set"
        return f"baseline {rest}".strip()
    if kind == "user":
        return {"pain-reported": "pain reported", "medication": "medication"}.get(rest, rest)
    return rest or kind


@dataclass(frozen=True)
class LabelSlot:
    """Where one marker label goes: its row (0 = top) and which side of its line."""

    row: int
    left_of_line: bool
    """True when the text ends at the line (it would run past the right edge otherwise)."""
    x0: float
    x1: float
    """Pixel span the text occupies."""


def layout_labels(xs: list[float], widths: list[float], plot_width: float,
                  rows: int = LABEL_ROWS, gap: float = LABEL_GAP_PX) -> list[LabelSlot | None]:
    """Place labels of the given pixel widths at lines at pixel positions ``xs`` so that no
    two overlap and none leaves ``0 .. plot_width``: right of its line if it fits, else
    left of it; in the first row with room; None when no row has room (the line's
    tooltip carries it). Labels are placed newest (rightmost) first, so a crowd keeps
    its most recent labels."""
    order = sorted(range(len(xs)), key=lambda i: xs[i], reverse=True)
    taken: list[list[tuple[float, float]]] = [[] for _ in range(rows)]
    out: list[LabelSlot | None] = [None] * len(xs)
    for i in order:
        x, w = xs[i], widths[i]
        if not (0.0 <= x <= plot_width):
            continue
        candidates = []
        if x + 2 + w <= plot_width:
            candidates.append((x + 2, x + 2 + w, False))
        if x - 2 - w >= 0:
            candidates.append((x - 2 - w, x - 2, True))
        for row in range(rows):
            for x0, x1, left in candidates:
                if all(x1 + gap <= a or x0 >= b + gap for a, b in taken[row]):
                    taken[row].append((x0, x1))
                    out[i] = LabelSlot(row, left, x0, x1)
                    break
            if out[i] is not None:
                break
    return out


class TrendPlot(pg.PlotWidget):
    """Index trace (invalid estimates as grey dots), smoothed lines and event markers."""

    def __init__(self, span_min: float = 15.0, parent: QtWidgets.QWidget | None = None,
                 theme: Theme | None = None):
        super().__init__(parent)
        self.span_min = span_min
        self.theme = theme or current_theme()
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("bottom", "minutes")
        self.setLabel("left", "index")
        # horizontal grid only: vertical lines are the events' (an x grid drew a line per
        # minor tick, a hatch behind the trace)
        self.showGrid(x=False, y=True, alpha=0.2)
        for name in ("left", "bottom"):  # never "minutes (x0.001)" for a short trend
            self.getAxis(name).enableAutoSIPrefix(False)
        left = self.getAxis("left")
        left.setTicks([[(v, f"{v:g}") for v in (0, 20, 40, 60, 80, 100)]])
        # one row at the bottom left: the top strip belongs to the marker labels
        self.legend = self.addLegend(offset=(5, -5), labelTextSize="8pt", colCount=3)
        self.band_lines = [pg.InfiniteLine(edge, angle=0) for edge in BAND_EDGES]
        for line in self.band_lines:
            self.addItem(line)
        # thin lines, not symbols: an hour of estimates is 3600 points, and symbols would
        # cost ~35 ms per redraw on the GUI thread; invalid estimates are few, drawn as dots
        self.getPlotItem().setDownsampling(auto=True, mode="peak")
        self.getPlotItem().setClipToView(True)
        self.index_valid = self.plot(name="raw 1 s")
        self.index_invalid = self.plot(pen=None, symbol="o", symbolSize=4, symbolBrush=GREYED, symbolPen=None)
        self.smoothed = self.plot(name="headline")
        self.smoothed_long = self.plot(name="slow trend")
        self.marker_lines: list[tuple[Marker, pg.InfiniteLine]] = []
        self.marker_labels: dict[int, pg.TextItem] = {}
        self.label_slots: dict[int, LabelSlot | None] = {}
        self._rows_used = 1
        """Where each marker's label went (None: no room, tooltip only), by id(marker)."""
        self._x_left = -span_min
        self._t_ref = math.nan
        self._label_px: tuple[float, ...] = ()
        self.apply_theme(self.theme)
        self.setXRange(-span_min, 0, padding=0)
        self._set_y_range()

    # --- style -----------------------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        """Recolour everything in place (the View menu switches themes at run time)."""
        self.theme = theme
        style_plot(self, theme)
        self.index_valid.setPen(pg.mkPen(theme.trend_index, width=1))
        self.smoothed.setPen(pg.mkPen(theme.trend_headline, width=3))
        self.smoothed_long.setPen(pg.mkPen(theme.trend_slow, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        for line in self.band_lines:
            line.setPen(pg.mkPen(theme.grid, style=QtCore.Qt.PenStyle.DotLine))
        self.legend.setLabelTextColor(theme.text)
        for _sample, label in self.legend.items:  # setLabelTextColor does not re-render them
            label.setText(label.text)
        backdrop = QtGui.QColor(theme.background)
        backdrop.setAlpha(200)
        self.legend.setBrush(pg.mkBrush(backdrop))
        for marker, line in self.marker_lines:
            colour = event_colour(marker.label, theme)
            line.setPen(pg.mkPen(colour, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
            label = self.marker_labels.get(id(marker))
            if label is not None:
                label.setColor(colour)
                label.fill = pg.mkBrush(theme.background)
        self._label_px = ()
        self._layout_labels()

    # --- ranges ----------------------------------------------------------------------
    def set_span(self, span_min: float) -> None:
        self.span_min = span_min
        self._x_left = -span_min
        self.setXRange(-span_min, 0, padding=0)
        self._layout_labels()

    def _label_row_px(self) -> float:
        """Height of one row of labels: a label's box (text plus its margins)."""
        for label in self.marker_labels.values():
            return label.textItem.boundingRect().height() + 1.0
        return QtGui.QFontMetrics(self.font()).height() + 9.0

    def _set_y_range(self) -> None:
        """0..100 plus a strip above it, tall enough for the label rows at the current
        plot height (the top tick, 100, is then never cut either)."""
        height = max(60.0, self.getPlotItem().vb.height())
        strip_px = self._rows_used * self._label_row_px() + 6
        below_px = QtGui.QFontMetrics(self.font()).height() / 2 + 2  # room for the "0" tick's text
        units = Y_TOP / max(0.2, 1.0 - (strip_px + below_px) / height)  # the whole range, in index units
        self.setYRange(-below_px / height * units, Y_TOP + strip_px / height * units, padding=0)

    def _fit_x(self, oldest: float, t_ref: float) -> None:
        """Grow the axis with the data (at least :data:`MIN_SPAN_MIN`) up to the span."""
        extent = (t_ref - oldest) / 60.0 if math.isfinite(oldest) else 0.0
        left = -min(self.span_min, max(MIN_SPAN_MIN, extent * 1.05))
        if abs(left - self._x_left) > 1e-3 * self.span_min:
            self._x_left = left
            self.setXRange(left, 0, padding=0)

    # --- data ------------------------------------------------------------------------
    def update_trend(self, arrays: TrendArrays, markers: list[Marker], t_ref: float) -> None:
        """Draw estimates and markers relative to ``t_ref`` (shared-clock seconds)."""
        if math.isnan(t_ref):
            return
        self._t_ref = t_ref
        x = (arrays.t - t_ref) / 60.0
        valid = arrays.valid
        self.index_valid.setData(x, np.where(valid, arrays.index, np.nan), connect="finite")
        # an invalid estimate with a number is a grey dot at it; one without (too little
        # signal to estimate) a grey dot on the floor. Never NaN: a scatter's bounds are
        # np.nanmin of its points, recomputed at every paint, and all-NaN points made
        # numpy warn "All-NaN slice encountered" on every frame.
        bad = ~valid
        self.index_invalid.setData(x[bad], np.where(np.isfinite(arrays.index[bad]), arrays.index[bad], 0.0))
        self.smoothed.setData(x, arrays.smoothed, connect="finite")
        self.smoothed_long.setData(x, arrays.smoothed_long, connect="finite")
        markers = markers[-MAX_MARKER_LINES:]
        oldest = float(arrays.t.min()) if arrays.t.size else math.inf  # a restarted replay is unordered
        if markers:
            oldest = min(oldest, markers[0].timestamp)
        self._fit_x(oldest if math.isfinite(oldest) else t_ref, t_ref)
        self._update_markers(markers, t_ref)

    def _update_markers(self, markers: list[Marker], t_ref: float) -> None:
        keep = {id(m) for m in markers}
        for marker, line in list(self.marker_lines):
            if id(marker) not in keep:
                self.removeItem(line)
                label = self.marker_labels.pop(id(marker), None)
                if label is not None:
                    self.removeItem(label)
                self.label_slots.pop(id(marker), None)
                self.marker_lines.remove((marker, line))
        drawn = {id(m) for m, _ in self.marker_lines}
        for marker in markers:
            if id(marker) in drawn:
                continue
            colour = event_colour(marker.label, self.theme)
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen(colour, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
            line.setZValue(5)
            label = pg.TextItem(marker_text(marker.label), color=colour, fill=pg.mkBrush(self.theme.background))
            label.setZValue(20)
            self.addItem(line)
            self.addItem(label, ignoreBounds=True)
            self.marker_lines.append((marker, line))
            self.marker_labels[id(marker)] = label
        for marker, line in self.marker_lines:
            line.setPos((marker.timestamp - t_ref) / 60.0)
        self._layout_labels()

    def _layout_labels(self) -> None:
        """Place the labels (on data, resize and span changes)."""
        vb = self.getPlotItem().vb
        width, height = vb.width(), vb.height()
        if self.marker_lines and width > 0:
            x_lo = self._x_left
            xs = [(line.value() - x_lo) / (0.0 - x_lo) * width for _m, line in self.marker_lines]
            widths = [self.marker_labels[id(m)].textItem.boundingRect().width() for m, _l in self.marker_lines]
            slots = layout_labels(xs, widths, width)
        else:
            slots = []
        self._rows_used = max([1] + [slot.row + 1 for slot in slots if slot is not None])
        key = (width, height, self._label_row_px(), self._rows_used)
        if key != self._label_px:
            self._label_px = key
            self._set_y_range()
        if not slots:
            return
        y_lo, y_hi = vb.viewRange()[1]
        units_per_px = (y_hi - y_lo) / max(1.0, height)
        for (marker, line), slot in zip(self.marker_lines, slots, strict=True):
            label = self.marker_labels[id(marker)]
            self.label_slots[id(marker)] = slot
            when = _ago(self._t_ref - marker.timestamp)
            line.setToolTip(f"{marker.label} ({when})")
            if slot is None:
                label.setVisible(False)
                continue
            label.setVisible(True)
            label.setAnchor((1, 0) if slot.left_of_line else (0, 0))
            label.setPos(line.value(), y_hi - (2 + slot.row * self._label_row_px()) * units_per_px)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        QtCore.QTimer.singleShot(0, self._layout_labels)

    # --- for tests -------------------------------------------------------------------
    def drawn_points(self) -> int:
        """Estimates currently drawn, valid and invalid (for tests)."""
        _, y = self.index_valid.getData()
        valid = 0 if y is None else int(np.isfinite(y).sum())
        x_invalid, _ = self.index_invalid.getData()
        return valid + (0 if x_invalid is None else int(np.size(x_invalid)))

    def label_rects(self) -> list[QtCore.QRectF]:
        """Scene rectangles of the visible marker labels (for tests)."""
        return [label.sceneBoundingRect() for label in self.marker_labels.values() if label.isVisible()]


def _ago(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d} ago"
