"""The bounded hand-over between the window scheduler and the inference worker.

A real-time monitor must show *now*, not a growing backlog: when the worker falls behind,
an older window of a subject is worth nothing once a newer one of the same subject is
ready. So the queue holds at most one window per subject, a newer window replaces the
older one (counted as a skip), and the number of subjects held is bounded too (when full,
the oldest window of any subject is dropped, also counted). Offline use (replay as fast as
possible, evaluation) wants every window instead: ``drop_stale=False`` makes ``put``
block until the worker has room, pushing the backpressure to the producer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestPerKeyQueue(Generic[T]):
    """At most one pending item per key, newest wins; ``get_batch`` takes them all."""

    def __init__(self, max_keys: int = 256, drop_stale: bool = True):
        if max_keys <= 0:
            raise ValueError(f"max_keys must be positive, got {max_keys}")
        self.max_keys = max_keys
        self.drop_stale = drop_stale
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False
        self.skipped = 0
        """Items replaced by a newer one of the same key, or evicted when full."""
        self.put_count = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, key: Hashable, item: T, timeout: float | None = None) -> bool:
        """Offer an item. Returns False only when blocking mode timed out or the queue closed."""
        with self._cond:
            if self._closed:
                return False
            if self.drop_stale:
                if key in self._items:
                    del self._items[key]
                    self.skipped += 1
                elif len(self._items) >= self.max_keys:
                    self._items.popitem(last=False)
                    self.skipped += 1
            else:
                ok = self._cond.wait_for(
                    lambda: self._closed or (key not in self._items and len(self._items) < self.max_keys),
                    timeout=timeout,
                )
                if not ok or self._closed:
                    return False
            self._items[key] = item
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get_batch(self, max_items: int | None = None, timeout: float | None = None) -> list[T]:
        """Wait (up to ``timeout``) for at least one item, then take up to ``max_items``,
        oldest first. Returns [] on timeout or when closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or bool(self._items), timeout=timeout)
            out: list[T] = []
            while self._items and (max_items is None or len(out) < max_items):
                out.append(self._items.popitem(last=False)[1])
            if out:
                self._cond.notify_all()  # wake blocked producers
            return out

    def close(self) -> None:
        """Wake every waiter; later ``put`` calls are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._items.clear()
