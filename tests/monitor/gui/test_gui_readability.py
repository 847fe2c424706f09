"""Issue 12 (4, 5, 6): the trend, the layout, settings and themes, read as a user reads them.

Real widgets offscreen; where the defect is visual, the test measures what is drawn (label
rectangles, pixel colours, contrast ratios, window width).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from test_gui_window import estimate, push_signals

from core import clock
from monitor.gui.settings import GuiSettings, load_settings
from monitor.gui.settings_dialog import SettingsDialog
from monitor.gui.theme import BAND_COLOURS, THEMES, event_colour
from monitor.gui.trend_plot import layout_labels


def contrast(a: str | QtGui.QColor, b: str | QtGui.QColor) -> float:
    """WCAG contrast ratio of two colours (1 = none, 21 = black on white)."""

    def lum(c):
        c = QtGui.QColor(c)
        ch = [x / 255 for x in (c.red(), c.green(), c.blue())]
        ch = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


CROWD_LABELS = ("pain:high", "pain:none", "user:pain-reported", "user:medication", "note:gave water",
                "pain:low", "note:repositioned the patient", "pain:high")


def crowd(window, n_estimates: int = 240):
    """Signals, four minutes of estimates and a crowd of markers, three of them within 7 s
    and two at the right edge."""
    session = window.session
    now = clock.now()
    push_signals(session, end=now)
    for k in range(n_estimates):
        session._on_estimate(estimate("sim-1", now - n_estimates + k, 50 + 40 * math.sin(k / 30)))
    for label, dt in zip(CROWD_LABELS, (200, 196, 193, 120, 118, 60, 3, 1), strict=True):
        session.hub.push_markers("sim-1", [label], [now - dt], source="test")


# --- 4: trend ----------------------------------------------------------------------------
def test_label_layout_never_overlaps_or_leaves_the_plot():
    xs = [10.0, 14.0, 18.0, 200.0, 395.0, 398.0, 399.0]
    widths = [60.0] * len(xs)
    slots = layout_labels(xs, widths, 400.0, rows=2)
    placed = [(s.row, s.x0, s.x1) for s in slots if s is not None]
    assert all(0.0 <= x0 < x1 <= 400.0 for _, x0, x1 in placed)
    for (r1, a0, a1), (r2, b0, b1) in itertools.combinations(placed, 2):
        assert r1 != r2 or a1 <= b0 or b1 <= a0, "two labels of one row overlap"
    assert slots[6] is not None and slots[6].left_of_line  # at the right edge: left of its line
    assert slots.count(None) >= 1  # seven 60-px labels do not fit in two rows there: tooltip


def test_crowded_markers_labels_do_not_overlap_or_clip(qtbot, window):
    crowd(window)
    qtbot.waitUntil(lambda: len(window.log) == 240, timeout=5000)
    window._on_slow()
    trend = window.panels["sim-1"].trend
    # the crowd's 8 markers, plus whatever alarm transitions the swinging index raised
    qtbot.waitUntil(lambda: set(CROWD_LABELS) <= {m.label for m, _ in trend.marker_lines}, timeout=3000)
    trend._layout_labels()
    trend.grab()  # measure what is painted (labels place themselves on the view's transform)
    rects = trend.label_rects()
    assert len(rects) >= 6
    view = trend.getPlotItem().vb.sceneBoundingRect()
    for r in rects:
        assert view.contains(r), f"label {r} cut at the plot's edge {view}"
    for a, b in itertools.combinations(rects, 2):
        assert not a.intersected(b).isValid() or a.intersected(b).isEmpty(), "labels overlap"
    # the labels sit above the 0-100 range, where no trace runs
    y_top = trend.getPlotItem().vb.mapViewToScene(QtCore.QPointF(0, 100.0)).y()
    assert all(r.bottom() <= y_top + 1 for r in rects)
    # every line names its marker in its tooltip (a label with no room is not lost)
    assert all(line.toolTip().startswith(m.label) for m, line in trend.marker_lines)


def test_trend_colours_are_distinct_and_the_headline_is_the_thick_line(window):
    trend = window.panels.get("sim-1") or window.panel("sim-1")
    trend = trend.trend
    for theme in THEMES.values():
        trend.apply_theme(theme)
        index_pen = trend.index_valid.opts["pen"]
        headline_pen = trend.smoothed.opts["pen"]
        traces = {QtGui.QColor(p.color()).name() for p in (index_pen, headline_pen, trend.smoothed_long.opts["pen"])}
        events = {event_colour(k + ":x", theme) for k in ("pain", "user", "note", "other")}
        assert len(traces) == 3 and not traces & events and not traces & set(BAND_COLOURS)
        assert headline_pen.widthF() >= 2.5 * index_pen.widthF()


def test_time_axis_grows_with_the_data_up_to_the_span(qtbot, window):
    push_signals(window.session)
    now = clock.now()
    for k in range(20):  # 20 s of estimates
        window.session._on_estimate(estimate("sim-1", now - 20 + k, 40.0))
    qtbot.waitUntil(lambda: len(window.log) == 20, timeout=3000)
    window._on_slow()
    trend = window.panels["sim-1"].trend
    assert trend.span_min == 5.0
    left, right = trend.getPlotItem().vb.viewRange()[0]
    assert right == pytest.approx(0.0) and -0.6 <= left <= -0.45  # not -5 min
    for k in range(600):  # ten minutes: the axis stops at the chosen span
        window.session._on_estimate(estimate("sim-1", now - 620 + k, 40.0))
    window.panels["sim-1"].refresh_trend(window.session.hub, window.log, now + 1.5)
    assert trend.getPlotItem().vb.viewRange()[0][0] == pytest.approx(-5.0)


# --- 5: layout ---------------------------------------------------------------------------
def test_long_status_text_never_widens_the_window(qtbot, window):
    window.resize(1366, 800)
    qtbot.waitExposed(window)
    width = window.width()
    long = ", ".join(f"LSL stream number {k} of a very talkative device" for k in range(40))
    window.status.set_text(window.status.sources_label, long)
    window.status.set_text(window.status.engine_label, "model " + "x" * 400)
    QtWidgets.QApplication.processEvents()
    window.adjustSize()
    window.resize(1366, 800)
    QtWidgets.QApplication.processEvents()
    assert window.width() == width == 1366
    assert window.minimumSizeHint().width() < 1366
    shown = window.status.sources_label.shown_text()
    assert shown.endswith("…") and len(shown) < len(long)
    assert long in window.status.sources_label.toolTip()


def test_top_tick_labels_are_inside_the_plots(qtbot, window):
    push_signals(window.session)
    window.session._on_estimate(estimate("sim-1", clock.now(), 50.0))
    qtbot.waitUntil(lambda: len(window.log) == 1, timeout=3000)
    window._on_frame()
    window._on_slow()
    trend = window.panels["sim-1"].trend
    qtbot.wait(50)  # the new tab is laid out (the plot resizes and re-fits its range)
    trend.grab()
    vb = trend.getPlotItem().vb
    height_px = vb.height()
    top = vb.viewRange()[1][1]
    px_per_unit = height_px / (top - vb.viewRange()[1][0])
    half_text = QtGui.QFontMetrics(trend.font()).height() / 2
    assert (top - 100.0) * px_per_unit >= half_text + 1  # "100" fits
    assert (0.0 - vb.viewRange()[1][0]) * px_per_unit >= half_text + 1  # and so does "0"
    for row in window.panels["sim-1"].rows.values():  # signal rows: the top tick leaves room for its text
        lo, hi = row.plot.getPlotItem().vb.viewRange()[1]
        vb_height = row.plot.getPlotItem().vb.height()
        ticks = [v for level in row.plot.getAxis("left").tickValues(lo, hi, vb_height) for v in level[1]]
        top_tick = max(ticks)
        room = (hi - top_tick) / (hi - lo) * vb_height
        assert room >= QtGui.QFontMetrics(row.plot.font()).height() / 2 - 1, row.modality


def test_settings_dialog_shows_the_whole_model_name(qtbot, tmp_path):
    path = str(tmp_path / "a-rather-long-folder-name" / "painmon-ward3-finetuned-2026-03-01-final-v2.pt")
    dialog = SettingsDialog(GuiSettings(model_path=path))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.model_label.text() == "painmon-ward3-finetuned-2026-03-01-final-v2.pt"
    assert dialog.model_label.wordWrap() and dialog.model_edit.toolTip() == path
    name_width = QtGui.QFontMetrics(dialog.model_label.font()).horizontalAdvance(dialog.model_label.text())
    one_line = dialog.model_label.fontMetrics().height()
    assert name_width <= dialog.model_label.width() or dialog.model_label.height() > one_line  # fits, or wraps


@pytest.mark.parametrize("theme_name", ["light", "dark"])
def test_probability_text_is_light_on_the_fill(qtbot, theme_name):
    from monitor.gui.probability_bar import ProbabilityBar
    from monitor.gui.theme import apply_theme

    theme = apply_theme(QtWidgets.QApplication.instance(), theme_name)
    try:
        bar = ProbabilityBar(BAND_COLOURS[0])
        qtbot.addWidget(bar)
        bar.resize(300, 22)
        bar.setValue(99)
        image = bar.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
        centre = pixels[4:-4, 120:180, :3].reshape(-1, 3).astype(int)  # where "99 %" is, on the fill
        light = (centre.min(axis=1) > 200).sum()
        assert light >= 15, "the percentage is not drawn light on the fill"
        bar.setValue(2)  # on the track: the theme's text colour, on the theme's track colour
        image = bar.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
        track = QtGui.QColor(image.pixel(280, 11))
        assert track.name() == theme.bar_track
        assert contrast(theme.text, theme.bar_track) >= 4.5
    finally:
        apply_theme(QtWidgets.QApplication.instance(), "light")


# --- 6: settings and theme ---------------------------------------------------------------
def _ticked(group) -> list:
    return [a.data() for a in group.actions() if a.isChecked()]


def test_view_menu_and_settings_dialog_are_one_source_of_truth(qtbot, window, tmp_path):
    assert _ticked(window.theme_group) == ["light"] and _ticked(window.span_group) == [30.0]
    # the Settings dialog changes theme and signal window: the View menu follows
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.theme_box.setCurrentText("dark")
    dialog.span_box.setCurrentIndex(dialog.span_box.findData(10.0))
    dialog.accept()
    window.apply_settings(dialog.result_settings())
    assert _ticked(window.theme_group) == ["dark"] and _ticked(window.span_group) == [10.0]
    # the View menu changes them back: the settings, the saved file and the dialog follow
    next(a for a in window.theme_group.actions() if a.data() == "light").trigger()
    next(a for a in window.trend_group.actions() if a.data() == 15.0).trigger()
    assert window.settings.theme == "light" and window.settings.trend_span_min == 15.0
    saved = load_settings()
    assert (saved.theme, saved.plot_span_s, saved.trend_span_min) == ("light", 10.0, 15.0)
    again = SettingsDialog(window.settings, window)
    qtbot.addWidget(again)
    assert again.theme_box.currentText() == "light" and again.trend_box.currentData() == 15.0
    assert again.span_box.currentData() == 10.0


def test_dark_theme_is_legible(qtbot, window):
    crowd(window, n_estimates=30)
    qtbot.waitUntil(lambda: len(window.log) == 30, timeout=5000)
    window._on_frame()
    window._on_slow()
    window.apply_settings(dataclasses.replace(window.settings, theme="dark"))
    theme = THEMES["dark"]
    panel = window.panels["sim-1"]
    plots = [panel.trend, *(row.plot for row in panel.rows.values())]
    for plot in plots:
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            assert contrast(axis.textPen().color(), theme.background) >= 7, f"{name} axis text"
            assert axis.labelStyle.get("color") == theme.foreground
    for _sample, label in panel.trend.legend.items:  # as drawn, not only as configured
        assert f"color:{theme.text}" in label.item.toHtml().lower()
        assert contrast(theme.text, theme.background) >= 7
    assert not panel.trend.getAxis("bottom").autoSIPrefix  # never "minutes (x0.001)"
    palette = QtWidgets.QApplication.instance().palette()
    disabled = palette.color(QtGui.QPalette.ColorGroup.Disabled, QtGui.QPalette.ColorRole.Text)
    assert contrast(disabled, palette.color(QtGui.QPalette.ColorGroup.Disabled, QtGui.QPalette.ColorRole.Base)) >= 3
    roles = QtGui.QPalette.ColorRole
    assert contrast(palette.color(roles.WindowText), palette.color(roles.Window)) >= 7
    # the probability bars follow the theme: their track is dark now
    bar = panel.estimate_view.bars["no"]
    bar.setValue(0)
    image = bar.grab().toImage()
    assert QtGui.QColor(image.pixel(image.width() - 6, image.height() // 2)).name() == theme.bar_track
    window.apply_settings(dataclasses.replace(window.settings, theme="light"))
