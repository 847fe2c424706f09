"""Small building blocks shared by both Tiny-BioMoE experts.

Module and attribute names here are part of the checkpoint format: they produce the state-dict
keys of the released ``Tiny-BioMoE.pth`` (e.g. ``...c.weight`` / ``...bn.running_var``), so they
must not be renamed.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Sequential):
    """Bias-free convolution followed by BatchNorm (keys ``c.*`` and ``bn.*``).

    Kept as two modules, not pre-fused, so the released checkpoint loads unchanged; the fast
    inference path folds the BatchNorm into the convolution after loading (:func:`fold_conv_bn`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.add_module(
            "c", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        )
        self.add_module("bn", nn.BatchNorm2d(out_channels))


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution equivalent to ``bn(conv(x))`` in eval mode.

    Computed in float64 so folding adds no rounding error of its own beyond the final cast.
    """
    w = conv.weight.detach().double()
    assert bn.running_mean is not None and bn.running_var is not None, "BatchNorm without running statistics"
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(bn.running_var).double()
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(bn.running_mean).double()
    scale = gamma / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(scale)
    folded_w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    folded_b = (bias - bn.running_mean.detach().double()) * scale + beta
    return folded_w.float(), folded_b.float()


class Residual(nn.Module):
    """``x + m(x)``; the wrapped module sits under the key prefix ``m``."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)
