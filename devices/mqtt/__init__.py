"""MQTT for PainMon: subscribe wearables' messages into the hub, publish to a broker.

What this package offers:

* :class:`MQTTConfig` — broker address (``from_hostport`` parses ``host:port``, ``[v6]:port``,
  ``mqtt://`` and ``mqtts://``), topic prefix, QoS, TLS and credentials, validated when built;
  the password comes from :func:`load_password` (``$PAINMON_MQTT_PASSWORD`` or a file),
  never from a URL, and never shows in a repr; :class:`MQTTConfigError` for bad settings,
  :class:`BrokerRefusedError` when the broker refused us ``auth_retries`` times;
* :class:`MQTTSource` — a :class:`devices.source.Source` subscribing to
  ``<prefix>/<subject>/<modality>`` (and ``.../markers``); :class:`MQTTStatus` of its link
  and :func:`link_text` ("broker unreachable since 08:12:03") for status bars;
  :class:`IngestLimits` bounds its subjects and expires idle ones;
* :class:`MQTTPublisher` — thread-safe, queueing, reconnecting publisher (simulator, estimate
  outputs); :class:`PublisherStats`;
* the payload schema — :func:`encode_samples` (JSON), :func:`encode_samples_binary` (compact),
  :func:`encode_markers`, the strict decoders :func:`decode_samples` / :func:`decode_markers`
  returning :class:`SampleMessage` / :class:`MarkerMessage`, and :class:`PayloadError` (with a
  countable ``reason``) for anything refused;
* topics — :func:`sample_topic`, :func:`marker_topic`, :func:`estimate_topic` (defined once in
  :mod:`core.wire`) and :func:`parse_topic` returning a :class:`Topic` or raising
  :class:`TopicError` (a :class:`PayloadError`).
"""

from core.wire import estimate_topic, marker_topic, sample_topic
from devices.mqtt._config import (
    PASSWORD_ENV,
    MQTTConfig,
    MQTTConfigError,
    load_password,
)
from devices.mqtt._loop import BrokerRefusedError
from devices.mqtt._publisher import MQTTPublisher, PublisherStats
from devices.mqtt._schema import (
    MarkerMessage,
    PayloadError,
    SampleMessage,
    decode_markers,
    decode_samples,
    encode_markers,
    encode_samples,
    encode_samples_binary,
)
from devices.mqtt._source import IngestLimits, MQTTSource, MQTTStatus, link_text
from devices.mqtt._topics import Topic, TopicError, parse_topic

__all__ = [
    "PASSWORD_ENV",
    "BrokerRefusedError",
    "IngestLimits",
    "MQTTConfig",
    "MQTTConfigError",
    "MQTTPublisher",
    "MQTTSource",
    "MQTTStatus",
    "MarkerMessage",
    "PayloadError",
    "PublisherStats",
    "SampleMessage",
    "Topic",
    "TopicError",
    "decode_markers",
    "decode_samples",
    "encode_markers",
    "encode_samples",
    "encode_samples_binary",
    "estimate_topic",
    "link_text",
    "load_password",
    "marker_topic",
    "parse_topic",
    "sample_topic",
]
