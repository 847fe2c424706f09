"""Estimator modes: absolute while a subject's baseline is learnt, relative after; ood_score; model files v2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.checkpoint import ModelMetadata, load_model, save_model
from core.distribution import EmbeddingStatistics, outside
from core.encoder import load_encoder
from core.fusion import EMBED_DIM, FusionHead
from core.inference import Estimator, ModalityWindow, SubjectWindow
from core.representations import render

torch.set_num_threads(1)
MODS, REPS = ("EDA", "BVP"), ("waveform",)


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(None, device="cpu", precision="fp32")


def _estimator(encoder, *, statistics=None) -> Estimator:
    torch.manual_seed(0)
    head = FusionHead(MODS, REPS, within="concat", across="concat").eval()
    rel = FusionHead(MODS, REPS, within="concat", across="concat", embed_dim=2 * EMBED_DIM).eval()
    return Estimator(encoder, head, MODS, REPS, window_s=3.0, relative_head=rel, statistics=statistics,
                     encoder_fingerprint="enc")


def _embedding(encoder, signal: np.ndarray) -> np.ndarray:
    """The encoder's (R, D) embedding of one modality's signal, computed outside the estimator."""
    img = render(torch.from_numpy(signal)[None, None], list(REPS), fs=100.0)[0, 0]
    return encoder(img).detach().numpy()


def _window(subject: str, t_end: float, freq: float) -> SubjectWindow:
    t = np.arange(300) / 100.0 + t_end
    return SubjectWindow(subject, t_end, {"EDA": ModalityWindow(np.sin(2 * np.pi * 0.2 * t).astype(np.float32)),
                                          "BVP": ModalityWindow(np.sin(2 * np.pi * freq * t).astype(np.float32))})


def test_modes_follow_the_baseline_and_batching_changes_nothing(encoder):
    windows = [_window("a", 3.0 + k, 1.0 + 0.05 * k) for k in range(5)]
    one = _estimator(encoder)
    one.new_baseline_book(duration_s=5.0)
    single = [one.estimate([w])[0] for w in windows]
    assert [e.mode for e in single] == ["absolute"] * 3 + ["relative"] * 2
    np.testing.assert_allclose([e.calibration for e in single], [0.0, 0.6, 0.8, 1.0, 1.0])
    assert one.baselines.current("a")[0].t_end == 5.0  # windows ending at 3, 4, 5 s: 5 s of signal
    both = _estimator(encoder)
    both.new_baseline_book(duration_s=5.0)
    batch = both.estimate(windows + [_window("b", 3.0, 1.0)])
    assert [e.mode for e in batch[:5]] == [e.mode for e in single] and batch[5].mode == "absolute"
    np.testing.assert_allclose([e.index for e in batch[:5]], [e.index for e in single], atol=1e-4)
    # without a book: the absolute head alone, calibration unknown
    plain = _estimator(encoder)
    e = plain.estimate([windows[4]])[0]
    assert e.mode == "absolute" and np.isnan(e.calibration) and np.isnan(e.ood_score)
    assert 0.0 <= e.index <= 100.0


def test_ood_score_is_the_distance_over_the_threshold(encoder):
    d = EMBED_DIM
    stats = EmbeddingStatistics(np.zeros((2, 1, d), np.float32), np.ones((2, 1, d), np.float32), threshold=2.0)
    est = _estimator(encoder, statistics=stats)
    w = _window("a", 3.0, 1.2)
    w.modalities["BVP"] = ModalityWindow(np.zeros(300, np.float32), 0.0, False, "flat")
    e = est.estimate([w])[0]
    expected = float((_embedding(encoder, w.modalities["EDA"].signal) ** 2).mean()) / 2.0  # EDA only: BVP is absent
    assert e.ood_score == pytest.approx(expected, rel=1e-3)


def test_model_file_v2_round_trip_and_v1_still_loads(tmp_path):
    head = FusionHead(MODS, REPS)
    rel = FusionHead(MODS, REPS, embed_dim=2 * EMBED_DIM)
    stats = EmbeddingStatistics(np.zeros((2, 1, EMBED_DIM), np.float32), np.ones((2, 1, EMBED_DIM), np.float32),
                                threshold=1.5, windows=10, calibration_windows=4)
    meta = ModelMetadata(name="m", modalities=list(MODS), representations=list(REPS), baseline={"duration_s": 60.0})
    path = save_model(tmp_path / "m.pt", head, meta, relative_head=rel, statistics=stats)
    loaded = load_model(path)
    assert loaded.metadata.modes == ("relative", "absolute") and loaded.metadata.baseline["duration_s"] == 60.0
    assert loaded.relative_head is not None and loaded.relative_head.config.embed_dim == 2 * EMBED_DIM
    for a, b in zip(rel.state_dict().values(), loaded.relative_head.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert loaded.statistics.threshold == 1.5 and loaded.statistics.calibration_windows == 4
    # a v1 file (absolute head only) loads, without a relative head or statistics
    blob = torch.load(path, weights_only=True)
    blob = {k: v for k, v in blob.items() if k not in ("relative_head", "statistics")}
    blob["version"] = 1
    blob["metadata"] = {k: v for k, v in blob["metadata"].items() if k not in ("relative_fusion", "baseline")}
    torch.save(blob, tmp_path / "v1.pt")
    old = load_model(tmp_path / "v1.pt")
    assert old.relative_head is None and old.statistics is None and old.metadata.modes == ("absolute",)
    # metadata that names a relative head the file lacks is refused
    blob = torch.load(path, weights_only=True)
    blob["relative_head"] = None
    torch.save(blob, tmp_path / "broken.pt")
    from core.checkpoint import ModelLoadError

    with pytest.raises(ModelLoadError, match="relative head"):
        load_model(tmp_path / "broken.pt")
    bad = dataclasses.replace(stats, std=np.zeros_like(stats.std))
    blob = torch.load(path, weights_only=True)
    blob["statistics"] = bad.to_state()
    torch.save(blob, tmp_path / "badstats.pt")
    with pytest.raises(ModelLoadError, match="statistics"):
        load_model(tmp_path / "badstats.pt")


def test_heads_stored_in_float16_load_as_float32(tmp_path):
    head = FusionHead(MODS, REPS)
    rel = FusionHead(MODS, REPS, embed_dim=EMBED_DIM)
    meta = ModelMetadata(name="m", modalities=list(MODS), representations=list(REPS))
    full = save_model(tmp_path / "full.pt", head, meta, relative_head=rel)
    half = save_model(tmp_path / "half.pt", head, meta, relative_head=rel, head_half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    for mine, back in ((head, loaded.head), (rel, loaded.relative_head)):
        for k, v in mine.state_dict().items():
            got = back.state_dict()[k]
            assert got.dtype == v.dtype
            torch.testing.assert_close(got, v.half().to(v.dtype) if v.is_floating_point() else v)


def test_uncertain_windows_never_enter_a_baseline(encoder):
    """A window beyond the training distribution is not learnt into the subject's baseline (the
    baseline would otherwise make later estimates relative to what the model cannot read)."""
    d = EMBED_DIM
    near = _window("a", 3.0, 1.0)
    far = _window("a", 3.0, 1.0)
    far.modalities["EDA"] = ModalityWindow(np.random.default_rng(0).standard_normal(300).astype(np.float32) * 50)
    # the training "distribution": centred on the near window
    mean = np.stack([_embedding(encoder, near.modalities[name].signal) for name in MODS])
    probe = _estimator(encoder, statistics=EmbeddingStatistics(mean, np.ones((2, 1, d), np.float32), threshold=1.0))
    d_near, d_far = (probe.estimate([w])[0].ood_score for w in (near, far))
    assert d_far > 10 * d_near
    stats = EmbeddingStatistics(mean, np.ones((2, 1, d), np.float32), threshold=float(np.sqrt(d_near * d_far)))

    def run(windows):
        est = _estimator(encoder, statistics=stats)
        est.new_baseline_book(duration_s=5.0)
        return est, [est.estimate([w])[0] for w in windows]

    kinds = ["near", "near", "far", "far", "near", "near"]
    windows = [dataclasses.replace(near if k == "near" else far, t_end=3.0 + i) for i, k in enumerate(kinds)]
    est, got = run(windows)
    assert [bool(outside(e.ood_score)) for e in got] == [k == "far" for k in kinds]
    baseline = est.baselines.current("a")[0]
    # windows ending at 3 and 4 s cover 4 s; the far ones at 5 and 6 s are skipped; 7 s completes 5 s
    assert baseline.t_end == 7.0 and baseline.count.tolist() == [3, 3]
    assert [e.mode for e in got] == ["absolute"] * 5 + ["relative"]
    _, all_near = run([dataclasses.replace(near, t_end=3.0 + i) for i in range(6)])
    assert [e.mode for e in all_near] == ["absolute"] * 3 + ["relative"] * 3
