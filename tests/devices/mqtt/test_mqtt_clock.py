"""Sender-clock mapping and stream continuity of MQTT streams (no network needed: the
tracker is fed decoded messages with chosen send/receive times)."""

from __future__ import annotations

import numpy as np
import pytest

from devices.mqtt import PayloadError, SampleMessage
from devices.mqtt._clock import SenderClock
from devices.mqtt._stream import StreamTracker

UNIX = 1_718_000_000.0  # sender clock = local clock + this


def _msg(t0: float, fs: float, n: int, seq: int | None = None, ch: int = 1) -> SampleMessage:
    values = (np.arange(n * ch, dtype=np.float32) + t0 % 1000).reshape(n, ch)
    return SampleMessage(t0=t0, fs=fs, values=values, seq=seq)


def _feed(tracker, fs=100.0, n=10, count=200, delay=lambda i: 0.002, start_local=50.0, seq=True):
    """Messages every n/fs s; sender stamps the first sample; arrival after the last + delay."""
    out = []
    for i in range(count):
        t0_local = start_local + i * n / fs
        received = t0_local + (n - 1) / fs + delay(i)
        _, ts = tracker.admit(_msg(UNIX + t0_local, fs, n, seq=i if seq else None), received)
        out.append(ts)
    return np.concatenate(out)


def test_jittery_network_gives_continuous_timestamps_near_the_lowest_delay():
    rng = np.random.default_rng(0)
    delays = 0.003 + rng.exponential(0.03, size=400)  # min delay 3 ms, heavy jitter
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP")
    ts = _feed(tracker, count=400, delay=lambda i: delays[i])
    steps = np.diff(ts)
    assert np.all(steps > 0)
    # the network jitter (tens of ms) never shows: spacing stays within 0.5 % of 1/fs
    np.testing.assert_allclose(steps, 0.01, rtol=0.0051)
    # after a while the mapping sits at the true times plus about the lowest delay
    true_last = 50.0 + 400 * 0.1 - 0.01
    assert 0.0 <= ts[-1] - true_last < 0.006
    h = tracker.health(now=true_last + 0.05, link="connected")
    assert h.samples == 4000 and h.gaps == 0 and h.dropped == 0 and h.connected


def test_first_message_late_converges_slowly_without_steps():
    tracker = StreamTracker("s1", "EDA", "painmon/s1/EDA")
    ts = _feed(tracker, delay=lambda i: 0.5 if i == 0 else 0.002, count=300)
    steps = np.diff(ts)
    assert np.all(steps > 0.01 * 0.994) and np.all(steps < 0.01 * 1.006)
    # the 0.5 s first-message delay fades at <= 0.5 %: after 30 s, 150 ms of it has gone
    assert ts[-1] - (50.0 + 29.99) == pytest.approx(0.5 - 0.005 * 29.9, abs=0.005)


def test_trusted_sender_clock_is_used_as_is():
    tracker = StreamTracker("s1", "RESP", "painmon/s1/RESP", trust_sender_clock=True)
    _, ts = tracker.admit(_msg(1000.0, 25.0, 5), received=1000.3)
    np.testing.assert_allclose(ts, 1000.0 + np.arange(5) / 25.0)


def test_per_message_stamp_jitter_is_snapped_to_sample_counting():
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP", trust_sender_clock=True)
    tracker.admit(_msg(10.0, 100.0, 10), 10.2)
    _, ts = tracker.admit(_msg(10.1 + 0.004, 100.0, 10), 10.3)  # stamp 4 ms off
    assert ts[0] == pytest.approx(10.1)


def test_seq_gap_counts_dropped_samples_and_one_gap():
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP", trust_sender_clock=True)
    for i in range(3):
        tracker.admit(_msg(10.0 + i * 0.1, 100.0, 10, seq=i), 10.5)
    tracker.admit(_msg(10.6, 100.0, 10, seq=6), 11.0)  # seq 3, 4, 5 lost
    h = tracker.health(now=11.0, link="connected")
    assert (h.dropped, h.gaps, h.samples) == (30, 1, 40)


