"""Connect… dialog: pick LSL streams (discovered live, mapping editable) or an MQTT broker.

LSL discovery takes about a second per pass, so it runs on a helper thread and the table
is refreshed from a queued signal; the dialog stays responsive while it searches. Each
row shows what PainMon guessed (subject from ``<desc><subject>`` / source id, modality
from type and channel labels); the user may change both before connecting.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from core.modalities import REGISTRY
from core.streams import MARKERS
from monitor.gui.settings import GuiSettings

if TYPE_CHECKING:  # devices.lsl (and pylsl) load on first use, not with the dashboard
    from devices.lsl import DiscoveredStream

log = logging.getLogger(__name__)

REFRESH_MS = 3000
DISCOVER_TIMEOUT_S = 1.0
COLUMNS = ("use", "stream", "type", "subject", "modality", "rate", "channels", "host")
UNMAPPED = "(ignore)"


@dataclass(frozen=True)
class StreamChoice:
    """One discovered stream with the user's mapping."""

    identity: str
    name: str
    type: str
    subject: str
    modality: str


def group_by_subject(choices: list[StreamChoice]) -> dict[str, list[StreamChoice]]:
    """Selected streams per subject: one LSL source is opened per subject, so the
    subject typed in the dialog applies to streams that do not carry their own."""
    out: dict[str, list[StreamChoice]] = {}
    for c in choices:
        out.setdefault(c.subject, []).append(c)
    return out


def lsl_sources(choices: list[StreamChoice]) -> list:
    """LSL sources that follow exactly the chosen streams with the chosen mapping."""
    from devices.lsl import LSLSource

    sources = []
    for subject, group in group_by_subject(choices).items():
        wanted = {c.identity for c in group}
        overrides = {c.name: c.modality for c in group if c.modality != MARKERS}
        sources.append(
            LSLSource(
                predicate=lambda s, wanted=wanted: s.identity in wanted,
                subject=subject,
                modality_overrides=overrides,
            )
        )
    return sources


class _DiscoverySignals(QtCore.QObject):
    found = QtCore.Signal(object)
    failed = QtCore.Signal(str)


