"""The simulated wearable as an in-process :class:`devices.source.Source` (no network needed).

The demo and tests can feed a :class:`core.buffers.BufferHub` straight from the simulator;
``painmon simulate --lsl`` / ``--mqtt`` is for feeding another process or machine.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from core import clock
from core.buffers import BufferHub
from core.streams import MARKERS, StreamHealth, StreamSpec
from core.worker import BackgroundWorker
from devices.simulator._wearable import SimChunk, SimulatedWearable
from devices.source import Source

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0


class SimulatorSource(Source):
    """Pushes a :class:`SimulatedWearable` into a hub at ``speed`` x real time.

    Timestamps are ``t_start + simulation_time / speed`` on :func:`core.clock.now`, so at
    ``speed > 1`` data arrive faster but still on the shared clock. Restartable: the
    simulation goes on where it stopped.
    """

    name = "simulator"
    restartable = True

    def __init__(self, wearable: SimulatedWearable, *, chunk_interval: float = 0.05, speed: float = 1.0):
        super().__init__()
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.wearable = wearable
        self.chunk_interval = chunk_interval
        self.speed = speed
        self._specs = {s.key: s for s in wearable.specs()}
        self._health = {k: StreamHealth(spec=s) for k, s in self._specs.items()}
        self._lock = threading.Lock()
        self._worker = BackgroundWorker(self._run, name="painmon-simulator-source")
        self._hub: BufferHub | None = None
        self.t_start = float("nan")

    def describe(self) -> str:
        return f"simulator: {len(self.wearable.subjects)} subject(s), seed {self.wearable.seed}"

    def streams(self) -> list[StreamSpec]:
        return list(self._specs.values())

    def health(self) -> list[StreamHealth]:
        with self._lock:
            return [replace(h, reject_reasons=h.reject_reasons.copy()) for h in self._health.values()]

    def _start(self, hub: BufferHub) -> None:
        self._hub = hub
        for spec in self._specs.values():
            hub.register(spec)
        with self._lock:
            for h in self._health.values():
                h.connected, h.status = True, "connected"
        self.t_start = clock.now() - self.wearable.elapsed / self.speed
        self._worker.start()

    def _stop(self) -> None:
        self._worker.stop(STOP_TIMEOUT_S)
        with self._lock:
            for h in self._health.values():
                h.connected, h.status = False, "stopped"

    def _run(self, stop: threading.Event) -> None:
        while True:
            now = clock.now()
            self._deliver(self.wearable.advance((now - self.t_start) * self.speed), now)
            if stop.wait(self.chunk_interval):
                return

    def _deliver(self, chunks: list[SimChunk], now: float) -> None:
        assert self._hub is not None
        for c in chunks:
            spec = self._specs[(c.subject, c.modality)]
            stamps = self.t_start + c.times / self.speed
            if c.modality == MARKERS:
                self._hub.push_markers(c.subject, c.labels, stamps, source=spec.name)
            else:
                self._hub.push(spec, c.signal, stamps)
            with self._lock:
                h = self._health[spec.key]
                h.samples += len(c)
                h.last_timestamp = float(stamps[-1])
                h.last_received = now
                h.effective_rate = spec.nominal_rate * self.speed
