"""Shared test fixtures. Qt runs offscreen; shared material is found beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("PAINMON_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` from the project root (override with PAINMON_SHARED)."""
    path = _shared_dir()
    if not path.is_dir():
        pytest.fail(f"shared material not found at {path} (set PAINMON_SHARED)")
    return path


@pytest.fixture(scope="session")
def xdf_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "xdf"


@pytest.fixture
def mosquitto_broker(tmp_path: Path):
    """A real anonymous mosquitto on a free 127.0.0.1 port (``.host``, ``.port``,
    ``.restart()``, ``.stop()``); see tests/mqtt_broker.py for credentials and TLS."""
    from mqtt_broker import MosquittoBroker

    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def two_torch_threads():
    """Two torch threads for the test (the suite shares a 2-core machine; also pins the
    float32 reduction order of the encoder parity runs). Use via ``pytestmark``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fixture_npz(shared_dir: Path) -> dict:
    """The encoder parity fixture (``x``, ``y``, ``seed``) from ``shared/encoder``."""
    import numpy as np

    data = np.load(shared_dir / "encoder" / "parity_seed0.npz")
    return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def parity_sd() -> dict:
    """The deterministic parity state dict (seed 0) of the reference encoder."""
    from core.encoder import TinyBioMoE
    from core.encoder.parity import fill_state_dict

    return fill_state_dict(TinyBioMoE().state_dict(), 0)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A shown MainWindow on a fresh session, its settings in ``tmp_path`` (modules that need
    another window define their own ``window`` fixture, which overrides this one)."""
    from monitor.gui.main_window import MainWindow
    from monitor.gui.session import Session
    from monitor.gui.settings import GuiSettings

    monkeypatch.setenv("PAINMON_SETTINGS", str(tmp_path / "settings.ini"))
    w = MainWindow(Session(), GuiSettings())
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