class ConnectDialog(QtWidgets.QDialog):
    """Returns sources through :meth:`sources` after the user pressed Connect."""

    def __init__(self, settings: GuiSettings, parent: QtWidgets.QWidget | None = None,
                 auto_refresh: bool = True):
        super().__init__(parent)
        self.setWindowTitle("Connect to streams")
        self.resize(820, 420)
        self.settings = settings
        self._streams: dict[str, DiscoveredStream] = {}
        self._discovering = False
        self._signals = _DiscoverySignals()
        self._signals.found.connect(self._on_found)
        self._signals.failed.connect(self._on_failed)

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self._build_lsl_tab(), "LSL streams")
        self.tabs.addTab(self._build_mqtt_tab(), "MQTT broker")
        buttons = QtWidgets.QDialogButtonBox()
        self.connect_button = buttons.addButton("Connect", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setStyleSheet("color: #d43a2f;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self._result: list = []

        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        if auto_refresh:
            self.timer.start()
            QtCore.QTimer.singleShot(0, self.refresh)

    # --- LSL tab ---------------------------------------------------------------------
    def _build_lsl_tab(self) -> QtWidgets.QWidget:
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.status_label = QtWidgets.QLabel("searching the network…")
        refresh = QtWidgets.QPushButton("Refresh now")
        refresh.clicked.connect(self.refresh)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.status_label, 1)
        row.addWidget(refresh)
        box = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(box)
        layout.addWidget(self.table)
        layout.addLayout(row)
        return box

    def refresh(self) -> None:
        """Start one discovery pass on a helper thread (skipped while one runs)."""
        if self._discovering:
            return
        self._discovering = True
        threading.Thread(target=self._discover, name="painmon-lsl-discovery", daemon=True).start()

    def _discover(self) -> None:
        try:
            from devices.lsl import discover

            self._signals.found.emit(discover(timeout=DISCOVER_TIMEOUT_S))
        except Exception as exc:
            log.exception("LSL discovery failed")
            self._signals.failed.emit(str(exc))

    @QtCore.Slot(object)
    def _on_found(self, streams: list) -> None:
        self._discovering = False
        self.set_streams(streams)

    @QtCore.Slot(str)
    def _on_failed(self, message: str) -> None:
        self._discovering = False
        self.status_label.setText(f"discovery failed: {message}")

    def set_streams(self, streams: list) -> None:
        """Show discovered streams; rows already listed keep the user's edits."""
        for s in streams:
            if s.identity not in self._streams:
                self._streams[s.identity] = s
                self._add_row(s)
        self.status_label.setText(f"{len(self._streams)} stream(s) found; refreshing every {REFRESH_MS // 1000} s")

    def _add_row(self, s) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        use = QtWidgets.QTableWidgetItem()
        # a refused stream (out-of-bounds declaration) is listed, with the reason as its
        # tooltip, but cannot be chosen: the source would refuse it anyway
        use.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled if s.refused
                     else QtCore.Qt.ItemFlag.ItemIsUserCheckable | QtCore.Qt.ItemFlag.ItemIsEnabled)
        use.setCheckState(QtCore.Qt.CheckState.Checked if s.modality and not s.refused
                          else QtCore.Qt.CheckState.Unchecked)
        use.setData(QtCore.Qt.ItemDataRole.UserRole, s.identity)
        self.table.setItem(r, 0, use)
        for col, text in ((1, s.name), (2, s.type), (5, f"{s.rate:g} Hz" if s.rate else "irregular"),
                          (6, str(len(s.channel_labels)) if not s.refused else "-"), (7, s.hostname)):
            item = QtWidgets.QTableWidgetItem(text)
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
            if s.refused:
                item.setToolTip(f"refused: {s.refused}")
            self.table.setItem(r, col, item)
        self.table.setItem(r, 3, QtWidgets.QTableWidgetItem(s.subject))
        combo = QtWidgets.QComboBox()
        combo.addItems([UNMAPPED, *REGISTRY, MARKERS])
        combo.setCurrentText(s.modality or UNMAPPED)
        self.table.setCellWidget(r, 4, combo)

    def choices(self) -> list[StreamChoice]:
        """Checked rows with a modality, as edited."""
        out = []
        for r in range(self.table.rowCount()):
            use, subject_item, combo = self.table.item(r, 0), self.table.item(r, 3), self.table.cellWidget(r, 4)
            assert use is not None and subject_item is not None and isinstance(combo, QtWidgets.QComboBox)  # _add_row
            modality = combo.currentText()
            if use.checkState() != QtCore.Qt.CheckState.Checked or modality == UNMAPPED:
                continue
            s = self._streams[use.data(QtCore.Qt.ItemDataRole.UserRole)]
            subject = subject_item.text().strip() or s.subject
            out.append(StreamChoice(s.identity, s.name, s.type, subject, modality))
        return out

    # --- MQTT tab --------------------------------------------------------------------
    def _build_mqtt_tab(self) -> QtWidgets.QWidget:
        s = self.settings
        self.mqtt_host = QtWidgets.QLineEdit(s.mqtt_host)
        self.mqtt_port = QtWidgets.QSpinBox()
        self.mqtt_port.setRange(1, 65535)
        self.mqtt_port.setValue(s.mqtt_port)
        self.mqtt_tls = QtWidgets.QCheckBox("TLS")
        self.mqtt_tls.setChecked(s.mqtt_tls)
        self.mqtt_ca = QtWidgets.QLineEdit()
        self.mqtt_ca.setPlaceholderText("CA file (empty: system store)")
        self.mqtt_user = QtWidgets.QLineEdit(s.mqtt_username)
        self.mqtt_password = QtWidgets.QLineEdit()
        self.mqtt_password.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.mqtt_password.setToolTip("not saved")
        self.mqtt_prefix = QtWidgets.QLineEdit(s.mqtt_prefix)
        box = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(box)
        form.addRow("Host", self.mqtt_host)
        form.addRow("Port", self.mqtt_port)
        form.addRow("", self.mqtt_tls)
        form.addRow("CA file", self.mqtt_ca)
        form.addRow("User name", self.mqtt_user)
        form.addRow("Password", self.mqtt_password)
        form.addRow("Topic prefix", self.mqtt_prefix)
        return box

    def mqtt_config(self):
        """The broker settings as an ``MQTTConfig`` (raises ValueError when invalid)."""
        from devices.mqtt import MQTTConfig

        user = self.mqtt_user.text().strip() or None
        return MQTTConfig(
            host=self.mqtt_host.text().strip(),
            port=self.mqtt_port.value(),
            prefix=self.mqtt_prefix.text().strip(),
            tls=self.mqtt_tls.isChecked(),
            ca_file=self.mqtt_ca.text().strip() or None,
            username=user,
            password=(self.mqtt_password.text() or None) if user else None,
        )

    # --- result ----------------------------------------------------------------------
    def accept(self) -> None:
        try:
            if self.tabs.currentIndex() == 0:
                choices = self.choices()
                if not choices:
                    raise ValueError("select at least one stream with a modality")
                self._result = lsl_sources(choices)
            else:
                from devices.mqtt import MQTTSource

                config = self.mqtt_config()
                self._result = [MQTTSource(config)]
                self.settings.mqtt_host, self.settings.mqtt_port = config.host, config.port
                self.settings.mqtt_prefix, self.settings.mqtt_tls = config.prefix, config.tls
                self.settings.mqtt_username = config.username or ""
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        self.timer.stop()
        super().accept()

    def sources(self) -> list:
        return list(self._result)
