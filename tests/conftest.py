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
