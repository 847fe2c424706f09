"""``painmon record``: LSL and MQTT streams to XDF headless, stopped cleanly by SIGTERM,
the file readable by PainMon's own reader (issue 12 item 9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pylsl
import pytest
from helpers import REPO_ROOT, wait_until
from mqtt_broker import paho_client, paho_close, paho_publish

from core.streams import MARKERS, StreamSpec
from devices.lsl import stream_info
from devices.mqtt import encode_markers, encode_samples
from devices.xdf import load_session


class Output:
    """Lines of a child's stdout, collected on a thread (so waiting never blocks on a pipe)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def painmon(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_record_lsl_and_mqtt_streams_until_sigterm(tmp_path, mosquitto_broker):
    tag = uuid.uuid4().hex[:8]
    eda = StreamSpec("rec-1", "EDA", nominal_rate=4.0, name=f"rec-1 EDA {tag}", source_id=f"test:{tag}:eda")
    marks = StreamSpec("rec-1", MARKERS, name=f"rec-1 Markers {tag}", source_id=f"test:{tag}:markers")
    eda_out = pylsl.StreamOutlet(stream_info(eda))
    marks_out = pylsl.StreamOutlet(stream_info(marks))
    unrelated = StreamSpec("rec-9", "EDA", nominal_rate=4.0, name=f"unrelated {uuid.uuid4().hex}")
    other = pylsl.StreamOutlet(stream_info(unrelated))
    path = tmp_path / "session.xdf"
    proc = painmon("record", str(path), "--lsl-name", tag, "--mqtt", f"{mosquitto_broker.host}:{mosquitto_broker.port}",
                   "--status-every", "1")
    out = Output(proc)
    client = paho_client(mosquitto_broker)
    try:
        assert wait_until(lambda: out.has("recording to"), 30.0), out.lines
        sent_lsl, sent_mqtt = 0, 0
        deadline = time.monotonic() + 30.0
        t_dev = time.time()
        after: float | None = None  # go on 2 s once both are recorded: a new inlet misses what came before
        while time.monotonic() < deadline and (after is None or time.monotonic() < after):
            if after is None and out.has("rec-1        EDA") and out.has("mqtt-1"):
                after = time.monotonic() + 2.0
            eda_out.push_chunk([[3.0 + 0.01 * (sent_lsl + k)] for k in range(4)])
            other.push_chunk([[1.0]] * 4)
            sent_lsl += 4
            paho_publish(client, "painmon/mqtt-1/BVP",
                         encode_samples(t_dev + sent_mqtt / 64.0, 64.0, np.sin(np.arange(sent_mqtt, sent_mqtt + 16))))
            sent_mqtt += 16
            time.sleep(0.25)
        marks_out.push_sample(["pain:high"])
        paho_publish(client, "painmon/mqtt-1/markers", encode_markers([time.time()], ["pain:low"]))
        time.sleep(1.5)  # the status line and the last flush
        assert proc.poll() is None, out.lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, out.lines
    finally:
        if proc.poll() is None:
            proc.kill()
        paho_close(client)
    assert out.has("stopped:") and out.has(str(path)), out.lines
    assert out.has("streams in the file"), out.lines  # the status line
    session = load_session(path)
    by_key = {(s.spec.subject, s.spec.modality): s for s in session.streams}
    assert ("rec-1", "EDA") in by_key and ("mqtt-1", "BVP") in by_key, list(by_key)
    assert not any(s.spec.subject == "rec-9" for s in session.streams)  # --lsl-name filtered
    assert by_key[("rec-1", "EDA")].n_samples > 0 and by_key[("mqtt-1", "BVP")].n_samples > 0
    labels = {(m.subject, m.label) for m in session.markers}
    assert ("rec-1", "pain:high") in labels and ("mqtt-1", "pain:low") in labels


def test_record_needs_an_input_and_a_new_file(tmp_path):
    done = subprocess.run([sys.executable, "-m", "monitor", "record", str(tmp_path / "a.xdf")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--lsl" in done.stdout
    existing = tmp_path / "b.xdf"
    existing.write_bytes(b"keep me")
    done = subprocess.run([sys.executable, "-m", "monitor", "record", str(existing), "--lsl"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "never overwritten" in done.stderr
    assert existing.read_bytes() == b"keep me"


@pytest.mark.parametrize("command", ["monitor", "serve", "replay"])
def test_record_option_on_monitor_serve_and_replay(command):
    done = subprocess.run([sys.executable, "-m", "monitor", command, "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert "--record FILE.xdf" in done.stdout


def test_serve_records_what_it_serves(tmp_path):
    """``serve --record``: a recording of the input streams (no model needed to start recording:
    it starts before the sources, so the first samples are in the file)."""
    tag = uuid.uuid4().hex[:8]
    spec = StreamSpec("srv-1", "EDA", nominal_rate=4.0, name=f"srv-1 EDA {tag}", source_id=f"test:{tag}")
    outlet = pylsl.StreamOutlet(stream_info(spec))
    path = tmp_path / "served.xdf"
    proc = painmon("serve", "--lsl", "--lsl-name", tag, "--record", str(path), "--health-every", "60")
    out = Output(proc)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not out.has("input:"):
            time.sleep(0.2)
        assert out.has("recording to"), out.lines
        for _ in range(12):
            outlet.push_chunk([[2.5]] * 4)
            time.sleep(0.25)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0, out.lines
    finally:
        if proc.poll() is None:
            proc.kill()
    (stream,) = [s for s in load_session(path).streams if s.spec.subject == "srv-1"]
    assert stream.n_samples > 0 and np.allclose(np.asarray(stream.values), 2.5)


def test_monitor_record_starts_the_recording_with_the_window(qtbot, tmp_path, monkeypatch):
    """``painmon monitor --record``: build_window(record=) records from the first sample."""
    from core import clock
    from monitor.gui.app import build_window

    monkeypatch.setenv("PAINMON_SETTINGS", str(tmp_path / "settings.ini"))
    path = tmp_path / "dash.xdf"
    window = build_window(engine=False, record=path)
    qtbot.addWidget(window)
    assert window.session.recording and window.record_action.text() == "Stop recording"
    spec = StreamSpec("dash-1", "EDA", nominal_rate=4.0, name="dash-1 EDA")
    window.session.hub.push(spec, np.full((8, 1), 4.5, np.float32), clock.now() + np.arange(8) / 4.0)
    window.close()
    (stream,) = load_session(path).streams
    assert stream.spec.key == ("dash-1", "EDA") and stream.n_samples == 8


def test_replay_headless_records_the_replayed_session(tmp_path):
    path = tmp_path / "again.xdf"
    sample = REPO_ROOT / "assets" / "sessions" / "sample-sim.xdf"
    done = subprocess.run([sys.executable, "-m", "monitor", "replay", str(sample), "--headless", "--speed", "4",
                           "--duration", "6", "--start", "100", "--record", str(path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"recording to {path}" in done.stdout
    again = load_session(path)
    assert {s.spec.key for s in again.streams} >= {("sim-1", "EDA"), ("sim-1", "BVP"), ("sim-2", "SpO2")}
    assert all(s.n_samples > 0 for s in again.streams)
