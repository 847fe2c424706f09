"""Expert 2 of Tiny-BioMoE: a small EfficientViT (``enc2`` in the checkpoint).

A conv+BN patch embedding to 1/16 resolution (14x14), then three stages of widths 192/288/96 with
one block each: depth-wise conv, FFN, cascaded group attention in 7x7 local windows, depth-wise
conv, FFN - each a residual. Subsample blocks (with a squeeze-excite patch merge) sit between
stages; global average pooling gives the 96-D expert vector.

The attention bias table is gathered from the learnt ``attention_biases`` on every forward here,
never cached: the released code caches it at ``.eval()`` time, so weights loaded afterwards were
silently ignored. The fast path (:mod:`core.encoder.fast`) precomputes it once per load instead.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from core.encoder.layers import ConvBN, Residual

WIDTHS = (192, 288, 96)
HEADS = (3, 3, 4)
KEY_DIM = 16
WINDOW = 7
QUERY_KERNELS = (7, 5, 3, 3)
GRID = 14
"""Token grid side after the patch embedding of a 224x224 image."""


def relative_offset_index(side: int) -> torch.Tensor:
    """(N, N) index of the |dy|, |dx| offset class for every pair of cells of a side x side grid.

    Offsets are numbered in order of first appearance, row-major, which is what the learnt
    ``attention_biases`` columns refer to.
    """
    points = list(itertools.product(range(side), range(side)))
    seen: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(seen.setdefault(off, len(seen)))
    n = len(points)
    return torch.tensor(idxs, dtype=torch.int64).view(n, n)


class FeedForward(nn.Module):
    """1x1 conv expansion (x2), ReLU, 1x1 conv back."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.pw1 = ConvBN(dim, hidden)
        self.act = nn.ReLU()
        self.pw2 = ConvBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


