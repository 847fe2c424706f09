"""Small helpers shared by several test modules (tests/ is on sys.path, like mqtt_broker.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository's root (tests/ sits directly below it)."""


def wait_until(predicate, timeout: float = 5.0, step: float = 0.01) -> bool:
    """Poll ``predicate`` every ``step`` seconds until it is true (True) or ``timeout``
    seconds have passed (its last value, checked once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def open_lsl_inlet(name: str, max_buflen: int = 30, open_timeout: float = 10.0):
    """A connected inlet on the LSL stream called ``name`` (asserts it is found within 10 s)."""
    import pylsl

    found = pylsl.resolve_byprop("name", name, timeout=10.0)
    assert found, f"LSL stream {name!r} not found"
    inlet = pylsl.StreamInlet(found[0], max_buflen=max_buflen)
    inlet.open_stream(timeout=open_timeout)
    return inlet


class PulseOutlet:
    """A real LSL outlet publishing a 64 Hz BVP-like wave (72 bpm) for one subject until the
    ``with`` block ends."""

    def __init__(self, subject: str, name: str):
        import pylsl

        info = pylsl.StreamInfo(name, "BVP", 1, 64.0, pylsl.cf_float32, f"painmon:{subject}:BVP")
        info.desc().append_child_value("subject", subject)
        self.outlet = pylsl.StreamOutlet(info)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import numpy as np
        import pylsl

        t_next = pylsl.local_clock()
        while not self._stop.is_set():
            n = int((pylsl.local_clock() - t_next) * 64)
            if n > 0:
                t = t_next + np.arange(n) / 64.0
                x = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(4 * np.pi * 1.2 * t + 0.8)
                self.outlet.push_chunk([[float(v)] for v in x], [float(ts) for ts in t])
                t_next += n / 64.0
            self._stop.wait(0.02)

    def __enter__(self) -> PulseOutlet:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class LivePush:
    """A thread that pushes data in real time for the length of a ``with`` block:
    ``prefill_s`` of history first, then the span since the previous push every
    ``period_s``. Subclasses say what to push for ``[t0, t1)`` in :meth:`_push`."""

    def __init__(self, prefill_s: float, period_s: float):
        self.prefill_s, self.period_s = prefill_s, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-live-push")

    def _push(self, t0: float, t1: float) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        from core.clock import now

        t = now()
        self._push(t - self.prefill_s, t)
        while not self._stop.wait(self.period_s):
            t_new = now()
            self._push(t, t_new)
            t = t_new

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
