"""Subject baselines at the engine: profiles on disk, markers, recordings and their replay."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from core.baseline import BaselineStats
from core.buffers import BufferHub
from core.checkpoint import ModelMetadata, save_model
from core.clock import now
from core.distribution import EmbeddingStatistics
from core.encoder import TinyBioMoE
from core.fusion import EMBED_DIM, FusionHead
from core.wire import BASELINE_END, BASELINE_SET, BASELINE_START
from devices.simulator import SimulatedWearable
from devices.xdf import SessionRecorder, load_session
from monitor.engine import BaselineOptions, BaselineProfiles, Engine, load_estimator
from monitor.engine.baselines import safe_name

torch.set_num_threads(1)
MODS, REPS = ("EDA", "BVP"), ("waveform",)
SUBJECT = "sim-1"


def test_profile_files_are_safe_for_any_subject_id(tmp_path):
    store = BaselineProfiles(tmp_path / "p")
    ids = ["../../etc/passwd", "a/b", "a_b", "", ".", "x" * 5000, "Zoë 🙂", "con", "a\0b"]
    names = {safe_name(s) for s in ids}
    assert len(names) == len(ids)
    for s in ids:
        p = store.path_for(s)
        assert p.parent == store.folder and len(p.name) < 100 and not p.name.startswith(".")
    rng = np.random.default_rng(0)
    stats = BaselineStats.from_embeddings(rng.standard_normal((5, 2, 1, 4)), np.ones((5, 2), bool),
                                          np.arange(5.0) + 10, window_s=10.0)
    for s in ids[:3]:
        store.save(s, stats)
    assert sorted(p.name for p in store.folder.iterdir()) == sorted(safe_name(s) + ".baseline" for s in ids[:3])
    back = store.load("a/b")
    assert back.source == "profile"
    np.testing.assert_array_equal(back.mean, stats.mean)
    assert store.load("never-seen") is None
    store.path_for("a_b").write_text("someone-else\n" + stats.encode())  # a file of another id
    assert store.load("a_b") is None
    store.path_for("a/b").write_bytes(b"\xff\xfe junk")
    assert store.load("a/b") is None


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(3)
    head = FusionHead(MODS, REPS, within="concat", across="concat")
    rel = FusionHead(MODS, REPS, within="concat", across="concat", embed_dim=2 * EMBED_DIM)
    with torch.no_grad():  # make the relative head lean on z, so a baseline visibly matters
        rel.mlp[-1].weight.mul_(20.0)
    stats = EmbeddingStatistics(np.zeros((2, 1, EMBED_DIM), np.float32), np.ones((2, 1, EMBED_DIM), np.float32),
                                threshold=1.0)
    meta = ModelMetadata(name="baseline-test", modalities=list(MODS), representations=list(REPS), window_s=4.0,
                         baseline={"duration_s": 6.0, "input": "concat"})
    path = tmp_path_factory.mktemp("model") / "m.pt"
    return save_model(path, head, meta, encoder_state_dict=TinyBioMoE().state_dict(), relative_head=rel,
                      statistics=stats)


def _engine(model_path, hub) -> Engine:
    est = load_estimator(model_path, device="cpu", precision="fp32",
                         baseline=BaselineOptions(duration_s=0.0, profiles="off")).estimator
    return Engine(hub, est, hop_s=1.0, realtime=False, threads=1)


def _wait(got, t_end, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not got or got[-1].t_end < t_end - 1e-6):
        time.sleep(0.02)
    assert got and got[-1].t_end >= t_end - 1e-6, f"engine stuck at {got[-1].t_end if got else None}"


def test_a_recording_keeps_the_baselines_and_replay_reproduces_the_estimates(model_path, tmp_path):
    sim = SimulatedWearable(1, seed=4, rates={"EDA": 4.0, "BVP": 64.0, "RESP": 25.0, "SpO2": 1.0})
    specs = {s.modality: s for s in sim.specs(markers=False) if s.modality in MODS}
    t0 = float(np.floor(now())) - 100.0
    hub = BufferHub()
    rec_path = tmp_path / "live.xdf"
    recorder = SessionRecorder(rec_path, hub).start()
    engine = _engine(model_path, hub)
    live: list = []
    engine.add_callback(live.append)
    engine.start(warmup=False)
    try:
        for k in range(1, 31):
            for ch in sim.advance(float(k)):
                if ch.modality in specs:
                    hub.push(specs[ch.modality], ch.values, t0 + ch.times)
            if k == 16:  # the dashboard's "use the last 6 s as baseline"
                _wait(live, t0 + 15.0)
                engine.baselines.use_last(SUBJECT, 6.0)
            if k == 20:
                hub.push_markers(SUBJECT, [BASELINE_START], [t0 + 19.0], source="user")
            if k == 26:
                hub.push_markers(SUBJECT, [BASELINE_END], [t0 + 25.0], source="user")
            if k >= 4:
                _wait(live, t0 + k - 1.0)
        _wait(live, t0 + 29.0)
    finally:
        engine.stop()
        recorder.stop()
    modes = [e.mode for e in live]
    assert modes[0] == "absolute" and modes[-1] == "relative" and "relative" in modes[:15]
    switch = next(i for i, e in enumerate(live) if e.mode == "relative")
    assert live[switch].t_end > t0 + 15.0 and all(e.calibration == 1.0 for e in live[switch:])
    assert all(np.isfinite(e.ood_score) for e in live)
    # the recording holds both baselines (use-last, then the marked interval)
    session = load_session(rec_path)
    labels = [lab for s in session.marker_streams for lab in s.values]
    sets = [BaselineStats.decode(lab[len(BASELINE_SET) + 1:]) for lab in labels if lab.startswith(BASELINE_SET)]
    assert [s.source for s in sets] == ["last", "marked"]
    assert BASELINE_START in labels and BASELINE_END in labels
    # replay the recording, as recorded, into a fresh engine: the same estimates
    hub2 = BufferHub()
    engine2 = _engine(model_path, hub2)
    again: list = []
    engine2.add_callback(again.append)
    engine2.start(warmup=False)
    try:
        for k in range(1, 31):  # second by second, markers first, each stream as one chunk
            lo, hi = t0 + k - 1.0, t0 + k
            for s in session.marker_streams:
                for ts, label in zip(s.timestamps, s.values, strict=True):
                    if lo <= ts < hi:
                        hub2.push_markers(s.spec.subject, [label], [float(ts)], source="replay")
            for s in session.streams:
                sel = (s.timestamps >= lo) & (s.timestamps < hi)
                if sel.any():
                    hub2.push(s.spec, s.values[sel], s.timestamps[sel])
            if k >= 4:
                _wait(again, t0 + k - 1.0)
        _wait(again, t0 + 29.0)
    finally:
        engine2.stop()
    assert [e.t_end for e in again] == [e.t_end for e in live]
    assert [e.mode for e in again] == modes
    # a window ends at its newest input sample before its end, however soon the engine got
    # to it: the same windows, sample for sample, give the same estimates, up to float
    # rounding where the engine batched other windows together (a window that differed by
    # its last input sample moved the index by 0.04-0.06 here)
    np.testing.assert_allclose([e.index for e in again], [e.index for e in live], rtol=0, atol=1e-4)


def test_a_saved_profile_makes_the_first_window_relative_and_is_recorded(model_path):
    rng = np.random.default_rng(5)
    stats = BaselineStats.from_embeddings(rng.standard_normal((8, 2, 1, EMBED_DIM)), np.ones((8, 2), bool),
                                          np.arange(8.0) + 4.0, window_s=4.0, modalities=MODS, representations=REPS)
    BaselineProfiles().save(SUBJECT, stats)  # the test's own profile folder ($PAINMON_BASELINES)
    hub = BufferHub()
    est = load_estimator(model_path, device="cpu", precision="fp32",
                         baseline=BaselineOptions(duration_s=60.0, profiles="load")).estimator
    engine = Engine(hub, est, hop_s=1.0, realtime=False, threads=1)
    got: list = []
    engine.add_callback(got.append)
    engine.start(warmup=False)
    sim = SimulatedWearable(1, seed=6)
    specs = {s.modality: s for s in sim.specs(markers=False) if s.modality in MODS}
    t0 = float(np.floor(now())) - 50.0
    try:
        for ch in sim.advance(7.0):
            if ch.modality in specs:
                hub.push(specs[ch.modality], ch.values, t0 + ch.times)
        _wait(got, t0 + 6.0)
    finally:
        engine.stop()
    assert all(e.mode == "relative" and e.calibration == 1.0 for e in got)
    marks = [m for m in hub.markers(SUBJECT) if m.label.startswith(BASELINE_SET)]
    assert len(marks) == 1 and marks[0].timestamp < got[0].t_end
    assert BaselineStats.decode(marks[0].label[len(BASELINE_SET) + 1:]).source == "profile"
