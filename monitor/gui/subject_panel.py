"""Everything about one subject: signals column and estimate column.

The panel only draws; it never reads sources or runs models. :class:`MainWindow` calls
:meth:`refresh_signals` from its frame timer, :meth:`refresh_slow` a few times a second
(vitals, quality, trend) and :meth:`show_estimate` when the engine delivers.
"""

from __future__ import annotations

import dataclasses
import math

from PySide6 import QtCore, QtWidgets

from core.buffers import BufferHub, Marker
from core.estimate import Estimate
from core.modalities import DEFAULT_MODALITIES
from core.streams import StreamHealth
from core.vitals import HISTORY_OF_MODALITY, vital_for
from core.wire import shown_label
from monitor.gui.estimate_log import EstimateLog
from monitor.gui.estimate_view import EstimateView
from monitor.gui.quality import classify
from monitor.gui.signal_plot import SignalRow
from monitor.gui.theme import GREYED
from monitor.gui.trend_plot import TrendPlot

EVENT_PAIN = "user:pain-reported"
EVENT_MEDICATION = "user:medication"
NOTE_PREFIX = "note:"


def modality_order(name: str) -> tuple[int, str]:
    """The four default modalities first, in their usual order, then the rest by name."""
    return (DEFAULT_MODALITIES.index(name) if name in DEFAULT_MODALITIES else len(DEFAULT_MODALITIES), name)



def shown_marker(marker: Marker) -> Marker:
    """The marker as the trend draws it (:func:`core.wire.shown_label`: no baseline payload)."""
    label = shown_label(marker.label)
    return marker if label == marker.label else dataclasses.replace(marker, label=label)

