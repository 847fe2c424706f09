"""Issue 13, finding 8: liblsl's own log (an ERR line per second while a stream is gone)
is lowered by default; ``PAINMON_LSL_LOG_LEVEL`` brings it back for debugging."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from helpers import REPO_ROOT

PROBE = """
import time, pylsl
from devices.lsl import LSLSource  # the facade configures liblsl on import
name = {name!r}
out = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EDA", 1, 4, pylsl.cf_float32, name))
inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, timeout=5)[0])
inlet.open_stream(timeout=5)
del out  # the stream is gone: liblsl's receiver complains
time.sleep(2.5)
"""


def _stderr_of_probe(**env: str) -> str:
    name = f"lvl-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "PAINMON_LSL_LOG_LEVEL")}, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_liblsl_is_quiet_by_default_and_verbose_on_request():
    quiet = _stderr_of_probe()
    assert "ERR|" not in quiet and "INFO|" not in quiet
    assert "INFO|" in _stderr_of_probe(PAINMON_LSL_LOG_LEVEL="0")
