"""Headless replay (issue 12, items 7 and 9): a named model that cannot load ends the command
at once, non-zero, with serve's one line; progress is one line every few seconds."""

from __future__ import annotations

import subprocess
import sys
import time

from helpers import REPO_ROOT

from devices.replay import ReplaySource
from devices.xdf import load_session
from monitor.commands.replay import health_details, health_line

SAMPLE = REPO_ROOT / "assets" / "sessions" / "sample-sim.xdf"


def painmon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout)


def cannot_start_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "cannot start:" in line]


def test_replay_headless_with_a_text_file_as_model_fails_fast_like_serve(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a model\n")
    t0 = time.monotonic()
    replay = painmon("replay", "--headless", "--speed", "1", "--model", str(bad), str(SAMPLE))
    took = time.monotonic() - t0
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert took < 60  # before: the whole 180 s file was replayed, then exit 0
    assert " index " not in replay.stdout and "done:" not in replay.stdout
    (line,) = cannot_start_lines(replay.stderr)
    serve = painmon("serve", "--lsl", "--model", str(bad), "--duration", "1")
    assert serve.returncode != 0
    (serve_line,) = cannot_start_lines(serve.stderr)
    # the same sentence after the logger's time stamp and name
    assert line.split("cannot start:", 1)[1] == serve_line.split("cannot start:", 1)[1]
    assert "notes.txt" in line


def test_replay_progress_is_one_line_the_detail_only_on_request():
    from helpers import wait_until

    from core.buffers import BufferHub

    source = ReplaySource(load_session(SAMPLE), speed=20)
    source.start(BufferHub(seconds=30))
    try:
        assert wait_until(lambda: source.position > 2.0, 10.0)
        line = health_line(source)
    finally:
        source.stop()
    # 8 signal streams and 2 marker streams of 2 subjects: one line, not ten
    assert "\n" not in line and "/ 180.0 s:" in line and "/10 streams" in line and " samples, " in line
    assert int(line.split(" samples")[0].rsplit(" ", 1)[1]) > 0
    assert len(health_details(source)) == 10
