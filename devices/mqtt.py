"""MQTT for PainMon: the names other modules use, gathered in one import.

* :class:`MQTTConfig` — broker address, topic prefix, QoS, TLS and credentials.
* :class:`MQTTSource` — a :class:`devices.source.Source` subscribing to
  ``<prefix>/<subject>/<modality>`` (and ``.../markers``).
* :class:`MQTTPublisher` — thread-safe, reconnecting publisher (simulator, estimate outputs).
* Payload schema (JSON and compact binary): :mod:`devices.mqtt_schema`; topic scheme:
  :mod:`devices.mqtt_topics`.
"""

from devices.mqtt_config import MQTTConfig
from devices.mqtt_publisher import MQTTPublisher, PublisherStats
from devices.mqtt_schema import (
    MarkerMessage,
    PayloadError,
    SampleMessage,
    decode_markers,
    decode_samples,
    encode_markers,
    encode_samples,
    encode_samples_binary,
)
from devices.mqtt_source import MQTTSource, MQTTStatus
from devices.mqtt_topics import estimate_topic, marker_topic, parse_topic, sample_topic

__all__ = [
    "MQTTConfig",
    "MQTTSource",
    "MQTTStatus",
    "MQTTPublisher",
    "PublisherStats",
    "SampleMessage",
    "MarkerMessage",
    "PayloadError",
    "encode_samples",
    "encode_samples_binary",
    "decode_samples",
    "encode_markers",
    "decode_markers",
    "sample_topic",
    "marker_topic",
    "estimate_topic",
    "parse_topic",
]