class SubjectPanel(QtWidgets.QWidget):
    """Signals (left) and estimate, trend and event buttons (right) of one subject."""

    event_requested = QtCore.Signal(str, str)
    """(subject, marker label) — the window stamps and stores it."""
    note_requested = QtCore.Signal(str)
    """(subject) — the window asks for the note's text."""

    def __init__(self, subject: str, plot_span_s: float = 30.0, trend_span_min: float = 15.0,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.subject = subject
        self.plot_span_s = plot_span_s
        self.rows: dict[str, SignalRow] = {}
        self._trend_key: tuple | None = None
        self._trend_ref = float("nan")

        self.signals_box = QtWidgets.QVBoxLayout()
        self.signals_box.setSpacing(2)
        self.placeholder: QtWidgets.QLabel | None = QtWidgets.QLabel("waiting for streams…")
        self.signals_box.addWidget(self.placeholder)
        self.signals_box.addStretch(0)
        signals = QtWidgets.QWidget()
        signals.setLayout(self.signals_box)

        self.estimate_view = EstimateView()
        self.trend = TrendPlot(trend_span_min)
        self.trend.setMinimumHeight(160)
        # short labels (the panel may be 380 px wide on a small screen); what each marks and
        # its shortcut are in the tooltip and the Events menu
        self.pain_button = QtWidgets.QPushButton("Pain reported")
        self.pain_button.setToolTip("Mark: the patient reports pain now (Ctrl+P)")
        self.medication_button = QtWidgets.QPushButton("Medication")
        self.medication_button.setToolTip("Mark: medication given now (Ctrl+M)")
        self.note_button = QtWidgets.QPushButton("Note…")
        self.note_button.setToolTip("Add a note at this time (Ctrl+E)")
        self.pain_button.clicked.connect(lambda: self.event_requested.emit(self.subject, EVENT_PAIN))
        self.medication_button.clicked.connect(lambda: self.event_requested.emit(self.subject, EVENT_MEDICATION))
        self.note_button.clicked.connect(lambda: self.note_requested.emit(self.subject))
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.pain_button, self.medication_button, self.note_button):
            buttons.addWidget(b)

        right = QtWidgets.QVBoxLayout()
        right.addWidget(self.estimate_view)
        right.addWidget(self.trend, 1)
        right.addLayout(buttons)
        right_box = QtWidgets.QWidget()
        right_box.setLayout(right)
        right_box.setMinimumWidth(380)
        right_box.setMaximumWidth(640)

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(signals)
        split.addWidget(right_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([780, 520])
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

    # --- structure -------------------------------------------------------------------
    def ensure_rows(self, hub: BufferHub) -> None:
        """Add a row for every numeric stream of the subject not shown yet (kept sorted)."""
        present = hub.modalities(self.subject)
        new = [m for m in present if m not in self.rows]
        if not new:
            return
        if self.placeholder is not None:
            self.signals_box.removeWidget(self.placeholder)
            self.placeholder.deleteLater()
            self.placeholder = None
        for modality in new:
            spec = hub.spec(self.subject, modality)
            self.rows[modality] = SignalRow(modality, spec.units if spec else "", self.plot_span_s)
        for row in self.rows.values():
            self.signals_box.removeWidget(row)
        order = sorted(self.rows, key=modality_order)
        for i, modality in enumerate(order):
            self.signals_box.insertWidget(i, self.rows[modality], 1)
            self.rows[modality].show_time_axis(i == len(order) - 1)

    def set_plot_span(self, span_s: float) -> None:
        self.plot_span_s = span_s
        for row in self.rows.values():
            row.set_span(span_s)

    def set_trend_span(self, span_min: float) -> None:
        self.trend.set_span(span_min)
        self._trend_key = None

    # --- updates ---------------------------------------------------------------------
    def refresh_signals(self, hub: BufferHub, t_ref: float) -> int:
        """Redraw the signal plots that changed; returns how many did."""
        self.ensure_rows(hub)
        return sum(row.refresh(hub.buffer(self.subject, m), t_ref) for m, row in self.rows.items())

    def refresh_slow(self, hub: BufferHub, log: EstimateLog, health: dict[str, StreamHealth],
                     t_ref: float, now: float, live: bool, window_s: float,
                     engine_state: str = "running") -> None:
        """Vitals, quality dots, warm-up/stale state and the trend (a few times a second).

        ``live``: ages come from arrival times (``now`` - last received) when the sources
        are live; for paused or file replay, from sample times relative to ``t_ref``.
        """
        latest = log.latest(self.subject)
        have_s = 0.0
        for modality, row in self.rows.items():
            buf = hub.buffer(self.subject, modality)
            spec = hub.spec(self.subject, modality)
            if buf is None or spec is None:
                continue
            last = buf.last_timestamp
            h = health.get(modality)
            if live and h is not None and math.isfinite(h.last_received):
                age = now - h.last_received
            else:
                age = t_ref - last
            eff = h.effective_rate if h is not None and h.samples > 0 else None
            sig_q = latest.quality.get(modality) if latest is not None else None
            row.set_quality(classify(age, spec.nominal_rate, h.connected if h else True, eff, sig_q))
            data, times = buf.latest(HISTORY_OF_MODALITY.get(modality, 10.0))
            vital = vital_for(modality, data, times, now=t_ref)
            if vital is not None and self.estimate_view.state == "stale":
                # the subject's signals stopped (by the wall clock): no vital is current
                vital = dataclasses.replace(vital, reliable=False, reason=self.estimate_view.state_label.text())
            row.set_vital(vital)
            if math.isfinite(last):
                have_s = max(have_s, last - buf.first_timestamp)
        if latest is None:
            if engine_state.startswith("error"):
                self.estimate_view.show_unavailable("pain model not running — see status bar")
            elif engine_state == "off":
                self.estimate_view.show_unavailable("pain model off")
            elif self.rows:
                self.estimate_view.show_warmup(have_s, window_s)
        else:
            self.estimate_view.check_stale()
        self.refresh_trend(hub, log, t_ref)

    def refresh_trend(self, hub: BufferHub, log: EstimateLog, t_ref: float) -> None:
        """Redraw the trend when an estimate or marker arrived, or once the time moved by a
        second (an hour of trend costs ~20 ms to draw; a sub-second shift is invisible)."""
        since = t_ref - 60.0 * self.trend.span_min
        markers = [shown_marker(m) for m in hub.markers(self.subject, since)]
        key = (log.version, len(markers), markers[-1] if markers else None)
        if key == self._trend_key and abs(t_ref - self._trend_ref) < 1.0:
            return
        self._trend_key, self._trend_ref = key, t_ref
        self.trend.update_trend(log.trend(self.subject, since), markers, t_ref)

    def show_estimate(self, est: Estimate) -> None:
        """Show an estimate of any state; a ``stale`` status also greys the vitals at once."""
        self.estimate_view.show_estimate(est)
        if est.state == "stale":
            for row in self.rows.values():
                row.vital_label.setStyleSheet(f"color: {GREYED};")
                row.vital_label.setToolTip(f"unreliable: {self.estimate_view.state_label.text()}")
