"""Publish a :class:`SimulatedWearable` to an MQTT broker in real time (through :mod:`devices.mqtt`)."""

from __future__ import annotations

import logging
import threading
from typing import Self

from core import clock
from core.streams import MARKERS
from core.worker import BackgroundWorker
from devices.mqtt import (
    MQTTConfig,
    MQTTPublisher,
    encode_markers,
    encode_samples,
    marker_topic,
    sample_topic,
)
from devices.simulator._wearable import SimChunk, SimulatedWearable

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0


class MQTTSimulator:
    """Every ``chunk_interval`` s, one JSON message per subject and modality on
    ``<prefix>/<subject>/<modality>`` (``{"t0", "fs", "values", "channels", "seq", "units"}``,
    ``t0`` on this machine's shared clock) and ``pain:<level>`` markers on
    ``<prefix>/<subject>/markers``. The publisher queues while the broker is away.

    Lifecycle: ``start()`` once (a second call raises :class:`core.worker.WorkerStateError`;
    not restartable, like its :class:`~devices.mqtt.MQTTPublisher`), ``stop()`` idempotent.
    """

    def __init__(self, wearable: SimulatedWearable, config: MQTTConfig, *, chunk_interval: float = 0.1):
        if not 0.01 <= chunk_interval <= 5.0:
            raise ValueError(f"chunk_interval must be within 10 ms-5 s, got {chunk_interval}")
        self.wearable = wearable
        self.config = config
        self.chunk_interval = chunk_interval
        self.publisher = MQTTPublisher(config)
        self._specs = {s.key: s for s in wearable.specs()}
        self._seq: dict[tuple[str, str], int] = {}
        self._worker = BackgroundWorker(self._run, name="painmon-mqtt-simulator")
        self.t_start = float("nan")
        self.messages = 0
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._worker.running

    def start(self) -> None:
        """Start the publisher and the publishing thread (returns at once)."""
        self.publisher.start()  # raises WorkerStateError when started before
        self.t_start = clock.now() - self.wearable.elapsed
        self._worker.start()
        log.info("simulating %d subject(s) on MQTT %s", len(self.wearable.subjects), self.config.describe())

    def stop(self) -> None:
        """Stop publishing, send what is queued (briefly), disconnect; idempotent."""
        self._worker.stop(STOP_TIMEOUT_S)
        self.publisher.stop()

    def _run(self, stop: threading.Event) -> None:
        try:
            while True:
                self._publish(self.wearable.advance(clock.now() - self.t_start))
                if stop.wait(self.chunk_interval):
                    return
        except BaseException as exc:
            self.error = exc
            log.exception("MQTT simulator stopped")

    def _publish(self, chunks: list[SimChunk]) -> None:
        prefix = self.config.prefix
        for c in chunks:
            key = (c.subject, c.modality)
            seq = self._seq.get(key, 0)
            self._seq[key] = seq + 1
            stamps = c.times + self.t_start
            if c.modality == MARKERS:
                payload = encode_markers(stamps.tolist(), c.labels, seq=seq)
                self.publisher.publish(marker_topic(prefix, c.subject), payload)
            else:
                spec = self._specs[key]
                payload = encode_samples(float(stamps[0]), spec.nominal_rate, c.signal, channels=spec.channels,
                                         seq=seq, units=spec.units)
                self.publisher.publish(sample_topic(prefix, c.subject, c.modality), payload)
            self.messages += 1

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
