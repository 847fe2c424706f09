"""Replay: loading the real XDF files in ../shared/data/xdf, replay into a BufferHub
checked against pyxdf, markers, pause/resume/seek/loop, speed, health, and errors."""

from __future__ import annotations

import gzip
import math
import time
from pathlib import Path

import numpy as np
import pytest
import pyxdf
from helpers import wait_until

from core import clock
from core.buffers import BufferHub
from core.streams import MARKERS, StreamSpec
from devices.replay import ReplaySource
from devices.source import Source, SourceError
from devices.xdf import Session, SessionLoadError, SessionStream, load_session


def _xdf_files(xdf_dir: Path) -> list[Path]:
    files = sorted(xdf_dir.glob("*.xdf"))
    assert files, f"no XDF files in {xdf_dir}"
    return files


def _pyxdf(path: Path) -> dict:
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, handle_clock_resets=True,
                                dejitter_timestamps=True)
    return {s["info"]["name"][0]: s for s in streams}


def _synthetic(tmp_path: Path, seconds: float = 2.0, rate: float = 100.0) -> Session:
    """An in-memory session: one 2-channel stream and a marker every second."""
    n = int(seconds * rate)
    ts = 500.0 + np.arange(n) / rate
    values = np.column_stack([np.arange(n), -np.arange(n)]).astype(np.float64)
    spec = StreamSpec("sim-1", "BVP", ("a", "b"), rate, name="sim-1 BVP")
    mts = 500.0 + np.arange(int(seconds))
    mspec = StreamSpec("sim-1", MARKERS, ("label",), 0.0, name="sim-1 Markers")
    return Session(
        path=tmp_path / "synthetic.xdf",
        streams=[SessionStream(spec, ts, values, "BVP", "double64")],
        marker_streams=[SessionStream(mspec, mts, [f"m{i}" for i in range(len(mts))], "Markers", "string")],
        t_start=500.0,
        duration=float(ts[-1] - 500.0),
    )


# --- the real files -----------------------------------------------------------------------
def test_every_shared_file_loads_like_pyxdf(xdf_dir):
    for path in _xdf_files(xdf_dir):
        session = load_session(path)
        ref = _pyxdf(path)
        for s in session.streams:
            r = ref[s.spec.name]
            np.testing.assert_array_equal(s.timestamps, r["time_stamps"])
            np.testing.assert_array_equal(s.values, np.asarray(r["time_series"], dtype=np.float64))
            assert s.values.dtype == np.float64  # integer formats are floats for the pipeline
            assert s.spec.subject == path.stem  # no <subject> in these files
        for s in session.marker_streams:
            assert s.values == [row[0] for row in ref[s.spec.name]["time_series"]]
        named = {s.spec.name for s in session.replayable} | set(session.skipped)
        assert named == set(ref), path.name


def test_every_shared_file_replays_into_a_hub(xdf_dir):
    for path in _xdf_files(xdf_dir):
        session = load_session(path)
        ref = _pyxdf(path)
        hub = BufferHub(seconds=session.duration + 60)
        src = ReplaySource(path, speed=0)
        assert isinstance(src, Source)
        t0 = clock.now()
        src.start(hub)
        assert src.wait(30), path.name
        src.stop()
        for s in session.streams:
            data, ts = hub.buffer(*s.spec.key).snapshot()
            r = ref[s.spec.name]
            assert len(ts) == len(r["time_stamps"]), s.spec.name
            np.testing.assert_allclose(np.diff(ts), np.diff(r["time_stamps"]), atol=1e-9)
            np.testing.assert_allclose(data, np.asarray(r["time_series"], dtype=np.float32))
            # re-based onto the shared clock: the file's start is "now" at start()
            assert abs(src.to_clock(0.0) - t0) < 1.0
            assert ts[0] >= t0 - 1.0
        n_markers = sum(len(ref[s.spec.name]["time_stamps"]) for s in session.marker_streams)
        assert len(hub.markers()) == n_markers
        health = {h.spec.name: h for h in src.health()}
        for s in session.replayable:
            assert health[s.spec.name].samples == s.n_samples
            assert health[s.spec.name].status == "finished"


