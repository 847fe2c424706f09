"""Applying a colormap lookup table to normalised images, batched on any device."""

from __future__ import annotations

import torch

from core.representations.viridis import VIRIDIS

_CACHE: dict[tuple[str, torch.device], torch.Tensor] = {}


def viridis_lut(device: torch.device) -> torch.Tensor:
    """The (256, 3) float32 viridis table on ``device`` (built once per device)."""
    key = ("viridis", device)
    lut = _CACHE.get(key)
    if lut is None:
        lut = torch.tensor(VIRIDIS, dtype=torch.float32, device=device)
        _CACHE[key] = lut
    return lut


def apply_colormap(values: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Map values in [0, 1] of shape (..., H, W) to RGB (..., 3, H, W).

    Quantised like matplotlib's ``Colormap.__call__`` (``int(v * N)``, 1.0 -> last entry),
    so our colours are the ones a matplotlib figure would show.
    """
    n = lut.shape[0]
    idx = (values * n).to(torch.long).clamp_(0, n - 1)
    # index_select on the flat index is several times faster than lut[idx] on CPU
    rgb = lut.index_select(0, idx.reshape(-1)).view(*idx.shape, 3)
    return rgb.movedim(-1, -3)
