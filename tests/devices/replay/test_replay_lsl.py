"""Replay re-published on LSL (real outlets and inlets) and the ``painmon replay`` command."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pylsl
from helpers import open_lsl_inlet, wait_until

from core.streams import MARKERS, StreamSpec
from devices.replay import LSLRepublisher
from devices.xdf import Session, SessionStream
from monitor.cli import main


def _session(tmp_path: Path, subject: str) -> Session:
    n = 100
    ts = 200.0 + np.arange(n) / 100.0
    values = np.column_stack([np.arange(n), np.arange(n) * 2]).astype(np.int16).astype(np.float64)
    spec = StreamSpec(subject, "RESP", ("chest", "belly"), 100.0, "a.u.", f"{subject} RESP", f"painmon:{subject}:RESP")
    mspec = StreamSpec(subject, MARKERS, ("label",), 0.0, "", f"{subject} Markers", f"painmon:{subject}:Markers")
    return Session(
        path=tmp_path / "lsl.xdf",
        streams=[SessionStream(spec, ts, values, "RESP", "int16",
                               desc={"subject": subject, "modality": "RESP",
                                     "channels": {"channel": [{"label": "chest"}, {"label": "belly"}]}})],
        marker_streams=[SessionStream(mspec, np.array([200.0, 200.5]), ["pain:no", "pain:low"], "Markers", "string")],
        t_start=200.0,
        duration=0.99,
    )


def _pull(inlet: pylsl.StreamInlet, n: int, timeout: float = 10.0) -> tuple[list, list]:
    samples, stamps = [], []
    end = time.monotonic() + timeout
    while len(samples) < n and time.monotonic() < end:
        chunk, ts = inlet.pull_chunk(timeout=0.2)
        samples += chunk
        stamps += ts
    return samples, stamps


def test_inlet_receives_the_republished_session(tmp_path):
    subject = f"e-{uuid.uuid4().hex[:8]}"
    session = _session(tmp_path, subject)
    pub = LSLRepublisher(session, speed=2.0)
    pub.pause()  # outlets exist but send nothing until the inlets are connected
    pub.start()
    try:
        data_in = open_lsl_inlet(f"{subject} RESP")
        marker_in = open_lsl_inlet(f"{subject} Markers")
        info = data_in.info(timeout=5.0)
        assert info.type() == "RESP" and info.channel_count() == 2
        assert info.channel_format() == pylsl.cf_int16  # the recorded format, not float
        assert info.desc().child_value("subject") == subject
        assert info.desc().child("channels").child("channel").child_value("label") == "chest"
        pub.resume()
        samples, stamps = _pull(data_in, 100)
        labels, mstamps = _pull(marker_in, 2)
        assert pub.wait(5)
    finally:
        pub.stop()
    assert np.array(samples).tolist() == session.streams[0].values.astype(int).tolist()
    np.testing.assert_allclose(np.diff(stamps), 0.01, atol=1e-6)
    assert [row[0] for row in labels] == ["pain:no", "pain:low"]
    # markers stay in place relative to the samples
    assert abs((mstamps[1] - stamps[0]) - 0.5) < 1e-6
    assert pub.pushed == [100, 2]


def test_cli_headless_prints_markers_and_progress(xdf_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PAINMON_MODEL", str(tmp_path / "no-model.pt"))  # no bundled model here
    rc = main(["-v", "replay", str(xdf_dir / "minimal.xdf"), "--headless", "--speed", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "minimal.xdf: 0.9 s, subjects minimal" in out
    assert "unknown modality" in out  # the EEG stream is replayed but not used by the model
    assert "event 'Hello'" in out and out.count("event 'World'") == 2
    assert "no estimates" in out  # no model here: says why instead of failing
    assert "/ 0.9 s: " in out and " samples, " in out  # progress: one line ...
    assert "minimal EEG: 9 samples" in out  # ... and with -v each stream


def test_cli_headless_with_a_named_model_that_cannot_load_stops_at_once(xdf_dir, tmp_path, capsys):
    rc = main(["replay", str(xdf_dir / "minimal.xdf"), "--headless", "--speed", "0",
               "--model", str(tmp_path / "no-model.pt")])
    assert rc == 1
    out = capsys.readouterr().out
    assert "event 'Hello'" not in out and "no estimates" not in out


def test_cli_lsl_republishes_until_done(xdf_dir, capsys):
    rc = main(["replay", str(xdf_dir / "minimal.xdf"), "--lsl", "--speed", "4", "--duration", "10"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "re-publishing 2 streams on LSL" in out
    assert "done: 18 samples sent" in out


def test_cli_reports_bad_files_and_arguments(tmp_path, capsys):
    bad = tmp_path / "bad.xdf"
    bad.write_text("not xdf")
    assert main(["replay", str(bad)]) == 2
    assert "not an XDF file" in capsys.readouterr().out
    assert main(["replay", str(tmp_path / "none.xdf"), "--headless"]) == 2
    assert "no such file" in capsys.readouterr().out
    assert main(["replay", str(bad), "--speed", "-2"]) == 2
    assert "--speed must be >= 0" in capsys.readouterr().out


def test_painmon_lsl_source_follows_a_republished_recording(tmp_path):
    """Replay -> LSL outlets -> PainMon's own LSLSource -> hub: same subject, modality,
    samples and spacing (the path another PainMon instance would take)."""
    from core.buffers import BufferHub
    from devices.lsl import LSLSource

    subject = f"e-{uuid.uuid4().hex[:8]}"
    session = _session(tmp_path, subject)
    pub = LSLRepublisher(session, speed=2.0)
    pub.pause()
    pub.start()
    hub = BufferHub()
    src = LSLSource(predicate=lambda s: s.subject == subject, resolve_interval=0.2)
    try:
        src.start(hub)
        wait_until(lambda: len(src.streams()) >= 2, 10)
        assert {s.modality for s in src.streams()} == {"RESP", MARKERS}
        time.sleep(0.3)  # inlets open
        pub.resume()
        assert pub.wait(5)
        wait_until(lambda: getattr(hub.buffer(subject, "RESP"), "total", 0) >= 100, 10)
        buf = hub.buffer(subject, "RESP")
    finally:
        src.stop()
        pub.stop()
    data, ts = buf.snapshot()
    np.testing.assert_array_equal(data, session.streams[0].values)
    np.testing.assert_allclose(np.diff(ts), 0.01, atol=1e-3)
    assert [m.label for m in hub.markers(subject)] == ["pain:no", "pain:low"]
