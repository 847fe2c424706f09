"""Small helpers shared by several test modules (tests/ is on sys.path, like mqtt_broker.py)."""

from __future__ import annotations

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
