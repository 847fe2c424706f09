"""Window scheduling: timestamp-aligned across modalities at different rates, stalled
streams not waited for, real-time catch-up counted as skips, and the bounded queue."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from monitor.engine.queue import LatestPerKeyQueue
from monitor.engine.scheduler import WindowScheduler
from monitor.engine.smoothing import IndexSmoother, TimeEMA

RATES = {"EDA": 4.0, "BVP": 64.0, "RESP": 25.0, "SpO2": 1.0}


def feed(sched: WindowScheduler, subject: str, t0: float, t1: float, received: float, rates=RATES) -> None:
    """Tell the scheduler that every stream delivered its samples in [t0, t1)."""
    for mod, rate in rates.items():
        ts = np.arange(np.ceil(t0 * rate), np.ceil(t1 * rate)) / rate
        if ts.size:
            sched.observe(subject, mod, rate, float(ts[0]), float(ts[-1]), received)


def test_first_window_needs_a_full_window_and_lands_on_the_hop_grid():
    s = WindowScheduler(window_s=10.0, hop_s=1.0)
    feed(s, "sim-1", 100.3, 109.9, received=109.9)
    assert s.due(109.9) == []  # 9.6 s of data: not a full window yet
    feed(s, "sim-1", 109.9, 111.0, received=111.0)
    cuts = s.due(111.0)
    assert [c.t_end for c in cuts] == [111.0]  # ceil(100.3 + 10) on the 1 s grid
    assert cuts[0].waited_for == ("BVP", "EDA", "RESP", "SpO2")


def test_window_waits_for_the_slowest_modality_by_timestamp_not_sample_count():
    s = WindowScheduler(window_s=10.0, hop_s=1.0)
    feed(s, "sim-1", 0.0, 10.0, received=10.0)
    assert [c.t_end for c in s.due(10.0)] == [10.0]
    # BVP runs ahead to 11.5 s; EDA (4 Hz) only to 10.5 s: the window ending at 11 waits
    s.observe("sim-1", "BVP", 64.0, 10.0, 11.5, received=11.5)
    s.observe("sim-1", "RESP", 25.0, 10.0, 11.5, received=11.5)
    s.observe("sim-1", "SpO2", 1.0, 10.0, 11.0, received=11.5)
    s.observe("sim-1", "EDA", 4.0, 10.0, 10.5, received=11.5)
    assert s.due(11.5) == []
    # EDA's sample at 10.75 is the last one inside [1, 11): the window is complete
    s.observe("sim-1", "EDA", 4.0, 10.75, 10.75, received=11.6)
    cuts = s.due(11.6)
    assert [c.t_end for c in cuts] == [11.0] and cuts[0].skipped == 0


def test_stalled_stream_is_not_waited_for_and_is_reported_missing():
    s = WindowScheduler(window_s=10.0, hop_s=1.0, stall_s=2.0)
    feed(s, "sim-1", 0.0, 10.0, received=10.0)
    s.due(10.0)
    # SpO2 stops at 10 s; the others go on
    others = {k: v for k, v in RATES.items() if k != "SpO2"}
    feed(s, "sim-1", 10.0, 11.0, received=11.0, rates=others)
    assert s.due(11.0) == []  # SpO2 is still live (1 s since its last chunk): wait
    feed(s, "sim-1", 11.0, 13.0, received=13.0, rates=others)
    cuts = s.due(13.0)  # SpO2 silent for 3 s > stall_s: cut without it
    assert len(cuts) == 1
    assert cuts[0].t_end == 13.0 and cuts[0].skipped == 2  # 11 and 12 passed over for the newest
    assert "SpO2" not in cuts[0].waited_for and "EDA" in cuts[0].waited_for


def test_no_windows_beyond_the_data_when_every_stream_stops():
    s = WindowScheduler(window_s=4.0, hop_s=1.0, stall_s=2.0, catch_up=False)
    feed(s, "a", 0.0, 6.0, received=6.0)
    assert [c.t_end for c in s.due(6.0)] == [4.0, 5.0, 6.0]
    for t in (7.0, 7.9, 8.5, 20.0):
        assert s.due(t) == []


def test_catch_up_cuts_only_the_newest_and_counts_skips():
    s = WindowScheduler(window_s=4.0, hop_s=1.0)
    feed(s, "a", 0.0, 4.0, received=4.0)
    assert [c.t_end for c in s.due(4.0)] == [4.0]
    feed(s, "a", 4.0, 9.0, received=9.0)  # a 5 s burst arrives at once
    cuts = s.due(9.0)
    assert [(c.t_end, c.skipped) for c in cuts] == [(9.0, 4)]


def test_offline_mode_cuts_every_window_in_order():
    s = WindowScheduler(window_s=4.0, hop_s=0.5, catch_up=False)
    feed(s, "a", 0.0, 4.0, received=4.0)
    s.due(4.0)
    feed(s, "a", 4.0, 6.0, received=6.0)
    cuts = s.due(6.0)
    assert [c.t_end for c in cuts] == [4.5, 5.0, 5.5, 6.0]
    assert all(c.skipped == 0 for c in cuts)


def test_subjects_are_independent_and_silent_subject_gets_no_windows():
    s = WindowScheduler(window_s=4.0, hop_s=1.0, stall_s=2.0)
    feed(s, "a", 0.0, 5.0, received=5.0)
    feed(s, "b", 0.0, 2.0, received=2.0)
    cuts = {c.subject: c for c in s.due(5.0)}
    assert set(cuts) == {"a"}  # b has neither a full window nor live streams
    assert s.due(30.0) == []  # everyone silent: nothing to estimate


def test_unused_modality_is_ignored():
    s = WindowScheduler(window_s=2.0, hop_s=1.0, modalities=("EDA",))
    s.observe("a", "ECG", 250.0, 0.0, 5.0, received=5.0)
    assert s.subjects() == []


def test_new_subject_waits_for_its_other_streams_to_connect():
    s = WindowScheduler(window_s=2.0, hop_s=1.0, stall_s=2.0, modalities=("EDA", "BVP"))
    s.observe("a", "EDA", 4.0, 0.0, 3.0, received=10.0)
    assert s.due(10.5) == []  # BVP may still be connecting
    s.observe("a", "BVP", 64.0, 0.5, 3.0, received=10.6)
    assert [c.waited_for for c in s.due(10.6)] == [("BVP", "EDA")]
    s.observe("b", "EDA", 4.0, 0.0, 3.0, received=10.0)
    s.observe("b", "EDA", 4.0, 3.25, 5.0, received=12.5)
    cuts = s.due(12.5)  # BVP never came: after stall_s the subject goes on without it
    assert len(cuts) == 1 and cuts[0].waited_for == ("EDA",)


def test_clock_reset_restarts_the_subjects_timeline():
    s = WindowScheduler(window_s=4.0, hop_s=1.0)
    feed(s, "a", 100.0, 110.0, received=1.0)
    assert [c.t_end for c in s.due(1.0)] == [110.0]
    feed(s, "a", 0.0, 3.0, received=2.0)  # the device restarted its clock at 0
    assert s.due(2.0) == []  # not a full window on the new timeline yet
    feed(s, "a", 3.0, 5.0, received=3.0)
    assert [c.t_end for c in s.due(3.0)] == [5.0]


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="must be positive"):
        WindowScheduler(window_s=0.0)
    with pytest.raises(ValueError, match="stall_s"):
        WindowScheduler(stall_s=-1)


def test_queue_keeps_newest_per_subject_and_counts_skips():
    q: LatestPerKeyQueue[int] = LatestPerKeyQueue(max_keys=2)
    q.put("a", 1)
    q.put("b", 1)
    q.put("a", 2)  # replaces a's older window
    q.put("c", 1)  # full: evicts the oldest pending (b)
    assert q.skipped == 2
    assert q.get_batch() == [2, 1]
    assert q.get_batch(timeout=0.01) == []


def test_blocking_queue_loses_nothing():
    q: LatestPerKeyQueue[int] = LatestPerKeyQueue(max_keys=1, drop_stale=False)
    got: list[int] = []

    def consume():
        while len(got) < 5:
            got.extend(q.get_batch(timeout=1.0))

    t = threading.Thread(target=consume)
    t.start()
    for i in range(5):
        assert q.put("a", i, timeout=2.0)
    t.join(5)
    assert got == [0, 1, 2, 3, 4] and q.skipped == 0


def test_closed_queue_refuses_and_wakes():
    q: LatestPerKeyQueue[int] = LatestPerKeyQueue(max_keys=1, drop_stale=False)
    q.put("a", 1)
    q.close()
    assert q.put("b", 2, timeout=0.1) is False


def test_time_ema_weights_by_elapsed_time_and_ignores_nan():
    ema = TimeEMA(tau_s=10.0)
    assert ema.update(0.0, 100.0) == 100.0
    v = ema.update(10.0, 0.0)  # one time constant later: 1 - 1/e of the way
    assert v == pytest.approx(100.0 * np.exp(-1.0))
    assert ema.update(11.0, float("nan")) == v
    # two 5 s steps equal one 10 s step
    a, b = TimeEMA(10.0), TimeEMA(10.0)
    a.update(0, 0.0), b.update(0, 0.0)
    a.update(5, 50.0), a.update(10, 50.0)
    b.update(10, 50.0)
    assert a.value == pytest.approx(b.value)


def test_smoother_short_reacts_faster_than_long():
    sm = IndexSmoother("ema:10", 60.0)
    sm.update(0.0, 0.0)
    for t in range(1, 21):
        short, long = sm.update(float(t), 100.0)
    assert 80.0 < short < 100.0 and 20.0 < long < 35.0


def test_offline_data_clock_cuts_however_long_the_producer_held_and_from_the_first_sample():
    """Offline (fast replay) the producer holds its data until the engine caught up: by the
    wall clock every stream would look stalled and nothing would be cut for ever (fast
    replay stopped after ~14 s of data). On the data's clock the windows are cut, on a grid
    from the subject's first sample, so a file is cut the same way in every replay."""
    s = WindowScheduler(window_s=4.0, hop_s=1.0, stall_s=2.0, catch_up=False, modalities=("EDA", "BVP"),
                        data_clock=True)
    s.observe("a", "BVP", 10.0, 100.37, 102.37, received=5.0)
    assert s.due(now=1e9) == []  # a new subject's other stream is waited for stall_s *of data*
    s.observe("a", "BVP", 10.0, 102.47, 106.37, received=5.0)  # 4 s of data later: EDA never came
    cuts = s.due(now=1e9)  # the wall clock says "silent for ages": irrelevant offline
    assert [c.t_end for c in cuts] == pytest.approx([104.37, 105.37, 106.37])
    assert all(c.waited_for == ("BVP",) for c in cuts)
    s.observe("a", "BVP", 10.0, 106.47, 108.37, received=5.0)
    assert [c.t_end for c in s.due(now=1e9)] == pytest.approx([107.37, 108.37])


