"""Colours and themes of the dashboard, in one place so every widget agrees.

The index colour band follows the fixed class bands of :func:`core.estimate.band_of`
(no < 33.3 <= low < 66.7 <= high), so the colour, the class word and the trend's band
lines can never disagree.

Both themes are complete palettes (window, text, disabled text, plot axes, legend, grid,
trend lines, event lines, probability-bar track) so that nothing is left at a Qt or
pyqtgraph default that is only legible on one of them (dark axis labels on a dark plot,
white progress bars in the dark theme).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.estimate import BAND_EDGES, CLASS_NAMES, band_of

__all__ = ["BAND_COLOURS", "BAND_EDGES", "EVENT_COLOURS", "GREYED", "MODALITY_COLOURS", "QUALITY_COLOURS",
           "THEMES", "Theme", "apply_theme", "band_colour", "current_theme", "event_colour", "get_theme",
           "style_plot"]

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


def band_colour(index: float) -> str:
    """Colour of the class band (:func:`core.estimate.band_of`) of the index; grey for NaN."""
    band = band_of(index)
    return GREYED if band is None else BAND_COLOURS[CLASS_NAMES.index(band)]


@dataclass(frozen=True)
class Theme:
    """One complete palette (see the module docstring for why every role is set)."""

    name: str
    background: str
    """Plots and input fields."""
    foreground: str
    """Plot axes, ticks and their labels."""
    window: str
    text: str
    disabled_text: str
    grid: str
    """Band lines of the trend."""
    trend_index: str
    """The raw 1-s index (a thin trace)."""
    trend_headline: str
    """The headline (smoothed) index (the thick line)."""
    trend_slow: str
    bar_track: str
    """The empty part of a probability bar."""
    bar_text: str
    """Percentage text on a probability bar (drawn on the coloured fill: light)."""
    events: dict[str, str] = field(default_factory=dict)
    """Event-line colours by marker kind (pain, user, note, other): none of them a trend
    or band colour."""


THEMES = {
    "light": Theme(
        "light", background="#ffffff", foreground="#303030", window="#f0f0f0", text="#202020",
        disabled_text="#7a7a7a", grid="#b8b8b8", trend_index="#8fb4e3", trend_headline="#1c3f94",
        trend_slow="#5f5f5f", bar_track="#e4e4e4", bar_text="#ffffff",
        events={"pain": "#d9480f", "user": "#0c8599", "note": "#862e9c", "alarm": "#c2185b", "other": "#5c940d"},
    ),
    "dark": Theme(
        "dark", background="#151515", foreground="#d0d0d0", window="#2b2b2b", text="#e6e6e6",
        disabled_text="#9a9a9a", grid="#5a5a5a", trend_index="#4f6f99", trend_headline="#8cb8ff",
        trend_slow="#c8c8c8", bar_track="#3a3a3a", bar_text="#ffffff",
        events={"pain": "#ff8a4c", "user": "#3bc9db", "note": "#da77f2", "alarm": "#f06595", "other": "#a9e34b"},
    ),
}

_current = THEMES["light"]
EVENT_COLOURS = THEMES["light"].events
"""Event colours of the light theme (kept for callers that do not follow the theme)."""


def get_theme(name: str) -> Theme:
    """The named theme; unknown names fall back to light (settings files may be stale)."""
    return THEMES.get(name, THEMES["light"])


def current_theme() -> Theme:
    """The theme last applied (widgets created later style themselves with it)."""
    return _current


def event_colour(label: str, theme: Theme | None = None) -> str:
    """Colour of an event marker by its kind (pain:*, user:*, note:*)."""
    events = (theme or _current).events
    kind = label.split(":", 1)[0] if ":" in label else "other"
    return events.get(kind, events["other"])


def style_plot(plot: pg.PlotWidget, theme: Theme) -> None:
    """Background, axes (lines, ticks, tick text, axis labels) of an existing plot.
    pyqtgraph takes its colours when an item is created, so a theme switch must restyle."""
    plot.setBackground(theme.background)
    item = plot.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(theme.foreground))
        axis.setTextPen(pg.mkPen(theme.foreground))  # tick text and the axis label


def apply_theme(app: QtCore.QCoreApplication | None, name: str) -> Theme:
    """Set pyqtgraph defaults and the application palette (including disabled text).

    pyqtgraph reads its background/foreground options when a plot is created, so the
    theme is applied before the main window builds its plots; switching theme at run time
    restyles existing plots through :func:`style_plot`.
    """
    global _current
    theme = get_theme(name)
    _current = theme
    pg.setConfigOptions(background=theme.background, foreground=theme.foreground, antialias=False)
    if not isinstance(app, QtWidgets.QApplication):  # none, or no widgets to colour
        return theme
    roles = QtGui.QPalette.ColorRole
    palette = QtGui.QPalette()
    for role, colour in (
        (roles.Window, theme.window), (roles.WindowText, theme.text), (roles.Base, theme.background),
        (roles.AlternateBase, theme.window), (roles.Text, theme.text), (roles.Button, theme.window),
        (roles.ButtonText, theme.text), (roles.ToolTipBase, theme.window), (roles.ToolTipText, theme.text),
        (roles.PlaceholderText, theme.disabled_text), (roles.BrightText, "#ffffff"),
        (roles.Highlight, "#3a6ea5"), (roles.HighlightedText, "#ffffff"),
        (roles.Light, QtGui.QColor(theme.window).lighter(150).name()),
        (roles.Midlight, QtGui.QColor(theme.window).lighter(120).name()),
        (roles.Mid, theme.grid), (roles.Dark, QtGui.QColor(theme.window).darker(150).name()),
        (roles.Shadow, "#000000"),
    ):
        palette.setColor(role, QtGui.QColor(colour))
    disabled = QtGui.QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, QtGui.QColor(theme.disabled_text))
    palette.setColor(disabled, roles.Base, QtGui.QColor(theme.window))
    app.setPalette(palette)
    return theme
