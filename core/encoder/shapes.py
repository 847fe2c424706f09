"""Artefacts specialised to one batch shape, built in the background on first demand.

OpenVINO runs a model compiled for a fixed batch size 5-20 % faster than the same model with a
dynamic batch (measured on the encoder: mixed bf16 at batch 32, 84 -> 103 images/s; AVX2 fp32,
40 -> 44), but compiling one takes ~0.7 s per shape on 2 cores. A live engine meets a handful of
batch sizes (8 images per subject and window, fewer with a lost sensor, up to the encoder
batch), so each is compiled once, on a worker thread, the first time it is asked for; until
then the dynamic model serves, so no call ever waits for a compiler. The number kept is
bounded (least recently used dropped): a sender cannot make the process compile and hold an
unbounded number of models.

Pure threading; knows nothing of OpenVINO (the ``build`` callable does the compiling).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_SHAPES = 6
"""Specialised artefacts kept at once. A compiled encoder holds its own weights and its requests'
buffers: measured 90-115 MB of resident memory per batch shape (fp32 / mixed, 8-32 images on
two streams), so this bounds the extra memory to ~0.7 GB; the engine's start compiles up to four."""


class ShapeSpecialiser(Generic[K, V]):
    """A bounded, least-recently-used set of ``build(key)`` results, built on one worker thread.

    Args:
        build: key -> artefact (slow; runs on the worker thread). An exception is logged once
            and the key is not tried again (the caller keeps its general artefact for it).
        capacity: artefacts kept; the least recently used is dropped beyond it.
        name: thread name prefix and log label.
    """

    def __init__(self, build: Callable[[K], V], *, capacity: int = MAX_SHAPES, name: str = "painmon-shapes") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._build = build
        self.capacity = int(capacity)
        self._name = name
        self._lock = threading.Lock()
        self._ready: OrderedDict[K, V] = OrderedDict()
        self._pending: dict[K, Future[None]] = {}
        self._failed: set[K] = set()
        self._generation = 0
        self._pool: ThreadPoolExecutor | None = None

    def get(self, key: K) -> V | None:
        """The artefact for ``key`` when built (marked recently used); otherwise None, and its
        build is started unless it is already under way or has failed."""
        with self._lock:
            if key in self._ready:
                self._ready.move_to_end(key)
                return self._ready[key]
            if key not in self._pending and key not in self._failed:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._name)
                self._pending[key] = self._pool.submit(self._make, key, self._generation)
            return None

    def prepare(self, keys: Iterable[K], timeout: float | None = None) -> bool:
        """Start the builds of ``keys`` not yet built and wait for every pending build; True when
        none is left pending within ``timeout`` seconds."""
        for key in keys:
            self.get(key)
        return self.settle(timeout)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for the builds under way; True when none is left pending within ``timeout``."""
        with self._lock:
            pending = list(self._pending.values())
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def keys(self) -> list[K]:
        """Keys with a built artefact, least recently used first."""
        with self._lock:
            return list(self._ready)

    def clear(self) -> None:
        """Drop every artefact; builds under way finish but are discarded (they were made from
        what the owner has just replaced, e.g. older weights)."""
        with self._lock:
            self._generation += 1
            self._ready.clear()
            self._pending.clear()
            self._failed.clear()

    def close(self) -> None:
        """Drop everything and stop the worker thread (without waiting for it)."""
        self.clear()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _make(self, key: K, generation: int) -> None:
        try:
            value = self._build(key)
        except Exception as exc:  # noqa: BLE001 - any build failure only costs the speed-up
            log.warning("%s: cannot specialise %r (%s); the general artefact keeps serving it", self._name, key,
                        str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__)
            with self._lock:
                if generation == self._generation:
                    self._pending.pop(key, None)
                    self._failed.add(key)
            return
        with self._lock:
            if generation != self._generation:
                return
            self._pending.pop(key, None)
            self._ready[key] = value
            while len(self._ready) > self.capacity:
                self._ready.popitem(last=False)


def settle_encoder(encoder: object, timeout: float | None = None) -> bool:
    """Wait until ``encoder`` has compiled the batch shapes it has been asked for (the OpenVINO
    backend compiles each in the background); True at once for an encoder that does not. Call it
    after a warm-up and before timing: a pass timed while a compiler runs beside it is slow twice
    over (the dynamic model, and two cores shared with the compiler)."""
    settle = getattr(encoder, "settle", None)
    return bool(settle(timeout)) if callable(settle) else True


def specialise_encoder(encoder: object, batch_sizes: Iterable[int], timeout: float | None = None) -> bool:
    """Have ``encoder`` compile its fixed-shape models for batches of ``batch_sizes`` images now
    (the OpenVINO backend; a no-op for others), so that serving never meets a compiler; True
    when done within ``timeout``."""
    specialise = getattr(encoder, "specialise", None)
    return bool(specialise(list(batch_sizes), timeout)) if callable(specialise) else True


__all__ = ["MAX_SHAPES", "ShapeSpecialiser", "settle_encoder", "specialise_encoder"]
