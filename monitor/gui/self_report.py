"""The dashboard's self-report control: a CoVAS-style 0-100 slider per subject.

The subject (or an observer) keeps the slider at the current pain: 0 = no pain, 100 =
worst pain imaginable. Mouse: click anywhere on the track to jump there, drag to follow.
Keyboard (when it has focus; Tab reaches it): Left/Right or Up/Down ±1, PageUp/PageDown
±10, Home 0, End 100. Every change goes to the subject's
:class:`monitor.self_report.SelfReportChannel`, which samples it steadily into the hub
(recorded), LSL and MQTT. Nothing is sent before the first touch: "not rated yet" is not 0.

:func:`attach_self_report` mounts one under a subject panel's trend; the window's
:class:`monitor.self_report.SelfReports` (created on first use, stopped with the session)
also keeps the history the trend can draw (:meth:`SelfReports.trend`).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from monitor.self_report import SelfReportChannel, SelfReports

log = logging.getLogger(__name__)

PAGE_STEP = 10
NOT_RATED = "not rated yet"


class CoVASSlider(QtWidgets.QSlider):
    """A horizontal 0-100 slider whose track jumps to the clicked point (a rating scale,
    not a scroll bar that pages towards the click)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(QtCore.Qt.Orientation.Horizontal, parent)
        self.setRange(0, 100)
        self.setSingleStep(1)
        self.setPageStep(PAGE_STEP)
        self.setTickPosition(QtWidgets.QSlider.TickPosition.TicksBelow)
        self.setTickInterval(10)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("self-reported pain, 0 no pain to 100 worst imaginable")

    def value_at(self, x: float) -> int:
        """The rating under horizontal widget position ``x``."""
        opt = QtWidgets.QStyleOptionSlider()
        self.initStyleOption(opt)
        groove = self.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                             QtWidgets.QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                             QtWidgets.QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, groove.width() - handle.width())
        pos = int(round(x - groove.x() - handle.width() / 2))
        return QtWidgets.QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), pos, span)

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt naming)
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            self.setValue(self.value_at(event.position().x()))
            self.setSliderDown(True)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self.isSliderDown():
            self.setValue(self.value_at(event.position().x()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self.isSliderDown():
            self.setSliderDown(False)
            event.accept()
            return
        super().mouseReleaseEvent(event)


class SelfReportWidget(QtWidgets.QGroupBox):
    """Title, the slider with its anchors, and the current rating, bound to one channel."""

    def __init__(self, channel: SelfReportChannel, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(f"Self-report (CoVAS) — {channel.subject}", parent)
        self.channel = channel
        self.slider = CoVASSlider()
        self.value_label = QtWidgets.QLabel(NOT_RATED)
        self.value_label.setMinimumWidth(90)
        self.value_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.setToolTip("0 = no pain, 100 = worst pain imaginable. Click or drag; keys: arrows ±1, "
                        "PageUp/PageDown ±10, Home 0, End 100. Recorded, and sent on LSL and MQTT.")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("no pain"))
        row.addWidget(self.slider, 1)
        row.addWidget(QtWidgets.QLabel("worst"))
        row.addWidget(self.value_label)
        self.setLayout(row)
        self._touched = False
        # every way the value changes (mouse, keys, programmatic) is a rating
        self.slider.valueChanged.connect(self._on_value)
        self.slider.sliderPressed.connect(lambda: self._on_value(self.slider.value()))
        self.slider.actionTriggered.connect(self._on_action)

    def _on_action(self, _action: int) -> None:
        # a key that leaves the value unchanged (Home at 0) still counts as the first rating
        QtCore.QTimer.singleShot(0, lambda: self._on_value(self.slider.value()))

    @QtCore.Slot(int)
    def _on_value(self, value: int) -> None:
        if self._touched and self.channel.rating == float(value):
            return
        self._touched = True
        stored = self.channel.set(float(value))
        self.value_label.setText(f"{stored:.0f} / 100")

    @property
    def rating(self) -> float | None:
        return self.channel.rating


def self_reports_of(window: Any) -> SelfReports:
    """The window's :class:`SelfReports` (created on first use; the session stops it)."""
    reports = getattr(window, "self_reports", None)
    if reports is None:
        session = window.session
        publisher = _broker_publisher(session)
        reports = SelfReports(session.hub, publisher=publisher)
        session.add_background(reports)  # stopped with the session, after its sources
        if publisher is not None:
            session.add_background(publisher)  # after the channels that publish through it
        window.self_reports = reports
    return reports


def _broker_publisher(session: Any) -> Any:
    """An MQTT publisher on the broker of the session's first MQTT source, if any (the
    self-reports go where the wearables' data come from); None without one."""
    for source in session.sources:
        config = getattr(source, "config", None)
        if getattr(source, "name", "") == "mqtt" and config is not None:
            from devices.mqtt import MQTTPublisher

            publisher = MQTTPublisher(config)
            publisher.start()
            return publisher
    return None


def attach_self_report(window: Any, panel: Any) -> SelfReportWidget:
    """Mount a self-report control for ``panel.subject`` under the panel's trend."""
    channel = self_reports_of(window).channel(panel.subject)
    widget = SelfReportWidget(channel, panel)
    layout = panel.trend.parentWidget().layout()
    layout.insertWidget(layout.indexOf(panel.trend) + 1, widget)
    panel.self_report = widget
    return widget
