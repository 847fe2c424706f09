"""``painmon simulate --mqtt`` and MQTTSimulator against a real mosquitto, read by the real MQTTSource."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from helpers import REPO_ROOT, wait_until

from core.buffers import BufferHub
from devices.mqtt import MQTTConfig, MQTTSource
from devices.simulator import (
    MQTTSimulator,
    PainSchedule,
    SimulatedWearable,
    SubjectProfile,
    simulate,
    subject_seed,
)

REPO = REPO_ROOT


def test_mqtt_simulator_delivers_samples_and_markers(mosquitto_broker):
    config = MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port)
    hub = BufferHub(seconds=30)
    source = MQTTSource(config)
    source.start(hub)
    schedule = PainSchedule.parse("no:0.5,high:0.5")
    wearable = SimulatedWearable(1, seed=2, schedule=schedule)
    try:
        time.sleep(0.5)  # let the subscription settle: MQTT does not replay live data
        with MQTTSimulator(wearable, config, chunk_interval=0.05) as sim:
            assert wait_until(lambda: hub.buffer("sim-1", "BVP") is not None and len(hub.buffer("sim-1", "BVP")) >= 128
                         and len(hub.markers("sim-1")) >= 3, 10.0)
    finally:
        source.stop()
    assert sim.error is None and sim.publisher.stats().dropped == 0
    spec = hub.spec("sim-1", "EDA")
    assert spec.nominal_rate == 4.0 and spec.channels == ("EDA",)
    values, ts = hub.buffer("sim-1", "BVP").snapshot()
    offline = simulate(wearable.profile("sim-1"), schedule, 20, seed=subject_seed(2, 0))
    np.testing.assert_array_equal(values[:, 0], offline.signals["BVP"][0][: values.shape[0]])  # from the start
    np.testing.assert_allclose(np.diff(ts), 1 / 64, atol=1e-3)
    labels = [m.label for m in hub.markers("sim-1")]
    assert labels[:3] == ["pain:no", "pain:high", "pain:no"]


def test_simulate_command_mqtt(mosquitto_broker):
    config = MQTTConfig(host=mosquitto_broker.host, port=mosquitto_broker.port)
    hub = BufferHub(seconds=30)
    source = MQTTSource(config)
    source.start(hub)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "simulate", "--mqtt", f"{config.host}:{config.port}",
         "--subjects", "2", "--seed", "6", "--duration", "4", "--schedule", "no:2,high:2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    try:
        assert wait_until(lambda: all(hub.buffer(s, "RESP") is not None and len(hub.buffer(s, "RESP")) >= 25
                                 for s in ("sim-1", "sim-2")), 30.0)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        source.stop()
    assert proc.returncode == 0 and "on MQTT" in out
    assert {m for m in hub.modalities("sim-2")} == {"EDA", "BVP", "RESP", "SpO2"}
    offline = simulate(SubjectProfile.random(subject_seed(6, 1)), PainSchedule.parse("no:2,high:2"), 10,
                       seed=subject_seed(6, 1))
    values, _ = hub.buffer("sim-2", "RESP").snapshot()
    full = offline.signals["RESP"][0]
    i = int(np.flatnonzero(full == values[0, 0])[0])
    np.testing.assert_array_equal(values[:, 0], full[i: i + values.shape[0]])  # seeded: same signals
