"""Representations: shapes, semantics, and fidelity against matplotlib renderings.

matplotlib is a test-only dependency: it draws the reference images the way offline
scripts do (a figure per image), and ours must correlate >= 0.9 with them after both are
turned to grey at 224x224 and blurred with a Gaussian of sigma = 2 px.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.representations import (
    DEFAULT_REPRESENTATIONS,
    KNOWN_REPRESENTATIONS,
    RepresentationConfig,
    render,
)
from core.representations.viridis import VIRIDIS

torch.set_num_threads(1)

FS = 100.0
SIZE = 224
T = 1000  # a 10 s window at 100 Hz


# --------------------------------------------------------------------------- signals
def _signals(seed: int = 0) -> dict[str, np.ndarray]:
    """Windows that look like the four preprocessed modalities, plus plain noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FS
    hr = 1.1 + 0.1 * np.sin(2 * np.pi * 0.1 * t)
    bvp = np.sin(2 * np.pi * np.cumsum(hr) / FS) + 0.3 * np.sin(4 * np.pi * np.cumsum(hr) / FS + 0.5)
    bvp += 0.05 * rng.standard_normal(T)
    resp = np.sin(2 * np.pi * 0.27 * t) + 0.05 * rng.standard_normal(T)
    scr = np.where(t > 4.0, (t - 4.0) * np.exp(-(t - 4.0) / 1.5), 0.0)
    eda = 3.0 + 0.05 * t + 0.8 * scr + 0.01 * rng.standard_normal(T)
    spo2 = 97.0 + 0.5 * np.tanh(t - 5.0) + 0.02 * rng.standard_normal(T)
    noise = rng.standard_normal(T)
    return {"BVP": bvp, "RESP": resp, "EDA": eda, "SpO2": spo2, "noise": noise}


# --------------------------------------------------------------------------- reference
def _mpl_reference(sig: np.ndarray, representation: str, cfg: RepresentationConfig) -> np.ndarray:
    """Render like an offline script: one full-bleed 224x224 px figure, no axes."""
    fig = Figure(figsize=(SIZE / 100, SIZE / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    if representation == "waveform":
        ax.plot(np.arange(sig.size), sig, color="black", linewidth=cfg.line_width * 72.0 / 100.0)
        ax.set_xlim(0, sig.size - 1)
        lo, hi = float(sig.min()), float(sig.max())
        pad = (hi - lo) * cfg.margin / (SIZE - 2 * cfg.margin)
        ax.set_ylim(lo - pad, hi + pad)
    else:
        mode = representation.split("_", 1)[1]
        ax.specgram(sig, NFFT=cfg.nfft, Fs=FS, noverlap=cfg.noverlap, mode=mode, cmap="viridis")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(np.float64) / 255.0


def _grey(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) or (3, H, W) RGB -> luma (ITU-R BT.601)."""
    if rgb.shape[0] == 3 and rgb.shape[-1] != 3:
        rgb = np.moveaxis(rgb, 0, -1)
    return rgb @ np.array([0.299, 0.587, 0.114])


def _gaussian_blur(img: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Separable Gaussian blur (radius 4 sigma, edges reflected)."""
    radius = int(math.ceil(4 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(img, radius, mode="reflect")
    rows = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, rows)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def _similarity(ours: torch.Tensor, reference: np.ndarray) -> float:
    return _correlation(_gaussian_blur(_grey(ours.numpy().astype(np.float64))), _gaussian_blur(_grey(reference)))


# --------------------------------------------------------------------------- fidelity
@pytest.fixture(scope="module")
def rendered() -> tuple[dict[str, np.ndarray], torch.Tensor]:
    sigs = _signals()
    batch = np.stack(list(sigs.values()))[None].astype(np.float32)  # (1, 5, T)
    return sigs, render(batch, fs=FS)[0]


@pytest.mark.parametrize("rep", DEFAULT_REPRESENTATIONS)
def test_fidelity_against_matplotlib(rendered, rep):
    sigs, images = rendered
    cfg = RepresentationConfig()
    r = DEFAULT_REPRESENTATIONS.index(rep)
    scores = {
        name: _similarity(images[c, r], _mpl_reference(sig.astype(np.float32), rep, cfg))
        for c, (name, sig) in enumerate(sigs.items())
    }
    assert min(scores.values()) >= 0.9, scores


def test_fidelity_metric_rejects_wrong_images(rendered):
    """The blur+correlation check must be able to fail: another signal's image, or the
    image upside down, scores clearly lower."""
    sigs, images = rendered
    cfg = RepresentationConfig()
    ref = _mpl_reference(sigs["RESP"].astype(np.float32), "waveform", cfg)
    resp = list(sigs).index("RESP")
    assert _similarity(images[resp, 0], ref) >= 0.9
    assert _similarity(images[list(sigs).index("BVP"), 0], ref) < 0.6
    psd_ref = _mpl_reference(sigs["BVP"].astype(np.float32), "spectrogram_psd", cfg)
    bvp = list(sigs).index("BVP")
    assert _similarity(images[bvp, 1].flip(-2), psd_ref) < 0.8


def test_viridis_table_matches_matplotlib():
    expected = matplotlib.colormaps["viridis"](np.arange(256))[:, :3]
    np.testing.assert_allclose(np.array(VIRIDIS), expected, atol=1e-7)
