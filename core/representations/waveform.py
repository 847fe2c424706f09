"""The ``waveform`` representation: the signal as a dark line on a white background.

A batched rasteriser in torch, so a whole batch of windows is drawn in a few tensor ops
on CPU or GPU instead of one matplotlib figure per image. Geometry matches a full-bleed
matplotlib plot with ``xlim = (0, T - 1)``: sample ``i`` lies at ``x = i * size / (T - 1)``
pixels and the value range fills the height less :attr:`RepresentationConfig.margin`.

Per pixel column the line covers every value the polyline takes inside that column (the
samples that fall in it plus the interpolated values at its two edges, which also
connects neighbouring columns); that vertical span, widened by the line width, is drawn
with exact fractional coverage at its ends (cheap anti-aliasing).
"""

from __future__ import annotations

import torch

from core.representations.config import RepresentationConfig
from core.representations.geometry import pixel_rows, waveform_columns


def line_spans(x: torch.Tensor, size: int, config: RepresentationConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and bottom (N, size) row coordinates of the line in each pixel column."""
    n, t = x.shape
    lo = x.amin(dim=1, keepdim=True)
    hi = x.amax(dim=1, keepdim=True)
    span = hi - lo
    flat = span <= 1e-7 * torch.maximum(hi.abs(), lo.abs())
    usable = size - 2.0 * config.margin
    scale = torch.where(flat, torch.zeros_like(span), usable / torch.where(flat, torch.ones_like(span), span))
    offset = torch.where(flat, torch.full_like(span, size / 2.0), torch.full_like(span, config.margin))
    y = offset + (hi - x) * scale  # row coordinate, 0 = top edge; flat signals in the middle

    i0, w, col = waveform_columns(t, size, x.device)
    edges = torch.lerp(y[:, i0], y[:, i0 + 1], w)  # polyline at the column edges
    top = torch.minimum(edges[:, :-1], edges[:, 1:])
    bottom = torch.maximum(edges[:, :-1], edges[:, 1:])
    index = col.unsqueeze(0).expand(n, t)
    top = top.scatter_reduce(1, index, y, reduce="amin", include_self=True)
    bottom = bottom.scatter_reduce(1, index, y, reduce="amax", include_self=True)
    half = config.line_width / 2.0
    return top - half, bottom + half


def waveform_images(
    x: torch.Tensor, size: int, config: RepresentationConfig, out: torch.Tensor | None = None
) -> torch.Tensor:
    """(N, T) signals -> (N, 3, size, size) RGB images: white, with a black line.

    ``out`` (may be a strided view into a larger batch) receives the images directly,
    so the full-size planes are written once.
    """
    n = x.shape[0]
    if out is None:
        out = torch.empty((n, 3, size, size), dtype=torch.float32, device=x.device)
    top, bottom = line_spans(x, size, config)
    rows, rows1 = pixel_rows(size, x.device)
    plane = out[:, 0]
    # 1 - coverage = 1 - clamp(min(r+1, b) - max(r, a), 0, 1)
    torch.maximum(rows, top.unsqueeze(1), out=plane)
    plane.sub_(torch.minimum(rows1, bottom.unsqueeze(1))).clamp_(-1.0, 0.0).add_(1.0)
    out[:, 1:] = plane.unsqueeze(1)
    return out
