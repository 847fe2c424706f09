"""Index and weight tables that depend only on shapes, cached per device.

Rendering the same window length at the same size every second would otherwise rebuild
these small tensors on every call; on CPU the per-op overhead of doing so is a sizeable
share of a 4-window batch.
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=64)
def linear_taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices (i0, i1) and weight of i1 for resizing ``n_in`` -> ``n_out`` points
    bilinearly with half-pixel centres, exactly as ``F.interpolate(align_corners=False)``."""
    dst = torch.arange(n_out, dtype=torch.float64)
    src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp_(min=0.0)
    i0 = src.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    lam = (src - i0.double()).float()
    return i0.to(device), i1.to(device), lam.to(device)


@lru_cache(maxsize=64)
def interpolation_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """(n_in, n_out) matrix M with ``x @ M`` = the linear resize of rows ``x``.

    Used for the long axis of spectrograms: as a GEMM it writes straight into the
    caller's output tensor, which ``F.interpolate`` cannot, and BLAS beats the generic
    upsampling kernel on CPU at these sizes.
    """
    i0, i1, lam = (t.cpu() for t in linear_taps(n_in, n_out, torch.device("cpu")))
    m = torch.zeros((n_in, n_out), dtype=torch.float32)
    cols = torch.arange(n_out)
    m.index_put_((i0, cols), 1.0 - lam, accumulate=True)
    m.index_put_((i1, cols), lam, accumulate=True)
    return m.to(device)


@lru_cache(maxsize=64)
def waveform_columns(t: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For a ``t``-sample polyline spanning ``size`` pixel columns: sample index left of
    each column edge, the weight of the next sample there, and each sample's column."""
    pos = torch.arange(size + 1, dtype=torch.float64) * ((t - 1) / size)
    i0 = pos.floor().long().clamp_(0, t - 2)
    w = (pos - i0.double()).float()
    col = (torch.arange(t, dtype=torch.float64) * (size / (t - 1))).floor().long().clamp_(0, size - 1)
    return i0.to(device), w.to(device), col.to(device)


@lru_cache(maxsize=16)
def pixel_rows(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and bottom edge coordinates of each pixel row, shaped (1, size, 1)."""
    rows = torch.arange(size, dtype=torch.float32).view(1, size, 1)
    return rows.to(device), (rows + 1.0).to(device)


@lru_cache(maxsize=16)
def hann(nfft: int, device: torch.device) -> torch.Tensor:
    """Symmetric Hann window, as ``numpy.hanning`` / ``mlab.window_hanning``."""
    return torch.hann_window(nfft, periodic=False, dtype=torch.float32, device=device)


@lru_cache(maxsize=16)
def onesided_psd_scale(nfft: int, fs: float, device: torch.device) -> torch.Tensor:
    """(F, 1) factors turning ``|X|^2`` into mlab's one-sided PSD density."""
    n_freq = nfft // 2 + 1
    scale = torch.full((n_freq, 1), 2.0, dtype=torch.float64)
    scale[0] = 1.0
    if nfft % 2 == 0:
        scale[-1] = 1.0
    window = torch.hann_window(nfft, periodic=False, dtype=torch.float64)
    return (scale / (fs * window.square().sum())).float().to(device)