def test_empty_streams_skipped_and_odd_streams_kept(xdf_dir):
    session = load_session(xdf_dir / "empty_streams.xdf")
    assert sorted(session.skipped) == [
        "Empty data stream: test stream 0 counter",
        "Empty marker stream: test stream 0 counter",
    ]
    (data,) = session.streams
    assert data.channel_format == "int32" and data.values.dtype == np.float64
    np.testing.assert_array_equal(data.values[:, 0], np.arange(10))
    assert data.spec.modality == "data" and not data.known_modality  # unknown type: kept as is
    (ctrl,) = session.marker_streams  # a string stream of type "control" becomes events
    assert ctrl.stream_type == "control" and ctrl.values == ['{"state": 2}']


def test_markers_keep_their_place_among_samples(xdf_dir):
    session = load_session(xdf_dir / "minimal.xdf")
    hub = BufferHub()
    src = ReplaySource(session, speed=0)
    src.start(hub)
    assert src.wait(10)
    src.stop()
    markers = hub.markers("minimal")
    assert [m.label for m in markers[1:5]] == ["Hello", "World", "from", "LSL"]
    assert all(m.source == "SendDataString" for m in markers)
    shift = src.to_clock(0.0) - session.t_start
    expected = [float(t) + shift for t in session.marker_streams[0].timestamps]
    np.testing.assert_allclose([m.timestamp for m in markers], expected, atol=1e-9)
    _, ts = hub.buffer("minimal", "EEG").snapshot()
    np.testing.assert_allclose(ts, session.streams[0].timestamps + shift, atol=1e-9)


def test_replays_of_a_file_shift_it_by_whole_seconds_bit_identically(xdf_dir):
    # the engine resamples on the grid k / 100 Hz of the shared clock: a shift by a random
    # fraction of a sample interpolated other points of the recording on every replay
    session = load_session(xdf_dir / "minimal.xdf")
    relative = []
    for _ in range(2):
        hub = BufferHub()
        src = ReplaySource(session, speed=0)
        started = clock.now()
        src.start(hub)
        assert src.wait(10)
        src.stop()
        shift = src.to_clock(0.0)
        assert shift == math.floor(shift) and started <= shift < clock.now() + 1.0
        _, ts = hub.buffer("minimal", "EEG").snapshot()
        relative.append(ts - shift)
        time.sleep(0.137)  # the clock moves on by a fraction of a second between the replays
    np.testing.assert_array_equal(relative[0], relative[1])  # bit for bit


def test_clock_resets_file_is_monotonic_after_load(xdf_dir):
    session = load_session(xdf_dir / "clock_resets.xdf")
    eeg = session.stream("clock_resets", "EEG")
    assert eeg.n_samples > 20000
    assert np.all(np.diff(eeg.timestamps) > 0)  # pyxdf's reset handling + dejitter applied
    assert len(session.markers) == 175


# --- errors -------------------------------------------------------------------------------
def test_clear_errors_for_bad_files(tmp_path):
    with pytest.raises(SessionLoadError, match="no such file"):
        load_session(tmp_path / "missing.xdf")
    text = tmp_path / "notes.xdf"
    text.write_text("hello")
    with pytest.raises(SessionLoadError, match="not an XDF file"):
        load_session(text)
    garbage = tmp_path / "garbage.xdf"
    garbage.write_bytes(b"XDF:" + bytes(range(256)) * 4)
    with pytest.raises(SessionLoadError):
        load_session(garbage)
    with pytest.raises(SessionLoadError, match="folder"):
        load_session(tmp_path)
    with pytest.raises(SourceError):  # a SessionLoadError is a SourceError to callers
        ReplaySource(tmp_path / "missing.xdf")


def test_gzipped_xdf_loads(tmp_path, xdf_dir):
    packed = tmp_path / "minimal.xdfz"
    packed.write_bytes(gzip.compress((xdf_dir / "minimal.xdf").read_bytes()))
    session = load_session(packed)
    assert session.stream("minimal", "EEG").n_samples == 9


