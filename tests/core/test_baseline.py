"""Subject baselines (core.baseline): the learning rule, serialisation, the relative input."""

from __future__ import annotations

import numpy as np
import pytest

from core.baseline import (
    PRIOR_WINDOWS,
    Z_CLIP,
    BaselineBook,
    BaselineError,
    BaselineLearner,
    BaselineStats,
    covered_seconds,
    relative_input,
)
from core.wire import BASELINE_END, BASELINE_SET, BASELINE_START

M, R, D = 2, 2, 8
MODS, REPS = ("EDA", "BVP"), ("waveform", "spectrogram_psd")


def _emb(rng, n, loc=0.0):
    return (loc + rng.standard_normal((n, M, R, D))).astype(np.float32)


def test_covered_seconds_is_the_union_of_the_windows():
    assert covered_seconds(np.array([10.0]), 10.0) == 10.0
    assert covered_seconds(np.arange(10.0, 61.0, 1.0), 10.0) == 60.0
    assert covered_seconds(np.array([10.0, 40.0]), 10.0) == 20.0  # a gap counts nothing


def test_auto_learns_from_the_first_seconds_of_good_signal_only():
    rng = np.random.default_rng(0)
    lr = BaselineLearner(duration_s=30.0, window_s=10.0, modalities=MODS, representations=REPS)
    emb = _emb(rng, 40)
    present = np.ones(M, bool)
    done = []
    for k in range(40):
        t = 10.0 + k
        good = not (5 <= k < 10)  # five bad windows do not count towards the baseline
        assert lr.calibration == pytest.approx(min(1.0, covered_seconds(np.array(done), 10) / 30) if done else 0.0)
        stats = lr.observe(t, emb[k], present, good=good)
        if good and stats is None and lr.stats is None:
            done.append(t)
        if stats is not None:
            break
    assert stats is not None and stats.source == "auto" and lr.calibration == 1.0
    # 30 s of good signal: windows 10..14 (14 s... union) and 20.. until the union reaches 30 s
    used = [10.0 + k for k in range(k + 1) if not (5 <= k < 10)]
    assert covered_seconds(np.array(used), 10.0) >= 30.0
    expect = emb[[int(t - 10) for t in used]].astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(stats.mean, expect.mean(axis=0), atol=2e-3)
    assert stats.t_end == used[-1] and stats.count.tolist() == [len(used)] * M
    # later windows never change it
    lr.observe(100.0, _emb(rng, 1, 50.0)[0], present)
    assert lr.stats is stats


def test_marked_interval_and_use_last():
    rng = np.random.default_rng(1)
    lr = BaselineLearner(duration_s=60.0, window_s=10.0, auto=False)
    for k in range(50):
        lr.observe(10.0 + k, _emb(rng, 1, 5.0 if k < 20 else -5.0)[0], np.ones(M, bool))
    assert lr.calibration == 0.0 and lr.stats is None  # auto off: nothing learnt by itself
    last = lr.use_last(10.0)
    assert last.source == "last" and last.t_end == 59.0 and last.count[0] == 10
    assert np.nanmean(last.mean) < -4  # only the last 10 s, which sit at -5
    lr.mark_start(12.0)
    assert lr.mark_end(25.0).source == "marked"  # windows up to 25 s already seen
    assert lr.stats.count[0] == 13 and np.nanmean(lr.stats.mean) > 4
    with pytest.raises(BaselineError, match="without a preceding"):
        lr.mark_end(30.0)
    with pytest.raises(BaselineError, match="only the last"):
        lr.use_last(10_000.0)


