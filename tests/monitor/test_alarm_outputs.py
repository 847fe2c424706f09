"""Alarm transitions reach every place an event goes: hub markers (so the XDF recording),
a real LSL inlet on the alarm stream, a real mosquitto subscriber on <prefix>/<subject>/alarm,
and the stale rule driven by the hub's sample times."""

from __future__ import annotations

import json
import threading
import uuid

import numpy as np
import pylsl
from helpers import open_lsl_inlet, wait_until
from mqtt_broker import Collector

from core import clock
from core.alarms import AlarmConfig, AlarmRules
from core.buffers import BufferHub
from core.estimate import Estimate
from core.streams import StreamSpec
from core.wire import ALARM_FIELDS, ALARM_STREAM_TYPE, alarm_stream_name
from monitor.alarms import AlarmMonitor, LSLAlarmOutlets, MQTTAlarmPublisher
from monitor.pipeline import Pipeline


def est(subject: str, t: float, headline: float, state: str = "ok") -> Estimate:
    return Estimate(subject=subject, t_end=t, index=headline, probs=(0.2, 0.3, 0.5), smoothed=headline, state=state)


def test_transitions_become_markers_lsl_samples_mqtt_json_and_xdf_events(tmp_path, mosquitto_broker):
    from devices.mqtt import MQTTConfig, MQTTPublisher
    from devices.xdf import load_session

    subject = f"bed-{uuid.uuid4().hex[:6]}"
    sub = Collector(mosquitto_broker, "ward/+/alarm")
    publisher = MQTTPublisher(MQTTConfig(mosquitto_broker.host, mosquitto_broker.port, prefix="ward"))
    publisher.start()
    lsl = LSLAlarmOutlets(origin="host:1 shard 1/1")
    rules = AlarmRules(level=50, level_for_s=0, hysteresis=0, enabled=("level",))
    pipeline = Pipeline()
    alarms = AlarmMonitor(pipeline.hub, AlarmConfig(rules),
                          sinks=[lsl, MQTTAlarmPublisher(publisher, prefix="ward", origin="host:1 shard 1/1")])
    pipeline.add_output(alarms)
    seen: list = []
    alarms.add_listener(seen.append)
    xdf = tmp_path / "alarms.xdf"
    try:
        assert publisher.wait_connected(10)
        lsl.outlet(subject)
        inlet = open_lsl_inlet(alarm_stream_name(subject), max_buflen=10, open_timeout=5.0)
        assert inlet.info().type() == ALARM_STREAM_TYPE and inlet.info().channel_format() == pylsl.cf_string
        pipeline.start()
        pipeline.start_recording(xdf)
        t0 = clock.now()
        pipeline.deliver(est(subject, t0, 80.0))
        (alarm,) = alarms.active(subject)
        assert alarm.state == "raised" and alarm.kind == "level"
        assert alarms.acknowledge(subject, alarm.alarm_id, by="nurse") is not None
        pipeline.deliver(est(subject, t0 + 1, 20.0))
        samples = []
        assert wait_until(lambda: samples.extend(inlet.pull_chunk(timeout=0.2)[0]) or len(samples) >= 3, 10)
        assert publisher.flush(10)
        assert wait_until(lambda: len(sub.got) >= 3, 10)
    finally:
        pipeline.stop()  # closes the alarm monitor and the recording
        publisher.stop()
        sub.close()
    received = sub.json()
    assert [e.transition for e in seen] == ["raised", "acknowledged", "cleared"]
    lsl_json = [json.loads(s[0]) for s in samples]
    assert [d["transition"] for d in lsl_json] == ["raised", "acknowledged", "cleared"]
    assert tuple(lsl_json[0]) == ALARM_FIELDS and lsl_json[0]["origin"] == "host:1 shard 1/1"
    assert [t for t, _ in received] == [f"ward/{subject}/alarm"] * 3
    mq = [d for _, d in received]
    assert mq[0]["value"] == 80.0 and mq[0]["threshold"] == 50.0 and mq[1]["by"] == "nurse"
    assert mq[0]["alarm_id"] == mq[1]["alarm_id"] == mq[2]["alarm_id"]
    markers = [m for m in load_session(xdf).markers if m.subject == subject]
    assert [m.label for m in markers] == ["alarm:level:raised", "alarm:level:acknowledged", "alarm:level:cleared"]
    assert abs(markers[0].timestamp - t0) < 1e-6


def test_stale_rule_follows_the_hub_sample_times():
    now = [1000.0]
    paused = [False]
    pipeline = Pipeline()
    alarms = AlarmMonitor(pipeline.hub, AlarmConfig(AlarmRules(stale_s=5)), now=lambda: now[0],
                          paused=lambda: paused[0])
    spec = StreamSpec("sim-9", "EDA", nominal_rate=4.0)
    pipeline.hub.push(spec, np.zeros((4, 1), np.float32), np.array([996.0, 997.0, 998.0, 999.0]))
    alarms.check_stale()
    assert alarms.active() == []
    now[0] = 1005.0  # newest sample 6 s old
    paused[0] = True  # a paused replay: no data on purpose, not stale
    alarms.check_stale()
    assert alarms.active() == []
    paused[0] = False
    alarms.check_stale()
    assert [(a.kind, a.subject) for a in alarms.active()] == [("stale", "sim-9")]
    assert [m.label for m in pipeline.hub.markers("sim-9")] == ["alarm:stale:raised"]
    pipeline.hub.push(spec, np.zeros((1, 1), np.float32), np.array([1005.0]))
    alarms.check_stale()
    assert alarms.active() == []
    assert [m.label for m in pipeline.hub.markers("sim-9")][-1] == "alarm:stale:cleared"


