"""Shared test fixtures. Qt runs offscreen; shared material is found beside the repo."""

from __future__ import annotations

import logging
import os
import threading
import traceback
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import REPO_ROOT  # noqa: E402  (tests/ is on sys.path)


def _shared_dir() -> Path:
    return Path(os.environ.get("PAINMON_SHARED", REPO_ROOT.parent / "shared"))


class _ThreadErrorLog(logging.Handler):
    """Keeps the ERROR records with a traceback that threads other than ``main`` log."""

    def __init__(self, main: int) -> None:
        super().__init__(logging.ERROR)
        self.main = main
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.thread != self.main:
            text = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info[0] else ""
            self.errors.append(f"thread {record.threadName!r} logged via {record.name}: {record.getMessage()}\n{text}")


@pytest.fixture(autouse=True)
def fail_on_thread_errors(request: pytest.FixtureRequest):
    """Fail the test when a background thread logs an exception or dies of one.

    Workers catch ``Exception``, log it and carry on (right for a monitor that must keep
    running), so without this a broken worker only shows up as a log line. Tests that
    provoke such errors on purpose say so with ``@pytest.mark.allow_thread_errors``.
    """
    if request.node.get_closest_marker("allow_thread_errors"):
        yield
        return
    handler = _ThreadErrorLog(threading.get_ident())
    root = logging.getLogger()
    root.addHandler(handler)
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        handler.errors.append(f"thread {name!r} died of an exception\n{text}")
        previous_hook(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        root.removeHandler(handler)
    if handler.errors:
        shown = handler.errors[:3]
        more = f"\n... and {len(handler.errors) - len(shown)} more" if len(handler.errors) > len(shown) else ""
        pytest.fail(
            f"{len(handler.errors)} exception(s) in background threads (mark the test "
            "allow_thread_errors if it provokes them on purpose):\n" + "\n".join(shown) + more,
            pytrace=False,
        )


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


@pytest.fixture(autouse=True)
def isolated_baseline_profiles(tmp_path_factory, monkeypatch):
    """Subject baselines are saved per subject id in the user's data folder: keep every test's
    in a folder of its own, so no test reads another's (or the developer's) profiles."""
    monkeypatch.setenv("PAINMON_BASELINES", str(tmp_path_factory.mktemp("baselines")))
