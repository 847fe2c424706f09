"""Entry points of the desktop monitor: :func:`run_monitor` and :func:`run_demo`.

Both build a :class:`Session`, show the :class:`MainWindow` and run the Qt event loop.
``duration`` (seconds) closes the window after that long and ``screenshot`` saves the
window just before, so scripted checks work under ``QT_QPA_PLATFORM=offscreen``. Closing,
for any reason, goes through :meth:`MainWindow.closeEvent`, which stops sources, engine
and recorder in order.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from devices.source import Source
from monitor.engine import ModelOptions
from monitor.gui.display import check_display
from monitor.gui.main_window import MainWindow
from monitor.gui.session import Session
from monitor.gui.settings import APPLICATION, ORGANISATION, GuiSettings, load_settings

log = logging.getLogger(__name__)


def application() -> QtWidgets.QApplication:
    """The QApplication (created once; tests and repeated calls reuse it).

    Raises :class:`monitor.gui.display.NoDisplayError` (one line on the command line)
    when no window can be shown, instead of letting Qt abort the process."""
    existing = QtWidgets.QApplication.instance()
    if isinstance(existing, QtWidgets.QApplication):
        return existing
    if existing is not None:
        raise RuntimeError("a non-GUI QCoreApplication exists already; the dashboard needs a QApplication")
    probe = check_display()  # Qt would abort the process (SIGABRT) without a usable display
    QtCore.QCoreApplication.setOrganizationName(ORGANISATION)
    QtCore.QCoreApplication.setApplicationName(APPLICATION)
    try:
        return QtWidgets.QApplication(sys.argv[:1])
    finally:
        if probe is not None:  # only now: a bare X server resets when its last client leaves
            probe.close()


def build_window(
    sources: list[Source] | None = None,
    replay_path: str | os.PathLike | None = None,
    model: ModelOptions | None = None,
    *,
    engine: bool = True,
    settings: GuiSettings | None = None,
    background: list | None = None,
    record: str | os.PathLike | None = None,
    ward: tuple = (None, None),
) -> MainWindow:
    """Create session and window, start sources and (off the GUI thread) the engine.

    ``model``: the command line's model options; those given (not None) apply to this run
    only and win over the dashboard's settings. ``background``: helpers with ``stop()``
    the session ends after its sources (the demo's simulated LSL outlets). ``record``: an
    XDF file to record to from the first sample (``--record``). ``ward``: the
    alarm config and web server options (:func:`monitor.web.ward_options`).
    """
    application()
    settings = settings or load_settings()
    session = Session()
    for helper in background or []:
        session.add_background(helper)
    window = MainWindow(session, settings)
    from monitor.web.options import apply_ward

    apply_ward(session.pipeline, session.alarms, session.ward, *ward)  # the server stops with the session
    # command-line choices apply to this run only; they are not written to the settings
    window.engine_overrides.update(model_overrides(model))
    if record is not None:
        window.start_recording(record)
    if replay_path is not None:  # first: opening a recording replaces the sources present
        window.open_recording(replay_path)
    for source in sources or []:
        window.add_source(source)
    if engine:
        window.start_engine()
    return window


def model_overrides(model: ModelOptions | None) -> dict[str, object]:
    """The model options the command line set (None means "the dashboard's setting")."""
    if model is None:
        return {}
    given = {
        "model_path": model.model_path,
        "encoder_path": model.encoder_path,
        "device": model.device,
        "precision": model.precision,
        "backend": model.backend,
        "threads": model.threads,
    }
    return {k: (str(v) if k.endswith("_path") else v) for k, v in given.items() if v is not None}


def _schedule_exit(window: MainWindow, duration: float | None, screenshot: str | os.PathLike | None) -> None:
    if duration is None:
        return

    def finish() -> None:
        if screenshot is not None:
            path = Path(screenshot)
            path.parent.mkdir(parents=True, exist_ok=True)
            if window.save_screenshot(path):
                log.info("screenshot saved to %s", path)
        window.close()

    QtCore.QTimer.singleShot(int(duration * 1000), finish)


def _exec(window: MainWindow, duration: float | None, screenshot) -> int:
    app = application()
    window.show()
    _schedule_exit(window, duration, screenshot)
    # Ctrl+C in the terminal closes the window the normal way (recording finished cleanly)
    signal.signal(signal.SIGINT, lambda *_: window.close())
    keepalive = QtCore.QTimer()
    keepalive.start(200)  # lets Python see the signal while Qt's loop runs
    keepalive.timeout.connect(lambda: None)
    app.exec()
    keepalive.stop()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    window.close()  # no-op when already closed
    return 0


def run_monitor(
    sources: list[Source] | None = None,
    replay_path: str | os.PathLike | None = None,
    model: ModelOptions | None = None,
    *,
    duration: float | None = None,
    screenshot: str | os.PathLike | None = None,
    record: str | os.PathLike | None = None,
    ward: tuple = (None, None),
) -> int:
    """Open the dashboard on ``sources`` and/or a recording; returns the exit code."""
    window = build_window(sources, replay_path, model, record=record, ward=ward)
    return _exec(window, duration, screenshot)


def demo_sources(subjects: int = 1, seed: int = 0) -> tuple[list[Source], list]:
    """The demo's simulated wearable on LSL and the LSL source that follows it.

    Going through real LSL outlets (rather than feeding the hub directly) makes the demo
    exercise the same path as a real device.
    """
    from devices.lsl import LSLSource
    from devices.simulator import LSLSimulator, PainSchedule, SimulatedWearable

    wearable = SimulatedWearable(subjects, seed, schedule=PainSchedule.scripted_demo())
    simulator = LSLSimulator(wearable)
    simulator.start()
    # follow exactly these outlets, not a same-named simulation elsewhere on the network
    uids = simulator.uids()
    source = LSLSource(predicate=lambda s: s.uid in uids)
    return [source], [simulator]


def run_demo(
    subjects: int = 1,
    seed: int = 0,
    *,
    duration: float | None = None,
    screenshot: str | os.PathLike | None = None,
    model: ModelOptions | None = None,
) -> int:
    """Simulated subjects with a scripted pain schedule, over LSL, with the bundled model."""
    if subjects < 1:
        raise ValueError(f"need at least one subject, got {subjects}")
    application()
    sources, background = demo_sources(subjects, seed)
    window = build_window(sources, model=model, background=background)
    return _exec(window, duration, screenshot)