def test_bad_speed_rejected(tmp_path):
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(_synthetic(tmp_path), speed=-1)
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(_synthetic(tmp_path), speed=math.nan)


# --- pacing and controls -------------------------------------------------------------------
def test_speed_factor_is_honoured(tmp_path):
    session = _synthetic(tmp_path, seconds=2.0)
    hub = BufferHub()
    src = ReplaySource(session, speed=4.0)
    t0 = time.monotonic()
    src.start(hub)
    assert src.wait(5)
    elapsed = time.monotonic() - t0
    src.stop()
    # 2 s of data at 4x: about 0.5 s, after up to 1 s waiting for the clock's next whole second
    assert 0.35 < elapsed < 2.2, elapsed
    data, ts = hub.buffer("sim-1", "BVP").snapshot()
    assert len(ts) == 200
    np.testing.assert_allclose(np.diff(ts), 0.01, atol=1e-9)  # spacing kept: rates stay right
    assert src.position == pytest.approx(session.duration)


def test_real_time_pace_and_health(tmp_path):
    session = _synthetic(tmp_path, seconds=2.0)
    hub = BufferHub()
    src = ReplaySource(session, speed=1.0)
    src.start(hub)
    # pacing begins when the clock reaches a whole second (within 1 s; see devices.replay)
    assert wait_until(lambda: src.position > 0, timeout=1.5, step=0.005)
    time.sleep(0.6)
    health = src.health()[0]
    pos = src.position
    assert 0.4 < pos < 1.2
    assert 30 <= health.samples <= 120
    assert health.connected and health.status == "replaying x1"
    assert 80 < health.effective_rate < 120
    # live-looking: the newest timestamp is close to the clock, never ahead of it
    lag = clock.now() - hub.buffer("sim-1", "BVP").last_timestamp
    assert 0.0 <= lag < 0.3
    src.stop()
    assert src.health()[0].status == "stopped"


def test_pause_resume_keeps_time_increasing(tmp_path):
    session = _synthetic(tmp_path, seconds=2.0)
    hub = BufferHub()
    src = ReplaySource(session, speed=1.0)
    src.start(hub)
    assert wait_until(lambda: src.position > 0.3, timeout=2.0)  # after the wait for a whole second
    src.pause()
    assert src.paused and src.health()[0].status == "paused"
    buf = hub.buffer("sim-1", "BVP")
    time.sleep(0.05)
    held = buf.total
    pos = src.position
    time.sleep(1.1)  # longer than the shift's whole-second quantum (a shorter pause may show no gap)
    assert buf.total == held  # nothing arrives while paused
    assert src.position == pytest.approx(pos)
    src.speed = 8.0
    src.resume()
    assert src.wait(5)
    src.stop()
    data, ts = buf.snapshot()
    np.testing.assert_array_equal(data[:, 0], np.arange(200))  # every sample exactly once
    steps = np.diff(ts)
    assert np.all(steps > 0)
    assert steps.max() >= 1.0  # the pause shows as a gap (whole seconds), like a sensor that was off


def test_seek_forward_and_back(tmp_path):
    session = _synthetic(tmp_path, seconds=2.0)
    hub = BufferHub()
    src = ReplaySource(session, speed=1.0)
    src.seek(1.5)  # before start: begins there
    assert src.position == pytest.approx(1.5)
    src.start(hub)
    assert src.wait(2)
    buf = hub.buffer("sim-1", "BVP")
    data, _ = buf.snapshot()
    assert data[0, 0] == 150 and data[-1, 0] == 199
    src.seek(0.2)  # after the end: starts again from there
    assert not src.finished.is_set()
    src.speed = 0
    assert src.wait(5)
    src.stop()
    data, ts = buf.snapshot()
    np.testing.assert_array_equal(data[:, 0], np.concatenate([np.arange(150, 200), np.arange(20, 200)]))
    assert np.all(np.diff(ts) > 0)  # seeking back never makes time run backwards
    labels = [m.label for m in hub.markers()]
    assert labels == ["m1"]  # 1st pass began at 1.5 s; the 2nd (from 0.2 s) passed 1.0 s once


