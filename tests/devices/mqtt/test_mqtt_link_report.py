"""How an MQTTSource names its link for people (status bars, logs): a broker that does not
answer is "broker unreachable since HH:MM:SS", fixed at the moment it stopped answering,
and "connected" once it does (issue 12 item 7)."""

from __future__ import annotations

import re
import time

from helpers import wait_until
from mqtt_broker import MosquittoBroker, free_port

from core.buffers import BufferHub
from devices.mqtt import MQTTConfig, MQTTSource, link_text


def test_an_unreachable_broker_is_reported_with_the_time_it_stopped_answering(tmp_path):
    port = free_port()
    config = MQTTConfig(host="127.0.0.1", port=port, reconnect_min=0.1, reconnect_max=0.2)
    source = MQTTSource(config)
    before = time.time()
    source.start(BufferHub(seconds=5))
    try:
        assert wait_until(lambda: "unreachable" in source.describe(), 5.0), source.describe()
        status = source.status()
        assert before - 1 <= status.link_since <= time.time()
        expected = time.strftime("%H:%M:%S", time.localtime(status.link_since))
        assert source.describe() == f"MQTT {config.describe()} (broker unreachable since {expected})"
        assert link_text(status) == f"broker unreachable since {expected}"
        time.sleep(0.5)  # retries go on; the time stays the one it stopped answering
        assert re.search(re.escape(expected), source.describe())
        with MosquittoBroker(tmp_path / "late", port=port):
            assert source.wait_connected(10.0)
            assert source.describe() == f"MQTT {config.describe()} (connected)"
    finally:
        source.stop()