def test_out_of_order_and_duplicate_are_refused_and_change_nothing():
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP", trust_sender_clock=True)
    for i in range(3):
        tracker.admit(_msg(10.0 + i * 0.1, 100.0, 10, seq=i), 10.5)
    before = tracker.health(now=10.5, link="connected")
    for msg in (_msg(10.2, 100.0, 10, seq=2), _msg(10.1, 100.0, 10, seq=1), _msg(10.1, 100.0, 10)):
        with pytest.raises(PayloadError) as info:
            tracker.admit(msg, 10.6)
        assert info.value.reason == "out_of_order"
    _, ts = tracker.admit(_msg(10.3, 100.0, 10, seq=3), 10.7)  # the stream goes on seamlessly
    assert ts[0] == pytest.approx(10.3)
    after = tracker.health(now=10.7, link="connected")
    assert after.samples == before.samples + 10 and after.gaps == 0 and after.dropped == 0


def test_restarted_sender_with_seq_reset_is_accepted_as_a_gap():
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP")
    tracker.admit(_msg(UNIX + 10.0, 100.0, 10, seq=500), 10.1)
    _, ts = tracker.admit(_msg(UNIX + 14.0, 100.0, 10, seq=0), 14.1)
    h = tracker.health(now=14.1, link="connected")
    assert h.gaps == 1 and h.samples == 20 and ts[-1] == pytest.approx(14.1, abs=0.01)


def test_sender_clock_jump_reanchors_instead_of_stamping_the_future():
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP")
    tracker.admit(_msg(UNIX + 10.0, 100.0, 10), 10.1)
    # the sender's clock stepped forward by an hour (NTP), data keeps flowing
    _, ts = tracker.admit(_msg(UNIX + 3600 + 10.1, 100.0, 10), 10.2)
    assert ts[-1] <= 10.2 + 1e-6 and ts[0] > 10.09  # (float64 resolution at 1.7e9 s)
    assert tracker.clock.reanchors == 1
    assert tracker.health(now=10.2, link="connected").gaps == 1


def test_layout_change_refused_while_live_accepted_after_loss():
    tracker = StreamTracker("s1", "EDA", "painmon/s1/EDA", trust_sender_clock=True)
    tracker.admit(_msg(10.0, 4.0, 4), 11.0)
    with pytest.raises(PayloadError) as info:
        tracker.admit(_msg(11.0, 4.0, 4, ch=2), 12.0)
    assert info.value.reason == "layout_changed"
    with pytest.raises(PayloadError):
        tracker.admit(_msg(11.0, 8.0, 8), 12.0)
    assert tracker.spec.n_channels == 1 and tracker.spec.nominal_rate == 4.0
    _, ts = tracker.admit(_msg(60.0, 8.0, 8, ch=2), 61.0)  # a minute later: a new device
    assert tracker.spec.n_channels == 2 and tracker.spec.nominal_rate == 8.0 and len(ts) == 8


def test_health_reports_lost_and_effective_rate():
    tracker = StreamTracker("s1", "BVP", "painmon/s1/BVP")
    _feed(tracker, fs=64.0, n=16, count=40, start_local=100.0)  # 10 s at 64 Hz
    last = 100.0 + 40 * 0.25
    live = tracker.health(now=last, link="connected")
    assert live.effective_rate == pytest.approx(64.0, rel=0.05) and live.status == "connected"
    lost = tracker.health(now=last + 10.0, link="connected")
    assert not lost.connected and lost.status.startswith("lost") and lost.effective_rate == 0.0
    assert tracker.health(now=last, link="reconnecting").status == "broker reconnecting"


def test_clock_min_filter_and_slew_limit():
    clock = SenderClock(window_s=30.0, slew=0.005)
    assert clock.observe(100.0, 5.2) == (-94.8, -94.8)
    before, after = clock.observe(101.0, 6.1)  # 0.1 s less delay: move at most 5 ms
    assert after - before == pytest.approx(-0.005)
    before, after = clock.observe(102.0, 7.5)  # a slow message does not move it up
    assert after == pytest.approx(before - 0.005)


def test_marker_stream_stays_connected_through_silence():
    tracker = StreamTracker("s1", "Markers", "painmon/s1/markers")
    ts = tracker.admit_markers((UNIX + 10.0,), received=10.05)
    assert ts[0] == pytest.approx(10.05)  # alone, its own first observation anchors it
    ts = tracker.admit_markers((UNIX + 20.0, UNIX + 21.0), received=40.0, offset=-UNIX)
    np.testing.assert_allclose(ts, [20.0, 21.0])
    h = tracker.health(now=400.0, link="connected")
    assert h.connected and h.status == "connected" and h.samples == 3 and h.effective_rate == 0.0
