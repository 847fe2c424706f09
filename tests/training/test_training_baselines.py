"""Training baselines (training.baselines): the live rule, no look-ahead, never another subject's data."""

from __future__ import annotations

import numpy as np
import pytest

from core.baseline import BaselineLearner, relative_input
from training.baselines import check_no_leak, relative_set, session_layout
from training.dataset import EmbeddedDataset
from training.records import LevelTrack, Recording, Signal

M, R, D = 2, 1, 6
MODS, REPS = ("EDA", "BVP"), ("waveform",)


def _session(subject: str, rec_id: str, levels: list[int], t_end: np.ndarray, rng, shift: float) -> EmbeddedDataset:
    n = len(levels)
    emb = (shift + rng.standard_normal((n, M, R, D))).astype(np.float32)
    emb += np.asarray(levels, dtype=np.float32)[:, None, None, None] * 3.0  # pain moves the embedding
    lab = np.asarray(levels)
    return EmbeddedDataset(emb, np.ones((n, M), bool), lab, lab.copy(), t_end, np.array([subject] * n),
                           np.array([rec_id] * n), np.ones((n, M), np.float32), MODS, REPS)


def _dataset(rng) -> EmbeddedDataset:
    t = 10.0 + 2.0 * np.arange(60)  # windows every 2 s, 10 s long
    a = [0] * 40 + [2] * 10 + [0] * 10  # 88 s of rest first: a full 60-s baseline
    b = [0] * 10 + [1] * 20 + [0] * 30  # 28 s of rest only: a shorter baseline
    c = [1] * 60  # never at rest: no baseline, no relative example
    return EmbeddedDataset.concat([_session("a", "rec-a", a, t, rng, 0.0), _session("b", "rec-b", b, t, rng, 50.0),
                                   _session("c", "rec-c", c, t, rng, -50.0)])


def test_baselines_follow_the_live_rule_without_look_ahead_or_leak():
    rng = np.random.default_rng(0)
    ds = _dataset(rng)
    pop = np.ones((M, R, D), np.float32)
    layout = session_layout([])  # whole sessions: each recording is its own
    rs = relative_set(ds, layout, pop, duration_s=60.0, window_s=10.0)
    assert set(rs.baselines) == {"rec-a", "rec-b"}
    # a: exactly what the live learner builds from a's first windows (10..60 s: 60 s of signal)
    live = BaselineLearner(60.0, 10.0)
    a = np.flatnonzero(ds.subjects == "a")
    for i in a:
        got = live.observe(float(ds.t_end[i]), ds.emb[i], ds.present[i])
        if got is not None:
            break
    np.testing.assert_array_equal(rs.baselines["rec-a"].mean, got.mean)
    assert rs.baselines["rec-a"].t_end == 60.0 and rs.baselines["rec-a"].seconds == 60.0
    # b: its rest ends at window 10 (28 s): the baseline is what it had, from no-pain windows only
    assert rs.baselines["rec-b"].t_end == 28.0 and set(ds.labels[rs.baseline_rows["rec-b"]]) == {0}
    # relative examples: only after each baseline, each with its own subject's baseline
    for j, i in enumerate(rs.rows):
        assert ds.t_end[i] > rs.baselines[str(ds.recordings[i])].t_end
        assert rs.ds.subjects[j] == ds.subjects[i]
    assert not (ds.subjects[rs.rows] == "c").any()
    b_rows = rs.rows[ds.subjects[rs.rows] == "b"]
    s = rs.baselines["rec-b"]
    np.testing.assert_allclose(rs.ds.emb[ds.subjects[rs.rows] == "b"],
                               relative_input(ds.emb[b_rows], ds.present[b_rows], s.mean[None].repeat(len(b_rows), 0),
                                              s.std[None].repeat(len(b_rows), 0), s.count[None].repeat(len(b_rows), 0),
                                              pop))


def test_later_or_other_subjects_data_cannot_change_a_baseline():
    rng = np.random.default_rng(1)
    ds = _dataset(rng)
    pop = np.ones((M, R, D), np.float32)
    before = relative_set(ds, {}, pop).baselines["rec-a"]
    changed = ds.subset(np.arange(len(ds)))
    later = (ds.subjects == "a") & (ds.t_end > 60.0)
    changed.emb[later] += 1000.0  # a's future
    changed.emb[ds.subjects != "a"] -= 1000.0  # everybody else
    after = relative_set(changed, {}, pop).baselines["rec-a"]
    np.testing.assert_array_equal(before.mean, after.mean)
    np.testing.assert_array_equal(before.std, after.std)


def test_the_leak_check_catches_a_look_ahead():
    rng = np.random.default_rng(2)
    ds = _dataset(rng)
    rs = relative_set(ds, {}, np.ones((M, R, D), np.float32))
    rs.rows = np.concatenate([rs.rows, np.flatnonzero(ds.subjects == "a")[:3]])  # windows before a's baseline
    with pytest.raises(AssertionError, match="learnt after it"):
        check_no_leak(ds, rs)


def test_precut_segments_form_one_session_in_file_order():
    def seg(k: int, level: int) -> Recording:
        sig = {"EDA": Signal.regular(np.zeros(1000), 100.0)}
        return Recording("s1", sig, LevelTrack.constant(level, 0.0), f"ai4pain:s1:{k}", whole_segment=True)

    recs = [seg(0, 0), seg(1, 0), seg(2, 2), seg(3, 0)]
    layout = session_layout(recs)
    assert {v[0] for v in layout.values()} == {"s1:segments"}
    offsets = [layout[r.id][1] for r in recs]
    assert offsets == sorted(offsets) and offsets[1] - offsets[0] >= 9.99  # laid end to end


def test_uncertain_windows_are_not_learnt_into_a_training_baseline():
    """As live (core.inference), a window beyond the training distribution never enters a baseline."""
    ds = _dataset(np.random.default_rng(0))
    pop = np.ones((M, R, D), np.float32)
    a = np.flatnonzero(ds.subjects == "a")
    ood = np.zeros(len(ds))
    ood[a[3]] = 2.0  # one uncertain window in a's rest
    plain = relative_set(ds, session_layout([]), pop, duration_s=60.0, window_s=10.0)
    rs = relative_set(ds, session_layout([]), pop, duration_s=60.0, window_s=10.0, ood=ood)
    assert a[3] in plain.baseline_rows["rec-a"] and a[3] not in rs.baseline_rows["rec-a"]
    live = BaselineLearner(60.0, 10.0)
    for i in a:
        got = live.observe(float(ds.t_end[i]), ds.emb[i], ds.present[i], good=i != a[3])
        if got is not None:
            break
    np.testing.assert_array_equal(rs.baselines["rec-a"].mean, got.mean)
    assert not np.array_equal(rs.baselines["rec-a"].mean, plain.baselines["rec-a"].mean)
    check_no_leak(ds, rs)
