"""The dashboard's honest states: headline band and word agree, NaN never reaches a widget,
a killed LSL source greys number, band and vitals within 6 s and says why."""

import math
import time
import uuid

import numpy as np
import torch
from helpers import PulseOutlet

from core.estimate import Estimate
from monitor.engine.states import stale_estimate
from monitor.gui.estimate_view import EstimateView
from monitor.gui.session import EngineConfig
from monitor.gui.theme import BAND_COLOURS, GREYED

NAN = float("nan")


def est(index=29.0, smoothed=29.0, probs=(0.2, 0.5, 0.3), **kw) -> Estimate:
    return Estimate("s", 100.0, index, probs, smoothed=smoothed, quality={"BVP": 1.0}, **kw)


def test_word_and_colour_follow_the_headline_band(qtbot):
    view = EstimateView()
    qtbot.addWidget(view)
    # raw 61 but headline 29: "29" on green with "no pain" (the top probability says low)
    view.show_estimate(est(index=61.0, smoothed=29.0))
    assert view.index_label.text() == "29" and view.class_label.text() == "no pain"
    assert BAND_COLOURS[0] in view.index_label.styleSheet()
    assert "raw 61" in view.state_label.text()
    assert [view.bars[n].value() for n in ("no", "low", "high")] == [20, 50, 30]
    view.show_estimate(est(index=50.0, smoothed=66.0))
    assert view.class_label.text() == "low pain" and BAND_COLOURS[1] in view.index_label.styleSheet()
    view.show_estimate(est(index=50.0, smoothed=66.7))
    assert view.class_label.text() == "high pain" and BAND_COLOURS[2] in view.index_label.styleSheet()
    assert "absolute" in view.mode_label.text()


def test_nan_never_reaches_a_widget(qtbot):
    view = EstimateView()
    qtbot.addWidget(view)
    view.show_estimate(est(index=NAN, smoothed=NAN, probs=(NAN, NAN, NAN), valid=False, state="low_quality"))
    assert view.state == "invalid" and view.index_label.text() == "--" and view.class_label.text() == ""
    assert all(bar.value() == 0 for bar in view.bars.values())
    assert GREYED in view.index_label.styleSheet() and "not reliable" in view.state_label.text()


def test_calibrating_uncertain_and_stale_are_greyed_and_explained(qtbot):
    view = EstimateView()
    qtbot.addWidget(view)
    view.show_estimate(est(smoothed=70.0, state="calibrating", calibration=0.4, mode="relative"))
    assert view.state == "calibrating" and view.index_label.text() == "70"
    assert GREYED in view.index_label.styleSheet() and "baseline 40 %" in view.state_label.text()
    assert "relative" in view.mode_label.text()
    view.show_estimate(est(smoothed=70.0, state="uncertain", ood_score=1.7))
    assert view.state == "uncertain" and "uncertain" in view.state_label.text()
    view.show_estimate(est(smoothed=70.0))
    assert view.state == "valid" and BAND_COLOURS[2] in view.index_label.styleSheet()
    view.show_estimate(stale_estimate(view.last, t_end=107.0, silent_s=7.0, created=107.0))
    assert view.state == "stale" and view.index_label.text() == "70"  # last number kept, greyed
    assert GREYED in view.index_label.styleSheet() and GREYED in view.class_label.styleSheet()
    assert "no signal for 7 s" in view.state_label.text()


def bvp_estimator():
    """The real encoder and fusion head, untrained, on BVP with a 2 s window (quick)."""
    from core.encoder.model import TinyBioMoE
    from core.fusion import FusionHead
    from core.inference import Estimator

    torch.manual_seed(0)
    head = FusionHead(("BVP",), ("waveform",)).eval()
    return Estimator(TinyBioMoE().eval(), head, ("BVP",), ("waveform",), model_name="gui-bvp", window_s=2.0)


def test_a_killed_lsl_source_greys_the_dashboard_within_6_s(qtbot, window):
    from devices.lsl import LSLSource

    torch.set_num_threads(2)
    subject = f"kill-{uuid.uuid4().hex[:8]}"
    name = f"{subject} BVP"
    session = window.session
    session.start_engine(EngineConfig(estimator=bvp_estimator(), window_s=2.0, hop_s=1.0), wait=True)
    assert session.engine_state == "running", session.engine_state
    outlet = PulseOutlet(subject, name)
    with outlet:
        assert window.add_source(LSLSource(name=name))
        qtbot.waitUntil(lambda: subject in window.panels and "BVP" in window.panels[subject].rows, timeout=10000)
        view = window.panels[subject].estimate_view
        qtbot.waitUntil(lambda: view.state in ("valid", "invalid") and window.log.latest(subject) is not None,
                        timeout=30000)
        window._on_slow()
        row = window.panels[subject].rows["BVP"]
        number = view.index_label.text()
    killed = time.monotonic()  # the pusher stopped when the with-block ended
    del outlet.outlet  # and the outlet is gone: LSL consumers see the stream disappear
    qtbot.waitUntil(lambda: view.state == "stale", timeout=10000)
    greyed_after = time.monotonic() - killed
    assert greyed_after <= 6.0, f"greyed only after {greyed_after:.1f} s"
    assert view.engine_state == "stale"  # the engine's status, not the view's own 6 s timer
    assert GREYED in view.index_label.styleSheet() and view.index_label.text() == number
    assert "no signal for" in view.state_label.text()
    assert GREYED in row.vital_label.styleSheet()
    latest = window.log.latest(subject)
    assert latest.state == "stale" and math.isnan(latest.index) and latest.silent_s > 5.0
    window._on_slow()  # a slow refresh keeps the vitals greyed
    assert GREYED in row.vital_label.styleSheet()
    assert np.isnan(latest.smoothed)
