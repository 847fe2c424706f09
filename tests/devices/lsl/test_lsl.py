"""LSL discovery and the LSL source with real outlets and inlets in this process.

Every test tags its streams with a fresh id and filters on it: other LSL tests (and other
people's simulators) may be running on the same machine at the same time.
"""

from __future__ import annotations

import uuid

import numpy as np
import pylsl
import pytest
from helpers import wait_until

from core.buffers import BufferHub
from core.streams import MARKERS, StreamSpec
from devices.lsl import LSLSource, discover, stream_info


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


def _raw_outlet(name, type_, n_ch, rate, fmt, source_id, labels=None):
    info = pylsl.StreamInfo(name, type_, n_ch, rate, fmt, source_id)
    if labels:
        chans = info.desc().append_child("channels")
        for lab in labels:
            chans.append_child("channel").append_child_value("label", lab)
    return pylsl.StreamOutlet(info)


def test_discover_maps_subject_and_modality(tag):
    spec = StreamSpec(f"subj-{tag}", "EDA", ("EDA",), 32.0, "µS", f"{tag} EDA", f"test:{tag}:EDA")
    outlets = [
        pylsl.StreamOutlet(stream_info(spec)),
        _raw_outlet(f"{tag} wrist", "PPG", 1, 64.0, pylsl.cf_float32, f"dev-{tag}-ppg"),
        _raw_outlet(f"{tag} eyes", "Gaze", 2, 60.0, pylsl.cf_float32, f"dev-{tag}-gaze"),
        _raw_outlet(f"{tag} events", "Markers", 1, 0.0, pylsl.cf_string, f"dev-{tag}-mk"),
    ]
    found = discover(timeout=1.0, predicate=f"contains(source_id, '{tag}')", subject=None)
    by_name = {s.name: s for s in found}
    assert sorted(by_name) == sorted(o.get_info().name() for o in outlets)
    eda = by_name[f"{tag} EDA"]
    assert (eda.subject, eda.modality, eda.channel_labels, eda.units, eda.rate, eda.format) == (
        f"subj-{tag}", "EDA", ("EDA",), "µS", 32.0, "float32")
    assert eda.spec() == spec
    ppg = by_name[f"{tag} wrist"]
    assert ppg.modality == "BVP" and ppg.subject == ppg.hostname != ""  # no subject anywhere: the host
    assert by_name[f"{tag} eyes"].modality is None and by_name[f"{tag} eyes"].spec() is None
    assert by_name[f"{tag} events"].modality == MARKERS and by_name[f"{tag} events"].format == "string"
    # configured subject applies to streams without one; desc wins over configuration
    configured = {s.name: s.subject for s in discover(timeout=0.5, predicate=f"contains(source_id, '{tag}')",
                                                       subject="alice")}
    assert configured[f"{tag} wrist"] == "alice" and configured[f"{tag} EDA"] == f"subj-{tag}"
    # python predicates and modality overrides
    only = discover(timeout=0.5, source_id=f"dev-{tag}-gaze", modality_overrides={"Gaze": "EMG"})
    assert [s.modality for s in only] == ["EMG"]
    assert discover(timeout=0.3, predicate=lambda s: tag in s.name and s.rate == 64.0)[0].name == f"{tag} wrist"
    del outlets


def test_source_follows_streams_that_appear_later(tag):
    hub = BufferHub(seconds=30)
    src = LSLSource(predicate=f"contains(source_id, '{tag}')", subject="bob", resolve_interval=0.2)
    src.start(hub)
    try:
        assert src.streams() == []
        gsr = _raw_outlet(f"{tag} GSR", "GSR", 2, 32.0, pylsl.cf_int16, f"dev-{tag}-gsr", labels=["gsr_l", "gsr_r"])
        mk = _raw_outlet(f"{tag} events", "Markers", 1, 0.0, pylsl.cf_string, f"dev-{tag}-mk")
        gaze = _raw_outlet(f"{tag} eyes", "Gaze", 2, 60.0, pylsl.cf_float32, f"dev-{tag}-gaze")
        assert src.wait_for_streams(2, timeout=10.0)
        spec = hub.spec("bob", "EDA")
        assert spec is not None and spec.channels == ("gsr_l", "gsr_r") and spec.nominal_rate == 32.0
        t0 = pylsl.local_clock()
        data = np.arange(1, 129, dtype=np.int16).reshape(64, 2)
        stamps = t0 + np.arange(64) / 32.0
        gsr.push_chunk(data, stamps.tolist())
        mk.push_sample(["pain:high"], t0 + 0.5)
        mk.push_sample(["pain:no"], t0 + 1.5)
        buf = hub.buffer("bob", "EDA")
        assert wait_until(lambda: len(buf) == 64 and len(hub.markers("bob")) == 2)
        got, ts = buf.snapshot()
        np.testing.assert_array_equal(got, data.astype(np.float32))  # exact values, both channels
        np.testing.assert_allclose(ts, stamps, atol=0.005)  # same machine: clocksync offset ~0
        assert [(m.label, round(m.timestamp - t0, 3)) for m in hub.markers("bob")] == [
            ("pain:high", 0.5),
            ("pain:no", 1.5),
        ]
        assert wait_until(lambda: f"dev-{tag}-gaze" in src.ignored)  # its worker may still be connecting
        assert hub.spec("bob", "EMG") is None and all(h.spec.name != f"{tag} eyes" for h in src.health())
        assert wait_until(lambda: sum(h.samples for h in src.health()) == 66)  # counted just after the push
        health = {h.spec.modality: h for h in src.health()}
        assert health["EDA"].connected and health["EDA"].samples == 64 and health["EDA"].gaps == 0
        assert health[MARKERS].samples == 2 and health["EDA"].effective_rate > 0
        del gaze
    finally:
        src.stop()
    assert not any(h.connected for h in src.health())


def test_out_of_order_samples_are_rejected_and_counted(tag):
    """An irregular stream (no dejitter) whose sender's timestamps go backwards."""
    hub = BufferHub(seconds=30)
    out = _raw_outlet(f"{tag} eda", "EDA", 1, 0.0, pylsl.cf_float32, f"dev-{tag}-eda")
    src = LSLSource(source_id=f"dev-{tag}-eda", subject="carol")
    src.start(hub)
    try:
        assert src.wait_for_streams(1, timeout=10.0)
        t0 = pylsl.local_clock()
        out.push_chunk(np.array([[1.0], [2.0], [3.0]], np.float32), [t0 + 1, t0 + 2, t0 + 3])
        out.push_chunk(np.array([[9.0], [4.0]], np.float32), [t0 + 2.5, t0 + 4])
        assert wait_until(lambda: src.health()[0].samples + src.health()[0].rejected == 5)
        values, ts = hub.buffer("carol", "EDA").snapshot()
        assert values[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
        assert np.all(np.diff(ts) > 0)
        h = src.health()[0]
        assert h.rejected == 1 and h.reject_reasons["timestamps not increasing"] == 1
        assert h.gaps == 0  # irregular streams have no nominal spacing to break
    finally:
        src.stop()


def test_bad_filter_is_a_clear_error():
    with pytest.raises(ValueError, match="must not contain a single quote"):
        LSLSource(name="it's")
    with pytest.raises(Exception, match="resolve_interval must be positive"):
        LSLSource(resolve_interval=0)
