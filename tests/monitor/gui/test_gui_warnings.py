"""Issue 12 (11): the demo window runs without a single RuntimeWarning ("All-NaN slice
encountered" from pyqtgraph, 68 of them in a user's terminal).

The demo's own sources (the simulated wearable over real LSL outlets) feed a shown window
with a small real model; warnings are errors for the whole run, in the GUI thread (paint
events included: pytest-qt fails the test on an exception in a Qt virtual) and in the
engine's and sources' threads (the thread-error fixture fails it). Estimates without a
number (too little signal: index NaN, as the engine reports a low-quality window) are part
of the run, because those are what made pyqtgraph warn on every frame.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
from test_gui_clean_session import small_estimator

from core import clock
from core.estimate import Estimate
from monitor.gui import app
from monitor.gui.session import EngineConfig


@pytest.mark.filterwarnings("error")
def test_demo_window_runs_without_runtime_warnings(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PAINMON_SETTINGS", str(tmp_path / "settings.ini"))
    warnings.simplefilter("error")  # also in the threads started below
    sources, background = app.demo_sources(subjects=2, seed=3)
    window = app.build_window(sources, engine=False, background=background)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    try:
        window.session.start_engine(EngineConfig(estimator=small_estimator(), window_s=2.0, hop_s=1.0))
        qtbot.waitUntil(lambda: len(window.log.estimates("sim-1")) >= 3, timeout=60000)
        for step in range(12):
            # a window with too little usable signal: no number, flagged invalid
            t = window.session.newest_time()
            window.on_estimate(Estimate("sim-1", t + 0.01 * step, math.nan, (0.34, 0.33, 0.33), valid=False,
                                        missing=("BVP",), created=clock.now(), state="low_quality"))
            if step == 1:
                window.show_subject("sim-1")  # tabs are in order of arrival: pick by name
            if step == 4:
                window.apply_settings(dataclasses.replace(window.settings, theme="dark", plot_span_s=10.0))
            if step == 8:
                window.show_subject("sim-2")
            qtbot.wait(500)
            window.grab()  # paint everything, as a real display does
        assert len(window.log.estimates("sim-1")) >= 5
        assert window.panels["sim-1"].trend.drawn_points() >= 5
    finally:
        window.close()
        warnings.resetwarnings()
