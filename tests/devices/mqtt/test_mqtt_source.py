"""MQTTSource against a real mosquitto, fed by paho-mqtt (another client, like a device)."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import numpy as np
import pytest
from helpers import wait_until
from mqtt_broker import MosquittoBroker, paho_client, paho_close, paho_publish

from core.buffers import BufferHub
from core.clock import now
from devices.mqtt import MQTTConfig, MQTTSource, encode_samples_binary


class Device:
    """A wearable sending in real time: its own Unix-time clock, samples paced by the
    local clock, one message every ``n`` samples (stamped with its first sample)."""

    def __init__(self, client, topic: str, fs: float, n: int, channels: int = 1, seq: bool = True):
        self.client, self.topic, self.fs, self.n, self.channels, self.use_seq = client, topic, fs, n, channels, seq
        self.base_unix, self.base_local = time.time(), now()
        self.k = 0  # next message index
        self.sent: list[np.ndarray] = []

    def local_time_of(self, sample_index: int) -> float:
        return self.base_local + sample_index / self.fs

    def payload(self, k: int, values: np.ndarray) -> bytes:
        obj = {"t0": self.base_unix + k * self.n / self.fs, "fs": self.fs}
        if self.channels > 1:
            obj["channels"] = [f"c{i}" for i in range(self.channels)]
            obj["values"] = values.tolist()
        else:
            obj["values"] = values[:, 0].tolist()
        if self.use_seq:
            obj["seq"] = k
        return json.dumps(obj).encode()

    def send(self, count: int, skip: int = 0, binary: bool = False) -> None:
        """Send ``count`` messages in real time; ``skip`` messages are first lost in transit."""
        self.k += skip
        for _ in range(count):
            due = self.local_time_of((self.k + 1) * self.n)
            time.sleep(max(0.0, due - now()))
            values = np.random.default_rng(self.k).normal(size=(self.n, self.channels)).astype(np.float32)
            if binary:
                payload = encode_samples_binary(
                    self.base_unix + self.k * self.n / self.fs, self.fs, values, seq=self.k
                )
            else:
                payload = self.payload(self.k, values)
            paho_publish(self.client, self.topic, payload)
            self.sent.append(values)
            self.k += 1


@pytest.fixture
def hub():
    return BufferHub(seconds=30)


def started(broker, hub, **kwargs) -> MQTTSource:
    config = kwargs.pop("config", None) or MQTTConfig(host=broker.host, port=broker.port)
    source = MQTTSource(config, **kwargs)
    source.start(hub)
    assert source.wait_connected(5.0), source.status()
    return source


@contextmanager
def connected(broker, hub, **kwargs):
    """A started MQTTSource (see :func:`started`) and a paho client (the device side) on
    ``broker``; both closed on exit."""
    source = started(broker, hub, **kwargs)
    client = paho_client(broker)
    try:
        yield source, client
    finally:
        paho_close(client)
        source.stop()


def test_samples_arrive_on_the_local_clock_continuous_and_intact(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub) as (source, client):
        dev = Device(client, "painmon/sim-1/BVP", fs=100.0, n=10)
        dev.send(15)
        assert wait_until(lambda: len(hub.buffer("sim-1", "BVP") or []) == 150)
        data, ts = hub.buffer("sim-1", "BVP").snapshot()
        np.testing.assert_array_equal(data, np.concatenate(dev.sent))
        np.testing.assert_allclose(np.diff(ts), 0.01, rtol=0.006)  # continuous across messages
        lag = ts - dev.local_time_of(np.arange(150))
        # Unix t0 mapped onto now(): never ahead of the true sample time, behind it by about
        # the lowest delivery delay seen (loose bound: CI machines stall)
        assert np.all(lag > -0.002) and np.all(lag < 0.25), lag
        (health,) = source.health()
        assert health.spec.nominal_rate == 100.0 and health.spec.units == "a.u."
        assert health.connected and health.samples == 150 and health.rejected == 0
        assert health.effective_rate == pytest.approx(100.0, rel=0.4)
        assert source.streams() == [health.spec]
    assert source.status().link == "stopped"


def test_multichannel_json_and_binary(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub) as (source, client):
        resp = Device(client, "painmon/p2/RESP", fs=50.0, n=5, channels=3)
        resp.send(3)
        eda = Device(client, "painmon/p2/gsr", fs=50.0, n=5)  # alias topic -> EDA
        eda.send(3, binary=True)
        assert wait_until(lambda: len(hub.buffer("p2", "RESP") or []) == 15)
        assert wait_until(lambda: len(hub.buffer("p2", "EDA") or []) == 15)
        data, _ = hub.buffer("p2", "RESP").snapshot()
        assert data.shape == (15, 3)
        np.testing.assert_array_equal(data, np.concatenate(resp.sent))
        assert hub.spec("p2", "RESP").channels == ("c0", "c1", "c2")
        np.testing.assert_array_equal(hub.buffer("p2", "EDA").snapshot()[0], np.concatenate(eda.sent))


def test_malformed_messages_are_counted_and_lose_nothing(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub) as (source, client):
        dev = Device(client, "painmon/sim-1/EDA", fs=20.0, n=4)
        dev.send(2)
        assert wait_until(lambda: len(hub.buffer("sim-1", "EDA") or []) == 8)
        stored_before = hub.buffer("sim-1", "EDA").snapshot()
        t = dev.base_unix
        bad = [
            (b"{oops", "invalid_json"),
            (json.dumps({"t0": t, "fs": 20, "values": ["x"]}), "bad_type"),
            (f'{{"t0": {t!r}, "fs": 20, "values": [1.0, NaN]}}', "non_finite"),
            (json.dumps({"t0": t, "fs": 20, "values": []}), "empty"),
            (json.dumps({"t0": t, "fs": 20, "values": [0.0] * 200_000}), "too_large"),
            (json.dumps({"t0": t, "fs": -4, "values": [1.0]}), "bad_rate"),
            (json.dumps({"t0": t, "fs": 1e7, "values": [1.0]}), "bad_rate"),
            (json.dumps({"t0": t, "fs": 20, "values": [1.0], "seq": 0}), "out_of_order"),
            (json.dumps({"t0": t, "fs": 20, "values": [[1.0, 2.0]] * 4}), "layout_changed"),
        ]
        for payload, _ in bad:
            paho_publish(client, "painmon/sim-1/EDA", payload)
        paho_publish(client, "painmon/sim-1/banana", json.dumps({"t0": t, "fs": 20, "values": [1.0]}))
        paho_publish(client, "painmon/sim-1/estimate", json.dumps({"index": 42}))  # our output
        dev.send(2)  # the session goes on
        assert wait_until(lambda: len(hub.buffer("sim-1", "EDA")) == 16)
        data, ts = hub.buffer("sim-1", "EDA").snapshot()
        np.testing.assert_array_equal(data[:8], stored_before[0])
        np.testing.assert_array_equal(ts[:8], stored_before[1])
        np.testing.assert_array_equal(data, np.concatenate(dev.sent))
        assert np.all(np.diff(ts) > 0)
        (health,) = source.health()
        expected = {reason: 1 for _, reason in bad}
        expected["bad_rate"] = 2
        assert dict(health.reject_reasons) == expected
        assert health.rejected == len(bad) and health.samples == 16
        status = source.status()
        assert status.reject_reasons["unknown_modality"] == 1
        assert status.rejected == len(bad) + 1 and status.ignored == 1 and status.accepted == 4


def test_seq_gaps_count_dropped_samples(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub) as (source, client):
        dev = Device(client, "painmon/sim-1/BVP", fs=100.0, n=5)
        dev.send(3)
        dev.send(2, skip=2)  # two messages (10 samples) lost between device and broker
        assert wait_until(lambda: len(hub.buffer("sim-1", "BVP") or []) == 25)
        (health,) = source.health()
        assert health.dropped == 10 and health.gaps == 1
        _, ts = hub.buffer("sim-1", "BVP").snapshot()
        assert ts[15] - ts[14] == pytest.approx(11 / 100.0, abs=0.003)  # the hole stays a hole


def test_markers_and_retained_messages(mosquitto_broker, hub):
    client = paho_client(mosquitto_broker)
    paho_publish(client, "painmon/sim-1/markers", json.dumps({"t": time.time() - 60, "label": "old"}), retain=True)
    source = started(mosquitto_broker, hub)
    try:
        t = time.time()
        paho_publish(client, "painmon/sim-1/markers", json.dumps({"t": t, "label": "pain:high"}))
        paho_publish(
            client, "painmon/sim-1/markers", json.dumps({"t": [t + 1, t + 2], "labels": ["pain:low", "pain:no"]})
        )
        assert wait_until(lambda: len(hub.markers("sim-1")) == 3)
        marks = hub.markers("sim-1")
        assert [m.label for m in marks] == ["pain:high", "pain:low", "pain:no"]
        assert abs(marks[0].timestamp - now()) < 0.5  # mapped from Unix time to the local clock
        assert [m.timestamp - marks[0].timestamp for m in marks] == pytest.approx([0, 1, 2], abs=0.01)
        # refused before it could take a slot: counted by the source, not by a stream
        (health,) = source.health()
        assert health.reject_reasons["retained"] == 0
        assert source.status().reject_reasons["retained"] == 1
    finally:
        paho_close(client)
        source.stop()


def test_subject_filter_shards_subjects(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub, subjects=lambda s: s == "sim-1") as (source, client):
        for subject in ("sim-1", "sim-2"):
            Device(client, f"painmon/{subject}/SpO2", fs=10.0, n=2).send(1)
        assert wait_until(lambda: source.status().messages == 2)
        assert hub.subjects() == ["sim-1"] and source.status().ignored == 1


def test_broker_restart_mid_stream_reconnects_and_keeps_data(mosquitto_broker, hub):
    config = MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port, qos=1, reconnect_max=0.5)
    with connected(mosquitto_broker, hub, config=config) as (source, client):
        dev = Device(client, "painmon/sim-1/RESP", fs=50.0, n=5)
        dev.send(4)
        assert wait_until(lambda: len(hub.buffer("sim-1", "RESP") or []) == 20)
        before = hub.buffer("sim-1", "RESP").snapshot()
        mosquitto_broker.stop(kill=True)  # a crash, not a polite shutdown
        assert wait_until(lambda: source.status().link == "reconnecting")
        (health,) = source.health()
        assert not health.connected and health.status == "broker reconnecting"
        time.sleep(0.3)
        mosquitto_broker.start()
        assert wait_until(lambda: source.status().link == "connected" and source.status().connections == 2, 8.0)
        assert wait_until(client.is_connected, 5.0)
        dev.send(3, skip=int(0.5 * dev.fs / dev.n))  # the device went on while the broker was down
        assert wait_until(lambda: len(hub.buffer("sim-1", "RESP")) == 35, 5.0)
        data, ts = hub.buffer("sim-1", "RESP").snapshot()
        np.testing.assert_array_equal(data[:20], before[0])
        np.testing.assert_array_equal(data[20:], np.concatenate(dev.sent[4:]))
        assert np.all(np.diff(ts) > 0)
        (health,) = source.health()
        assert health.connected and health.gaps == 1 and health.dropped > 0


def test_credentials(tmp_path, hub):
    with MosquittoBroker(tmp_path / "auth", users={"painmon": "s3cret"}) as broker:
        good = MQTTConfig(host=broker.host, port=broker.port, username="painmon", password="s3cret")
        source = started(broker, hub, config=good)
        wrong = MQTTSource(good.with_(password="wrong", reconnect_max=0.3))
        wrong.start(BufferHub())
        client = paho_client(broker, username="painmon", password="s3cret")
        try:
            Device(client, "painmon/sim-1/EDA", fs=4.0, n=1).send(1)
            assert wait_until(lambda: len(hub.buffer("sim-1", "EDA") or []) == 1)
            assert not wrong.wait_connected(1.0)
            status = wrong.status()
            assert status.link == "reconnecting" and status.connections == 0
            assert "authori" in status.last_error.lower(), status.last_error
        finally:
            paho_close(client)
            source.stop()
            wrong.stop()


def test_tls_verified_against_the_ca(tmp_path, hub):
    with MosquittoBroker(tmp_path / "tls", tls=True) as broker:
        config = MQTTConfig(host=broker.host, port=broker.port, tls=True, ca_file=broker.ca_file)
        source = started(broker, hub, config=config)
        untrusted = MQTTSource(MQTTConfig(host=broker.host, port=broker.port, tls=True, reconnect_max=0.3))
        untrusted.start(BufferHub())
        client = paho_client(broker)
        try:
            Device(client, "painmon/sim-1/BVP", fs=64.0, n=8).send(2)
            assert wait_until(lambda: len(hub.buffer("sim-1", "BVP") or []) == 16)
            assert not untrusted.wait_connected(1.0)
            assert "certificate" in untrusted.status().last_error.lower()
        finally:
            paho_close(client)
            source.stop()
            untrusted.stop()


def test_markers_use_the_clock_of_the_subjects_sample_stream(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub) as (source, client):
        dev = Device(client, "painmon/sim-3/EDA", fs=50.0, n=5)
        dev.send(3)
        assert wait_until(lambda: len(hub.buffer("sim-3", "EDA") or []) == 15)
        # an experimenter marks, late, a stimulus that began 5 s before the device's first
        # sample (first marker of the session): it must land on the samples' clock mapping,
        # whatever the network delay of either message
        first_sample_local = hub.buffer("sim-3", "EDA").first_timestamp
        paho_publish(client, "painmon/sim-3/markers", json.dumps({"t": dev.base_unix - 5.0, "label": "pain:high"}))
        assert wait_until(lambda: len(hub.markers("sim-3")) == 1)
        assert hub.markers("sim-3")[0].timestamp == pytest.approx(first_sample_local - 5.0, abs=0.02)
        assert hub.markers("sim-3")[0].timestamp == pytest.approx(dev.base_local - 5.0, abs=1.0)
        marker_health = next(h for h in source.health() if h.spec.modality == "Markers")
        assert marker_health.connected and marker_health.samples == 1


def test_relabelled_channels_update_the_hubs_spec(mosquitto_broker, hub):
    with connected(mosquitto_broker, hub) as (source, client):
        dev = Device(client, "painmon/sim-1/RESP", fs=50.0, n=5, channels=2)
        dev.send(1)
        assert wait_until(lambda: len(hub.buffer("sim-1", "RESP") or []) == 5)
        assert hub.spec("sim-1", "RESP").channels == ("c0", "c1")
        t0 = dev.base_unix + 5 / 50.0
        payload = {"t0": t0, "fs": 50.0, "channels": ["chest", "belly"], "values": [[1.0, 2.0]] * 5,
                   "units": "mV", "seq": 1}
        paho_publish(client, "painmon/sim-1/RESP", json.dumps(payload))
        assert wait_until(lambda: len(hub.buffer("sim-1", "RESP")) == 10)
        spec = hub.spec("sim-1", "RESP")
        assert spec.channels == ("chest", "belly") and spec.units == "mV"
        assert source.streams() == [spec]
