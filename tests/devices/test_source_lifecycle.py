"""One lifecycle for every source (devices.source): second start, early and repeated stop,
restart; one error root; the playback-controls protocol; device objects without a hub
(publisher, recorder, re-publisher) answer a second start alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import wait_until

from core.buffers import BufferHub
from core.errors import PainMonError
from core.streams import MARKERS, StreamSpec
from core.worker import WorkerStateError
from devices.lsl import LSLSource
from devices.mqtt import (
    MQTTConfig,
    MQTTPublisher,
    MQTTSource,
    PayloadError,
    TopicError,
    decode_samples,
)
from devices.replay import LSLRepublisher, ReplaySource
from devices.simulator import (
    PainSchedule,
    ScheduleError,
    SimulatedWearable,
    SimulatorSource,
)
from devices.source import PlaybackControls, Source, SourceError
from devices.xdf import (
    Session,
    SessionLoadError,
    SessionRecorder,
    SessionStream,
    XDFWriteError,
    load_session,
)


def _session(tmp_path: Path, seconds: float = 2.0, rate: float = 50.0) -> Session:
    n = int(seconds * rate)
    ts = 100.0 + np.arange(n) / rate
    spec = StreamSpec("lc-1", "EDA", ("eda",), rate, name="lc-1 EDA")
    mspec = StreamSpec("lc-1", MARKERS, ("label",), 0.0, name="lc-1 Markers")
    return Session(
        path=tmp_path / "lifecycle.xdf",
        streams=[SessionStream(spec, ts, np.arange(n, dtype=np.float64)[:, None], "EDA", "double64")],
        marker_streams=[SessionStream(mspec, np.array([100.0]), ["start"], "Markers", "string")],
        t_start=100.0,
        duration=float(ts[-1] - 100.0),
    )


def _check_lifecycle(source: Source, restartable: bool) -> None:
    """Stop before start and twice is harmless; a second start raises SourceError; after
    stop, start works again only on restartable sources."""
    assert source.restartable is restartable
    source.stop()  # before start: nothing to do, no error
    assert source.state == "idle"
    hub = BufferHub()
    source.start(hub)
    try:
        assert source.state == "running"
        with pytest.raises(SourceError, match="already running"):
            source.start(hub)
    finally:
        source.stop()
    source.stop()
    assert source.state == "stopped"
    if restartable:
        source.start(hub)
        assert source.state == "running"
        source.stop()
    else:
        with pytest.raises(SourceError, match="cannot be restarted"):
            source.start(hub)
        assert source.state == "stopped"


def test_simulator_source_lifecycle_and_it_delivers_again_after_a_restart():
    src = SimulatorSource(SimulatedWearable(1, seed=3), chunk_interval=0.02, speed=20.0)
    _check_lifecycle(src, restartable=True)
    hub = BufferHub()
    src.start(hub)
    try:
        assert wait_until(lambda: sum(h.samples for h in src.health()) > 0, timeout=5.0)
    finally:
        src.stop()


def test_lsl_source_lifecycle():
    # a filter nothing on the network matches: the lifecycle does not depend on streams
    _check_lifecycle(LSLSource(source_id="lifecycle-test-none", resolve_interval=0.2), restartable=True)


def test_replay_source_lifecycle_and_playback_protocol(tmp_path):
    src = ReplaySource(_session(tmp_path), speed=0)
    assert isinstance(src, PlaybackControls) and isinstance(src, Source)
    _check_lifecycle(src, restartable=False)
    held = []
    src2 = ReplaySource(_session(tmp_path), speed=0)
    src2.hold = lambda: bool(held.append(1))  # public back-pressure (never holds)
    assert src2.hold is not None
    hub = BufferHub()
    src2.start(hub)
    try:
        assert src2.wait(5.0) and held and src2.loops == 0
    finally:
        src2.stop()
    buffer = hub.buffer("lc-1", "EDA")
    assert buffer is not None and buffer.snapshot()[0].shape[0] == 100
    assert [m.label for m in hub.markers("lc-1")] == ["start"]


def test_only_playback_sources_claim_playback_controls(tmp_path):
    assert isinstance(LSLRepublisher(_session(tmp_path)), PlaybackControls)
    assert not isinstance(SimulatorSource(SimulatedWearable(1)), PlaybackControls)
    assert not isinstance(LSLSource(source_id="x"), PlaybackControls)


def test_mqtt_source_lifecycle(mosquitto_broker):
    config = MQTTConfig(mosquitto_broker.host, mosquitto_broker.port, reconnect_max=0.5)
    _check_lifecycle(MQTTSource(config), restartable=False)


def test_unusable_start_leaves_the_source_startable(tmp_path):
    cert = tmp_path / "ca.pem"
    cert.write_text("not a certificate")
    src = MQTTSource(MQTTConfig("localhost", tls=True, ca_file=str(cert)))
    with pytest.raises(SourceError, match="configuration unusable"):
        src.start(BufferHub())
    assert src.state == "idle"
    src.stop()


def test_device_objects_without_a_hub_refuse_a_second_start(tmp_path, mosquitto_broker):
    pub = MQTTPublisher(MQTTConfig(mosquitto_broker.host, mosquitto_broker.port))
    pub.stop()  # before start: harmless
    pub.start()
    try:
        with pytest.raises(WorkerStateError):
            pub.start()
    finally:
        pub.stop()
    pub.stop()
    rec = SessionRecorder(tmp_path / "rec.xdf")
    rec.stop()
    rec.start()
    with pytest.raises(WorkerStateError, match="already started"):
        rec.start()
    rec.stop()
    rec.stop()


def test_every_devices_error_is_a_painmon_error_and_keeps_its_builtin(tmp_path):
    with pytest.raises(PayloadError) as payload:
        decode_samples(b"{")
    with pytest.raises(SessionLoadError) as load:
        load_session(tmp_path / "missing.xdf")
    with pytest.raises(ScheduleError) as schedule:
        PainSchedule.parse("sometimes:10")
    expected = {
        payload.value: ValueError,
        load.value: RuntimeError,  # a SourceError
        schedule.value: ValueError,
        TopicError("bad_topic"): ValueError,
        XDFWriteError("x"): RuntimeError,
        SourceError("x"): RuntimeError,
        WorkerStateError("x"): RuntimeError,
    }
    for exc, builtin in expected.items():
        assert isinstance(exc, PainMonError) and isinstance(exc, builtin), type(exc)
