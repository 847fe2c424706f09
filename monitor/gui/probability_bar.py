"""A class-probability bar whose percentage stays readable on both of its parts.

A stylesheet-coloured QProgressBar draws one text colour over both the coloured fill and
the empty track, so "99 %" was dark on the dark green fill, and the track stayed white in
the dark theme. This bar paints itself from the current theme: the track in the theme's
track colour, the fill in the class colour, and the text twice, clipped: light where it
lies on the fill, the theme's text colour where it lies on the track.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from monitor.gui.theme import current_theme


class ProbabilityBar(QtWidgets.QProgressBar):
    """0-100 bar in ``colour`` with a percentage text legible on fill and track alike."""

    def __init__(self, colour: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.colour = QtGui.QColor(colour)
        self.setRange(0, 100)
        self.setValue(0)
        self.setFormat("%p %")
        self.setMinimumHeight(QtGui.QFontMetrics(self.font()).height() + 4)

    def fill_fraction(self) -> float:
        span = self.maximum() - self.minimum()
        return 0.0 if span <= 0 else (self.value() - self.minimum()) / span

    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt naming)
        theme = current_theme()
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        rect = QtCore.QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QtGui.QPen(QtGui.QColor(theme.grid), 1))
        painter.setBrush(QtGui.QColor(theme.bar_track))
        painter.drawRoundedRect(rect, 3, 3)
        fill = QtCore.QRectF(rect)
        fill.setWidth(rect.width() * self.fill_fraction())
        if fill.width() > 0:
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(self.colour)
            painter.drawRoundedRect(fill, 3, 3)
        text = self.text()
        align = QtCore.Qt.AlignmentFlag.AlignCenter
        for clip, colour in ((fill, theme.bar_text), (QtCore.QRectF(fill.right(), rect.top(),
                              rect.right() - fill.right(), rect.height()), theme.text)):
            if clip.width() <= 0:
                continue
            painter.save()
            painter.setClipRect(clip)
            painter.setPen(QtGui.QColor(colour))
            painter.drawText(rect, align, text)
            painter.restore()
        painter.end()