def test_longer_stride_moves_every_subject_to_one_shared_grid_and_back():
    """A degraded engine lengthens the hop of all subjects alike: windows then end on the
    longer grid, shared by the subjects, never closer than either hop; and shorten again."""
    s = WindowScheduler(window_s=4.0, hop_s=1.0)
    rates = {"EDA": 4.0}
    for name, start in (("a", 100.0), ("b", 100.5)):
        feed(s, name, start, 105.0, received=105.0, rates=rates)
    first = {c.subject: c.t_end for c in s.due(105.0)}
    assert first == {"a": 105.0, "b": 105.0}
    s.set_stride(2.5)
    assert s.stride_s == 2.5
    ends: dict[str, list[float]] = {"a": [first["a"]], "b": [first["b"]]}
    for t in np.arange(105.25, 120.0, 0.25):
        feed(s, "a", t - 0.25, t, received=t, rates=rates)
        feed(s, "b", t - 0.25, t, received=t, rates=rates)
        for c in s.due(t):
            assert c.skipped == 0
            ends[c.subject].append(c.t_end)
    for name, got in ends.items():
        assert all(np.diff(got) >= 2.5 - 1e-9), (name, got)
        assert all(abs(e / 2.5 - round(e / 2.5)) < 1e-9 for e in got[1:])  # on the 2.5 s grid
    assert ends["a"][1:] == ends["b"][1:]  # both subjects on the same window ends
    s.set_stride(0.5)  # never below the configured hop
    assert s.stride_s == 1.0
    last = ends["a"][-1]
    feed(s, "a", 119.75, 125.0, received=125.0, rates=rates)
    cut = [c for c in s.due(125.0) if c.subject == "a"]
    assert cut and cut[0].t_end >= last + 1.0


