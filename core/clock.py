"""The one clock all PainMon timestamps are on.

LSL's ``local_clock()`` is C++ ``steady_clock``, which on Linux, macOS and Windows reads the
same monotonic counter as :func:`time.monotonic`. Core code uses this function so it never
needs to import pylsl, yet its times compare directly with LSL timestamps.
"""

import time


def now() -> float:
    """Seconds on the shared monotonic clock (same origin as ``pylsl.local_clock()``)."""
    return time.monotonic()
