"""Colours and themes of the dashboard, in one place so every widget agrees.

The index colour band follows the index definition (:func:`core.fusion.pain_index`:
0 = certain no pain, 50 = certain low, 100 = certain high): the band changes colour
half-way between those anchors, at 25 and 75, so the colour says which class the
expected level is closest to.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

BAND_EDGES = (25.0, 75.0)
BAND_COLOURS = ("#2e9d4a", "#e0a000", "#d43a2f")
"""green / amber / red for no / low / high pain."""
GREYED = "#9a9a9a"
"""Estimates flagged invalid (too little usable signal) are drawn in this colour."""

QUALITY_COLOURS = {"good": "#2e9d4a", "poor": "#e0a000", "lost": "#d43a2f", "unknown": "#9a9a9a"}

MODALITY_COLOURS = {
    "EDA": "#1f77b4",
    "BVP": "#d62728",
    "RESP": "#2ca02c",
    "SpO2": "#9467bd",
    "ECG": "#8c564b",
    "EMG": "#e377c2",
    "TEMP": "#ff7f0e",
}
EVENT_COLOURS = {"pain": "#d43a2f", "user": "#1f5fbf", "note": "#6a3d9a", "alarm": "#c2185b", "other": "#555555"}


def band_colour(index: float) -> str:
    """Colour of the band the pain index falls into (grey for NaN)."""
    if index != index:  # NaN
        return GREYED
    if index < BAND_EDGES[0]:
        return BAND_COLOURS[0]
    if index < BAND_EDGES[1]:
        return BAND_COLOURS[1]
    return BAND_COLOURS[2]


def event_colour(label: str) -> str:
    """Colour of an event marker by its kind (pain:*, user:*, note:*)."""
    kind = label.split(":", 1)[0] if ":" in label else "other"
    return EVENT_COLOURS.get(kind, EVENT_COLOURS["other"])


@dataclass(frozen=True)
class Theme:
    """Colours of one dashboard theme: plot background/foreground and the Qt window palette."""
    name: str
    background: str
    foreground: str
    window: str
    text: str


THEMES = {
    "light": Theme("light", "#ffffff", "#303030", "#f0f0f0", "#202020"),
    "dark": Theme("dark", "#151515", "#d0d0d0", "#2b2b2b", "#e6e6e6"),
}


def get_theme(name: str) -> Theme:
    """The named theme; unknown names fall back to light (settings files may be stale)."""
    return THEMES.get(name, THEMES["light"])


def apply_theme(app: QtWidgets.QApplication, name: str) -> Theme:
    """Set pyqtgraph defaults and the application palette.

    pyqtgraph reads its background/foreground options when a plot is created, so the
    theme is applied before the main window builds its plots; switching theme at run time
    restyles existing plots through :meth:`MainWindow.apply_theme`.
    """
    theme = get_theme(name)
    pg.setConfigOptions(background=theme.background, foreground=theme.foreground, antialias=False)
    palette = QtGui.QPalette()
    palette.setColor(QtGui.QPalette.ColorRole.Window, QtGui.QColor(theme.window))
    palette.setColor(QtGui.QPalette.ColorRole.WindowText, QtGui.QColor(theme.text))
    palette.setColor(QtGui.QPalette.ColorRole.Base, QtGui.QColor(theme.background))
    palette.setColor(QtGui.QPalette.ColorRole.Text, QtGui.QColor(theme.text))
    palette.setColor(QtGui.QPalette.ColorRole.Button, QtGui.QColor(theme.window))
    palette.setColor(QtGui.QPalette.ColorRole.ButtonText, QtGui.QColor(theme.text))
    app.setPalette(palette)
    return theme
