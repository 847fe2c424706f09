"""The engine's window cutting: a window's content never depends on what arrived after it."""

from __future__ import annotations

import numpy as np
import pytest

from core.buffers import BufferHub
from core.streams import StreamSpec
from monitor.engine.ingest import StreamIngest


@pytest.mark.parametrize(("modality", "rate"), [("EDA", 4.0), ("BVP", 64.0), ("SpO2", 1.0)])
def test_a_window_is_the_same_whether_or_not_the_next_samples_arrived_before_the_cut(modality, rate):
    t_end, window_s = 1000.0, 4.0
    spec = StreamSpec(subject="s", modality=modality, nominal_rate=rate)
    rng = np.random.default_rng(1)
    ts = t_end - 8.0 + np.arange(int(12 * rate)) / rate  # up to 4 s past the window's end
    base = {"EDA": 5.0, "BVP": 0.0, "SpO2": 97.0}[modality]
    values = base + 0.3 * rng.standard_normal(ts.size)
    windows = []
    for arrived_until in (t_end - 0.5 / rate, t_end + 0.5 / rate, t_end + 3.0):  # cut early, at, late
        hub = BufferHub()
        ingest = StreamIngest((modality,), window_s=window_s)
        hub.add_listener(ingest.listener)
        for lo in np.arange(t_end - 8.0, t_end + 4.0, 0.5):  # half-second chunks, as a device sends
            sel = (ts >= lo) & (ts < lo + 0.5) & (ts <= arrived_until)
            if sel.any():
                hub.push(spec, values[sel], ts[sel])
        ingest.drain()
        windows.append(ingest.cut("s", t_end, window_s)[modality])
    first = windows[0]
    assert first.valid and first.quality == 1.0  # the last input period is held, not missing
    for w in windows[1:]:
        np.testing.assert_array_equal(w.signal, first.signal)
        assert w.quality == first.quality


def test_an_engine_started_while_data_flows_takes_the_history_before_what_arrives_meanwhile(caplog):
    # The engine registers its listener, then feeds what the hub already holds: a chunk that
    # arrives in between is both in the hub and queued. The history must go before it.
    spec = StreamSpec(subject="s", modality="EDA", nominal_rate=4.0)
    ts = 500.0 + np.arange(80) / 4.0  # 20 s
    values = 5.0 + 0.01 * np.arange(80)
    hub = BufferHub()
    hub.push(spec, values[:60], ts[:60])  # before the engine
    ingest = StreamIngest(("EDA",), window_s=4.0)
    hub.add_listener(ingest.listener)
    hub.push(spec, values[60:62], ts[60:62])  # arrives between listener and history
    ingest.attach_existing(hub)
    hub.push(spec, values[62:], ts[62:])
    with caplog.at_level("WARNING"):
        ingest.drain()
    assert not [r for r in caplog.records if "jumped back" in r.getMessage()]
    assert ingest.rejected == 0
    w = ingest.cut("s", 515.0, 4.0)["EDA"]  # spans the history and what came after
    assert w.valid and w.quality == 1.0
    np.testing.assert_allclose(w.signal[-1], 5.0 + 0.01 * 59, atol=0.05)  # still rising, no restart
