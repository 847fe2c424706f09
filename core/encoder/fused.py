"""Inference-only conv and linear layers with BatchNorm folded in and activations fused.

On CPU in float32 (and bf16 where oneDNN supports it) they call oneDNN's fused primitives
(``torch.ops.mkldnn._convolution_pointwise`` / ``_linear_pointwise``), which apply the
activation or the residual add inside the convolution/matmul instead of in another pass over
memory. Everywhere else (CUDA, MPS, fp16, or a torch without those ops) they fall back to the
plain functional ops, giving the same result.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F
from torch import nn

from core.encoder.precision import onednn_supports_bf16

log = logging.getLogger(__name__)

ACTIVATIONS = (None, "relu", "gelu")


@functools.lru_cache(maxsize=1)
def onednn_fusion_available() -> bool:
    """True when this torch has oneDNN's fused conv/linear ops and they run here."""
    mk = getattr(torch.ops, "mkldnn", None)
    if mk is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        x = torch.ones(1, 2, 3, 3).contiguous(memory_format=torch.channels_last)
        w = torch.ones(2, 1, 3, 3)
        mk._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 2, "relu", [], "")
        mk._convolution_pointwise.binary(x, x, w, None, [1, 1], [1, 1], [1, 1], 2, "add", None, None, [], None)
        t = torch.ones(4, 2)
        mk._linear_pointwise(t, torch.ones(3, 2), None, "gelu", [], "none")
        mk._linear_pointwise.binary(t, torch.ones(4, 3), torch.ones(3, 2), None, "add")
    except (RuntimeError, AttributeError, NotImplementedError) as exc:
        log.info("oneDNN fused ops unavailable (%s); using plain ops", exc)
        return False
    return True


def use_onednn(x: torch.Tensor, allow: bool) -> bool:
    """Whether a fused oneDNN call can take ``x`` (CPU, fp32 or oneDNN-supported bf16)."""
    if not allow or x.device.type != "cpu" or not onednn_fusion_available():
        return False
    return x.dtype == torch.float32 or (x.dtype == torch.bfloat16 and onednn_supports_bf16())


def _activate(y: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "relu":
        return F.relu(y)
    if act == "gelu":
        return F.gelu(y)
    return y


class FusedConv2d(nn.Module):
    """``act(conv(x) + bias) [+ residual]`` with frozen weights (BatchNorm already folded in).

    A residual is only fused when there is no activation (the order in Tiny-BioMoE is
    ``x + conv(x)``, never ``act(x + conv(x))``).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        act: str | None = None,
        dtype: torch.dtype = torch.float32,
        onednn: bool = True,
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}")
        # channels-last weights match the channels-last activations; a contiguous (OIHW) weight
        # was re-laid-out by oneDNN on every call (measured as weight-sized copies per forward)
        w = weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        self.register_buffer("weight", w, persistent=False)
        self.register_buffer("bias", None if bias is None else bias.detach().to(dtype), persistent=False)
        self.stride, self.padding, self.groups, self.act = stride, padding, groups, act
        self.onednn = onednn

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, **kw) -> FusedConv2d:
        """Build from a reference conv (and the BatchNorm that follows it, folded in)."""
        from core.encoder.layers import fold_conv_bn

        b: torch.Tensor | None
        if bn is not None:
            w, b = fold_conv_bn(conv, bn)
        else:
            w, b = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
        padding = conv.padding
        if isinstance(padding, str):
            raise ValueError(f"padding={padding!r} convolutions are not supported; give explicit padding")
        return cls(w, b, conv.stride[0], padding[0], conv.groups, **kw)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if use_onednn(x, self.onednn):
            pad, stride = [self.padding] * 2, [self.stride] * 2
            if residual is None:
                algo = "none" if self.act == "gelu" else ""
                return torch.ops.mkldnn._convolution_pointwise(
                    x, self.weight, self.bias, pad, stride, [1, 1], self.groups, self.act or "none", [], algo
                )
            if self.act is None and residual.dtype == x.dtype:
                residual = residual.contiguous(memory_format=torch.channels_last)
                return torch.ops.mkldnn._convolution_pointwise.binary(
                    x, residual, self.weight, self.bias, pad, stride, [1, 1], self.groups, "add", None, None, [], None
                )
        y = _activate(F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups), self.act)
        return y if residual is None else y + residual


class FusedLinear(nn.Module):
    """``act(x @ W.T + b) [+ residual]`` over the last dimension, with frozen weights."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, act: str | None = None,
                 dtype: torch.dtype = torch.float32, onednn: bool = True) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}")
        self.register_buffer("weight", weight.detach().to(dtype).contiguous(), persistent=False)
        self.register_buffer("bias", None if bias is None else bias.detach().to(dtype), persistent=False)
        self.act = act
        self.onednn = onednn

    @classmethod
    def from_linear(cls, *layers: nn.Linear | nn.Conv2d, **kw) -> FusedLinear:
        """Build from one linear (or 1x1 conv), or several stacked along the output (e.g. q and kv)."""
        ws, bs = [], []
        for layer in layers:
            w = layer.weight.detach()
            ws.append(w.reshape(w.shape[0], -1))
            bs.append(layer.bias.detach() if layer.bias is not None else torch.zeros(w.shape[0]))
        return cls(torch.cat(ws), torch.cat(bs), **kw)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if use_onednn(x, self.onednn) and x.is_contiguous():
            lead = x.shape[:-1]
            x2 = x.reshape(-1, x.shape[-1])
            if residual is None:
                algo = "none" if self.act == "gelu" else ""
                y = torch.ops.mkldnn._linear_pointwise(x2, self.weight, self.bias, self.act or "none", [], algo)
                return y.view(*lead, -1)
            if self.act is None and residual.dtype == x.dtype:
                r2 = residual.reshape(-1, residual.shape[-1]).contiguous()
                y = torch.ops.mkldnn._linear_pointwise.binary(x2, r2, self.weight, self.bias, "add")
                return y.view(*lead, -1)
        y = _activate(F.linear(x, self.weight, self.bias), self.act)
        return y if residual is None else y + residual
