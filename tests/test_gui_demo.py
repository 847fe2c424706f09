"""``painmon demo`` as a user runs it: a real process, simulated wearable over LSL,
offscreen window, ``--duration`` and ``--screenshot``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6 import QtGui

REPO = Path(__file__).resolve().parents[1]


def test_demo_runs_for_duration_and_saves_a_screenshot(tmp_path):
    shot = tmp_path / "demo.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PAINMON_SETTINGS=str(tmp_path / "settings.ini"),
               OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "-v", "demo", "--duration", "6", "--screenshot", str(shot), "--device", "cpu"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "source started: LSL" in proc.stderr
    image = QtGui.QImage(str(shot))
    assert not image.isNull() and image.width() >= 800
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    assert pixels.std() > 20
    assert f"screenshot saved to {shot}" in proc.stderr


def test_demo_rejects_bad_arguments():
    from monitor.cli import main

    assert main(["demo", "--subjects", "0"]) == 2
    assert main(["demo", "--screenshot", "x.png"]) == 2  # a screenshot needs --duration
    assert main(["monitor", "--replay", "/does/not/exist.xdf"]) == 2
