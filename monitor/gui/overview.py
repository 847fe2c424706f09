"""The overview tab: every subject at a glance, one tile each (the dashboard's first tab).

A tile shows what the web ward page shows, from the same :meth:`monitor.ward.WardState.tile`:
the headline with its band colour and band word, the state in words (readable without
colour), a sparkline of the last 15 minutes, a dot per modality (good / poor / lost, with
its name) and the active alarms. Clicking a tile opens the subject's tab; a tile with a
raised alarm offers "Acknowledge". Tiles reflow into as many columns as fit (1-32 subjects
and more, scrolling beyond the window) and sort by name or by alarm, then index.

Cost on the GUI thread: tiles are painted with QPainter (no plot widget per tile), the
tab refreshes its data once a second and only while visible, and a tile repaints only when
its data changed, so 32 tiles cost a few milliseconds a second (``painmon bench gui
--subjects 32 --overview`` measures it).
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.alarms import KINDS, AlarmRules
from core.estimate import CLASS_NAMES
from monitor.gui.theme import BAND_COLOURS, GREYED, QUALITY_COLOURS
from monitor.ward import SPARK_MIN, WardState

REFRESH_MS = 1000
TILE_MIN_W = 230
TILE_H = 170
SORTS = ("name", "alarm, then index")
ALARM_RED = "#d43a2f"


def band_colour_of(band: str | None) -> str:
    """The theme colour of a band name (grey for None)."""
    return BAND_COLOURS[CLASS_NAMES.index(band)] if band in CLASS_NAMES else GREYED


def sort_key(mode: str):
    """Key function over tiles for a :data:`SORTS` entry."""
    if mode == SORTS[1]:
        def by_alarm(t: dict[str, Any]) -> tuple:
            alarms = t["alarms"]
            rank = 2 if any(a["state"] == "raised" for a in alarms) else 1 if alarms else 0
            headline = t["headline"] if t["headline"] is not None else -1.0
            return (-rank, -headline, t["subject"])
        return by_alarm
    return lambda t: t["subject"]


class TileWidget(QtWidgets.QWidget):
    """One subject's tile, painted (see the module docstring). ``clicked(subject)`` on a click."""

    clicked = QtCore.Signal(str)
    acknowledge = QtCore.Signal(str, int)

    def __init__(self, subject: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.subject = subject
        self.data: dict[str, Any] = {"subject": subject, "headline": None, "band": None, "state_text": "",
                                     "sparkline": [], "health": {}, "alarms": []}
        self.setMinimumSize(TILE_MIN_W, TILE_H)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.ack_button = QtWidgets.QPushButton("Acknowledge", self)
        self.ack_button.setVisible(False)
        self.ack_button.clicked.connect(self._ack)
        self.paints = 0
        """Times painted (tests and the benchmark read it)."""

    # --- data ----------------------------------------------------------------------------
    def set_data(self, data: dict[str, Any]) -> bool:
        """Show ``data`` (a :meth:`WardState.tile`); repaints only when it changed."""
        if data == self.data:
            return False
        self.data = data
        raised = [a for a in data["alarms"] if a["state"] == "raised"]
        self.ack_button.setVisible(bool(raised))
        self.setToolTip(self.text_summary())
        self.setAccessibleName(self.text_summary())
        self.update()
        return True

    def text_summary(self) -> str:
        """The tile in words (tooltip, screen readers, tests)."""
        d = self.data
        value = "–" if d["headline"] is None else f"{d['headline']:.0f}"
        band = f"{d['band']} pain" if d["band"] else "no value"
        parts = [f"{d['subject']}: {value} ({band}), state {d['state_text'] or 'waiting'}"]
        parts += [f"{a['kind']} alarm {a['state']}: {a['message']}" for a in d["alarms"]]
        return "; ".join(parts)

    def _ack(self) -> None:
        for a in self.data["alarms"]:
            if a["state"] == "raised":
                self.acknowledge.emit(self.subject, int(a["alarm_id"]))

    # --- Qt ------------------------------------------------------------------------------
    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt naming)
        if event.button() == QtCore.Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit(self.subject)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802
        if event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter, QtCore.Qt.Key.Key_Space):
            self.clicked.emit(self.subject)
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        hint = self.ack_button.sizeHint()
        self.ack_button.setGeometry(self.width() - hint.width() - 8, 8, hint.width(), hint.height())
        super().resizeEvent(event)

    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:  # noqa: N802
        self.paints += 1
        d = self.data
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        pal = self.palette()
        text = pal.color(QtGui.QPalette.ColorRole.WindowText)
        w, h = self.width(), self.height()
        raised = any(a["state"] == "raised" for a in d["alarms"])
        colour = QtGui.QColor(band_colour_of(d["band"]))
        p.fillRect(self.rect(), pal.color(QtGui.QPalette.ColorRole.Base))
        p.setPen(QtGui.QPen(QtGui.QColor(ALARM_RED) if raised else QtGui.QColor("#c8c8c8"), 3 if raised else 1))
        p.drawRect(self.rect().adjusted(1, 1, -2, -2))
        p.fillRect(QtCore.QRect(0, 0, 7, h), colour)
        if self.hasFocus():
            p.setPen(QtGui.QPen(QtGui.QColor("#1f5fbf"), 1, QtCore.Qt.PenStyle.DashLine))
            p.drawRect(self.rect().adjusted(4, 4, -5, -5))
        x0 = 14
        font = QtGui.QFont(self.font())
        # name (elided: ids may be long)
        font.setBold(True)
        p.setFont(font)
        p.setPen(text)
        right = self.ack_button.x() - 6 if self.ack_button.isVisible() else w - 8
        name = QtGui.QFontMetrics(font).elidedText(d["subject"], QtCore.Qt.TextElideMode.ElideRight, right - x0)
        p.drawText(QtCore.QRect(x0, 6, right - x0, 20), QtCore.Qt.AlignmentFlag.AlignVCenter, name)
        # headline + band word
        big = QtGui.QFont(self.font())
        big.setPointSizeF(self.font().pointSizeF() * 2.4)
        big.setBold(True)
        p.setFont(big)
        value = "–" if d["headline"] is None else f"{d['headline']:.0f}"
        fm = QtGui.QFontMetrics(big)
        p.drawText(x0, 28 + fm.ascent(), value)
        bx = x0 + fm.horizontalAdvance(value) + 8
        p.setFont(font)
        band = f"{d['band'].upper()} PAIN" if d["band"] else "NO VALUE"
        bw = QtGui.QFontMetrics(font).horizontalAdvance(band) + 8
        p.fillRect(QtCore.QRect(bx, 28 + fm.ascent() - 16, bw, 18), colour)
        p.setPen(QtGui.QColor("white"))
        p.drawText(QtCore.QRect(bx, 28 + fm.ascent() - 16, bw, 18), QtCore.Qt.AlignmentFlag.AlignCenter, band)
        # state in words
        state_font = QtGui.QFont(self.font())
        state_font.setItalic(d.get("state") not in (None, "ok"))
        p.setFont(state_font)
        p.setPen(text)
        p.drawText(x0, 28 + fm.height() + 14, f"state: {d['state_text'] or 'waiting for data'}")
        # sparkline
        top = 28 + fm.height() + 20
        self._sparkline(p, QtCore.QRectF(x0, top, w - x0 - 8, 34), colour)
        # health dots with names
        y = top + 48
        x = x0
        small = QtGui.QFont(self.font())
        small.setPointSizeF(self.font().pointSizeF() * 0.9)
        p.setFont(small)
        sfm = QtGui.QFontMetrics(small)
        for modality, level in d["health"].items():
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(QtGui.QColor(QUALITY_COLOURS.get(level, GREYED)))
            p.drawEllipse(QtCore.QPointF(x + 4, y - 4), 4, 4)
            p.setPen(text)
            p.drawText(x + 11, y, modality)
            x += 11 + sfm.horizontalAdvance(modality) + 10
        # alarms
        y += 6
        for a in d["alarms"][:2]:
            line = f"{a['kind'].upper()} {a['state']}: {a['message']}"
            rect = QtCore.QRect(x0, y, w - x0 - 8, sfm.height() + 2)
            p.fillRect(rect, QtGui.QColor("#fde2e0" if a["state"] == "raised" else "#eeeeee"))
            p.setPen(QtGui.QColor("#7a1610" if a["state"] == "raised" else "#444444"))
            p.drawText(rect.adjusted(3, 0, -3, 0), QtCore.Qt.AlignmentFlag.AlignVCenter,
                       sfm.elidedText(line, QtCore.Qt.TextElideMode.ElideRight, rect.width() - 6))
            y += sfm.height() + 4
        p.end()

    def _sparkline(self, p: QtGui.QPainter, r: QtCore.QRectF, colour: QtGui.QColor) -> None:
        dots = QtGui.QPen(QtGui.QColor("#c8c8c8"), 1, QtCore.Qt.PenStyle.DotLine)
        p.setPen(dots)
        for edge in (100 / 3, 200 / 3):
            yy = r.bottom() - edge / 100 * r.height()
            p.drawLine(QtCore.QPointF(r.left(), yy), QtCore.QPointF(r.right(), yy))
        pts = [(t, v) for t, v in self.data["sparkline"] if v is not None]
        if not pts:
            return
        t1 = self.data["sparkline"][-1][0]
        span = min(SPARK_MIN * 60.0, max(60.0, t1 - self.data["sparkline"][0][0]))
        t0 = t1 - span
        poly = QtGui.QPolygonF([
            QtCore.QPointF(r.left() + (t - t0) / span * r.width(),
                           r.bottom() - max(0.0, min(100.0, v)) / 100 * r.height())
            for t, v in pts
        ])
        p.setPen(QtGui.QPen(colour, 1.6))
        p.drawPolyline(poly)
        p.setBrush(colour)
        p.drawEllipse(poly.at(poly.size() - 1), 2.5, 2.5)