def test_hop_governor_lengthens_at_once_and_recovers_after_the_load_falls():
    from monitor.engine.capacity import Capacity, HopGovernor

    gov = HopGovernor(1.0, 8, margin=1.25, recover_hops=3.0)
    gov.seed({1: 20.0, 4: 24.0})  # the loaded rate (largest batch) is the one planned with
    assert gov.images_per_s == 24.0 and gov.batch == 4
    cap = gov.capacity()
    assert cap.subjects == 2  # 24 images/s x 1 s / (8 x 1.25)
    assert cap.describe() == "capacity: 2 subjects at 1 Hz with 8 images each (24.0 images/s, batch 4)"
    subjects = [f"s{i}" for i in range(5)]
    assert gov.update(0.0, subjects[:2]) == 1.0 and not gov.degraded
    # 5 x 8 images / 24 per s x 1.25 = 2.08 s -> 2.25 s (steps of a quarter hop), at once
    assert gov.update(0.1, subjects) == pytest.approx(2.25) and gov.degraded
    # a subject whose windows lack two modalities costs half: 4 x 8 + 4 = 36 images -> 1.875 -> 2.0
    gov.observe_batch([("s4", 4)], seconds=4 / 24.0)
    assert gov.update(0.2, subjects) == pytest.approx(2.25)  # shorter only once it has held...
    assert gov.update(0.2 + 3 * 2.25, subjects) == pytest.approx(2.0)  # ...for 3 hops
    # three subjects leave: back to the configured hop after 3 hops of the lighter load
    assert gov.update(10.0, subjects[:2]) == pytest.approx(2.0)
    assert gov.update(15.9, subjects[:2]) == pytest.approx(2.0)
    assert gov.update(16.1, subjects[:2]) == 1.0 and not gov.degraded
    # the machine slows down (a neighbour): the moving rate follows and the hop lengthens
    for _ in range(15):
        gov.observe_batch([("s0", 8), ("s1", 8)], seconds=16 / 8.0)
    assert gov.images_per_s == pytest.approx(8.0, rel=0.05)
    assert gov.update(17.0, subjects[:2]) == pytest.approx(2.5)
    assert Capacity(float("nan"), 8, 1.0).subjects == 0


