"""Every estimate's state and mode: the per-subject state machine (monitor.engine.states)
on its own, and in the real engine, where a subject whose samples stop arriving (by the
wall clock) turns ``stale`` and comes back when they return."""

from __future__ import annotations

import dataclasses
import math
import threading
import time

import numpy as np
from helpers import wait_until

from core.buffers import BufferHub
from core.clock import now
from core.estimate import Estimate
from core.streams import StreamSpec
from monitor.engine import Engine
from monitor.engine.states import STALE_AFTER_S, SubjectState, window_state

NAN = float("nan")


def window_est(t: float, *, calibration=NAN, ood=NAN, valid=True, index=40.0, mode="absolute") -> Estimate:
    """An estimate as the estimator hands it over (calibration from the baseline tracker)."""
    return Estimate("s1", t, index, (0.5, 0.3, 0.2), smoothed=index, valid=valid, calibration=calibration,
                    ood_score=ood, mode=mode, quality={"BVP": 1.0})


def test_state_machine_calibrating_then_ok_then_stale_then_ok():
    sm = SubjectState()
    sm.arrived(0.0)
    states = []
    for k, learnt in enumerate((0.25, 0.5, 0.99, 1.0)):  # the baseline tracker's progress
        sm.arrived(float(k))
        states.append(sm.on_window(window_est(float(k), calibration=learnt, mode="relative")).state)
    assert states == ["calibrating"] * 3 + ["ok"]
    assert sm.check_stale(3.0 + STALE_AFTER_S, every_s=1.0) is None  # 5 s silent: not yet
    stale = sm.check_stale(3.0 + STALE_AFTER_S + 0.1, every_s=1.0)
    assert stale is not None and stale.state == "stale" and stale.mode == "relative"
    assert math.isnan(stale.index) and math.isnan(stale.smoothed) and all(math.isnan(p) for p in stale.probs)
    assert stale.silent_s > STALE_AFTER_S and not stale.valid and stale.subject == "s1"
    assert sm.check_stale(3.0 + STALE_AFTER_S + 0.5, every_s=1.0) is None  # once per hop
    assert sm.check_stale(3.0 + STALE_AFTER_S + 1.2, every_s=1.0) is not None
    sm.arrived(20.0)  # data return
    assert sm.check_stale(20.5, every_s=1.0) is None
    assert sm.on_window(window_est(20.0, calibration=1.0, mode="relative")).state == "ok"


def test_window_states_in_order_of_severity():
    assert window_state(window_est(0, calibration=NAN, ood=NAN)) == "ok"  # no baseline, no statistics
    assert window_state(window_est(0, calibration=0.5)) == "calibrating"
    assert window_state(window_est(0, calibration=0.5, ood=1.5)) == "uncertain"
    assert window_state(window_est(0, ood=1.0)) == "ok"  # 1.0 is the threshold itself
    assert window_state(window_est(0, ood=1.5, valid=False)) == "low_quality"
    assert window_state(window_est(0, index=NAN)) == "low_quality"  # a non-finite output is never ok
    bad = dataclasses.replace(window_est(0), mode="sideways")
    assert SubjectState().on_window(bad).mode == "absolute"


def test_engine_subject_goes_stale_by_the_wall_clock_and_recovers():
    import torch
    from test_engine import small_estimator

    torch.set_num_threads(1)
    hub = BufferHub()
    engine = Engine(hub, small_estimator(("BVP",)), window_s=2.0, hop_s=1.0, stale_after_s=2.0)
    got: list[Estimate] = []
    lock = threading.Lock()

    def collect(est: Estimate) -> None:
        with lock:
            got.append(est)

    engine.add_callback(collect)
    spec = StreamSpec("bed-1", "BVP", ("BVP",), 64.0, name="bed-1 BVP")

    def push_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = now()
            ts = t - 0.25 + np.arange(16) / 64.0
            hub.push(spec, np.sin(2 * np.pi * 1.2 * ts).astype(np.float32), ts)
            time.sleep(0.25)

    def states() -> list[str]:
        with lock:
            return [e.state for e in got]

    engine.start(warmup=True)
    try:
        assert engine.wait_warm(60)
        push_for(4.0)
        assert wait_until(lambda: any(s != "stale" for s in states()), 30)
        silent_from = time.monotonic()
        # no sample for > 2 s by the wall clock: stale statuses, repeated once per hop
        assert wait_until(lambda: states().count("stale") >= 2, 20)
        with lock:
            stale = [e for e in got if e.state == "stale"]
        assert time.monotonic() - silent_from < 15
        assert all(math.isnan(e.index) and e.silent_s > 2.0 for e in stale)
        n_before = len(states())
        push_for(4.0)  # the subject's data return: window estimates again
        assert wait_until(lambda: any(s != "stale" for s in states()[n_before:]), 30)
    finally:
        engine.stop()
    seq = states()
    first_stale = seq.index("stale")
    assert all(s in ("ok", "low_quality") for s in seq[:first_stale])
    assert seq[-1] != "stale" or "ok" in seq[first_stale:] or "low_quality" in seq[first_stale:]
