"""Estimate outputs: a real LSL inlet receives the per-subject outlet's samples; the JSON
form survives NaN."""

from __future__ import annotations

import json
import math
import os
import time
import uuid

import pylsl
import pytest
from helpers import open_lsl_inlet, wait_until
from mqtt_broker import Collector

from core.clock import now
from core.estimate import Estimate
from core.wire import (
    DEFAULT_TOPIC_PREFIX,
    ESTIMATE_CHANNELS,
    MODE_CODES,
    STATE_CODES,
    estimate_stream_name,
    estimate_topic,
)
from monitor.outputs import LSLEstimateOutlets, estimate_to_json


def make_estimate(subject: str, t_end: float, index: float = 42.0, valid: bool = True) -> Estimate:
    return Estimate(
        subject=subject,
        t_end=t_end,
        index=index,
        probs=(0.3, 0.56, 0.14),
        smoothed=40.0,
        smoothed_long=float("nan"),
        quality={"EDA": 1.0, "BVP": 0.5},
        missing=("RESP", "SpO2"),
        valid=valid,
        model="unit-model",
        latency={"total": 0.12},
        created=t_end + 0.1,
        hop_s=2.0,
    )


def test_lsl_outlet_per_subject_carries_channels_model_and_window_end_time():
    subject = f"t-{uuid.uuid4().hex[:8]}"
    outlets = LSLEstimateOutlets(model_name="unit-model")
    try:
        outlets.outlet(subject)  # open first so the inlet connects before samples flow
        inlet = open_lsl_inlet(estimate_stream_name(subject), max_buflen=10, open_timeout=5.0)
        info = inlet.info(timeout=5.0)
        assert info.type() == "PainIndex" and info.channel_count() == len(ESTIMATE_CHANNELS) == 9
        assert info.channel_format() == pylsl.cf_float32
        assert info.desc().child_value("subject") == subject
        assert info.desc().child_value("model") == "unit-model"
        ch = info.desc().child("channels").child("channel")
        labels = []
        while not ch.empty():
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        assert labels == [label for label, _ in ESTIMATE_CHANNELS]
        assert labels[:2] == ["index", "smoothed"]  # as recordings and MQTT JSON name it
        assert info.source_id() == f"{DEFAULT_TOPIC_PREFIX}:{subject}:estimate"

        t0 = pylsl.local_clock()
        outlets(make_estimate(subject, t0 - 0.5, index=42.0))
        outlets(make_estimate(subject, t0 + 0.5, index=77.0, valid=False))
        rows, stamps = [], []
        deadline = pylsl.local_clock() + 10.0
        while len(rows) < 2 and pylsl.local_clock() < deadline:
            sample, ts = inlet.pull_sample(timeout=1.0)
            if sample is not None:
                rows.append(sample)
                stamps.append(ts)
        assert len(rows) == 2
        assert stamps == pytest.approx([t0 - 0.5, t0 + 0.5], abs=1e-6)
        # state/mode travel as codes into core.wire.STATE_CODES / MODE_CODES
        ok, absolute = STATE_CODES.index("ok"), MODE_CODES.index("absolute")
        assert rows[0] == pytest.approx([42.0, 40.0, 0.3, 0.56, 0.14, 0.75, ok, absolute, 2.0], abs=1e-5)
        assert rows[1][0] == pytest.approx(77.0)
        assert outlets.sent == 2 and outlets.subjects() == [subject]
    finally:
        outlets.close()


def test_json_has_no_nan_and_names_classes():
    est = make_estimate("sim-1", 123.5, index=float("nan"), valid=False)
    d = json.loads(estimate_to_json(est))
    assert d["index"] is None and d["smoothed_long"] is None
    assert d["probs"] == {"no": 0.3, "low": 0.56, "high": 0.14}
    assert d["missing"] == ["RESP", "SpO2"] and d["valid"] is False
    assert d["t_end"] == 123.5 and d["model"] == "unit-model" and d["hop_s"] == 2.0
    assert estimate_topic(DEFAULT_TOPIC_PREFIX, "sim-1") == "painmon/sim-1/estimate"
    assert estimate_topic("ward", "bed 4") == "ward/bed 4/estimate"
    assert not any(isinstance(v, float) and math.isnan(v) for v in d.values())


