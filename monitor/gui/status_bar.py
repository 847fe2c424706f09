"""The status bar: sources, each stream's effective vs nominal rate, latency, skipped
windows, compute device and model, recording state.

Formatting is separated from the widget (``format_*`` functions) so the texts are tested
without a window and stay consistent with the tooltips.
"""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

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


def format_engine(state: str, stats, delay_s: float, *, file_time: float = math.nan, speed: float = 1.0,
                  hop_s: float = 1.0, explain: bool = False):
    """Engine state, inference latency, how far behind the data it is, and skipped windows.

    Live: ``delay`` (estimate made minus window end; never shown negative). Replay
    (``file_time`` given): the file time of the newest estimate instead, since a replay's
    timestamps are not "now". Skipped windows at a replay ``speed`` above 1 come with the
    reason: the replay delivers ``speed / hop_s`` windows per second, more than the model
    computes. With ``explain`` returns (text, tooltip)."""
    why = ""
    if stats is None:
        text = f"model: {state}"
        return (text, why) if explain else text
    parts = [f"model {stats.model}"]
    if math.isfinite(stats.mean_total_latency):
        parts.append(f"inference {1000 * stats.mean_total_latency:.0f} ms")
    if math.isfinite(file_time):
        parts.append(f"estimate at file {_clock(file_time)}")
    elif math.isfinite(delay_s):
        parts.append(f"delay {max(0.0, delay_s):.1f} s")
    if stats.skipped and speed > 1.0:
        need = "all it can" if math.isinf(speed) else f"{speed / hop_s:g} windows/s"
        parts.append(f"skipped {stats.skipped} (replay too fast)")
        can = f"{1.0 / stats.mean_total_latency:.1f}" if stats.mean_total_latency > 0 else "fewer"
        why = (f"The replay runs at {'full speed' if math.isinf(speed) else f'{speed:g}×'} and delivers {need}; "
               f"the model computes about {can} windows/s, so it estimates the newest window and skips "
               f"the others. Replay at a lower speed to estimate every window.")
    else:
        parts.append(f"skipped {stats.skipped}")
    parts += [stats.load_summary] if stats.load_summary else []  # capacity, or "degraded: hop 2.0 s for all 5"
    if stats.errors:
        parts.append(f"errors {stats.errors}")
    text = " | ".join(parts)
    return (text, why) if explain else text


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label that never asks for more width than it is given: long text is
    cut with "…" and shown whole in the tooltip. A plain QLabel in a status bar makes
    the window grow with its text (1400 → 1538 px with a long source list)."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._full = "\0"
        self._tip = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.set_full_text(text)

    def full_text(self) -> str:
        return self._full

    def text(self) -> str:
        """The whole text (what is displayed may be elided: :meth:`shown_text`)."""
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        self.set_full_text(text, self._tip)

    def set_full_text(self, text: str, tooltip: str = "") -> None:
        if text == self._full and tooltip == self._tip:
            return
        self._full, self._tip = text, tooltip
        self._elide()

    def _elide(self) -> None:
        metrics = QtGui.QFontMetrics(self.font())
        shown = metrics.elidedText(self._full, QtCore.Qt.TextElideMode.ElideRight, max(10, self.width()))
        super().setText(shown)
        tips = [t for t in ((self._full if shown != self._full else ""), self._tip) if t]
        self.setToolTip("\n\n".join(tips))

    def preferred_width(self) -> int:
        """Width the whole text would take."""
        return QtGui.QFontMetrics(self.font()).horizontalAdvance(self._full) + 8

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt naming)
        hint = super().sizeHint()
        return QtCore.QSize(min(self.preferred_width(), 420), hint.height())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt naming)
        return QtCore.QSize(40, super().minimumSizeHint().height())

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self._elide()


class StatusBar(QtWidgets.QStatusBar):
    """Labels updated a few times a second by the main window. Every label elides its
    text (full text in the tooltip), so the status bar never widens the window."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.sources_label = ElidedLabel("no source")
        self.streams_label = ElidedLabel("no streams")
        self.engine_label = ElidedLabel("model: off")
        self.device_label = ElidedLabel("")
        self.recording_label = QtWidgets.QLabel("")
        self.addWidget(self.sources_label, 2)
        self.addWidget(self.streams_label, 3)
        self.addPermanentWidget(self.recording_label)
        self.addPermanentWidget(self.engine_label, 3)
        self.addPermanentWidget(self.device_label, 1)

    @staticmethod
    def set_text(label: QtWidgets.QLabel, text: str, tooltip: str = "") -> None:
        if isinstance(label, ElidedLabel):
            label.set_full_text(text, tooltip)
        else:
            label.setText(text)
            label.setToolTip(tooltip)

    def set_recording(self, path: str | None) -> None:
        if path:
            self.recording_label.setText("● REC")
            self.recording_label.setStyleSheet("color: #d43a2f; font-weight: bold;")
            self.recording_label.setToolTip(f"recording to {path}")
        else:
            self.recording_label.setText("")
            self.recording_label.setToolTip("")
