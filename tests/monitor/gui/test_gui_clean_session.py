"""Issue 12 (1, 8): a recording opened over a live session, a seek, a switch of source start a
clean session, and the CSV export says which source each row is from, on which clocks.

Real widgets (offscreen), the real simulator source, the bundled sample recording, a small
real model.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime

import pytest
import torch
from helpers import REPO_ROOT

from core import clock
from devices.simulator import SimulatedWearable, SimulatorSource
from monitor.gui.session import EngineConfig

SAMPLE = REPO_ROOT / "assets" / "sessions" / "sample-sim.xdf"

torch.set_num_threads(2)


def small_estimator():
    """The real encoder and fusion head, untrained, EDA+BVP waveform, 2 s window."""
    from core.encoder.model import TinyBioMoE
    from core.fusion import FusionHead
    from core.inference import Estimator

    torch.manual_seed(0)
    modalities, representations = ("EDA", "BVP"), ("waveform",)
    head = FusionHead(modalities, representations).eval()
    return Estimator(TinyBioMoE().eval(), head, modalities, representations, model_name="gui-small", window_s=2.0)


@pytest.fixture
def live_window(qtbot, window):
    """The dashboard on a live simulated sim-1 with the small model, three estimates in."""
    window.session.start_engine(EngineConfig(estimator=small_estimator(), window_s=2.0, hop_s=1.0), wait=True)
    assert window.session.engine_state == "running"
    live = SimulatorSource(SimulatedWearable(1, seed=5))
    assert window.add_source(live)
    qtbot.waitUntil(lambda: len(window.log.estimates("sim-1")) >= 3, timeout=60000)
    window.live_source = live
    return window


def test_recording_opened_over_a_live_session_is_not_spliced_into_it(qtbot, live_window, tmp_path):
    window = live_window
    old_hub, old_engine = window.session.hub, window.session.engine
    live_estimates = len(window.log.estimates("sim-1"))
    t_open = clock.now()
    assert window.open_recording(SAMPLE)

    # the live source stopped; buffers, engine (windows, trends, baselines) and tabs are new
    assert window.live_source.state == "stopped"
    assert window.session.hub is not old_hub and window.session.engine is not old_engine
    assert window.session.engine.estimator is old_engine.estimator  # the model is not reloaded
    assert old_engine.latest("sim-1") is None and old_engine.scheduler.subjects() == []  # forgotten
    assert window.log.latest("sim-1") is None and window.log.trend("sim-1").t.size == 0
    qtbot.waitUntil(lambda: len(window.log.estimates("sim-1")) >= 3, timeout=60000)

    # every sample of the new session is the recording's: none from before it was opened
    eda = window.session.hub.buffer("sim-1", "EDA")
    assert eda.first_timestamp >= t_open - 1e-3
    # so no window of the new session reaches back into the live data
    for est in window.log.estimates("sim-1"):
        assert est.t_end - 2.0 >= t_open - 1e-3, "an estimate spans the live session and the recording"
    window.show_subject("sim-1")  # the file has two subjects: the overview is in front
    window._on_slow()
    panel = window.panels["sim-1"]
    assert panel.trend.drawn_points() == len(window.log.estimates("sim-1"))  # the live trend is gone

    # the export keeps both, each row labelled with its source
    path = tmp_path / "both.csv"
    n = window.log.to_csv(path)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert n == len(rows) >= live_estimates + 3
    by_source = {}
    for r in rows:
        by_source.setdefault((r["source_id"], r["source"]), []).append(r)
    assert len(by_source) == 2
    (live_key, live_rows), (replay_key, replay_rows) = sorted(by_source.items())
    assert "simulator" in live_key[1].lower() and "sample-sim.xdf" in replay_key[1]
    assert len(live_rows) >= live_estimates
    # live rows have a wall clock time; replayed rows the file's own time instead
    assert all(r["wall_time"] and not r["file_time_s"] for r in live_rows)
    assert all(r["file_time_s"] and not r["wall_time"] for r in replay_rows)
    assert all(0.0 <= float(r["file_time_s"]) <= 180.0 for r in replay_rows)


def test_seek_starts_a_clean_session_at_the_new_position(qtbot, window):
    window.session.start_engine(EngineConfig(estimator=small_estimator(), window_s=2.0, hop_s=1.0), wait=True)
    assert window.open_recording(SAMPLE, speed=1.0)
    first = window.replay_bar.source
    qtbot.waitUntil(lambda: window.session.hub.buffer("sim-1", "EDA") is not None, timeout=10000)
    hub = window.session.hub
    window.replay_bar.seek_fraction(0.5)
    second = window.replay_bar.source
    assert second is not first and first.state == "stopped"
    assert window.session.hub is not hub
    assert second.position == pytest.approx(90.0, abs=1.0)
    qtbot.waitUntil(lambda: len(window.log.estimates("sim-1")) >= 2, timeout=60000)
    # the estimates are of the file from the seek position on, not of a window spanning it
    for est in window.log.estimates("sim-1"):
        assert second.from_clock(est.t_end) >= 90.0 + 2.0 - 0.5


def test_a_recording_in_progress_is_finished_when_the_source_changes(qtbot, window, tmp_path):
    import pyxdf

    assert window.add_source(SimulatorSource(SimulatedWearable(1, seed=5)))
    qtbot.waitUntil(lambda: window.session.hub.buffer("sim-1", "EDA") is not None, timeout=10000)
    path = tmp_path / "live.xdf"
    assert window.start_recording(path)
    qtbot.wait(1500)
    assert window.open_recording(SAMPLE)
    # the live session's file is complete and closed; the recording does not go on with the file's data
    assert not window.session.recording and window.record_action.text() == "Start recording…"
    assert str(path) in window.statusBar().currentMessage()
    streams, _ = pyxdf.load_xdf(str(path))
    assert any(s["info"]["type"][0] == "EDA" and len(s["time_stamps"]) > 0 for s in streams)


def test_live_source_after_a_recording_starts_a_clean_session(qtbot, window):
    hubs = []
    window.session.add_clean_listener(hubs.append)
    assert window.open_recording(SAMPLE)
    assert hubs == [window.session.hub]  # others keeping per-subject state are told
    qtbot.waitUntil(lambda: window.session.hub.buffer("sim-1", "EDA") is not None, timeout=10000)
    replay = window.session.replay
    assert window.start_clean([SimulatorSource(SimulatedWearable(1, seed=5))])
    assert replay.state == "stopped" and window.session.replay is None
    assert not window.replay_bar.isVisible()
    assert window.session.source_id == window.log.source_id


def test_csv_export_writes_empty_cells_iso_wall_time_and_source_columns(tmp_path):
    from core.estimate import Estimate
    from monitor.gui.estimate_log import EstimateLog, SourceTime

    log = EstimateLog()
    log.set_label("LSL sim-1")
    wall = datetime(2026, 3, 1, 9, 30, 5, 250000).timestamp()
    nan = math.nan
    log.add(Estimate("sim-1", 100.0, nan, (nan, nan, nan), valid=False, latency={}),
            SourceTime(wall=wall, source=100.0))
    log.begin_source(2, "replay x.xdf")
    log.add(Estimate("sim-1", 5.0, 40.0, (0.5, 0.3, 0.2), smoothed=41.0), SourceTime(source=1005.0, file=5.0))
    path = tmp_path / "e.csv"
    assert log.to_csv(path) == 2
    text = path.read_text(encoding="utf-8")
    assert "nan" not in text.lower()
    rows = list(csv.DictReader(text.splitlines()))
    assert rows[0]["source_id"] == "1" and rows[0]["source"] == "LSL sim-1"
    parsed = datetime.fromisoformat(rows[0]["wall_time"])
    assert parsed.tzinfo is not None and parsed.timestamp() == pytest.approx(wall, abs=1e-3)
    assert rows[0]["index"] == "" and rows[0]["p_no"] == "" and rows[0]["latency_total_s"] == ""
    assert rows[1]["source"] == "replay x.xdf" and rows[1]["wall_time"] == ""
    assert float(rows[1]["source_time"]) == 1005.0 and float(rows[1]["file_time_s"]) == 5.0
    assert rows[1]["state"] == "ok" and rows[1]["smoothed_long"] == ""


def test_alarms_and_ward_follow_the_new_session(qtbot, live_window):
    """The overview tiles and alarm states of the live source do not carry over to a file."""
    window = live_window
    session = window.session
    qtbot.waitUntil(lambda: "sim-1" in session.ward, timeout=30000)
    assert session.ward.latest("sim-1") is not None
    assert window.open_recording(SAMPLE)
    assert session.alarms.hub is session.hub and session.ward.hub is session.hub
    assert session.ward.latest("sim-1") is None  # the live subject's tile starts afresh
    # estimates of the file arrive on the new hub and reach the ward again
    qtbot.waitUntil(lambda: session.ward.latest("sim-1") is not None, timeout=60000)
