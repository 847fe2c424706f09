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


# --------------------------------------------------------------------------- semantics
def test_shape_range_order_and_numpy_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, T)).astype(np.float32)
    out = render(x)
    assert out.shape == (2, 3, 4, 3, SIZE, SIZE)
    assert out.dtype == torch.float32 and out.device.type == "cpu" and out.is_contiguous()
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # a subset in another order gives the same images, in the order asked
    sub = render(torch.from_numpy(x), ["spectrogram_phase", "waveform"], size=SIZE)
    torch.testing.assert_close(sub[:, :, 0], out[:, :, 3])
    torch.testing.assert_close(sub[:, :, 1], out[:, :, 0])


def test_empty_batch_gives_empty_result():
    assert render(torch.zeros((0, 4, T))).shape == (0, 4, 4, 3, SIZE, SIZE)


def test_batched_equals_one_window_at_a_time():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.standard_normal((3, 2, T)).astype(np.float32))
    together = render(x)
    for b in range(3):
        torch.testing.assert_close(render(x[b : b + 1])[0], together[b], atol=1e-5, rtol=0)


def test_unknown_representation_lists_known_ones():
    with pytest.raises(ValueError, match="unknown representation") as err:
        render(np.zeros((1, 1, T), np.float32) + np.arange(T), ["waveform", "gramian"])
    assert "gramian" in str(err.value)
    for known in KNOWN_REPRESENTATIONS:
        assert known in str(err.value)
    with pytest.raises(ValueError, match="sequence of names"):
        render(np.ones((1, 1, T), np.float32), "waveform")


def test_bad_signals_are_refused():
    x = np.random.default_rng(3).standard_normal((1, 2, T)).astype(np.float32)
    x[0, 1, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render(x)
    with pytest.raises(ValueError, match="batch, channels, samples"):
        render(np.zeros((2, T), np.float32))
    with pytest.raises(ValueError, match="noverlap"):
        RepresentationConfig(nfft=64, noverlap=64)


def _ink_rows(image: torch.Tensor) -> np.ndarray:
    """Ink-weighted mean row of each column of a waveform image (0 = top)."""
    ink = 1.0 - image[0].numpy()
    rows = np.arange(ink.shape[0])[:, None]
    return (ink * rows).sum(0) / ink.sum(0)


def test_waveform_geometry():
    ramp = np.linspace(-1.0, 1.0, T, dtype=np.float32)
    flat = np.full(T, 5.0, np.float32)
    img = render(np.stack([ramp, flat])[None], ["waveform"])[0, :, 0]
    # white background, black line, grey-only colours
    assert float((img == 1.0).float().mean()) > 0.9
    assert float(img.min()) == 0.0
    torch.testing.assert_close(img[:, 0], img[:, 1])
    rows = _ink_rows(img[0])
    assert rows[0] > SIZE - 6 and rows[-1] < 6  # rises from bottom-left to top-right
    assert np.all(np.diff(rows) < 0.5)
    # every column is drawn (the line is connected) and a flat signal sits mid-height
    assert bool(((1.0 - img[0, 0]).sum(0) > 0.5).all())
    assert abs(_ink_rows(img[1]).mean() - SIZE / 2) < 1.5


def test_spectrogram_puts_frequencies_at_the_right_height():
    t = np.arange(T) / FS
    sines = np.stack([np.sin(2 * np.pi * f * t) for f in (2.0, 30.0)]).astype(np.float32)
    img = render(sines[None], ["spectrogram_psd"])[0, :, 0]
    for c, f in enumerate((2.0, 30.0)):
        luma = _grey(img[c].numpy()).mean(axis=1)  # viridis brightness grows with power
        expected_row = (1.0 - f / (FS / 2)) * SIZE
        assert abs(int(np.argmax(luma)) - expected_row) < 4, (f, np.argmax(luma))


def test_spectrogram_values_follow_mlab():
    """Before colouring, the normalised maps equal mlab.specgram's, mode by mode."""
    from matplotlib import mlab

    from core.representations.spectrogram import spectrogram_maps

    cfg = RepresentationConfig()
    sig = _signals()["BVP"]
    maps = spectrogram_maps(torch.from_numpy(sig[None].astype(np.float32)), ("psd", "angle", "phase"), FS, cfg)[0]
    for m, (mode, tol) in enumerate((("psd", 2e-3), ("angle", 2e-3), ("phase", 2e-3))):
        spec, _, _ = mlab.specgram(sig, NFFT=cfg.nfft, Fs=FS, noverlap=cfg.noverlap, mode=mode)
        ref = 10 * np.log10(spec) if mode == "psd" else spec
        ref = (ref - ref.min()) / (ref.max() - ref.min())
        assert maps[m].shape == ref.shape
        close = np.abs(maps[m].numpy() - ref) < tol
        assert close.mean() > 0.995, (mode, close.mean())


def test_short_window_is_zero_padded_like_mlab():
    x = np.sin(np.arange(100) / 3.0).astype(np.float32)[None, None]
    out = render(x, fs=FS)
    assert out.shape == (1, 1, 4, 3, SIZE, SIZE) and bool(torch.isfinite(out).all())
    small = render(x, fs=FS, size=64)  # other image sizes work the same way
    assert small.shape == (1, 1, 4, 3, 64, 64) and float(small.min()) >= 0 and float(small.max()) <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA-only part: no CUDA device here")
def test_cuda_matches_cpu():
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 4, T)).astype(np.float32))
    cpu = render(x)
    gpu = render(x, device="cuda")
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-3, rtol=0)


def test_out_buffer_is_filled_and_checked():
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((2, 2, T)).astype(np.float32))
    buf = torch.full((2, 2, 4, 3, SIZE, SIZE), -1.0)
    result = render(x, out=buf)
    assert result is buf
    torch.testing.assert_close(buf, render(x))
    with pytest.raises(ValueError, match="out must be"):
        render(x, out=torch.empty((2, 2, 3, 3, SIZE, SIZE)))


def test_render_after_inference_mode_use():
    """The engine renders under torch.inference_mode(); cached tables built there must
    not break later renders in normal mode (training in the same process)."""
    x = torch.from_numpy(np.random.default_rng(6).standard_normal((1, 2, 777)).astype(np.float32))
    with torch.inference_mode():
        first = render(x)
    again = render(x.clone().requires_grad_())
    assert not again.is_inference() and not again.requires_grad
    torch.testing.assert_close(again, first)
