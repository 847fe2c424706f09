"""``painmon bench index``: the held-out subjects it draws and the truth it scores against."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.index_quality import (
    RATE_CHOICES,
    SubjectRun,
    _mode_path,
    held_out_session,
    pooled,
    reference_series,
    window_truth,
)


def test_varied_subjects_rest_long_enough_for_a_60s_baseline_on_drawn_devices():
    session, schedules = held_out_session(3, 120.0, seed=0, population="varied")
    for sid, sched in schedules.items():
        assert (sched.codes_at(np.arange(0.0, 70.0, 0.5)) == 0).all(), sid  # the baseline is learnt at rest
    for s in session.streams:
        assert s.spec.nominal_rate in RATE_CHOICES[s.spec.modality]
    # varied physiology on a drawn device: not the plain draw of the same seed
    plain, _ = held_out_session(1, 120.0, seed=0, population="plain")
    eda = {s.spec.modality: s.values for s in plain.streams}["EDA"]
    varied_eda = next(s.values for s in session.streams if s.spec.subject == "held-1" and s.spec.modality == "EDA")
    assert not np.allclose(eda, varied_eda)


def test_unknown_population_is_refused():
    with pytest.raises(ValueError, match="population"):
        held_out_session(1, 90.0, seed=0, population="ideal")


def test_window_truth_is_the_level_averaged_over_the_window():
    class Steps:  # no pain until 100 s, high from then on
        def codes_at(self, t):
            return np.where(np.asarray(t) >= 100.0, 2, 0)

    run = SubjectRun("s", Steps())
    got = window_truth(run, np.array([95.0, 102.0, 115.0]), 10.0)
    np.testing.assert_allclose(got, [0.0, 100.0 * 21 / 101, 100.0], atol=1e-9)


def test_reference_rows_show_the_lag_a_perfect_window_estimate_keeps():
    class Episodes:  # no pain, then high from 60 to 120 s, then low from 150 to 200 s
        def codes_at(self, t):
            t = np.asarray(t)
            return np.where((t >= 60) & (t < 120), 2, np.where((t >= 150) & (t < 200), 1, 0))

    run = SubjectRun("s", Episodes())
    run.t = list(np.arange(10.0, 240.0, 1.0))
    window_mean, smoothed = reference_series(10.0, "euro:0.01:0.005").values()
    exact = pooled({"s": run}, 10.0, window_mean)
    assert exact.corr_window == pytest.approx(1.0)  # it is the window's truth
    assert 0.8 < exact.corr < 1.0  # but not the level at the window's end
    assert exact.onset_lag_s > 0 and exact.onsets == 4 and exact.onsets_never == 0  # every change is reached
    late = pooled({"s": run}, 10.0, smoothed)
    assert late.corr < exact.corr and late.onset_lag_s > exact.onset_lag_s


def test_each_mode_saves_to_its_own_file_when_both_are_measured():
    assert _mode_path("runs/x.npz", "relative", 1) == "runs/x.npz"
    assert _mode_path("runs/x.npz", "relative", 2) == "runs/x-relative.npz"
    assert _mode_path("runs/x.npz", "absolute", 2) == "runs/x-absolute.npz"