def test_json_and_lsl_row_carry_state_and_mode_and_a_stale_status_has_no_numbers():
    import dataclasses

    from core.wire import estimate_values
    from monitor.engine.states import stale_estimate

    live = dataclasses.replace(make_estimate("sim-1", 10.0, index=20.0), state="calibrating", mode="relative")
    d = json.loads(estimate_to_json(live))
    assert d["state"] == "calibrating" and d["mode"] == "relative" and "silent_s" not in d
    stale = stale_estimate(live, t_end=17.0, silent_s=7.0, created=17.0)
    d = json.loads(estimate_to_json(stale))
    assert d["state"] == "stale" and d["mode"] == "relative" and d["silent_s"] == 7.0
    assert d["index"] is None and d["smoothed"] is None and set(d["probs"].values()) == {None}
    row = estimate_values(stale)
    assert all(math.isnan(v) for v in row[:6])
    assert row[6:8] == [STATE_CODES.index("stale"), MODE_CODES.index("relative")]


def test_mqtt_estimate_json_received_by_a_real_subscriber(mosquitto_broker):
    from devices.mqtt import MQTTConfig, MQTTPublisher
    from monitor.outputs import MQTTEstimatePublisher

    sub = Collector(mosquitto_broker, "ward/+/estimate")
    publisher = MQTTPublisher(MQTTConfig(mosquitto_broker.host, mosquitto_broker.port, prefix="ward"))
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        out = MQTTEstimatePublisher(publisher, prefix="ward", origin="test-host:1 shard 1/1")
        out(make_estimate("bed-3", 100.0, index=12.5))
        out(make_estimate("bed-4", 101.0, index=float("nan"), valid=False))
        out(make_estimate("bed/5", 101.0))  # no valid topic for this id: counted, not raised
        assert publisher.flush(10)
        wait_until(lambda: len(sub.got) >= 2, 10)
    finally:
        publisher.stop()
        sub.close()
    by_topic = dict(sub.json())
    assert set(by_topic) == {"ward/bed-3/estimate", "ward/bed-4/estimate"}
    a, b = by_topic["ward/bed-3/estimate"], by_topic["ward/bed-4/estimate"]
    assert a["subject"] == "bed-3" and a["index"] == 12.5 and a["t_end"] == 100.0
    assert a["origin"] == "test-host:1 shard 1/1" and a["probs"]["low"] == pytest.approx(0.56)
    assert b["index"] is None and b["valid"] is False
    assert out.sent == 2 and out.failed == 1



def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_lsl_outlets_of_a_churn_of_subjects_stay_bounded_and_are_released():
    """Issue 13, finding 4: every new subject used to keep an outlet (~9 fds) for good."""
    outlets = LSLEstimateOutlets(model_name="m", max_outlets=4, idle_s=60.0)
    before = _open_files()
    t = now()
    for i in range(40):
        outlets(make_estimate(f"churn-{i}", t + i))
    assert len(outlets.subjects()) == 4 and outlets.closed == 36
    held = _open_files() - before
    assert held < 4 * 20, held  # four outlets' worth, not forty
    outlets.forget("churn-39")
    assert "churn-39" not in outlets.subjects()
    assert len(outlets.expire_idle(now=time.monotonic() + 61.0)) == 3
    assert outlets.subjects() == []
    assert _open_files() - before < 20
    outlets.close()


def test_pipeline_releases_outlets_when_a_source_lets_a_subject_go():
    from core.buffers import BufferHub
    from core.streams import StreamSpec
    from monitor.pipeline import Pipeline

    hub = BufferHub(seconds=10)
    pipeline = Pipeline(hub)
    outlets = LSLEstimateOutlets(model_name="m")
    pipeline.add_output(outlets)
    hub.register(StreamSpec("bed-1", "EDA", nominal_rate=4.0))
    pipeline.deliver(make_estimate("bed-1", now()))
    assert outlets.subjects() == ["bed-1"]
    assert hub.remove("bed-1")
    assert outlets.subjects() == [] and outlets.closed == 1
    pipeline.stop()
