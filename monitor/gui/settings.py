"""Dashboard settings that persist between runs (QSettings, organisation "PainMon").

A dataclass holds the values so the rest of the GUI never touches QSettings' untyped
strings; :func:`load_settings` converts and validates them, falling back to defaults for
anything missing or unreadable (a settings file from an older version must never stop the
monitor from starting).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields

from PySide6 import QtCore

from core.wire import DEFAULT_TOPIC_PREFIX

log = logging.getLogger(__name__)

ORGANISATION = "PainMon"
APPLICATION = "PainMon Monitor"

PLOT_SPANS_S = (10.0, 30.0, 60.0, 120.0)
"""Signal plot spans offered in the View menu (120 s = the ring buffers' retention)."""
TREND_SPANS_MIN = (5.0, 15.0, 60.0)
THEME_NAMES = ("light", "dark")


@dataclass
class GuiSettings:
    """Everything the user can set that should survive a restart."""

    plot_span_s: float = 30.0
    trend_span_min: float = 5.0
    theme: str = "light"
    window_s: float = 10.0
    """Analysis window of the engine."""
    hop_s: float = 1.0
    representations: str = ""
    """Comma-separated representation names; empty = what the model was trained with."""
    model_path: str = ""
    """Empty = the bundled default model."""
    device: str = "auto"
    mqtt_host: str = "localhost"
    mqtt_port: int = 1883
    mqtt_prefix: str = DEFAULT_TOPIC_PREFIX
    mqtt_tls: bool = False
    mqtt_username: str = ""
    last_dir: str = ""

    def validate(self) -> list[str]:
        """Problems with the values (empty when usable)."""
        problems = []
        if not 1.0 <= self.plot_span_s <= 120.0:
            problems.append(f"plot span {self.plot_span_s} s outside 1..120 s")
        if not 1.0 <= self.trend_span_min <= 24 * 60:
            problems.append(f"trend span {self.trend_span_min} min outside 1..1440 min")
        if self.theme not in THEME_NAMES:
            problems.append(f"unknown theme {self.theme!r}")
        if not 2.0 <= self.window_s <= 60.0:
            problems.append(f"window {self.window_s} s outside 2..60 s")
        if not 0.1 <= self.hop_s <= self.window_s:
            problems.append(f"hop {self.hop_s} s outside 0.1 s..window")
        if not 0 < self.mqtt_port < 65536:
            problems.append(f"MQTT port {self.mqtt_port} invalid")
        return problems


SETTINGS_ENV = "PAINMON_SETTINGS"
"""An INI file to use instead of the per-user store (tests, benchmarks, portable installs)."""


def qsettings() -> QtCore.QSettings:
    """The store: ``$PAINMON_SETTINGS`` if set, else the per-user PainMon settings."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings(ORGANISATION, APPLICATION)


def load_settings(store: QtCore.QSettings | None = None) -> GuiSettings:
    """Read settings, converting each to its field type; bad values keep the default."""
    store = store or qsettings()
    defaults = GuiSettings()
    values = {}
    for f in fields(GuiSettings):
        raw = store.value(f.name)
        default = getattr(defaults, f.name)
        if raw is None:
            values[f.name] = default
            continue
        try:
            if isinstance(default, bool):
                values[f.name] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
            else:
                values[f.name] = type(default)(raw)
        except (TypeError, ValueError):
            log.warning("ignoring unreadable setting %s=%r", f.name, raw)
            values[f.name] = default
    settings = GuiSettings(**values)
    problems = settings.validate()
    if problems:
        log.warning("settings reset to defaults: %s", "; ".join(problems))
        return defaults
    return settings


def save_settings(settings: GuiSettings, store: QtCore.QSettings | None = None) -> None:
    """Write all settings (and flush, so a crash right after loses nothing)."""
    store = store or qsettings()
    for name, value in asdict(settings).items():
        store.setValue(name, value)
    store.sync()
