"""Artefacts specialised to one batch shape, built in the background once the shape recurs.

OpenVINO runs a model compiled for a fixed batch size 5-20 % faster than the same model with a
dynamic batch (measured on the encoder: mixed bf16 at batch 32, 84 -> 103 images/s; AVX2 fp32,
40 -> 44), but compiling one takes ~0.5 s per shape on 2 cores. A live engine meets a handful of
batch sizes (8 images per subject and window, fewer with a lost sensor, up to the encoder
batch), so each is compiled once, on a worker thread, when it has been asked for a few times;
until then the dynamic model serves, so no call ever waits for a compiler. The number kept is
bounded and a shape in steady use is never dropped for another: no load can make the process
hold an unbounded number of models or keep compiling.

Pure threading; knows nothing of OpenVINO (the ``build`` callable does the compiling).
"""

from __future__ import annotations

import logging
import math
import threading
import time
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
two streams), so this bounds the extra memory to ~0.7 GB; the engine's start compiles about four."""
MIN_REQUESTS = 3
"""A batch size is compiled on its third request: a one-off size is served by the dynamic model."""
IDLE_S = 60.0
"""An artefact unused this long may make room for a new key; one in steady use never does."""
REQUEST_KEYS_KEPT = 256
"""Request counts kept for keys not yet built (cleared beyond it)."""


class ShapeSpecialiser(Generic[K, V]):
    """A bounded set of ``build(key)`` results, built on one worker thread.

    Which keys earn a build, so that a varied load never keeps the compiler busy: a key is built
    on its ``min_requests``-th request (a one-off batch size never is), and once ``capacity``
    artefacts are held a new key replaces the least recently used one only if that one has not
    been used for ``idle_s`` seconds (shapes in steady use are never evicted for another, so
    they cannot take turns evicting each other). :meth:`prepare` builds at once.

    Args:
        build: key -> artefact (slow; runs on the worker thread). An exception is logged once
            and the key is not tried again (the caller keeps its general artefact for it).
        capacity: artefacts kept (built and under way).
        min_requests: requests of a key before it is built.
        idle_s: how long an artefact must have gone unused before a new key may replace it.
        name: thread name prefix and log label.
        clock: monotonic seconds (tests may pass another).
    """

    def __init__(self, build: Callable[[K], V], *, capacity: int = MAX_SHAPES, min_requests: int = MIN_REQUESTS,
                 idle_s: float = IDLE_S, name: str = "painmon-shapes",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or min_requests < 1:
            raise ValueError(f"capacity and min_requests must be at least 1, got {capacity} and {min_requests}")
        self._build = build
        self.capacity = int(capacity)
        self.min_requests = int(min_requests)
        self.idle_s = float(idle_s)
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._ready: OrderedDict[K, V] = OrderedDict()
        self._used: dict[K, float] = {}
        self._pending: dict[K, Future[None]] = {}
        self._failed: set[K] = set()
        self._requests: dict[K, int] = {}
        self._generation = 0
        self._pool: ThreadPoolExecutor | None = None

    def get(self, key: K) -> V | None:
        """The artefact for ``key`` when built (marked recently used); otherwise None, counting the
        request and starting the build when the key has earned it."""
        with self._lock:
            if key in self._ready:
                self._ready.move_to_end(key)
                self._used[key] = self._clock()
                return self._ready[key]
            if key in self._pending or key in self._failed:
                return None
            if len(self._requests) >= REQUEST_KEYS_KEPT and key not in self._requests:
                self._requests.clear()  # bounded whatever the callers ask for
            self._requests[key] = self._requests.get(key, 0) + 1
            if self._requests[key] >= self.min_requests and self._make_room(force=False):
                self._start(key)
            return None

    def prepare(self, keys: Iterable[K], timeout: float | None = None) -> bool:
        """Build ``keys`` not yet built now (making room as needed) and wait for every pending
        build; True when none is left pending within ``timeout`` seconds."""
        with self._lock:
            for key in keys:
                if key in self._ready or key in self._pending or key in self._failed:
                    continue
                self._make_room(force=True)
                self._start(key)
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
            self._used.clear()
            self._pending.clear()
            self._failed.clear()
            self._requests.clear()

    def close(self) -> None:
        """Drop everything and stop the worker thread (without waiting for it)."""
        self.clear()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- under the lock ----------------------------------------------------------------------
    def _make_room(self, *, force: bool) -> bool:
        """Room for one more build: True when there is, after dropping the least recently used
        artefact if needed (only one idle for ``idle_s`` unless ``force``)."""
        if len(self._ready) + len(self._pending) < self.capacity:
            return True
        if not self._ready:
            return False  # every slot is a build under way
        oldest = next(iter(self._ready))
        if not force and self._clock() - self._used.get(oldest, -math.inf) < self.idle_s:
            return False
        del self._ready[oldest]
        self._used.pop(oldest, None)
        return True

    def _start(self, key: K) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        self._requests.pop(key, None)
        self._pending[key] = self._pool.submit(self._make, key, self._generation)

    # -- on the worker thread ----------------------------------------------------------------
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
            self._used[key] = self._clock()
            while len(self._ready) > self.capacity:  # prepare() asked for more than fit
                self._used.pop(self._ready.popitem(last=False)[0], None)


def specialise_encoder(encoder: object, batch_sizes: Iterable[int], timeout: float | None = None) -> bool:
    """Have ``encoder`` compile its fixed-shape models for batches of ``batch_sizes`` images now
    (the OpenVINO backend; a no-op for others) and wait; True when done within ``timeout``. Call
    it before timing or serving those sizes: a pass timed while a compiler runs beside it is slow
    twice over (the dynamic model, and the cores shared with the compiler)."""
    specialise = getattr(encoder, "specialise", None)
    return bool(specialise(list(batch_sizes), timeout)) if callable(specialise) else True


__all__ = ["MAX_SHAPES", "ShapeSpecialiser", "specialise_encoder"]
