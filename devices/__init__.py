"""PainMon devices: everything that produces or stores samples. Feeds
:class:`core.buffers.BufferHub`; imports only :mod:`core`; never imports Qt.

One package per device family, each with one public facade (its ``__init__``) over private
modules:

* :mod:`devices.source` — the :class:`~devices.source.Source` interface and lifecycle every
  source follows, :class:`~devices.source.SourceError`, the
  :class:`~devices.source.PlaybackControls` protocol;
* :mod:`devices.lsl` — Lab Streaming Layer: follow, discover, publish streams;
* :mod:`devices.mqtt` — MQTT: source, publisher, payload schema, topics;
* :mod:`devices.xdf` — XDF files: read sessions, record, write;
* :mod:`devices.replay` — replay a recorded session into the hub or onto LSL outlets;
* :mod:`devices.simulator` — simulated wearables, offline and live (LSL, MQTT, in-process).
"""