class CascadedGroupAttention(nn.Module):
    """Each head sees one channel slice plus the previous head's output (a cascade).

    Queries get a depth-wise conv (kernel per head) before attention; a learnt bias per relative
    offset is added to the attention logits.
    """

    attention_bias_idxs: torch.Tensor

    def __init__(
        self, dim: int, key_dim: int, heads: int, attn_ratio: float, side: int, kernels: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.heads = heads
        self.key_dim = key_dim
        self.scale = key_dim**-0.5
        self.d = int(attn_ratio * key_dim)
        idx = relative_offset_index(side)
        self.attention_biases = nn.Parameter(torch.zeros(heads, int(idx.max()) + 1))
        self.register_buffer("attention_bias_idxs", idx)
        self.qkvs = nn.ModuleList([ConvBN(dim // heads, key_dim * 2 + self.d) for _ in range(heads)])
        self.dws = nn.ModuleList(
            [ConvBN(key_dim, key_dim, kernels[i], 1, kernels[i] // 2, groups=key_dim) for i in range(heads)]
        )
        self.proj = nn.Sequential(nn.ReLU(), ConvBN(self.d * heads, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        bias = self.attention_biases[:, self.attention_bias_idxs]  # fresh every call: no stale cache
        chunks = x.chunk(self.heads, dim=1)
        outs = []
        feat = chunks[0]
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws, strict=True)):
            if i > 0:
                feat = feat + chunks[i]
            q, k, v = qkv(feat).view(b, -1, h, w).split([self.key_dim, self.key_dim, self.d], dim=1)
            q = dw(q)
            q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)
            attn = ((q.transpose(-2, -1) @ k) * self.scale + bias[i]).softmax(dim=-1)
            feat = (v @ attn.transpose(-2, -1)).view(b, self.d, h, w)
            outs.append(feat)
        return self.proj(torch.cat(outs, 1))


class LocalWindowAttention(nn.Module):
    """Runs :class:`CascadedGroupAttention` inside non-overlapping windows of the grid."""

    def __init__(self, dim: int, key_dim: int, heads: int, attn_ratio: float, resolution: int, window: int,
                 kernels: tuple[int, ...]) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = window
        self.attn = CascadedGroupAttention(dim, key_dim, heads, attn_ratio, min(window, resolution), kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if (h, w) != (self.resolution, self.resolution):
            raise ValueError(f"expected a {self.resolution}x{self.resolution} grid, got {h}x{w}")
        win = self.window
        if h <= win and w <= win:
            return self.attn(x)
        pad_b, pad_r = (win - h % win) % win, (win - w % win) % win
        x = x.permute(0, 2, 3, 1)
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // win, pw // win
        x = x.view(b, nh, win, nw, win, c).transpose(2, 3).reshape(b * nh * nw, win, win, c).permute(0, 3, 1, 2)
        x = self.attn(x)
        x = x.permute(0, 2, 3, 1).view(b, nh, nw, win, win, c).transpose(2, 3).reshape(b, ph, pw, c)
        if pad_b or pad_r:
            x = x[:, :h, :w].contiguous()
        return x.permute(0, 3, 1, 2)


class AttentionBlock(nn.Module):
    """dw-conv, FFN, windowed attention, dw-conv, FFN - each wrapped in a residual."""

    def __init__(self, dim: int, heads: int, resolution: int) -> None:
        super().__init__()
        ratio = dim / (KEY_DIM * heads)
        self.dw0 = Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim))
        self.ffn0 = Residual(FeedForward(dim, dim * 2))
        self.mixer = Residual(LocalWindowAttention(dim, KEY_DIM, heads, ratio, resolution, WINDOW, QUERY_KERNELS))
        self.dw1 = Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim))
        self.ffn1 = Residual(FeedForward(dim, dim * 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))


class SqueezeExcite(nn.Module):
    """Channel gating from the global mean: 1x1 conv down (1/4), ReLU, 1x1 conv up, sigmoid."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * s.sigmoid()


class PatchMerging(nn.Module):
    """Halves the grid: 1x1 expand (x4), stride-2 depth-wise 3x3, squeeze-excite, 1x1 project."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        hidden = dim * 4
        self.conv1 = ConvBN(dim, hidden)
        self.act = nn.ReLU()
        self.conv2 = ConvBN(hidden, hidden, 3, 2, 1, groups=hidden)
        self.se = SqueezeExcite(hidden, hidden // 4)
        self.conv3 = ConvBN(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.se(self.act(self.conv2(self.act(self.conv1(x))))))


def _local_conv_ffn(dim: int) -> nn.Sequential:
    """Residual depth-wise conv + residual FFN, used on both sides of a patch merge."""
    return nn.Sequential(Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim)), Residual(FeedForward(dim, dim * 2)))


class WindowExpert(nn.Module):
    """The EfficientViT expert: (B, 3, 224, 224) normalised image -> (B, 96)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        e0 = WIDTHS[0]
        self.patch_embed = nn.Sequential(
            ConvBN(in_channels, e0 // 8, 3, 2, 1), nn.ReLU(),
            ConvBN(e0 // 8, e0 // 4, 3, 2, 1), nn.ReLU(),
            ConvBN(e0 // 4, e0 // 2, 3, 2, 1), nn.ReLU(),
            ConvBN(e0 // 2, e0, 3, 2, 1),
        )
        resolution = GRID
        stages: list[list[nn.Module]] = [[] for _ in WIDTHS]
        for i, (dim, heads) in enumerate(zip(WIDTHS, HEADS, strict=True)):
            # stage i+1 starts with the merge from stage i, then its own attention block
            stages[i].append(AttentionBlock(dim, heads, resolution))
            if i + 1 < len(WIDTHS):
                nxt = stages[i + 1]
                nxt.append(_local_conv_ffn(dim))
                nxt.append(PatchMerging(dim, WIDTHS[i + 1]))
                resolution = (resolution - 1) // 2 + 1
                nxt.append(_local_conv_ffn(WIDTHS[i + 1]))
        self.blocks1 = nn.Sequential(*stages[0])
        self.blocks2 = nn.Sequential(*stages[1])
        self.blocks3 = nn.Sequential(*stages[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks3(self.blocks2(self.blocks1(self.patch_embed(x))))
        return x.mean((2, 3))
