"""Settings… dialog: analysis window and hop, model file, compute device, theme and
display spans. Values are validated by :meth:`GuiSettings.validate` before acceptance,
so a setting that would stop the engine from starting never gets saved.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from monitor.gui.settings import PLOT_SPANS_S, THEME_NAMES, TREND_SPANS_MIN, GuiSettings

DEVICES = ("auto", "cpu", "cuda", "mps")


class SettingsDialog(QtWidgets.QDialog):
    """Edits a copy of the settings; :meth:`result_settings` returns it after OK."""

    def __init__(self, settings: GuiSettings, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("PainMon settings")
        self._settings = dataclasses.replace(settings)
        s = self._settings
        self.window_box = QtWidgets.QDoubleSpinBox()
        self.window_box.setRange(2.0, 60.0)
        self.window_box.setSuffix(" s")
        self.window_box.setValue(s.window_s)
        self.hop_box = QtWidgets.QDoubleSpinBox()
        self.hop_box.setRange(0.1, 60.0)
        self.hop_box.setSingleStep(0.5)
        self.hop_box.setSuffix(" s")
        self.hop_box.setValue(s.hop_s)
        self.repr_edit = QtWidgets.QLineEdit(s.representations)
        self.repr_edit.setPlaceholderText("as trained (from the model file)")
        self.repr_edit.setToolTip(
            "Comma-separated representation names. The bundled model fixes its own; this is kept for models "
            "that accept a choice."
        )
        self.model_edit = QtWidgets.QLineEdit(s.model_path)
        self.model_edit.setPlaceholderText("bundled default model")
        self.model_edit.setMinimumWidth(360)
        self.model_edit.textChanged.connect(self._show_model)
        self.model_label = QtWidgets.QLabel()
        """The model file's name, wrapped (a long path never hides it)."""
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self._show_model(s.model_path)
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        model_row = QtWidgets.QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(browse)
        self.device_box = QtWidgets.QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(s.device if s.device in DEVICES else "auto")
        self.theme_box = QtWidgets.QComboBox()
        self.theme_box.addItems(THEME_NAMES)
        self.theme_box.setCurrentText(s.theme)
        self.span_box = QtWidgets.QComboBox()
        for v in PLOT_SPANS_S:
            self.span_box.addItem(f"{v:g} s", v)
        self.span_box.setCurrentIndex(max(0, self.span_box.findData(s.plot_span_s)))
        self.trend_box = QtWidgets.QComboBox()
        for v in TREND_SPANS_MIN:
            self.trend_box.addItem(f"{v:g} min", v)
        self.trend_box.setCurrentIndex(max(0, self.trend_box.findData(s.trend_span_min)))
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setStyleSheet("color: #d43a2f;")
        self.error_label.setWordWrap(True)

        form = QtWidgets.QFormLayout()
        form.addRow("Analysis window", self.window_box)
        form.addRow("Hop", self.hop_box)
        form.addRow("Representations", self.repr_edit)
        form.addRow("Model", model_row)
        form.addRow("", self.model_label)
        form.addRow("Device", self.device_box)
        form.addRow("Theme", self.theme_box)
        form.addRow("Signal window", self.span_box)
        form.addRow("Trend window", self.trend_box)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _show_model(self, path: str) -> None:
        path = path.strip()
        text = Path(path).name if path else "bundled default model (painmon-default)"
        self.model_label.setText(text)
        self.model_label.setToolTip(path)
        self.model_edit.setToolTip(path or "empty: the bundled default model")

    def _browse_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "PainMon model", "", "PainMon models (*.pt);;All (*)")
        if path:
            self.model_edit.setText(path)

    def collect(self) -> GuiSettings:
        """The settings as currently entered (not validated)."""
        return dataclasses.replace(
            self._settings,
            window_s=self.window_box.value(),
            hop_s=self.hop_box.value(),
            representations=self.repr_edit.text().strip(),
            model_path=self.model_edit.text().strip(),
            device=self.device_box.currentText(),
            theme=self.theme_box.currentText(),
            plot_span_s=float(self.span_box.currentData()),
            trend_span_min=float(self.trend_box.currentData()),
        )

    def accept(self) -> None:
        candidate = self.collect()
        problems = candidate.validate()
        if problems:
            self.error_label.setText("; ".join(problems))
            return
        self._settings = candidate
        super().accept()

    def result_settings(self) -> GuiSettings:
        return self._settings