def test_loop_repeats_with_increasing_time(tmp_path):
    session = _synthetic(tmp_path, seconds=1.0)
    hub = BufferHub(seconds=60)
    src = ReplaySource(session, speed=0, loop=True)
    src.start(hub)
    assert wait_until(lambda: src.loops >= 3)
    assert not src.finished.is_set()
    src.stop()
    data, ts = hub.buffer("sim-1", "BVP").snapshot()
    assert len(ts) >= 300
    assert np.all(np.diff(ts) > 0)
    np.testing.assert_array_equal(data[:300, 0], np.tile(np.arange(100), 3))


def test_replay_of_a_recording_feeds_a_recorder(tmp_path):
    """Replay -> hub -> SessionRecorder: a re-recorded file has the same samples."""
    from devices.xdf import SessionRecorder

    session = _synthetic(tmp_path, seconds=1.0)
    hub = BufferHub()
    rec = SessionRecorder(tmp_path / "again.xdf", hub).start()
    src = ReplaySource(session, speed=0)
    src.start(hub)
    assert src.wait(5)
    src.stop()
    rec.stop()
    again = load_session(tmp_path / "again.xdf")
    s = again.stream("sim-1", "BVP")
    np.testing.assert_array_equal(s.values, session.streams[0].values)
    np.testing.assert_allclose(np.diff(s.timestamps), 0.01, atol=1e-9)
    assert [m.label for m in again.markers] == ["m0"]


def test_inconsistent_session_refused_up_front(tmp_path):
    session = _synthetic(tmp_path)
    bad = session.streams[0]
    bad.values = np.column_stack([bad.values, bad.values[:, 0]])  # 3 columns, 2 channels declared
    with pytest.raises(ValueError, match=r"values of shape \(200, 3\), expected \(200, 2\)"):
        ReplaySource(session)
    session = _synthetic(tmp_path)
    session.marker_streams[0].values.append("extra")
    with pytest.raises(ValueError, match="3 labels but 2 timestamps"):
        ReplaySource(session)


def test_timestamps_stepping_back_replay_every_sample_in_order(tmp_path):
    session = _synthetic(tmp_path, seconds=1.0)
    ts = session.streams[0].timestamps
    ts[50], ts[51] = ts[51], ts[50]  # raw jitter: one pair out of order
    hub = BufferHub()
    src = ReplaySource(session, speed=4.0)
    src.start(hub)
    assert src.wait(5)
    src.stop()
    data, got = hub.buffer("sim-1", "BVP").snapshot()
    np.testing.assert_array_equal(data[:, 0], np.arange(100))
    np.testing.assert_allclose(got - src.to_clock(0.0) + session.t_start, ts, atol=1e-9)


def test_hold_gives_back_pressure_to_fast_replay(tmp_path):
    """An offline consumer holds an as-fast-as-possible replay until it has caught up."""
    session = _synthetic(tmp_path, seconds=2.0)
    hub = BufferHub()
    consumed = [-math.inf]  # newest timestamp the "consumer" has processed: nothing yet

    def hold() -> bool:
        buf = hub.buffer("sim-1", "BVP")
        return buf is not None and buf.total > 0 and buf.last_timestamp - consumed[-1] > 0.5

    src = ReplaySource(session, speed=0, hold=hold)
    src.start(hub)
    assert wait_until(lambda: (b := hub.buffer("sim-1", "BVP")) is not None and b.total > 0, 10.0)
    time.sleep(0.2)  # time to run on, were it not held
    buf = hub.buffer("sim-1", "BVP")
    held = buf.total
    assert 0 < held < 200 and not src.finished.is_set()  # stopped after the first chunk
    consumed.append(math.inf)  # consumer caught up for good
    assert src.wait(5)
    src.stop()
    assert buf.total == 200
