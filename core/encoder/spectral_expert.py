"""Expert 1 of Tiny-BioMoE: a small SpectFormer (``enc1`` in the checkpoint).

A convolutional stem, then four stages of one block each (widths 64/128/320/96). Stages 1-2 mix
tokens with a learnt spectral gating filter, stages 3-4 with multi-head self-attention; every
block's MLP has a depth-wise 3x3 convolution between its two linear layers. A class-attention
block reads out a mean token, which the last stage norm turns into the 96-D expert vector.

This is the *reference* implementation: it follows the published order of operations so the
embedding matches the released model; :mod:`core.encoder.fast` holds the optimised inference path.
"""

from __future__ import annotations

import torch
from torch import nn

STEM_HIDDEN = 32
WIDTHS = (64, 128, 320, 96)
HEADS = (2, 4, 10, 16)  # only stages 3-4 (and the class block) use heads
MLP_RATIOS = (8, 8, 4, 4)
SPECTRAL_STAGES = 2
"""Stages 1..SPECTRAL_STAGES use the spectral filter; the rest use self-attention."""
TOKEN_GRIDS = (56, 28, 14, 7)
"""Token grid side per stage for a 224x224 input; the spectral weights are sized for it."""
NORM_EPS = 1e-6
"""Block and stage norms use eps 1e-6; the stem/downsample norms use torch's default 1e-5."""


def _tokens_to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, C) tokens -> (B, C, H, W) feature map (a view when possible)."""
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, h, w)


class ConvStem(nn.Module):
    """Three conv+BN+ReLU layers at 1/2 resolution, then a strided conv to 1/4 and a LayerNorm."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(hidden, out_channels, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(self.conv(x))
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class Downsample(nn.Module):
    """Strided 3x3 conv between stages (halves the grid), then a LayerNorm over channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class SpectralGating(nn.Module):
    """Global token mixing by a learnt filter in the 2-D Fourier domain of the token grid.

    ``irfft2(rfft2(x) * W)`` with orthonormal scaling; the complex weight is stored as
    (H, W//2+1, C, 2) real pairs, which fixes the grid size the block accepts. Always computed in
    float32: the filter is a global sum over the grid, so reduced precision loses accuracy here.
    """

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.complex_weight = nn.Parameter(torch.randn(grid, grid // 2 + 1, dim, 2) * 0.02)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        if (h, w) != (self.grid, self.grid):
            raise ValueError(f"spectral filter is sized for a {self.grid}x{self.grid} grid, got {h}x{w}")
        x = x.view(b, h, w, c).float()
        spec = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
        spec = spec * torch.view_as_complex(self.complex_weight.float())
        return torch.fft.irfft2(spec, s=(h, w), dim=(1, 2), norm="ortho").reshape(b, n, c)


class SelfAttention(nn.Module):
    """Plain multi-head self-attention over all tokens (separate ``q`` and ``kv`` projections)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        k, v = self.kv(x).reshape(b, n, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class DepthwiseConv(nn.Module):
    """3x3 depth-wise conv applied to a token sequence laid out on an H x W grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.dwconv(_tokens_to_map(x, h, w)).flatten(2).transpose(1, 2)


class ConvMlp(nn.Module):
    """Linear -> depth-wise 3x3 conv -> GELU -> Linear (the conv adds local position cues)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))


class TokenBlock(nn.Module):
    """Pre-norm block: ``x + mixer(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, spectral: bool, grid: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn: nn.Module = SpectralGating(dim, grid) if spectral else SelfAttention(dim, heads)
        self.mlp = ConvMlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class ClassAttention(nn.Module):
    """Attention in which only the first (class) token queries all tokens."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.kv = nn.Linear(dim, dim * 2)
        self.q = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        k, v = self.kv(x).reshape(b, n, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        q = self.q(x[:, :1]).reshape(b, self.heads, 1, d)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, 1, c))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ClassBlock(nn.Module):
    """Updates only the class token (position 0) from all tokens; the rest pass through."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = ClassAttention(dim, heads)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x[:, :1] + self.attn(self.norm1(x))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)


class SpectralExpert(nn.Module):
    """The SpectFormer expert: (B, 3, 224, 224) normalised image -> (B, 96)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        for i, dim in enumerate(WIDTHS):
            embed = ConvStem(in_channels, STEM_HIDDEN, dim) if i == 0 else Downsample(WIDTHS[i - 1], dim)
            block = TokenBlock(dim, HEADS[i], MLP_RATIOS[i], spectral=i < SPECTRAL_STAGES, grid=TOKEN_GRIDS[i])
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", nn.ModuleList([block]))
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dim, eps=NORM_EPS))
        self.post_network = nn.ModuleList([ClassBlock(WIDTHS[-1], HEADS[-1], MLP_RATIOS[-1])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        last = len(WIDTHS) - 1
        for i in range(len(WIDTHS)):
            x, h, w = getattr(self, f"patch_embed{i + 1}")(x)
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x, h, w)
            if i != last:
                x = getattr(self, f"norm{i + 1}")(x)
                x = x.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        for blk in self.post_network:
            x = blk(x)
        return getattr(self, f"norm{last + 1}")(x[:, 0])
