"""The one helper for repeated warnings: first few logged, then one line per interval with
the count of what was suppressed; a flood of distinct keys stays bounded."""

from __future__ import annotations

import logging
import time

from core.logthrottle import LogLimiter


def test_repeats_are_suppressed_then_reported_with_their_count(caplog):
    log = logging.getLogger("test.logthrottle")
    limiter = LogLimiter(log, interval=0.2, first=2)
    with caplog.at_level(logging.WARNING, logger="test.logthrottle"):
        for i in range(50):
            limiter.warning("bad", "bad message %d", i)
        time.sleep(0.25)
        limiter.warning("bad", "bad message %d", 50)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["bad message 0", "bad message 1", "bad message 50 [48 more since last report]"]
    assert limiter.count("bad") == 51


def test_distinct_keys_are_forgotten_beyond_max_keys():
    limiter = LogLimiter(logging.getLogger("test.logthrottle"), max_keys=10)
    for i in range(1000):
        limiter.warning(f"topic-{i}", "x")
    assert limiter.count("topic-0") == 0 and limiter.count("topic-999") == 1
    assert len(limiter._state) == 10
