import threading

import numpy as np
import pytest

from core.buffers import BufferHub, RingBuffer
from core.streams import MARKERS, StreamSpec


def test_ring_buffer_wraps_and_keeps_order():
    buf = RingBuffer(2, capacity=10)
    for start in range(0, 25, 5):
        t = np.arange(start, start + 5, dtype=float)
        buf.push(np.stack([t, -t], axis=1), t)
    data, ts = buf.snapshot()
    assert len(buf) == 10 and buf.total == 25
    np.testing.assert_array_equal(ts, np.arange(15, 25))
    np.testing.assert_array_equal(data[:, 1], -np.arange(15, 25))


def test_ring_buffer_between_and_latest_keep_gaps():
    buf = RingBuffer(1, capacity=100)
    buf.push(np.ones(10), np.arange(10) * 0.1)
    buf.push(np.ones(10) * 2, 5 + np.arange(10) * 0.1)  # a 4 s gap
    data, ts = buf.between(0.5, 5.3)
    assert ts[0] == pytest.approx(0.5) and ts[-1] == pytest.approx(5.2)
    assert len(ts) == 5 + 3  # nothing invented inside the gap
    d, t = buf.latest(1.0)
    assert t[-1] == pytest.approx(5.9) and np.all(d == 2)


def test_ring_buffer_rejects_mismatched_chunks():
    buf = RingBuffer(2, capacity=10)
    with pytest.raises(ValueError, match="channels"):
        buf.push(np.zeros((3, 3)), np.arange(3))
    with pytest.raises(ValueError, match="timestamps"):
        buf.push(np.zeros((3, 2)), np.arange(4))
    assert len(buf) == 0


def test_chunk_larger_than_capacity_keeps_newest():
    buf = RingBuffer(1, capacity=4)
    buf.push(np.arange(10.0), np.arange(10.0))
    np.testing.assert_array_equal(buf.snapshot()[1], [6, 7, 8, 9])


@pytest.mark.allow_thread_errors  # the broken listener logs its ZeroDivisionError from writer threads
def test_hub_concurrent_writers_and_listeners():
    hub = BufferHub(seconds=10)
    seen = []
    hub.add_listener(lambda spec, d, t: seen.append((spec.subject, len(t))))
    hub.add_listener(lambda *a: 1 / 0)  # a broken listener does not stop ingestion
    specs = [StreamSpec(f"s{i}", "BVP", ("ppg",), 64.0) for i in range(4)]

    def writer(spec):
        for k in range(50):
            hub.push(spec, np.ones(8), k * 0.125 + np.arange(8) / 64)

    threads = [threading.Thread(target=writer, args=(s,)) for s in specs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert hub.subjects() == ["s0", "s1", "s2", "s3"]
    assert all(hub.buffer(s.subject, "BVP").total == 400 for s in specs)
    assert len(seen) == 200


def test_hub_markers():
    hub = BufferHub()
    hub.register(StreamSpec("a", MARKERS, ("label",)))
    got = []
    hub.add_marker_listener(got.append)
    hub.push_markers("a", ["pain:high", "pain:none"], [1.0, 2.0], source="sim")
    assert [m.label for m in hub.markers("a", since=1.5)] == ["pain:none"]
    assert len(got) == 2 and hub.subjects() == ["a"]
