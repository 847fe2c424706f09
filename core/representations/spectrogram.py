"""The spectrogram representations: PSD (dB), phase angle and unwrapped phase.

Semantics follow ``matplotlib.mlab.specgram`` (and ``Axes.specgram``, which draws it):
symmetric Hann window (``mlab.window_hanning``), no detrending, one-sided spectrum,
``pad_to = NFFT``, segments every ``NFFT - noverlap`` samples with no centring padding;

* ``psd``: ``|X|^2 / (fs * sum(w^2))``, doubled except DC and Nyquist, shown as
  ``10 log10`` (floored :attr:`RepresentationConfig.db_range` dB below the maximum);
* ``angle``: ``angle(X)``;
* ``phase``: the angle unwrapped along the *frequency* axis, as mlab does.

Each map is min-max normalised per image (what ``imshow`` does with automatic limits),
flipped so low frequencies are at the bottom, resized bilinearly to ``size x size``
and coloured with viridis (frequency axis interpolated before colouring, time axis
after: both stay within 0.99 of matplotlib's rendering after the test's blur). All
maps of a batch share one STFT and one resize pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.representations.colormap import apply_colormap, viridis_lut
from core.representations.config import RepresentationConfig
from core.representations.geometry import hann, interpolation_matrix, linear_taps, onesided_psd_scale

SPECTROGRAM_MODES = ("psd", "angle", "phase")


def stft(x: torch.Tensor, config: RepresentationConfig) -> torch.Tensor:
    """One-sided STFT (N, F, K) of (N, T) signals."""
    nfft = config.nfft
    if x.shape[1] < nfft:  # mlab zero-pads signals shorter than one segment
        x = F.pad(x, (0, nfft - x.shape[1]))
    return torch.stft(
        x,
        n_fft=nfft,
        hop_length=config.hop,
        win_length=nfft,
        window=hann(nfft, x.device),
        center=False,
        onesided=True,
        return_complex=True,
    )


def psd_db(spec: torch.Tensor, fs: float, config: RepresentationConfig) -> torch.Tensor:
    """Power spectral density in dB, scaled like ``mlab`` with ``scale_by_freq=True``."""
    power = (spec.real.square() + spec.imag.square()) * onesided_psd_scale(config.nfft, float(fs), spec.device)
    floor = power.amax(dim=(1, 2), keepdim=True) * 10.0 ** (-config.db_range / 10.0)
    return 10.0 * torch.log10(torch.maximum(power, floor).clamp_min(torch.finfo(power.dtype).tiny))


def angle(spec: torch.Tensor, nfft: int) -> torch.Tensor:
    """Phase angle in (-pi, pi]. The DC bin (and the Nyquist bin for even ``nfft``) of a
    real signal is real; its angle is set to exactly 0 or pi from the sign of the real
    part, as numpy's FFT gives (rounding noise in the imaginary part would otherwise
    flip it between -pi and pi and shift whole unwrapped columns by 2 pi)."""
    ang = torch.angle(spec)
    real_rows = [0, spec.shape[1] - 1] if nfft % 2 == 0 else [0]
    for r in real_rows:
        ang[:, r] = torch.where(spec.real[:, r] < 0, math.pi, 0.0)
    return ang


def unwrap(phase: torch.Tensor, dim: int) -> torch.Tensor:
    """``numpy.unwrap`` (discont = pi, period = 2 pi) along ``dim``, batched in torch."""
    dd = torch.diff(phase, dim=dim)
    ddmod = torch.remainder(dd + math.pi, 2 * math.pi) - math.pi
    ddmod = torch.where((ddmod == -math.pi) & (dd > 0), math.pi, ddmod)
    correct = torch.where(dd.abs() < math.pi, 0.0, ddmod - dd)
    first = phase.narrow(dim, 0, 1)
    rest = phase.narrow(dim, 1, phase.shape[dim] - 1) + torch.cumsum(correct, dim=dim)
    return torch.cat([first, rest], dim=dim)


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1] over the last two dims; a constant image becomes 0."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - lo
    return (maps - lo) / torch.where(span > 0, span, torch.inf)


def spectrogram_maps(x: torch.Tensor, modes: tuple[str, ...], fs: float, config: RepresentationConfig) -> torch.Tensor:
    """(N, T) signals -> (N, len(modes), F, K) normalised maps, row 0 = DC."""
    for m in modes:
        if m not in SPECTROGRAM_MODES:
            raise ValueError(f"unknown spectrogram mode {m!r}; known: {', '.join(SPECTROGRAM_MODES)}")
    spec = stft(x, config)
    maps = []
    ang = None
    for m in modes:
        if m == "psd":
            maps.append(psd_db(spec, fs, config))
        else:
            if ang is None:
                ang = angle(spec, config.nfft)
            maps.append(ang if m == "angle" else unwrap(ang, dim=1))
    return normalise(torch.stack(maps, dim=1))


def spectrogram_images(
    x: torch.Tensor,
    modes: tuple[str, ...],
    fs: float,
    size: int,
    config: RepresentationConfig,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, T) signals -> (N, len(modes), 3, size, size) viridis images in [0, 1].

    The frequency axis is resized on the scalar maps (and flipped: low frequencies at
    the bottom) by a cheap gather, then coloured; the time axis is resized on the RGB
    planes by one batched GEMM that writes into ``out`` directly (when given, e.g. a
    slice of :func:`~core.representations.render`'s result), so each full-size plane is
    written exactly once.
    """
    maps = spectrogram_maps(x, modes, fs, config)  # (N, M, F, K)
    n, m, f, k = maps.shape
    if out is None:
        out = torch.empty((n, m, 3, size, size), dtype=torch.float32, device=x.device)
    i0, i1, lam = linear_taps(f, size, x.device)
    top = f - 1  # image row 0 shows the highest frequency
    tall = torch.lerp(maps.index_select(2, top - i0), maps.index_select(2, top - i1), lam.view(size, 1))
    coloured = apply_colormap(tall, viridis_lut(x.device))  # (N, M, 3, size, K)
    wx = interpolation_matrix(k, size, x.device)
    # view (never a silent copy): the product must land in the caller's tensor
    torch.bmm(coloured.reshape(n, m * 3 * size, k), wx.expand(n, k, size), out=out.view(n, m * 3 * size, size))
    return out
