"""Publish a :class:`SimulatedWearable` as LSL outlets, in real time, from a background thread."""

from __future__ import annotations

import logging
import threading
from typing import Self

import pylsl

from core.streams import MARKERS
from core.worker import BackgroundWorker, WorkerStateError
from devices.lsl._info import stream_info
from devices.simulator._wearable import SimChunk, SimulatedWearable

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0


class LSLSimulator:
    """One LSL outlet per subject and modality, plus one marker stream per subject.

    Samples are pushed every ``chunk_interval`` seconds with their own timestamps
    (``t_start + simulation time``, on ``pylsl.local_clock()``), so an inlet sees exactly
    the simulated sampling grid however late the thread wakes up. The marker stream
    ("sim-1 PainLevel", type "Markers") carries ``pain:<level>`` once at the start and at
    every change of the true level. LSL delivers nothing pushed before an inlet subscribed,
    so when a marker stream gets its first consumer the current level is sent once more
    (stamped now): a monitor started after the simulator still learns the true level.

    Lifecycle: a second ``start()`` while running raises :class:`core.worker.WorkerStateError`;
    ``stop()`` is idempotent; after ``stop()`` it may be started again (new outlets).
    """

    def __init__(self, wearable: SimulatedWearable, *, chunk_interval: float = 0.05):
        if not 0.005 <= chunk_interval <= 1.0:
            raise ValueError(f"chunk_interval must be within 5 ms-1 s, got {chunk_interval}")
        self.wearable = wearable
        self.chunk_interval = chunk_interval
        self._outlets: dict[tuple[str, str], pylsl.StreamOutlet] = {}
        self._worker = BackgroundWorker(self._run, name="painmon-lsl-simulator")
        self.t_start: float = float("nan")
        self.samples_pushed = 0
        self._had_consumers: dict[tuple[str, str], bool] = {}
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._worker.running

    def stream_names(self) -> list[str]:
        return [spec.name for spec in self.wearable.specs()]

    def uids(self) -> set[str]:
        """Uids of this simulator's outlets (after :meth:`start`): lets a consumer follow
        exactly these, not a same-named simulation elsewhere on the network
        (``LSLSource(predicate=lambda s: s.uid in sim.uids())``)."""
        return {outlet.get_info().uid() for outlet in self._outlets.values()}

    def start(self) -> None:
        """Create the outlets and start pushing (returns at once)."""
        if self.running:
            raise WorkerStateError("LSL simulator is already running")
        for spec in self.wearable.specs():
            self._outlets[spec.key] = pylsl.StreamOutlet(stream_info(spec), chunk_size=0, max_buffered=360)
        self.t_start = pylsl.local_clock() - self.wearable.elapsed
        self._push(self.wearable.advance(pylsl.local_clock() - self.t_start))
        self._worker.start()
        log.info("simulating %d subject(s) on LSL: %s", len(self.wearable.subjects), ", ".join(self.stream_names()))

    def stop(self) -> None:
        """Stop pushing and destroy the outlets (their streams vanish from the network)."""
        self._worker.stop(STOP_TIMEOUT_S)
        self._outlets.clear()  # dropping the last reference destroys each outlet

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.chunk_interval):
                self._push(self.wearable.advance(pylsl.local_clock() - self.t_start))
                self._announce_to_new_consumers()
        except BaseException as exc:  # report, don't die silently
            self.error = exc
            log.exception("LSL simulator stopped")

    def _announce_to_new_consumers(self) -> None:
        for subject in self.wearable.subjects:
            key = (subject, MARKERS)
            has = self._outlets[key].have_consumers()
            if has and not self._had_consumers.get(key, False):
                now = pylsl.local_clock()
                level = self.wearable.level_at(subject, now - self.t_start)
                self._outlets[key].push_sample([f"pain:{level}"], now)
            self._had_consumers[key] = has

    def _push(self, chunks: list[SimChunk]) -> None:
        for c in chunks:
            outlet = self._outlets.get((c.subject, c.modality))
            if outlet is None:
                continue
            stamps = (c.times + self.t_start).tolist()
            if c.modality == MARKERS:
                for label, ts in zip(c.labels, stamps):
                    outlet.push_sample([label], ts)
            else:
                outlet.push_chunk(c.values.reshape(-1, 1), stamps)
                self.samples_pushed += len(c)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
