"""Real people at rest (issue 11) through the real engine and the bundled model.

The recordings are real (not from our simulator): see :mod:`benchmarks.rest_recordings` for
what they are and where they come from (CI downloads them; locally they are fetched on first
use). Besides what must hold of any model (the recordings are what they claim, every one
reaches a baseline, no number shown is not finite), issue 11's acceptance test: after
calibration at most 10 % of the bundled model's ``ok`` estimates of people at rest fall in
the high band (``painmon bench rest`` prints the same figures per recording).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.rest_recordings import MAX_HIGH_SHARE, load_rest_recordings, ok_after_calibration, score_all, shown_high
from core.estimate import MODES, STATES

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def recordings():
    return load_rest_recordings()


@pytest.fixture(scope="module")
def scored(recordings):
    return score_all(recordings)


def test_the_recordings_are_real_and_long_enough(recordings):
    names = {r.name for r in recordings}
    assert names == {"systole-task1-rest", "systole-ppg", "heartpy-data2", "heartpy-data3"}
    for r in recordings:
        for values, fs in r.signals.values():
            assert values.size / fs >= 120.0 and np.isfinite(values).all()


def test_every_rest_recording_is_scored_and_reaches_its_baseline(scored):
    for name, got in scored.items():
        assert len(got) >= 15, f"{name}: only {len(got)} estimates"
        assert any(e.mode == "relative" for e in got), f"{name}: no baseline learnt"
        assert all(e.state in STATES and e.mode in MODES for e in got)
        calibrating = [e for e in got if e.state == "calibrating"]
        assert all(e.calibration < 1.0 for e in calibrating)


def test_ok_estimates_on_real_rest_data_have_finite_numbers(scored):
    ok = [e for got in scored.values() for e in got if e.state == "ok"]
    assert ok, "no estimate of real rest data was trusted"
    for e in ok:
        assert math.isfinite(e.index) and 0.0 <= e.index <= 100.0
        assert math.isclose(sum(e.probs), 1.0, abs_tol=1e-3)


def test_people_at_rest_are_rarely_shown_in_high_pain(scored):
    """Judged on the band the dashboard shows (the headline's; the class word and colour follow
    it). The raw 1-s index's band, which ``painmon bench rest`` also prints, meets the target
    too (4.8 % with the bf16 encoder, 7.5 % in fp32) but sits a few windows from it, and which
    windows cross 66.7 depends on the CPU's arithmetic."""
    ok = [e for got in scored.values() for e in ok_after_calibration(got)]
    shown = shown_high(ok)
    assert len(ok) >= 60, f"only {len(ok)} ok estimates after calibration"
    assert len(shown) <= MAX_HIGH_SHARE * len(ok), (
        f"{len(shown)} of {len(ok)} ok estimates of people at rest are shown in the high band")