class AlarmRulesDialog(QtWidgets.QDialog):
    """Edits alarm rules: the default for all subjects, or one subject's own."""

    FIELDS = (
        ("level", "Headline at or above", 0, 100, ""),
        ("level_for_s", "… for at least", 0, 86400, " s"),
        ("hysteresis", "Clears below level minus", 0, 100, ""),
        ("rise_points", "Rise of more than", 0, 100, " points"),
        ("rise_within_min", "… within", 0.1, 1440, " min"),
        ("stale_s", "No data for more than", 1, 86400, " s"),
        ("silence_s", "Silence after acknowledging", 0, 86400, " s"),
    )

    def __init__(self, rules_of, subjects: list[str], parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Alarm rules")
        self._rules_of = rules_of
        self.subject_box = QtWidgets.QComboBox()
        self.subject_box.addItem("All subjects (default)", None)
        for s in subjects:
            self.subject_box.addItem(s, s)
        self.subject_box.currentIndexChanged.connect(self._load)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Rules for", self.subject_box)
        self.boxes: dict[str, QtWidgets.QDoubleSpinBox] = {}
        for name, label, lo, hi, suffix in self.FIELDS:
            box = QtWidgets.QDoubleSpinBox()
            box.setRange(lo, hi)
            box.setDecimals(1)
            box.setSuffix(suffix)
            self.boxes[name] = box
            form.addRow(label, box)
        self.enabled: dict[str, QtWidgets.QCheckBox] = {}
        row = QtWidgets.QHBoxLayout()
        for kind in KINDS:
            self.enabled[kind] = QtWidgets.QCheckBox(kind)
            row.addWidget(self.enabled[kind])
        form.addRow("Rules in use", row)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._load()

    def _load(self) -> None:
        rules: AlarmRules = self._rules_of(self.subject_box.currentData())
        for name, box in self.boxes.items():
            box.setValue(getattr(rules, name))
        for kind, check in self.enabled.items():
            check.setChecked(kind in rules.enabled)

    def subject(self) -> str | None:
        return self.subject_box.currentData()

    def rules(self) -> AlarmRules:
        values: dict[str, Any] = {name: box.value() for name, box in self.boxes.items()}
        values["enabled"] = [k for k, c in self.enabled.items() if c.isChecked()]
        return AlarmRules().with_values(values, "alarm rules")


class OverviewTab(QtWidgets.QWidget):
    """The tiles of every subject in ``ward``; ``subject_clicked(subject)`` opens its tab.

    Args:
        ward: the dashboard's :class:`monitor.ward.WardState`.
        alarms: the :class:`monitor.alarms.AlarmMonitor` (acknowledging, editing rules).
    """

    subject_clicked = QtCore.Signal(str)

    def __init__(self, ward: WardState, alarms: Any = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.ward = ward
        self.alarms = alarms
        self.tiles: dict[str, TileWidget] = {}
        self._order: list[str] = []
        self._columns = 0
        self.sort_box = QtWidgets.QComboBox()
        self.sort_box.addItems(SORTS)
        self.sort_box.currentIndexChanged.connect(lambda _i: self.refresh(force=True))
        rules = QtWidgets.QPushButton("Alarm rules…")
        rules.clicked.connect(self.edit_rules)
        self.summary = QtWidgets.QLabel("")
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Sort by"))
        bar.addWidget(self.sort_box)
        bar.addWidget(rules)
        bar.addStretch(1)
        bar.addWidget(self.summary)
        self.grid_host = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.grid_host)
        self.grid.setSpacing(8)
        self.grid.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.scroll_area = QtWidgets.QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setWidget(self.grid_host)
        self.empty = QtWidgets.QLabel("No subjects yet.")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.empty)
        layout.addWidget(self.scroll_area, 1)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh_ms: list[float] = []
        """Milliseconds each refresh took on the GUI thread (the benchmark reads it)."""

    def refresh(self, force: bool = False) -> None:
        """Fetch the tiles' data and show it (skipped while the tab is hidden)."""
        if not force and not self.isVisible():
            return
        import time

        t0 = time.perf_counter()
        data = self.ward.tiles()
        for d in data:
            tile = self.tiles.get(d["subject"])
            if tile is None:
                tile = self.tiles[d["subject"]] = TileWidget(d["subject"], self.grid_host)
                tile.clicked.connect(self.subject_clicked)
                tile.acknowledge.connect(self.acknowledge)
            tile.set_data(d)
        order = [d["subject"] for d in sorted(data, key=sort_key(self.sort_box.currentText()))]
        self._relayout(order)
        raised = sum(a["state"] == "raised" for d in data for a in d["alarms"])
        self.summary.setText(f"{len(data)} subject(s), {raised} raised alarm(s)")
        self.empty.setVisible(not data)
        self.refresh_ms.append((time.perf_counter() - t0) * 1e3)
        del self.refresh_ms[:-1000]

    def columns_for(self, width: int) -> int:
        return max(1, (width - 8) // (TILE_MIN_W + self.grid.spacing()))

    def _relayout(self, order: list[str], force: bool = False) -> None:
        columns = self.columns_for(self.scroll_area.viewport().width())
        if order == self._order and columns == self._columns and not force:
            return
        for name in self._order:
            self.grid.removeWidget(self.tiles[name])
        for i, name in enumerate(order):
            self.grid.addWidget(self.tiles[name], i // columns, i % columns)
        for c in range(max(columns, self._columns)):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)
        self._order, self._columns = order, columns

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout(self._order)

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        QtCore.QTimer.singleShot(0, lambda: self.refresh(force=True))

    def acknowledge(self, subject: str, alarm_id: int) -> None:
        if self.alarms is not None:
            self.alarms.acknowledge(subject, alarm_id, by="dashboard")
            self.refresh(force=True)

    def edit_rules(self) -> None:
        if self.alarms is None:
            return
        dialog = AlarmRulesDialog(self.alarms.rules_for, self.ward.subjects(), self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.alarms.set_rules(dialog.subject(), dialog.rules())

    def tile_text(self) -> list[str]:
        """Every tile in words, in display order (tests)."""
        return [self.tiles[s].text_summary() for s in self._order]

