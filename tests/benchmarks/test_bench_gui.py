"""``painmon bench gui`` runs end to end (a short run: the figures themselves are the benchmark's)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_bench_gui_measures_both_phases_with_the_overview():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "bench", "gui", "--seconds", "1", "--subjects", "2", "--overview",
         "--threads", "1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {line.split("  ")[0].strip() for line in done.stdout.splitlines()}
    assert {"signals only", "signals + engine"} <= rows
    assert "overview refresh (signals + engine)" in done.stdout
    assert "jumped back" not in done.stderr  # the engine took the hub's history in order
