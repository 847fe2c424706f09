"""A recording on a disk that fills up: it stops, says why once, and keeps a readable file."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from full_disk import full_disk
from helpers import wait_until

from core import clock
from core.buffers import BufferHub
from core.streams import StreamSpec
from devices.xdf import SessionRecorder, load_session
from monitor.pipeline import Pipeline

SPEC = StreamSpec("sim-1", "BVP", channels=("a", "b", "c", "d"), nominal_rate=64.0, name="sim-1 BVP")


def feed(hub: BufferHub, until, chunks: int = 400) -> int:
    """Push 256-sample chunks (4 KiB each) of a known ramp until ``until()``; returns how many."""
    t0 = clock.now()
    for k in range(chunks):
        values = np.full((256, 4), float(k), dtype=np.float32)
        hub.push(SPEC, values, t0 + (k * 256 + np.arange(256)) / 64.0)
        if until():
            return k + 1
        threading.Event().wait(0.02)
    return chunks


@pytest.mark.allow_thread_errors
def test_a_full_disk_stops_the_recording_says_why_once_and_keeps_what_was_flushed(tmp_path):
    hub = BufferHub(seconds=30)
    hub.register(SPEC)
    calls: list[str] = []
    with full_disk(tmp_path / "disk") as folder:
        recorder = SessionRecorder(folder / "session.xdf", hub, flush_interval=0.1, on_error=calls.append)
        recorder.start()
        feed(hub, lambda: bool(calls))
        assert wait_until(lambda: bool(calls), 5.0)
        assert not recorder.running
        recorder.stop()  # after a failure: nothing left to do, no second report
        # the file holds whole chunks only: it loads, with the first chunks intact
        session = load_session(folder / "session.xdf")
    assert len(calls) == 1
    assert "disk full" in calls[0] and "session.xdf" in calls[0] and "\n" not in calls[0]
    assert recorder.error == calls[0] and recorder.stats().error == calls[0]
    (stream,) = session.streams
    assert stream.n_samples >= 256 and stream.n_samples % 256 == 0


@pytest.mark.allow_thread_errors
def test_the_pipeline_reports_the_failed_recording_in_its_health(tmp_path):
    pipeline = Pipeline()
    pipeline.hub.register(SPEC)
    seen: list[str] = []
    with full_disk(tmp_path / "disk") as folder:
        pipeline.start()
        pipeline.start_recording(folder / "run.xdf", on_error=seen.append)
        assert pipeline.recording and pipeline.health().recording_error is None
        feed(pipeline.hub, lambda: bool(seen))
        assert wait_until(lambda: bool(seen), 5.0)
        health = pipeline.health()
        assert not pipeline.recording and health.recording is None
        assert health.recording_error == seen[0] == pipeline.recording_error
        pipeline.stop()
