"""A device that vanishes and comes back: its outlet runs in a subprocess we kill or freeze.

Lost must be reported within 2 s; when the outlet returns, data flow again into the same
buffer and the interruption is a counted gap in the timestamps, never zeros.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import numpy as np
import pytest
from helpers import REPO_ROOT, wait_until

from core.buffers import BufferHub
from devices.lsl import LSLSource

REPO = REPO_ROOT

# A wearable's outlet: 32 Hz EDA, values 1, 2, 3, ... (never 0), timestamps on local_clock.
OUTLET = r"""
import sys, time
import numpy as np, pylsl
from core.streams import StreamSpec
from devices.lsl import stream_info
tag = sys.argv[1]
spec = StreamSpec("pat-" + tag, "EDA", ("EDA",), 32.0, "uS", tag + " EDA", "test:" + tag)
out = pylsl.StreamOutlet(stream_info(spec))
print("ready", flush=True)
t0, k = pylsl.local_clock(), 0
while True:
    n = int((pylsl.local_clock() - t0) * 32) - k
    if n > 0:
        out.push_chunk((np.arange(k, k + n, dtype=np.float32) + 1)[:, None], (t0 + np.arange(k, k + n) / 32).tolist())
        k += n
    time.sleep(0.02)
"""


class Device:
    """The outlet subprocess; always killed at the end of the test."""

    def __init__(self, tag: str):
        self.tag = tag
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-c", OUTLET, self.tag], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def device():
    dev = Device(uuid.uuid4().hex[:10])
    yield dev
    dev.kill()


def _seconds_until(cond, timeout: float) -> float | None:
    """Seconds until ``cond`` held (None if it did not within ``timeout``)."""
    start = time.monotonic()
    return time.monotonic() - start if wait_until(cond, timeout) else None


def _health(src):
    (h,) = src.health()
    return h


@contextmanager
def _following(device):
    """Start the device's outlet and an LSLSource following it; yields (source, buffer)
    once 16 samples have arrived; the source is stopped on exit."""
    device.start()
    hub = BufferHub(seconds=60)
    src = LSLSource(source_id=f"test:{device.tag}", resolve_interval=0.5)
    src.start(hub)
    try:
        assert src.wait_for_streams(1, timeout=10.0)
        buf = hub.buffer(f"pat-{device.tag}", "EDA")
        assert wait_until(lambda: len(buf) >= 16, 5.0)
        yield src, buf
    finally:
        src.stop()


def test_killed_outlet_is_lost_within_2s_and_followed_again_when_restarted(device):
    with _following(device) as (src, buf):
        device.kill()
        lost_after = _seconds_until(lambda: not _health(src).connected, 5.0)
        assert lost_after is not None and lost_after < 2.0
        assert _health(src).status.startswith("lost")
        n_before = len(buf)
        _, ts_before = buf.snapshot()
        time.sleep(1.0)
        device.start()  # the same device again: same source_id, new uid
        back_after = _seconds_until(lambda: _health(src).connected, 5.0)
        assert back_after is not None
        assert wait_until(lambda: len(buf) >= n_before + 16, 5.0)
        src.stop()  # freeze the counts before comparing them
        values, ts = buf.snapshot()
        assert not np.any(values == 0)  # nothing zero-filled
        assert np.all(np.diff(ts) > 0)
        gap = np.diff(ts).max()
        assert gap > 1.0  # the downtime is a hole in the timestamps
        assert np.sum(np.diff(ts) > 0.5) == 1
        assert ts[: ts_before.size].tolist() == ts_before.tolist()  # data received before the loss kept
        h = _health(src)
        assert h.gaps == 1 and h.samples == len(buf) and h.status == "stopped"
        after = values[ts_before.size:, 0]
        assert np.all(np.diff(after) == 1)  # the new outlet's samples, in order, none lost after subscribing


def test_frozen_outlet_is_lost_within_2s_and_resumes(device):
    """No TCP error arrives when a device freezes (or its Wi-Fi drops): the presence check
    notices the silence; when it answers again it is followed again (same uid)."""
    with _following(device) as (src, buf):
        device.proc.send_signal(signal.SIGSTOP)
        lost_after = _seconds_until(lambda: not _health(src).connected, 5.0)
        assert lost_after is not None and lost_after < 2.0
        device.proc.send_signal(signal.SIGCONT)
        back_after = _seconds_until(lambda: _health(src).connected, 10.0)
        assert back_after is not None and back_after < 4.0
        n_back = _health(src).samples
        assert wait_until(lambda: _health(src).samples > n_back + 16, 5.0)
        values, ts = buf.snapshot()
        assert np.all(np.diff(ts) > 0) and not np.any(values == 0)
        # what the outlet pushed while we were not subscribed is a gap, counted once
        assert _health(src).gaps == int(np.sum(np.diff(ts) > 0.25)) <= 1
