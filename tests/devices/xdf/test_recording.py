"""Recording to XDF: the writer's encoding, SessionRecorder round-trips through pyxdf and
replay, thread safety, bad input, and crash safety (SIGKILL of a recording process)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import pyxdf
from helpers import REPO_ROOT

from core.buffers import BufferHub
from core.estimate import Estimate
from core.streams import StreamSpec
from core.wire import ESTIMATE_CHANNEL_LABELS, ESTIMATE_STREAM_TYPE, MODE_CODES, STATE_CODES
from devices.replay import ReplaySource
from devices.xdf import (
    SessionRecorder,
    StreamInfo,
    XDFWriteError,
    XDFWriter,
    channel_format_for,
    load_session,
    varlen_int,
)

REPO = REPO_ROOT


def _raw_load(path):
    """What pyxdf reads with no timestamp processing: exactly what is in the file."""
    streams, header = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    return {s["info"]["name"][0]: s for s in streams}, header


def test_varlen_int_widths():
    assert varlen_int(5) == b"\x01\x05"
    assert varlen_int(300) == b"\x04" + (300).to_bytes(4, "little")
    assert varlen_int(2**33) == b"\x08" + (2**33).to_bytes(8, "little")
    with pytest.raises(ValueError, match="must be non-negative"):
        varlen_int(-1)


def test_channel_format_for_dtypes():
    assert channel_format_for(np.dtype(np.float32)) == "float32"
    assert channel_format_for(np.dtype(np.float64)) == "double64"
    assert channel_format_for(np.dtype(np.int16)) == "int16"
    assert channel_format_for(np.dtype(np.uint16)) == "int32"
    assert channel_format_for(np.dtype(np.int64)) == "int64"
    assert channel_format_for(np.dtype("U5")) == "string"


def test_writer_every_format_reads_back_exactly(tmp_path):
    path = tmp_path / "formats.xdf"
    w = XDFWriter(path)
    rng = np.random.default_rng(1)
    expected = {}
    for sid, fmt in enumerate(("float32", "double64", "int8", "int16", "int32", "int64"), start=1):
        dtype = np.float64 if fmt == "double64" else np.dtype(fmt)
        data = (rng.standard_normal((7, 3)) * 100).astype(dtype)
        ts = 50.0 + np.cumsum(rng.uniform(0.001, 0.02, 7))
        w.add_stream(sid, StreamInfo(f"s-{fmt}", "Test", 3, 100.0, fmt, desc={"subject": "x"}))
        w.write_samples(sid, data[:4], ts[:4])
        w.write_samples(sid, data[4:], ts[4:])
        expected[f"s-{fmt}"] = (data, ts)
    w.add_stream(99, StreamInfo("strings", "Markers", 2, 0.0, "string"))
    w.write_samples(99, [["a", "ünïcode"], ["", "x" * 300]], [1.0, 2.0])
    w.write_footer(99, 1.0, 2.0, 2)
    w.close()
    streams, header = _raw_load(path)
    assert header["info"]["writer"] == ["PainMon"]
    for name, (data, ts) in expected.items():
        got = streams[name]
        assert got["time_series"].dtype == data.dtype
        np.testing.assert_array_equal(got["time_series"], data)
        np.testing.assert_array_equal(got["time_stamps"], ts)
    assert streams["strings"]["time_series"] == [["a", "ünïcode"], ["", "x" * 300]]
    assert streams["strings"]["footer"]["info"]["sample_count"] == ["2"]


def test_writer_rejects_bad_input(tmp_path):
    w = XDFWriter(tmp_path / "bad.xdf")
    with pytest.raises(XDFWriteError, match="unknown channel format"):
        StreamInfo("a", "EDA", 1, 4.0, "float16")
    w.add_stream(1, StreamInfo("a", "EDA", 2, 4.0, "float32"))
    with pytest.raises(XDFWriteError, match="already declared"):
        w.add_stream(1, StreamInfo("a", "EDA", 2, 4.0, "float32"))
    with pytest.raises(XDFWriteError, match="do not match 2 channels"):
        w.write_samples(1, np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(XDFWriteError, match="3 samples but 2 timestamps"):
        w.write_samples(1, np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(XDFWriteError, match="undeclared stream"):
        w.write_samples(7, np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(XDFWriteError, match="does not exist"):
        XDFWriter(tmp_path / "no" / "such" / "dir.xdf")
    w.close()


def _synthetic_session(hub: BufferHub, rec: SessionRecorder) -> dict:
    """Push numeric multi-channel (float64, jittered times), integer and marker data and
    estimates through the hub/recorder the way live sources and the engine do."""
    rng = np.random.default_rng(7)
    bvp = StreamSpec("sim-1", "BVP", ("ppg", "ambient"), 64.0, "a.u.", "sim-1 BVP", "painmon:sim-1:BVP")
    eda = StreamSpec("sim-1", "EDA", ("eda",), 4.0, "µS", "sim-1 EDA")
    spo2 = StreamSpec("sim-2", "SpO2", ("spo2",), 1.0, "%", "sim-2 SpO2")
    bvp_v = rng.standard_normal((256, 2))
    bvp_t = 1000.0 + np.arange(256) / 64.0 + rng.uniform(-1e-3, 1e-3, 256)
    eda_v = rng.uniform(1, 10, (16, 1)).astype(np.float32)
    eda_t = 1000.0 + np.arange(16) / 4.0
    spo2_v = rng.integers(90, 100, (4, 1)).astype(np.int16)
    spo2_t = 1000.5 + np.arange(4)
    for k in range(0, 256, 32):  # chunks as a source would deliver them
        hub.push(bvp, bvp_v[k : k + 32], bvp_t[k : k + 32])
    hub.push(eda, eda_v[:9], eda_t[:9])
    hub.push(eda, eda_v[9:], eda_t[9:])
    hub.push(spo2, spo2_v, spo2_t)
    hub.push_markers("sim-1", ["pain:no", "pain:high"], [1000.0, 1002.0], source="sim")
    hub.push_markers("sim-2", ["pain:low"], [1001.5], source="user")
    est = Estimate("sim-1", 1003.0, 61.5, (0.1, 0.3, 0.6), smoothed=55.0, quality={"EDA": 0.5, "BVP": 1.0})
    rec.record_estimate(est)
    return {
        ("sim-1", "BVP"): (bvp_v, bvp_t),
        ("sim-1", "EDA"): (eda_v, eda_t),
        ("sim-2", "SpO2"): (spo2_v, spo2_t),
        "est": est,
    }


def test_round_trip_record_load_replay(tmp_path):
    path = tmp_path / "session.xdf"
    hub = BufferHub()
    rec = SessionRecorder(path, hub).start()
    truth = _synthetic_session(hub, rec)
    rec.stop()
    rec.stop()  # idempotent

    # 1. pyxdf reads exactly what was pushed, in the declared formats
    streams, _ = _raw_load(path)
    assert set(streams) == {"sim-1 BVP", "sim-1 EDA", "sim-2 SpO2", "sim-1 Markers", "sim-2 Markers", "PainMon-sim-1"}
    bvp_v, bvp_t = truth[("sim-1", "BVP")]
    np.testing.assert_array_equal(streams["sim-1 BVP"]["time_series"], bvp_v)
    np.testing.assert_array_equal(streams["sim-1 BVP"]["time_stamps"], bvp_t)
    assert streams["sim-1 EDA"]["info"]["channel_format"] == ["float32"]
    assert streams["sim-2 SpO2"]["info"]["channel_format"] == ["int16"]
    assert streams["sim-1 Markers"]["time_series"] == [["pain:no"], ["pain:high"]]
    assert streams["sim-1 BVP"]["info"]["desc"][0]["subject"] == ["sim-1"]
    assert streams["sim-1 BVP"]["footer"]["info"]["sample_count"] == ["256"]
    est_stream = streams["PainMon-sim-1"]
    assert est_stream["info"]["type"] == [ESTIMATE_STREAM_TYPE]
    est = truth["est"]
    np.testing.assert_array_equal(
        est_stream["time_series"][0],
        [est.index, est.smoothed, *est.probs, est.quality_overall,
         STATE_CODES.index("ok"), MODE_CODES.index("absolute"), est.hop_s],
    )
    assert len(ESTIMATE_CHANNEL_LABELS) == est_stream["time_series"].shape[1]

    # 2. load_session maps streams back to subject/modality with exact values and times
    session = load_session(path)
    assert session.writer == "PainMon"
    assert session.subjects == ["sim-1", "sim-2"]
    for key in (("sim-1", "BVP"), ("sim-1", "EDA"), ("sim-2", "SpO2")):
        s = session.stream(*key)
        assert s is not None, key
        np.testing.assert_array_equal(s.values, truth[key][0].astype(np.float64))
        np.testing.assert_array_equal(s.timestamps, truth[key][1])
    assert session.stream("sim-1", "BVP").spec.channels == ("ppg", "ambient")
    assert session.stream("sim-1", "EDA").spec.units == "µS"
    assert [(m.subject, m.label) for m in session.markers] == [
        ("sim-1", "pain:no"), ("sim-2", "pain:low"), ("sim-1", "pain:high")
    ]
    assert len(session.estimate_streams) == 1

    # 3. replay reproduces samples and timestamps (up to the shift onto the live clock)
    out = BufferHub()
    src = ReplaySource(session, speed=0)
    src.start(out)
    assert src.wait(10)
    src.stop()
    shift = src.to_clock(0.0) - session.t_start
    for key in (("sim-1", "BVP"), ("sim-1", "EDA"), ("sim-2", "SpO2")):
        data, ts = out.buffer(*key).snapshot()
        np.testing.assert_array_equal(data, truth[key][0].astype(np.float32))
        np.testing.assert_allclose(ts - shift, truth[key][1], rtol=0, atol=1e-9)
    labels = [(m.subject, m.label) for m in out.markers()]
    assert labels == [("sim-1", "pain:no"), ("sim-2", "pain:low"), ("sim-1", "pain:high")]


def test_concurrent_sources_lose_nothing(tmp_path):
    path = tmp_path / "threads.xdf"
    hub = BufferHub()
    rec = SessionRecorder(path, hub, flush_interval=0.05).start()
    n_threads, n_chunks, chunk = 4, 50, 10

    def feed(i: int) -> None:
        spec = StreamSpec(f"sim-{i}", "RESP", ("resp",), 25.0)
        for k in range(n_chunks):
            idx = np.arange(k * chunk, (k + 1) * chunk)
            hub.push(spec, idx.astype(np.float64) + i * 1e6, 10.0 + idx / 25.0)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.stop()
    streams, _ = _raw_load(path)
    for i in range(n_threads):
        s = streams[f"sim-{i} RESP"]
        n = n_chunks * chunk
        np.testing.assert_array_equal(s["time_series"][:, 0], np.arange(n) + i * 1e6)
        assert np.all(np.diff(s["time_stamps"]) > 0)


def test_bad_input_is_counted_and_loses_nothing(tmp_path, caplog):
    path = tmp_path / "bad.xdf"
    hub = BufferHub()
    rec = SessionRecorder(path, hub).start()
    spec = StreamSpec("s", "EDA", ("eda",), 4.0)
    rec.record_chunk(spec, np.zeros((2, 1)), [1.0, 2.0])
    rec.record_chunk(spec, np.zeros((3, 1)), [1.0, 2.0])  # count mismatch
    rec.record_chunk(spec, np.zeros((1, 1)), [math.nan])  # bad timestamp
    rec.record_chunk(spec, np.zeros((1, 2)), [3.0])  # wrong channel count
    rec.record_markers("s", ["a", "b"], [1.0])
    rec.record_chunk(spec, np.ones((1, 1)), [3.0])
    stats = rec.stats()
    assert stats.rejected == 4
    assert stats.reject_reasons["sample/timestamp count mismatch"] == 1
    assert stats.reject_reasons["non-finite timestamps"] == 1
    assert stats.reject_reasons["channel count mismatch"] == 1
    assert any("recorder rejected" in r.message for r in caplog.records)
    rec.stop()
    rec.record_chunk(spec, np.ones((1, 1)), [9.0])  # after stop: not written, no crash
    streams, _ = _raw_load(path)
    np.testing.assert_array_equal(streams["s EDA"]["time_series"][:, 0], [0, 0, 1])
    np.testing.assert_array_equal(streams["s EDA"]["time_stamps"], [1.0, 2.0, 3.0])


def test_recorder_refuses_bad_setup(tmp_path):
    with pytest.raises(ValueError, match="flush_interval"):
        SessionRecorder(tmp_path / "x.xdf", flush_interval=2.0)
    with pytest.raises(OSError, match="cannot record to"):
        SessionRecorder(tmp_path / "missing" / "x.xdf").start()
    if Path("/dev/full").exists():  # a full disk is reported at start, not later
        with pytest.raises(OSError, match="cannot record to /dev/full"):
            SessionRecorder("/dev/full").start()
    rec = SessionRecorder(tmp_path / "y.xdf").start()
    with pytest.raises(RuntimeError, match="already started"):
        rec.start()
    rec.stop()


CRASH_SCRIPT = r"""
import sys, time
import numpy as np
from core.buffers import BufferHub
from core.streams import StreamSpec
from devices.xdf import SessionRecorder
hub = BufferHub()
SessionRecorder(sys.argv[1], hub, flush_interval=0.5).start()
spec = StreamSpec("crash", "BVP", ("bvp",), 100.0)
k = 0
t0 = time.monotonic()
while True:
    idx = np.arange(k, k + 10)
    hub.push(spec, idx.astype(np.float64), idx / 100.0)
    hub.push_markers("crash", [f"m{k}"], [k / 100.0]) if k % 100 == 0 else None
    k += 10
    print(k, time.monotonic() - t0, flush=True)
    time.sleep(max(0.0, t0 + k / 100.0 - time.monotonic()))
"""


def test_sigkill_loses_at_most_the_last_second(tmp_path):
    path = tmp_path / "crash.xdf"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(path)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=str(REPO),
    )
    try:
        pushed = 0
        for line in proc.stdout:
            pushed = int(line.split()[0])
            if pushed >= 250:  # 2.5 s of data handed to the recorder
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert pushed >= 250
    streams, _ = _raw_load(path)  # still a valid XDF file
    got = streams["crash BVP"]
    n = got["time_series"].shape[0]
    assert n >= pushed - 100, f"only {n} of {pushed} samples survived"
    np.testing.assert_array_equal(got["time_series"][:, 0], np.arange(n))
    np.testing.assert_array_equal(got["time_stamps"], np.arange(n) / 100.0)
    assert streams["crash Markers"]["time_series"][0] == ["m0"]
    session = load_session(path)  # and replay accepts it too
    assert session.stream("crash", "BVP").n_samples == n
