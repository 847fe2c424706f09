"""Self-reports as training labels (issue 12 item 10): a session whose subject rated their
pain with the dashboard's CoVAS control trains with ``--labels selfreport``, each rating
binned into the index's bands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT

from core.buffers import BufferHub
from core.estimate import BAND_EDGES
from core.fusion import pain_index
from core.streams import StreamSpec
from devices.xdf import SessionRecorder
from monitor.self_report import SelfReportChannel
from training.fit import rating_targets
from training.recording_windows import WindowSettings, cut_recording
from training.records import UNLABELLED, Signal, window_ratings
from training.sim_data import simulate_subject
from training.xdf_data import load_xdf_sessions, self_report_track

RATING_OF_LEVEL = {0: 8.0, 1: 50.0, 2: 85.0}
OFFSET = 1000.0


def record_rated_session(path, rec, seed: int = 0) -> None:
    """Signals and a 10 Hz self-report that follows the true level (noisy, inside its band),
    written by the session recorder from the hub, as the dashboard does."""
    hub = BufferHub(seconds=600)
    recorder = SessionRecorder(path, hub).start()
    for m, s in rec.signals.items():
        spec = StreamSpec(rec.subject, m, nominal_rate=s.rate, name=f"{rec.subject} {m}")
        hub.push(spec, s.values[:, None], s.timestamps + OFFSET)
    rng = np.random.default_rng(seed)
    channel = SelfReportChannel(rec.subject, hub, lsl=False, steady=False)  # stamped here, not now
    start, end = rec.span
    for t in np.arange(start, end, 0.1):
        level = int(rec.levels.level_at(t))
        if level == UNLABELLED:
            continue
        channel.set(RATING_OF_LEVEL[level] + rng.uniform(-8, 8))
        channel.sample(t + OFFSET)
    channel.close()
    recorder.stop()


def test_ratings_become_a_level_track_at_the_index_bands():
    ts = np.arange(0, 6, 1.0)
    track = self_report_track(ts, [10, BAND_EDGES[0], 50, BAND_EDGES[1], 99, 99], rate=1.0)
    assert track.level_at(ts).tolist() == [0, 1, 1, 2, 2, 2]
    assert track.level_at(6.5) == UNLABELLED and track.level_at(-1) == UNLABELLED  # only while rated
    gap = self_report_track([0, 1, 20, 21], [10, 10, 90, 90], rate=1.0)
    assert gap.level_at([0.5, 10.0, 20.5]).tolist() == [0, UNLABELLED, 2]
    assert self_report_track([], []) is None


def test_a_rated_session_trains_on_its_self_report(tmp_path):
    rec = simulate_subject(3, 90.0, seed=7)
    record_rated_session(tmp_path / "rated.xdf", rec)
    with pytest.raises(ValueError, match="pain:no"):  # no markers in it
        load_xdf_sessions([tmp_path / "rated.xdf"])
    (loaded,) = load_xdf_sessions([tmp_path / "rated.xdf"], labels="selfreport")
    assert loaded.subject == "sim-3" and set(loaded.signals) == {"EDA", "BVP", "RESP", "SpO2"}
    settings = WindowSettings(("EDA", "BVP", "RESP", "SpO2"), stride_s=5.0)
    truth = cut_recording(rec, settings)
    rated = cut_recording(loaded, settings)
    both = (truth.labels >= 0) & (rated.labels >= 0)
    assert both.sum() >= 5
    assert np.mean(truth.labels[both] == rated.labels[both]) >= 0.9
    assert len(set(rated.labels[rated.labels >= 0].tolist())) >= 2


def test_ratings_as_soft_targets_have_the_rating_as_their_index():
    ratings = np.array([0.0, 20.0, 50.0, 80.0, 100.0, 130.0])
    probs = rating_targets(ratings)
    assert np.allclose(probs.sum(axis=1), 1.0) and (probs >= 0).all()
    index = pain_index(torch.from_numpy(probs)).numpy()
    assert np.allclose(index, np.clip(ratings, 0, 100), atol=1e-4)
    assert np.allclose(probs[1], [0.6, 0.4, 0.0]) and np.allclose(probs[3], [0.0, 0.4, 0.6])


def test_window_ratings_average_only_rated_windows():
    ratings = Signal(np.r_[np.full(100, 20.0), np.full(100, 60.0)], np.arange(200) / 10.0, 10.0)
    got = window_ratings(ratings, np.array([10.0, 15.0, 20.0, 40.0]), window_s=10.0)
    assert np.isclose(got[0], 20.0, atol=0.5) and 35 < got[1] < 45 and np.isclose(got[2], 60.0, atol=0.5)
    assert np.isnan(got[3])  # after the last rating


def test_painmon_train_with_self_report_labels_binned_and_continuous(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    record_rated_session(data / "a.xdf", simulate_subject(4, 60.0, seed=3))
    record_rated_session(data / "b.xdf", simulate_subject(5, 60.0, seed=5), seed=1)
    common = ["--dataset", "xdf", str(data), "--labels", "selfreport", "--encoder", "init:0", "--modalities",
              "EDA,BVP", "--representations", "waveform", "--epochs", "3", "--stride", "5", "--no-ablations",
              "--quiet", "--test-subjects", "sim-5", "--threads", "2", "--cache", str(tmp_path / "cache")]
    runs = {}
    for target in ("class", "continuous"):  # the second run reads the first one's embeddings
        out = tmp_path / target
        done = subprocess.run([sys.executable, "-m", "monitor", "train", *common, "--out", str(out),
                               "--target", target], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (out / "model.pt").is_file() and "labels from selfreport" in (out / "report.md").read_text()
        runs[target] = (done.stdout, json.loads((out / "metrics.json").read_text()))
    for stdout, metrics in runs.values():  # both say how the index follows the rating
        assert "Self-report: the index follows the rating" in stdout
        assert metrics["rating_n"] > 0 and np.isfinite(metrics["rating_mae"])
    refused = subprocess.run([sys.executable, "-m", "monitor", "train", "--dataset", "sim", str(tmp_path / "sim"),
                              "--out", str(tmp_path / "no"), "--target", "continuous"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--labels selfreport" in refused.stdout
    assert not (tmp_path / "no").exists()
