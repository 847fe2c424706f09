"""Payload schema and topic scheme of the MQTT source: every malformed class has its reason."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from core.streams import MARKERS
from core.wire import OUTPUT_LEAVES
from devices.mqtt import (
    MQTTConfig,
    PayloadError,
    TopicError,
    decode_markers,
    decode_samples,
    encode_markers,
    encode_samples,
    encode_samples_binary,
    parse_topic,
    sample_topic,
)
from devices.mqtt._schema import MAX_PAYLOAD_BYTES, MAX_VALUES


def test_json_single_channel_roundtrip():
    msg = decode_samples(encode_samples(1718000000.5, 64, [0.5, -1.25, 3.0], seq=7, units="a.u."))
    assert msg.t0 == 1718000000.5 and msg.fs == 64.0 and msg.seq == 7 and msg.units == "a.u."
    assert msg.values.shape == (3, 1) and msg.values.dtype == np.float32
    np.testing.assert_array_equal(msg.values[:, 0], [0.5, -1.25, 3.0])
    assert msg.channels is None
    assert msg.duration == pytest.approx(3 / 64)


def test_json_multichannel_is_sample_major():
    rows = [[1.0, 33.0], [1.5, 33.5], [2.0, 34.0]]
    msg = decode_samples(encode_samples(10.0, 4, rows, channels=["eda", "temp"]))
    assert msg.channels == ("eda", "temp")
    np.testing.assert_array_equal(msg.values, np.asarray(rows, dtype=np.float32))


def test_binary_roundtrip_with_and_without_labels():
    data = np.arange(12, dtype=np.float32).reshape(6, 2) / 7
    raw = encode_samples_binary(123.25, 250.0, data, channels=["a", "b"], seq=3)
    assert raw[:4] == b"PMS1" and len(raw) == 36 + len("a\nb") + 4 * 12
    msg = decode_samples(raw)
    assert (msg.t0, msg.fs, msg.seq, msg.channels) == (123.25, 250.0, 3, ("a", "b"))
    np.testing.assert_array_equal(msg.values, data)
    plain = decode_samples(encode_samples_binary(1.0, 10.0, [1.0, 2.0]))
    assert plain.channels is None and plain.seq is None and plain.values.shape == (2, 1)


def test_binary_layout_matches_the_documented_header():
    raw = encode_samples_binary(5.5, 64.0, [1.0], seq=9)
    magic, t0, fs, seq, n, ch, lab = struct.unpack_from("<4sddqIHH", raw)
    assert (magic, t0, fs, seq, n, ch, lab) == (b"PMS1", 5.5, 64.0, 9, 1, 1, 0)
    assert struct.unpack_from("<f", raw, 36)[0] == 1.0


def _good(**changes):
    obj = {"t0": 100.0, "fs": 64, "values": [1.0, 2.0, 3.0]}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not _DROP}


_DROP = object()

MALFORMED = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe\x00", "invalid_json"),
    (b"[1, 2, 3]", "bad_type"),
    (json.dumps(_good(values=["1", "2"])), "bad_type"),
    (json.dumps(_good(values=[True, False])), "bad_type"),
    (json.dumps(_good(values=[1.0, None])), "bad_type"),
    (json.dumps(_good(values=[1.5, True])), "bad_type"),  # numpy alone would read 1.0
    (json.dumps(_good(values=[[1.0, 2.0], [3.0, None]])), "bad_type"),
    (json.dumps(_good(values=[[1.0, "2"]])), "bad_type"),
    (json.dumps(_good(values=[[[1.0]]])), "bad_type"),
    (json.dumps(_good(values="1,2,3")), "bad_type"),
    (json.dumps(_good(t0="now")), "bad_type"),
    (json.dumps(_good(seq=1.5)), "bad_type"),
    (json.dumps(_good(seq=-1)), "bad_type"),
    (json.dumps(_good(channels="eda")), "bad_type"),
    (json.dumps(_good(t0=_DROP)), "missing_field"),
    (json.dumps(_good(fs=_DROP)), "missing_field"),
    (json.dumps(_good(values=_DROP)), "missing_field"),
    ('{"t0": 1, "fs": 64, "values": [1.0, NaN]}', "non_finite"),
    ('{"t0": 1, "fs": 64, "values": [Infinity]}', "non_finite"),
    ('{"t0": 1, "fs": 64, "values": [1e400]}', "non_finite"),
    (json.dumps(_good(values=[1e39])), "non_finite"),  # beyond float32
    ('{"t0": NaN, "fs": 64, "values": [1]}', "non_finite"),
    (b"", "empty"),
    (json.dumps(_good(values=[])), "empty"),
    (json.dumps(_good(values=[[]])), "empty"),
    (json.dumps(_good(channels=[])), "empty"),
    (json.dumps(_good(values=[0.0] * (MAX_VALUES + 1))), "too_large"),
    (b" " * (MAX_PAYLOAD_BYTES + 1), "too_large"),
    (json.dumps(_good(fs=0)), "bad_rate"),
    (json.dumps(_good(fs=-64)), "bad_rate"),
    (json.dumps(_good(fs=1e9)), "bad_rate"),
    (json.dumps(_good(t0=1.7e12)), "bad_time"),
    (json.dumps(_good(values=[[1.0, 2.0], [3.0]])), "bad_shape"),
    (json.dumps(_good(values=[[1.0, 2.0], 3.0])), "bad_shape"),
    (json.dumps(_good(values=[[1.0, 2.0]], channels=["a", "b", "c"])), "channel_mismatch"),
    (json.dumps(_good(values=[1.0, 2.0], channels=["a", "b"])), "channel_mismatch"),
    (encode_samples_binary(1.0, 64.0, [1.0, 2.0])[:-3], "bad_binary"),
    (encode_samples_binary(1.0, 64.0, [1.0, float("nan")]), "non_finite"),
    (encode_samples_binary(1.0, -5.0, [1.0]), "bad_rate"),
    (b"PMS1" + b"\x00" * 10, "bad_binary"),
]


@pytest.mark.parametrize(("payload", "reason"), MALFORMED)
def test_every_malformed_class_has_its_reason(payload, reason):
    with pytest.raises(PayloadError) as info:
        decode_samples(payload)
    assert info.value.reason == reason, info.value


def test_labels_that_look_like_literals_do_not_confuse_the_type_check():
    msg = decode_samples(json.dumps({"t0": 1.0, "fs": 2, "channels": ["true", "false"], "values": [[1, 2], [3, 4]]}))
    np.testing.assert_array_equal(msg.values, [[1, 2], [3, 4]])
    big = decode_samples(json.dumps({"t0": 1.0, "fs": 2, "values": [2**70, 1]}))  # beyond int64
    assert big.values[0, 0] == np.float32(2.0**70)


def test_unknown_fields_are_ignored_for_forward_compatibility():
    msg = decode_samples(json.dumps(_good(device="Empatica E4", battery=0.8)))
    assert msg.n_samples == 3


def test_markers_all_three_forms():
    one = decode_markers(encode_markers(12.5, "pain:high"))
    assert one.times == (12.5,) and one.labels == ("pain:high",)
    many = decode_markers(encode_markers([1.0, 2.0], ["pain:no", "pain:low"]))
    assert many.times == (1.0, 2.0) and many.labels == ("pain:no", "pain:low")
    same = decode_markers(json.dumps({"t0": 3.0, "labels": ["a", "b"]}))
    assert same.times == (3.0, 3.0) and same.labels == ("a", "b")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"t": 1.0}', "missing_field"),
        ('{"label": "x"}', "missing_field"),
        ('{"t": 1.0, "label": 5}', "bad_type"),
        ('{"t": 1.0, "label": ""}', "bad_type"),
        ('{"t": [1.0], "labels": ["a", "b"]}', "channel_mismatch"),
        ('{"t0": 1.0, "labels": []}', "empty"),
        ('{"t": NaN, "label": "x"}', "non_finite"),
        ("pain:high", "invalid_json"),
    ],
)
def test_malformed_markers(payload, reason):
    with pytest.raises(PayloadError) as info:
        decode_markers(payload)
    assert info.value.reason == reason


def test_topics_parse_modalities_aliases_markers_and_estimates():
    assert parse_topic("painmon", "painmon/sim-1/EDA").modality == "EDA"
    assert parse_topic("painmon", "painmon/sim-1/spo2").modality == "SpO2"
    assert parse_topic("painmon", "painmon/p7/ppg").modality == "BVP"
    assert parse_topic("lab/a", "lab/a/p7/gsr").modality == "EDA"
    assert parse_topic("painmon", "painmon/sim-1/markers").modality == MARKERS
    assert parse_topic("painmon", "painmon/sim-1/estimate").kind == "estimate"
    for leaf in OUTPUT_LEAVES:  # PainMon's outputs, alarms included: recognised, never a modality
        parsed = parse_topic("painmon", f"painmon/sim-1/{leaf}")
        assert parsed.is_output and parsed.kind == leaf and parsed.modality == ""
    assert not parse_topic("painmon", "painmon/sim-1/markers").is_output
    with pytest.raises(TopicError) as info:
        parse_topic("painmon", "painmon/sim-1/banana")
    assert info.value.reason == "unknown_modality"
    with pytest.raises(TopicError) as info:
        parse_topic("painmon", "painmon/sim-1/EDA/extra")
    assert info.value.reason == "bad_topic"
    assert sample_topic("painmon", "sim-2", "RESP") == "painmon/sim-2/RESP"
    with pytest.raises(ValueError, match="invalid subject 'a/b'"):
        sample_topic("painmon", "a/b", "EDA")


def test_config_parsing_and_validation(tmp_path):
    assert MQTTConfig.from_hostport("broker.lan:1884").port == 1884
    assert MQTTConfig.from_hostport("broker.lan").port == 1883
    v6 = MQTTConfig.from_hostport("[::1]:2000")
    assert (v6.host, v6.port) == ("::1", 2000)
    tls = MQTTConfig.from_hostport("mqtts://broker.lan")
    assert tls.tls and tls.port == 8883
    assert MQTTConfig.from_hostport("h:1", qos=1, prefix="lab/x").prefix == "lab/x"
    for bad, message in (
        (lambda: MQTTConfig.from_hostport("h:notaport"), "bad MQTT port"),
        (lambda: MQTTConfig(port=70000), "outside 1..65535"),
        (lambda: MQTTConfig(qos=3), "QoS must be 0, 1 or 2"),
        (lambda: MQTTConfig(prefix="painmon/#"), "invalid MQTT topic prefix"),
        (lambda: MQTTConfig(password="x"), "password given without a username"),
        (lambda: MQTTConfig(tls=True, ca_file=str(tmp_path / "missing.pem")), "not a readable file"),
        (lambda: MQTTConfig(ca_file=__file__), "tls is off"),  # a CA file without TLS is a mistake
    ):
        with pytest.raises(ValueError, match=message):
            bad()