def test_encode_decode_roundtrip_and_hostile_payloads():
    rng = np.random.default_rng(2)
    emb = _emb(rng, 12)
    present = np.ones((12, M), bool)
    present[:, 1] = False  # BVP never seen: NaN stats, count 0
    s = BaselineStats.from_embeddings(emb, present, np.arange(12.0) + 10, window_s=10.0, modalities=MODS,
                                      representations=REPS, encoder="abc")
    back = BaselineStats.decode(s.encode())
    np.testing.assert_array_equal(back.mean, s.mean)
    np.testing.assert_array_equal(back.std, s.std)
    assert back.count.tolist() == [12, 0] and np.isnan(back.mean[1]).all()
    assert (back.encoder, back.modalities, back.seconds) == ("abc", MODS, s.seconds)
    assert len(s.encode()) < 2000
    for bad in ("", "nonsense", "{}|", '{"v":1,"shape":[99999,99999,9]}|AAAA', s.encode()[:-8] + "!!!!!!!!",
                s.encode().replace('"v":1', '"v":7')):
        with pytest.raises(BaselineError):
            BaselineStats.decode(bad)
    with pytest.raises(BaselineError, match="encoder"):
        s.check_fits(MODS, REPS, encoder="other")


def test_relative_input_standardises_and_shrinks_towards_the_population():
    rng = np.random.default_rng(3)
    base = _emb(rng, 200, 3.0)
    s = BaselineStats.from_embeddings(base, np.ones((200, M), bool), np.arange(200.0), window_s=10.0)
    pop = np.full((M, R, D), 1.0, np.float32)
    e = _emb(rng, 4, 3.0)
    present = np.array([[True, True], [True, False], [True, True], [True, True]])
    x = relative_input(e, present, s.mean[None].repeat(4, 0), s.std[None].repeat(4, 0), s.count[None].repeat(4, 0),
                       pop)
    assert x.shape == (4, M, R, 2 * D)
    np.testing.assert_array_equal(x[..., :D], e)
    n = 200
    spread = np.sqrt((n * s.std.astype(np.float64) ** 2 + PRIOR_WINDOWS) / (n + PRIOR_WINDOWS))
    np.testing.assert_allclose(x[0, ..., D:], (e[0] - s.mean) / spread, rtol=1e-4, atol=1e-4)
    assert (x[1, 1, :, D:] == 0).all()  # an absent modality has no z
    far = relative_input(e + 1e6, present, s.mean[None].repeat(4, 0), s.std[None].repeat(4, 0),
                         s.count[None].repeat(4, 0), pop)
    assert np.abs(far[..., D:]).max() == Z_CLIP


def test_book_markers_and_recorded_baselines():
    rng = np.random.default_rng(4)
    seen = []
    book = BaselineBook(MODS, REPS, duration_s=20.0, window_s=10.0, on_baseline=lambda s, b, t: seen.append((s, b, t)))
    for k in range(15):
        book.observe("a", 10.0 + k, _emb(rng, 1)[0], np.ones(M, bool))
    stats, cal = book.current("a")
    assert stats is not None and cal == 1.0 and seen[0][0] == "a" and seen[0][2] == stats.t_end
    assert book.current("b") == (None, 0.0)
    # a recorded baseline installs as is; a broken one is ignored with a warning
    assert book.on_marker("b", f"{BASELINE_SET}:{stats.encode()}", 5.0)
    assert book.current("b", 5.0)[0] is None  # in force for windows ending after the marker only
    np.testing.assert_array_equal(book.current("b", 6.0)[0].mean, stats.mean)
    assert book.current("b")[0].source == "recorded"
    assert book.on_marker("c", f"{BASELINE_SET}:garbage", 5.0) and book.current("c")[0] is None
    assert not book.on_marker("c", "pain:high", 5.0)
    # a marked interval replaces the automatic baseline once windows reach its end
    for k in range(20):
        book.observe("c", 10.0 + k, _emb(rng, 1, 9.0)[0], np.ones(M, bool))
    book.on_marker("c", BASELINE_START, 30.0)
    book.on_marker("c", BASELINE_END, 40.0)
    assert book.current("c")[0].source == "auto"  # no window has reached 40 s yet
    for k in range(20, 40):
        book.observe("c", 10.0 + k, _emb(rng, 1)[0], np.ones(M, bool))
    c = book.current("c")[0]
    assert c is not None and c.source == "marked" and c.t_end == 40.0 and c.count[0] == 10
