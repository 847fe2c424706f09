"""The status bar: sources, each stream's effective vs nominal rate, latency, skipped
windows, compute device and model, recording state.

Formatting is separated from the widget (``format_*`` functions) so the texts are tested
without a window and stay consistent with the tooltips.
"""

from __future__ import annotations

import math

from PySide6 import QtWidgets

from core.streams import StreamHealth


def format_stream(h: StreamHealth) -> str:
    """"BVP 63.8/64 Hz" — measured vs promised rate; "lost" instead when disconnected;
    "Markers 3 events" for irregular streams."""
    name = h.spec.modality
    if not h.connected:
        return f"{name} {h.status or 'lost'}"
    if h.spec.nominal_rate <= 0:  # marker streams: a rate means nothing, the count does
        return f"{name} {h.samples} event{'' if h.samples == 1 else 's'}"
    return f"{name} {h.effective_rate:.1f}/{h.spec.nominal_rate:g} Hz"


def format_streams(health: list[StreamHealth], subject: str | None) -> tuple[str, str]:
    """Short text for one subject's streams and a tooltip listing every stream."""
    from monitor.gui.subject_panel import modality_order

    mine = sorted((h for h in health if subject is None or h.spec.subject == subject),
                  key=lambda h: modality_order(h.spec.modality))
    short = " · ".join(format_stream(h) for h in mine) or "no streams"
    lines = []
    for h in health:
        extra = []
        if h.dropped:
            extra.append(f"{h.dropped} dropped")
        if h.gaps:
            extra.append(f"{h.gaps} gaps")
        if h.rejected:
            extra.append(f"{h.rejected} rejected")
        lines.append(f"{h.spec.subject} {format_stream(h)}" + (f" ({', '.join(extra)})" if extra else ""))
    return short, "\n".join(lines) or "no streams"


def format_engine(state: str, stats, delay_s: float) -> str:
    """Engine state, inference latency, end-to-end delay and skipped windows."""
    if stats is None:
        return f"model: {state}"
    parts = [f"model {stats.model}"]
    if math.isfinite(stats.mean_total_latency):
        parts.append(f"inference {1000 * stats.mean_total_latency:.0f} ms")
    if math.isfinite(delay_s):
        parts.append(f"delay {delay_s:.1f} s")
    parts.append(f"skipped {stats.skipped}")
    if stats.errors:
        parts.append(f"errors {stats.errors}")
    return " | ".join(parts)


class StatusBar(QtWidgets.QStatusBar):
    """Labels updated a few times a second by the main window."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.sources_label = QtWidgets.QLabel("no source")
        self.streams_label = QtWidgets.QLabel("no streams")
        self.engine_label = QtWidgets.QLabel("model: off")
        self.device_label = QtWidgets.QLabel("")
        self.recording_label = QtWidgets.QLabel("")
        self.addWidget(self.sources_label)
        self.addWidget(self.streams_label, 1)
        self.addPermanentWidget(self.recording_label)
        self.addPermanentWidget(self.engine_label)
        self.addPermanentWidget(self.device_label)

    def set_recording(self, path: str | None) -> None:
        if path:
            self.recording_label.setText("● REC")
            self.recording_label.setStyleSheet("color: #d43a2f; font-weight: bold;")
            self.recording_label.setToolTip(f"recording to {path}")
        else:
            self.recording_label.setText("")
            self.recording_label.setToolTip("")
