"""Window cutting: exact grid, quality score, validity, and the full chain to images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.preprocessing import Processed, StreamPreprocessor
from core.representations import render
from core.windows import VALID_QUALITY, WindowSignal, cut_window, window_grid

RATE = 100.0
T0 = 7000.0


def _processed(fs: float, seconds: float, modality: str = "BVP", drop=None) -> Processed:
    n = int(seconds * fs)
    t = T0 + np.arange(n) / fs
    x = 5.0 + np.sin(2 * np.pi * 1.1 * t) + 0.05 * np.random.default_rng(0).standard_normal(n)
    if drop is not None:
        keep = ~((t >= T0 + drop[0]) & (t < T0 + drop[1]))
        x, t = x[keep], t[keep]
    return StreamPreprocessor(modality, fs).process(x, t)


def test_exact_grid_ending_at_t_end():
    p = _processed(64.0, 20.0)
    t_end = T0 + 15.003  # not on the sample grid: windows end where the scheduler says
    w = cut_window(p.values, p.timestamps, p.flags, t_end, 10.0, RATE)
    assert isinstance(w, WindowSignal)
    assert w.signal.shape == (1000,) and w.signal.dtype == np.float32
    np.testing.assert_allclose(w.timestamps, window_grid(t_end, 10.0, RATE))
    assert w.timestamps[-1] == pytest.approx(t_end) and w.timestamps[0] == pytest.approx(t_end - 9.99)
    assert w.quality == 1.0 and w.valid and w.reason == ""
    # values are the stream's, interpolated to the window grid
    expected = np.interp(w.timestamps, p.timestamps, p.values[:, 0])
    np.testing.assert_allclose(w.signal, expected, atol=1e-5)


def test_gap_lowers_quality_and_invalidates():
    p = _processed(64.0, 30.0, drop=(12.0, 17.0))  # 5 s not bridged
    w = cut_window(p.values, p.timestamps, p.flags, T0 + 20.0, 10.0, RATE)
    assert w.quality == pytest.approx(0.5, abs=0.03)
    assert not w.valid and "missing" in w.reason
    assert np.isfinite(w.signal).all()  # still a usable image input, just not trusted
    assert not w.good[(w.timestamps > T0 + 12.1) & (w.timestamps < T0 + 16.9)].any()
    # a window entirely after the gap is fine again
    assert cut_window(p.values, p.timestamps, p.flags, T0 + 29.0, 10.0, RATE).valid


def test_window_before_the_stream_started():
    p = _processed(64.0, 8.0)
    w = cut_window(p.values, p.timestamps, p.flags, T0 + 7.0, 10.0, RATE)
    assert w.quality == pytest.approx(0.7, abs=0.02) and w.valid  # 3 s missing of 10
    assert w.signal[0] == pytest.approx(p.values[0, 0])  # edge value, not zero
    short = cut_window(p.values, p.timestamps, p.flags, T0 + 4.0, 10.0, RATE)
    assert not short.valid and short.quality < VALID_QUALITY


def test_flagged_samples_count_as_bad():
    n = 2000
    t = T0 + np.arange(n) / RATE
    v = np.sin(t)[:, None].astype(np.float32)
    flags = np.zeros((n, 1), bool)
    flags[1000:1500] = True
    w = cut_window(v, t, flags, t[-1], 10.0, RATE)
    assert w.quality == pytest.approx(0.5, abs=0.002)
    assert not w.valid and "flagged" in w.reason
    assert cut_window(v, t, flags, t[-1], 10.0, RATE, min_quality=0.4).valid


def test_no_samples_and_bad_arguments():
    empty = cut_window(np.zeros((0, 1)), np.zeros(0), None, T0, 10.0, RATE)
    assert not empty.valid and empty.quality == 0.0 and "no samples" in empty.reason
    assert empty.signal.shape == (1000,) and np.all(empty.signal == 0)
    with pytest.raises(ValueError, match="do not match"):
        cut_window(np.zeros((5, 1)), np.zeros(4), None, T0, 10.0, RATE)
    with pytest.raises(ValueError, match="positive"):
        cut_window(np.zeros(5), np.zeros(5), None, T0, 0.0, RATE)


def test_per_channel_quality_and_channel_zero_for_the_model():
    n = 1500
    t = T0 + np.arange(n) / RATE
    v = np.stack([np.sin(t), np.cos(t)], axis=1)
    flags = np.zeros((n, 2), bool)
    flags[-800:, 1] = True
    w = cut_window(v, t, flags, t[-1], 10.0, RATE)
    assert w.channel_quality[0] == 1.0 and w.channel_quality[1] == pytest.approx(0.2, abs=0.01)
    assert w.valid  # validity follows channel 0, the one the model uses
    np.testing.assert_allclose(w.signal, w.channels[:, 0])
    np.testing.assert_allclose(w.channels[:, 1], np.cos(w.timestamps), atol=1e-5)


def test_stream_to_images_end_to_end():
    """Four modalities at their device rates -> preprocessed -> windows -> images."""
    rates = {"EDA": 4.0, "BVP": 64.0, "RESP": 25.0, "SpO2": 1.0}
    rng = np.random.default_rng(5)
    signals, qualities = [], []
    for modality, fs in rates.items():
        n = int(30 * fs)
        t = T0 + np.arange(n) / fs + rng.uniform(-0.05, 0.05, n) / fs
        base = {"EDA": 3.0, "BVP": 0.0, "RESP": 0.0, "SpO2": 97.0}[modality]
        x = base + np.sin(2 * np.pi * 0.3 * t) + 0.05 * rng.standard_normal(n)
        if modality == "SpO2":
            x = np.round(x)
        pre = StreamPreprocessor(modality, fs)
        p = Processed.concat([pre.process(x[i : i + 7], t[i : i + 7]) for i in range(0, n, 7)], 1)
        w = cut_window(p.values, p.timestamps, p.flags, T0 + 25.0, 10.0, RATE)
        signals.append(w.signal)
        qualities.append(w.quality)
    assert min(qualities) > 0.95
    images = render(np.stack(signals)[None], fs=RATE)
    assert images.shape == (1, 4, 4, 3, 224, 224)
    assert bool(torch.isfinite(images).all())
    assert float(images.min()) >= 0 and float(images.max()) <= 1
