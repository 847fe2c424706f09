"""Continuous self-report (CoVAS) of a subject, issue 12 item 10: sampled steadily into the
hub (and so into the recording), onto LSL and on MQTT as JSON; never read back in by the
sources; kept for the trend."""

from __future__ import annotations

import json
import threading
import time
import uuid

import numpy as np
import pylsl
import pytest
from helpers import wait_until
from mqtt_broker import paho_client, paho_close, paho_publish

from core.buffers import BufferHub
from core.streams import SELF_REPORT
from core.wire import (
    SELF_REPORT_CHANNEL,
    SELF_REPORT_RATE,
    SELF_REPORT_STREAM_TYPE,
    self_report_stream_name,
    self_report_topic,
)
from devices.mqtt import MQTTConfig, MQTTPublisher, MQTTSource
from devices.xdf import SessionRecorder, load_session
from monitor.self_report import SelfReportChannel, SelfReports, clamp_rating, self_report_spec


def test_names_on_the_wire_come_from_core_wire():
    assert self_report_stream_name("sim-1") == "PainMon-SelfReport-sim-1"
    assert SELF_REPORT_STREAM_TYPE == SELF_REPORT == "SelfReport"
    assert self_report_topic("painmon", "sim-1") == "painmon/sim-1/selfreport"
    with pytest.raises(ValueError, match="invalid subject"):
        self_report_topic("painmon", "a/b")


def test_ratings_are_clamped_and_finite():
    assert clamp_rating(-5) == 0.0 and clamp_rating(140) == 100.0 and clamp_rating(42.5) == 42.5
    with pytest.raises(ValueError, match="finite"):
        clamp_rating(float("nan"))


def test_nothing_is_sent_before_the_first_rating():
    hub = BufferHub(seconds=10)
    ch = SelfReportChannel("quiet", hub, lsl=False)
    try:
        time.sleep(0.3)
        assert not ch.sample() and ch.rating is None and hub.buffer("quiet", SELF_REPORT) is None
    finally:
        ch.close()


def test_a_rating_goes_to_the_hub_lsl_and_mqtt_steadily(mosquitto_broker, tmp_path):
    subject = f"sr-{uuid.uuid4().hex[:6]}"
    hub = BufferHub(seconds=60)
    recorder = SessionRecorder(tmp_path / "sr.xdf", hub, flush_interval=0.2).start()
    publisher = MQTTPublisher(MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port))
    publisher.start()
    assert publisher.wait_connected(5.0)
    received: list[dict] = []
    client = paho_client(mosquitto_broker)
    got = threading.Event()

    def on_message(_c, _u, msg):
        received.append(json.loads(msg.payload))
        got.set()

    client.on_message = on_message
    client.subscribe(self_report_topic("painmon", subject), qos=0)
    ch = SelfReportChannel(subject, hub, publisher=publisher)
    try:
        ch.set(40)
        found = pylsl.resolve_byprop("name", self_report_stream_name(subject), timeout=10.0)
        assert found and found[0].type() == SELF_REPORT_STREAM_TYPE and found[0].channel_count() == 1
        assert found[0].nominal_srate() == SELF_REPORT_RATE
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=10.0)
        assert got.wait(5.0)
        time.sleep(0.6)
        ch.set(75)
        time.sleep(1.0)
        samples, stamps = inlet.pull_chunk(timeout=2.0)
        ch.close()
        n_at_close = ch.samples
        time.sleep(0.3)
        assert ch.samples == n_at_close  # closed: no more samples
    finally:
        ch.close()
        paho_close(client)
        publisher.stop()
        recorder.stop()
    values = [s[0] for s in samples]
    assert 40.0 in values and values[-1] == 75.0 and values.index(75.0) > values.index(40.0)
    assert np.all(np.diff(stamps) > 0)
    # steady sampling: about SELF_REPORT_RATE per second while held
    data, ts = hub.buffer(subject, SELF_REPORT).snapshot()
    rate = (len(ts) - 1) / (ts[-1] - ts[0])
    assert 0.7 * SELF_REPORT_RATE < rate < 1.3 * SELF_REPORT_RATE
    assert {40.0, 75.0} <= set(data[:, 0].tolist())
    assert received[0]["subject"] == subject and received[0]["rating"] == 40.0 and received[0]["scale"]
    assert abs(received[0]["t"] - time.time()) < 30
    # recorded through the hub, with the names of core.wire
    session = load_session(tmp_path / "sr.xdf")
    (stream,) = [s for s in session.streams if s.spec.modality == SELF_REPORT]
    assert stream.spec.subject == subject and stream.spec.name == self_report_stream_name(subject)
    assert stream.spec.channels == (SELF_REPORT_CHANNEL,) and stream.n_samples == len(ts)
    assert {40.0, 75.0} <= set(np.asarray(stream.values).reshape(-1).tolist())


def test_sources_do_not_read_self_reports_back_in(mosquitto_broker):
    hub = BufferHub(seconds=10)
    source = MQTTSource(MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port))
    source.start(hub)
    client = paho_client(mosquitto_broker)
    try:
        assert source.wait_connected(5.0)
        paho_publish(client, self_report_topic("painmon", "sim-1"), json.dumps({"t": time.time(), "rating": 50}))
        assert wait_until(lambda: source.status().ignored == 1, 5.0)
        assert source.status().rejected == 0 and hub.subjects() == []
    finally:
        paho_close(client)
        source.stop()


def test_the_trend_history_keeps_every_self_report_the_hub_sees():
    """Local ratings and replayed ones alike: whatever reaches the hub as a self-report."""
    hub = BufferHub(seconds=10)
    reports = SelfReports(hub, lsl=False)
    ch = reports.channel("sim-1")
    assert reports.channel("sim-1") is ch
    spec = self_report_spec("sim-1")  # as a replayed recording delivers it
    for k, value in enumerate([10, 10, 10, 55, 55]):
        hub.push(spec, np.array([[value]], np.float32), np.array([1000.0 + 0.5 * k]))
    t, r = reports.trend("sim-1")
    # 1 Hz while held, every change at once
    assert t.tolist() == [1000.0, 1001.0, 1001.5] and r.tolist() == [10.0, 10.0, 55.0]
    assert reports.trend("sim-1", since=1001.2)[1].tolist() == [55.0]
    assert reports.trend("nobody")[0].size == 0
    hub.push(spec, np.array([[20.0]], np.float32), np.array([990.0]))  # sought back: starts over
    assert reports.trend("sim-1")[1].tolist() == [20.0]
    ch.set(30)  # the local channel feeds the same history
    assert wait_until(lambda: reports.trend("sim-1")[1][-1] == 30.0, 2.0)
    reports.stop()
    n = ch.samples
    time.sleep(0.3)
    assert ch.samples == n


def test_a_self_report_does_not_move_the_plots_now():
    """While a replay is paused the rating goes on being sampled on the live clock; the
    plots' "now" (Pipeline.newest_time) follows the signals only."""
    from core.streams import StreamSpec
    from monitor.pipeline import Pipeline

    pipeline = Pipeline()
    spec = StreamSpec("sim-1", "EDA", nominal_rate=4.0)
    pipeline.hub.push(spec, np.ones((4, 1), np.float32), 500.0 + np.arange(4) / 4.0)
    ch = SelfReportChannel("sim-1", pipeline.hub, lsl=False, steady=False)
    ch.set(30)
    ch.sample(t=9000.0)
    assert pipeline.newest_time() == 500.75