def test_stale_check_thread_runs_and_stops():
    pipeline = Pipeline()
    alarms = AlarmMonitor(pipeline.hub, AlarmConfig(AlarmRules(stale_s=0.1)), check_every_s=0.05)
    spec = StreamSpec("sim-8", "EDA", nominal_rate=4.0)
    pipeline.hub.push(spec, np.zeros((1, 1), np.float32), np.array([clock.now()]))
    alarms.start()
    alarms.start()  # a second start while running is harmless: still one thread
    try:
        assert alarms.running
        assert [t.name for t in threading.enumerate()].count("painmon-alarms") == 1
        assert wait_until(lambda: bool(alarms.active("sim-8")), 5)
    finally:
        alarms.close()
    assert not alarms.running
    assert "painmon-alarms" not in [t.name for t in threading.enumerate()]
    alarms.close()  # closing twice is harmless


def _resolvable(name: str, timeout: float = 1.0) -> bool:
    return bool(pylsl.resolve_byprop("name", name, timeout=timeout))


def test_a_subject_that_leaves_takes_its_alarm_outlet_with_it():
    """Issue 13, finding 4 for the alarm path: the hub letting a subject go (idle, evicted)
    releases its alarm stream as it does its estimate stream; LSL stops resolving both."""
    from core.wire import estimate_stream_name
    from monitor.alarms import attach_alarms
    from monitor.outputs import LSLEstimateOutlets

    subject = f"leaving-{uuid.uuid4().hex[:6]}"
    stays = f"staying-{uuid.uuid4().hex[:6]}"
    pipeline = Pipeline()
    estimates = LSLEstimateOutlets(model_name="m")
    pipeline.add_output(estimates)
    alarms = attach_alarms(pipeline, AlarmConfig(AlarmRules(level=50, level_for_s=0, hysteresis=0,
                                                            enabled=("level",))), lsl=True)
    (lsl,) = [s for s in alarms.sinks if isinstance(s, LSLAlarmOutlets)]
    pipeline.start()
    try:
        t0 = clock.now()
        for sid in (subject, stays):
            pipeline.hub.register(StreamSpec(sid, "EDA", nominal_rate=4.0))
            pipeline.deliver(est(sid, t0, 80.0))  # raised: the alarm outlet opens
            pipeline.deliver(est(sid, t0 + 1, 20.0))  # cleared: nothing keeps the subject's state
        assert lsl.subjects() == sorted([subject, stays])
        assert wait_until(lambda: _resolvable(alarm_stream_name(subject)), 10, 0.1)
        assert wait_until(lambda: _resolvable(estimate_stream_name(subject)), 10, 0.1)
        assert pipeline.hub.remove(subject)
        assert lsl.subjects() == [stays] and lsl.closed == 1
        assert estimates.subjects() == [stays]
        assert wait_until(lambda: not _resolvable(alarm_stream_name(subject)), 15, 0.1)
        assert wait_until(lambda: not _resolvable(estimate_stream_name(subject)), 15, 0.1)
        assert _resolvable(alarm_stream_name(stays), 5.0)  # the other subject keeps its stream
        # the subject comes back and alarms again: a new outlet, same stream name
        pipeline.hub.register(StreamSpec(subject, "EDA", nominal_rate=4.0))
        pipeline.deliver(est(subject, t0 + 2, 90.0))
        assert [a.kind for a in alarms.active(subject)] == ["level"]
        assert wait_until(lambda: _resolvable(alarm_stream_name(subject)), 10, 0.1)
    finally:
        pipeline.stop()
    assert not alarms.running


def test_an_mqtt_source_on_the_serves_broker_ignores_its_alarm_messages(mosquitto_broker):
    """A ``monitor --mqtt`` on the broker a ``serve`` publishes to sees its alarm JSON on
    <prefix>/<subject>/alarm: an output, passed over as ignored (not a rejected modality,
    not a subject)."""
    from core.alarms import AlarmEvent
    from devices.mqtt import MQTTConfig, MQTTPublisher, MQTTSource

    hub = BufferHub(seconds=10)
    source = MQTTSource(MQTTConfig(mosquitto_broker.host, mosquitto_broker.port))
    publisher = MQTTPublisher(MQTTConfig(mosquitto_broker.host, mosquitto_broker.port))
    publisher.start()
    source.start(hub)
    try:
        assert source.wait_connected(5.0) and publisher.wait_connected(5.0)
        out = MQTTAlarmPublisher(publisher, origin="test")
        out(AlarmEvent(subject="bed-7", kind="level", transition="raised", alarm_id=1, t=clock.now(), value=70.0,
                       threshold=60.0, message="headline 70 >= 60"))
        assert publisher.flush(10) and out.sent == 1
        assert wait_until(lambda: source.status().ignored == 1, 5.0)
        assert source.status().rejected == 0 and hub.subjects() == []
    finally:
        source.stop()
        publisher.stop()