def test_only_subjects_with_a_window_of_data_count_as_load():
    # a flood of invented ids, each sending one short burst, must not make the engine plan
    # (and lengthen every real subject's hop) for subjects that never have a window
    s = WindowScheduler(window_s=10.0, hop_s=1.0, modalities=("EDA",))
    for k in range(1, 13):
        s.observe("real", "EDA", 4.0, k - 1.0, k - 0.25, received=float(k))
    for i in range(50):
        s.observe(f"fake-{i}", "EDA", 4.0, 11.0, 11.75, received=12.0)
    assert s.active(12.0) == ["real"]
    s.observe("real", "EDA", 4.0, 0.0, 0.75, received=12.5)  # the device restarted its clock
    assert s.active(12.5) == []  # no window of the new timeline yet
    assert s.active(30.0) == []  # nothing live


def test_headline_holds_still_on_a_jittering_index_and_follows_an_episode():
    """The default headline (1-euro): a raw index jumping +-20 around 15 (12 points/s, more
    than the bundled model's 7-8) moves < 3 points/s, and a step to 85 brings the headline
    into the high band well within the 20-s lag target."""
    rng = np.random.default_rng(0)
    sm = IndexSmoother()
    heads = []
    for t in range(120):
        level = 15.0 if t < 60 else 85.0
        heads.append(sm.update(float(t), float(np.clip(level + rng.uniform(-20, 20), 0, 100)))[0])
    steady = np.abs(np.diff(heads[20:60])).mean()
    assert steady < 3.0 and max(heads[20:60]) < 33.3  # no pain read as no pain, steadily
    entered = next(t for t in range(60, 120) if heads[t] >= 66.7)
    assert entered - 60 <= 10
    with pytest.raises(ValueError, match="bad smoother 'ema'"):
        IndexSmoother("ema")
