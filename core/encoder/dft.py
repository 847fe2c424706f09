"""The spectral gating filter as fixed real DFT matmuls (for graph runtimes such as OpenVINO).

``irfft2(rfft2(u) * W)`` over a small token grid (56x56 and 28x28 in Tiny-BioMoE) is linear in
``u`` and separable, so it is exactly a short chain of small matmuls with constant cosine/sine
matrices plus one complex (real-pair) product with the learnt weight. Graph runtimes fuse
matmuls with their neighbours but run FFT ops as separate, slow kernels (in OpenVINO the
FFT ops took 27 % of the encoder's time); as matmuls the filter costs a few percent. In float64
the two forms agree to rounding (~1e-16 relative); in float32 to ~1e-7.

Layout: tokens ``u`` are (B, H, W, C) as in :mod:`core.encoder.fast`. With ``n = 1/sqrt(H W)``
(``norm="ortho"``) and ``K = W // 2 + 1``:

1. along W (real -> half spectrum):  ``X = u_w @ [cos | -sin]``           (W -> 2K)
2. along H (complex DFT):            ``Y = [[C, S], [-S, C]] @ [Xr; Xi]``   (2H x 2H, left)
3. the learnt weight (a + ib):       ``Z = (Yr a - Yi b) + i (Yr b + Yi a)``
4. inverse along H:                  ``U = [[C, -S], [S, C]] @ [Zr; Zi]``
5. along W (half spectrum -> real):  ``y = Ur @ Dc + Ui @ Ds``, with ``Dc = c_k cos``, ``Ds = -c_k sin``
   and ``c_k`` = 1 for the DC and Nyquist bins, 2 otherwise (the Hermitian half counted twice;
   the imaginary parts of those two bins drop out, as in ``irfft``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def dft_matrices(h: int, w: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Constant matrices of the separable orthonormal real 2-D DFT of an h x w grid.

    Computed in float64 (angles reduced modulo the period first, so no large-argument rounding)
    and cast once to ``dtype``.
    """
    k = w // 2 + 1
    # along W: forward (W, 2K) = [cos | -sin] / sqrt(W)
    cols, bins = torch.arange(w, dtype=torch.float64), torch.arange(k, dtype=torch.float64)
    ang_w = 2 * math.pi * ((cols[:, None] * bins[None, :]) % w) / w
    fw = torch.cat([torch.cos(ang_w), -torch.sin(ang_w)], dim=1) / math.sqrt(w)
    # along W, inverse (K, W) halves, with the Hermitian weights c_k
    ck = torch.full((k,), 2.0, dtype=torch.float64)
    ck[0] = 1.0
    if w % 2 == 0:
        ck[-1] = 1.0
    dc = (ck[:, None] * torch.cos(ang_w.T)) / math.sqrt(w)
    ds = (-ck[:, None] * torch.sin(ang_w.T)) / math.sqrt(w)
    # along H: symmetric cos/sin (H, H)
    idx = torch.arange(h, dtype=torch.float64)
    ang_h = 2 * math.pi * ((idx[:, None] * idx[None, :]) % h) / h
    ch, sh = torch.cos(ang_h) / math.sqrt(h), torch.sin(ang_h) / math.sqrt(h)
    fwd_h = torch.cat([torch.cat([ch, sh], dim=1), torch.cat([-sh, ch], dim=1)], dim=0)
    inv_h = torch.cat([torch.cat([ch, -sh], dim=1), torch.cat([sh, ch], dim=1)], dim=0)
    mats = {"fw": fw, "fwd_h": fwd_h, "inv_h": inv_h, "dc": dc, "ds": ds}
    return {name: m.to(dtype).contiguous() for name, m in mats.items()}


def spectral_filter_fft(u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The reference form: ``irfft2(rfft2(u) * W)`` over dims (1, 2) of (B, H, W, C) tokens.

    ``weight`` is (H, W // 2 + 1, C, 2) real pairs. Runs in ``u``'s precision (float32 or float64).
    """
    _, h, w, _ = u.shape
    cw = torch.view_as_complex(weight.to(u.dtype).contiguous())
    spec = torch.fft.rfft2(u, dim=(1, 2), norm="ortho") * cw
    return torch.fft.irfft2(spec, s=(h, w), dim=(1, 2), norm="ortho")


class DFTSpectralFilter(nn.Module):
    """``irfft2(rfft2(u) * W, norm="ortho")`` on (B, H, W, C) tokens, as matmuls.

    Args:
        weight: the learnt complex weight as (H, W // 2 + 1, C, 2) real pairs (``complex_weight``
            of :class:`core.encoder.spectral_expert.SpectralGating`).
        dtype: precision of the constants and the computation (float32 or float64).
        width: the grid's width W (default: square, W = H; ``W // 2 + 1`` alone cannot tell
            an odd width from the even one below it).

    Shape:
        - input: (B, H, W, C), the grid the weight was learnt for (:meth:`forward_map`: (B, C, H, W))
        - output: same shape as the input, the module's dtype
    """

    fw: torch.Tensor
    fwd_h: torch.Tensor
    inv_h: torch.Tensor
    dc: torch.Tensor
    ds: torch.Tensor
    wa: torch.Tensor
    wb: torch.Tensor

    def __init__(self, weight: torch.Tensor, dtype: torch.dtype = torch.float32, width: int | None = None) -> None:
        super().__init__()
        h, k, c, _ = weight.shape
        w = h if width is None else width
        if w // 2 + 1 != k:
            raise ValueError(f"weight of shape {tuple(weight.shape)} does not fit a {h}x{w} grid")
        self.grid = (h, w)
        for name, m in dft_matrices(h, w, dtype).items():
            self.register_buffer(name, m, persistent=False)
        wt = weight.detach().to(torch.float64).permute(2, 0, 1, 3)  # (C, H, K, 2): matches (B, C, H, K)
        self.register_buffer("wa", wt[..., 0].to(dtype).contiguous(), persistent=False)
        self.register_buffer("wb", wt[..., 1].to(dtype).contiguous(), persistent=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.forward_map(u.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def forward_map(self, p: torch.Tensor) -> torch.Tensor:
        """The same filter on a (B, C, H, W) map (the layout the matmuls contract in)."""
        h, w = p.shape[-2:]
        if (h, w) != self.grid:
            raise ValueError(f"DFT spectral filter is sized for a {self.grid[0]}x{self.grid[1]} grid, got {h}x{w}")
        k = w // 2 + 1
        x = torch.matmul(p, self.fw)                                # (B, C, H, 2K) = [Xr | Xi]
        x = torch.cat([x[..., :k], x[..., k:]], dim=2)              # (B, C, 2H, K) = [Xr; Xi]
        y = torch.matmul(self.fwd_h, x)                             # DFT along H
        yr, yi = y[:, :, :h], y[:, :, h:]
        z = torch.cat([yr * self.wa - yi * self.wb, yr * self.wb + yi * self.wa], dim=2)
        v = torch.matmul(self.inv_h, z)                             # inverse DFT along H
        return torch.matmul(v[:, :, :h], self.dc) + torch.matmul(v[:, :, h:], self.ds)  # (B, C, H, W)


__all__ = ["DFTSpectralFilter", "dft_matrices", "spectral_filter_fft"]
