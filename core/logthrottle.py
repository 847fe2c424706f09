"""Rate-limited logging of repeated warnings, with counts.

A broken or hostile sender repeats the same fault at its full message rate; logging each
one drowns the log (and costs CPU on the ingest thread). :class:`LogLimiter` logs the first
few occurrences of a key, then at most one line per ``interval`` seconds per key, saying
how many were suppressed since the last line. It is the one helper PainMon's sources,
preprocessing and engine use for anything that can repeat per message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_INTERVAL_S = 10.0
DEFAULT_FIRST = 3
DEFAULT_MAX_KEYS = 1024


class LogLimiter:
    """Logs a repeated message at most every ``interval`` s per key, with a count.

    Args:
        logger: where lines go.
        interval: seconds between two lines of the same key (after the first ``first``).
        first: occurrences of a key logged unconditionally (the start of a fault).
        max_keys: keys remembered (oldest forgotten first), so a flood of distinct keys,
            such as invented topic names, cannot grow memory.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        first: int = DEFAULT_FIRST,
        max_keys: int = DEFAULT_MAX_KEYS,
    ):
        self.logger = logger
        self.interval = float(interval)
        self.first = int(first)
        self.max_keys = int(max_keys)
        self._state: OrderedDict[Hashable, list[float]] = OrderedDict()  # key -> [count, suppressed, last]
        self._lock = threading.Lock()

    def log(self, level: int, key: Hashable, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` s ago; a
        logged line after suppressed ones ends with ``[N more since last report]``.
        Returns whether a line was written. Suppressed occurrences go to DEBUG."""
        t = time.monotonic()
        with self._lock:
            state = self._state.get(key)
            if state is None:
                state = [0.0, 0.0, -float("inf")]
                self._state[key] = state
                if len(self._state) > self.max_keys:
                    self._state.popitem(last=False)
            else:
                self._state.move_to_end(key)
            state[0] += 1
            emit = state[0] <= self.first or t - state[2] >= self.interval
            suppressed = int(state[1])
            if emit:
                state[1] = 0
                state[2] = t
            else:
                state[1] += 1
        if not emit:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug(msg, *args)
            return False
        if suppressed:
            msg = f"{msg} [%d more since last report]"
            args = (*args, suppressed)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def count(self, key: Hashable) -> int:
        """Occurrences of ``key`` so far (0 once forgotten)."""
        with self._lock:
            state = self._state.get(key)
            return int(state[0]) if state else 0
