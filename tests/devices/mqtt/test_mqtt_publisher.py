"""MQTTPublisher against a real mosquitto; a paho-mqtt subscriber checks what arrives."""

from __future__ import annotations

import threading

import pytest
from helpers import wait_until
from mqtt_broker import Collector, MosquittoBroker

from devices.mqtt import MQTTConfig, MQTTPublisher


def test_publish_from_many_threads_keeps_each_threads_order(mosquitto_broker):
    sub = Collector(mosquitto_broker)
    pub = MQTTPublisher(MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port, qos=1))
    pub.start()
    try:
        assert pub.wait_connected(5.0)

        def worker(w: int) -> None:
            for i in range(50):
                pub.publish(f"painmon/t{w}/estimate", f"{i}")

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert pub.flush(5.0)
        assert wait_until(lambda: len(sub.payloads()) == 200)
        for w in range(4):
            assert sub.payloads(f"painmon/t{w}/estimate") == [str(i).encode() for i in range(50)]
        stats = pub.stats()
        assert (stats.sent, stats.dropped, stats.queued, stats.link) == (200, 0, 0, "connected")
    finally:
        pub.stop()
        sub.close()
    assert pub.stats().link == "stopped"


def test_publisher_survives_broker_restart_and_keeps_the_newest(tmp_path):
    broker = MosquittoBroker(tmp_path / "b", persistence=True).start()
    # a persistent QoS 1 session: the broker queues what arrives while this subscriber is away
    sub = Collector(broker, client_id="collector", clean_session=False)
    config = MQTTConfig(host=broker.host, port=broker.port, qos=1, reconnect_max=0.5)
    pub = MQTTPublisher(config, max_queue=5)
    pub.start()
    try:
        assert pub.wait_connected(5.0)
        pub.publish("painmon/sim-1/estimate", b"before")
        assert pub.flush(5.0) and wait_until(lambda: sub.payloads() == [b"before"])
        broker.stop()
        assert wait_until(lambda: pub.stats().link == "reconnecting")
        for i in range(8):  # broker down: only the newest 5 can be kept
            pub.publish("painmon/sim-1/estimate", f"during-{i}")
        stats = pub.stats()
        assert stats.queued == 5 and stats.dropped == 3
        broker.start()
        assert pub.flush(8.0)
        assert wait_until(lambda: len(sub.payloads()) == 6, 8.0), sub.payloads()
        assert sub.payloads() == [b"before"] + [f"during-{i}".encode() for i in range(3, 8)]
        pub.publish("painmon/sim-1/estimate", b"after")
        assert wait_until(lambda: sub.payloads()[-1:] == [b"after"], 5.0)
        assert wait_until(lambda: pub.stats().sent == 7)  # the PUBACK may trail the delivery
        stats = pub.stats()
        assert stats.connections == 2 and stats.dropped == 3 and stats.queued == 0
    finally:
        pub.stop()
        sub.close()
        broker.stop()


def test_messages_published_before_start_are_sent(mosquitto_broker):
    sub = Collector(mosquitto_broker)
    pub = MQTTPublisher(MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port))
    pub.publish("painmon/sim-1/estimate", "early", qos=1, retain=True)
    pub.start()
    try:
        assert pub.flush(5.0)
        assert wait_until(lambda: sub.payloads() == [b"early"])
    finally:
        pub.stop()
        sub.close()
    late = Collector(mosquitto_broker)  # the retain flag reached the broker
    try:
        assert wait_until(lambda: late.payloads() == [b"early"])
    finally:
        late.close()


def test_invalid_publish_arguments_are_refused_clearly():
    pub = MQTTPublisher(MQTTConfig())
    with pytest.raises(ValueError, match="topic"):
        pub.publish("painmon/+/estimate", b"x")
    with pytest.raises(ValueError, match="QoS"):
        pub.publish("painmon/s/estimate", b"x", qos=5)
    with pytest.raises(ValueError, match="max_queue must be positive"):
        MQTTPublisher(MQTTConfig(), max_queue=0)
    pub.stop()  # never started: a no-op
