"""Export-friendly torch graphs of the encoder, for converting it to graph runtimes (OpenVINO).

Built from a :class:`~core.encoder.fast.FastTinyBioMoE` in float32 with plain ops (BatchNorm
folded, bias tables gathered, no oneDNN-specific calls), with every spectral filter's
``rfft2``/``irfft2`` replaced by the equivalent fixed DFT matmuls
(:class:`~core.encoder.dft.DFTSpectralFilter`): graph runtimes fuse matmuls but run FFT ops as
slow stand-alone kernels, and exporters reject the complex multiply.

Two layouts:

* ``"fp32"``: one graph, images -> embedding.
* ``"bf16"`` (mixed precision): three graphs, so that each can be compiled with its own precision
  (runtimes apply a precision hint to a whole compiled model; per-node hints had no effect):

  - ``norm_window`` (fp32): images -> (normalised image, EfficientViT vector). The EfficientViT
    expert amplifies rounding about 10,000-fold, so it must stay fp32.
  - ``spectral`` (bf16): normalised image -> SpectFormer map after stage 3. These stages carry
    ~90 % of the SpectFormer FLOPs.
  - ``tail`` (fp32): SpectFormer stage 4, class attention and the gate -> embedding. Keeping this
    small part (<5 % of the FLOPs) in fp32 lifts the cosine similarity to the float64 reference on
    the parity fixture from 0.999988 (all of SpectFormer in bf16) to 0.999995.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from core.encoder.dft import DFTSpectralFilter
from core.encoder.fast import (
    FastTinyBioMoE,
    _FastAttentionBlock,
    _FastConvMlp,
    _FastFFN,
    _FastPatchMerging,
    _FastSpectral,
    _FastSpectralExpert,
    _FastTokenBlock,
    _FastWindowExpert,
    _Norm,
)
from core.encoder.fused import FusedLinear
from core.encoder.model import IMAGE_SIZE

MODES = ("fp32", "bf16")
SPECTRAL_SPLIT = 3
"""SpectFormer stages 1..SPECTRAL_SPLIT run in the reduced-precision graph of the mixed mode."""


@dataclass(frozen=True)
class GraphPart:
    """One graph to convert: a module, its input names/shapes (-1: dynamic batch) and output names."""

    name: str
    module: nn.Module
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[str, ...]
    precision: str
    """``fp32`` or ``bf16``: the inference precision to compile this part with."""

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        return tuple(torch.rand((batch, *shape[1:]), generator=gen) for _, shape in self.inputs)


def _gate(fast: FastTinyBioMoE, z: torch.Tensor) -> torch.Tensor:
    return fast.ln_e(z) * torch.clamp(F.linear(F.elu(z), fast.fcn.weight, fast.fcn.bias), 0.0, 1.0)


def _norm_map(x: torch.Tensor, norm: _Norm) -> torch.Tensor:
    """LayerNorm over the channels of a (B, C, H, W) map (OpenVINO's CPU plugin runs a channel-axis
    normalisation as reductions and element-wise ops however it is written; folding the affine into
    the next 1x1 conv measured no faster)."""
    mu = x.mean(dim=1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(dim=1, keepdim=True)
    return xc / torch.sqrt(var + norm.eps) * norm.weight[:, None, None] + norm.bias[:, None, None]


def _conv1x1(layer: FusedLinear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A token-wise linear layer's weight and bias as a 1x1 convolution's."""
    bias = None if layer.bias is None else layer.bias.detach().clone()
    return layer.weight.detach()[:, :, None, None].contiguous(), bias


class _MapMlp(nn.Module):
    """The SpectFormer block MLP on a (B, C, H, W) map: 1x1 conv -> depth-wise 3x3 + GELU -> 1x1 conv.

    In token layout the depth-wise conv needs the 8x-wide hidden activations transposed to a map
    and back; those transposes and reorders took ~40 % of the converted model's time.
    """

    w1: torch.Tensor
    b1: torch.Tensor | None
    wd: torch.Tensor
    bd: torch.Tensor | None
    w2: torch.Tensor
    b2: torch.Tensor | None

    def __init__(self, mlp: _FastConvMlp) -> None:
        super().__init__()
        (w1, b1), (w2, b2) = _conv1x1(mlp.fc1), _conv1x1(mlp.fc2)
        dw_bias = None if mlp.dw.bias is None else mlp.dw.bias.detach().clone()
        for name, t in (("w1", w1), ("b1", b1), ("wd", mlp.dw.weight.detach().contiguous()), ("bd", dw_bias),
                        ("w2", w2), ("b2", b2)):
            self.register_buffer(name, t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.conv2d(x, self.w1, self.b1)
        h = F.gelu(F.conv2d(h, self.wd, self.bd, padding=1, groups=self.wd.shape[0]))
        return F.conv2d(h, self.w2, self.b2)


class _FFTMapFilter(nn.Module):
    """The spectral filter kept as ``rfft2``/``irfft2`` on a (B, C, H, W) map (for comparison only:
    OpenVINO runs these FFTs as separate kernels, ~27 % of its time)."""

    weight: torch.Tensor

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().float().permute(2, 0, 1, 3).contiguous(), persistent=False)

    def forward_map(self, p: torch.Tensor) -> torch.Tensor:
        h, w = p.shape[-2:]
        spec = torch.fft.rfft2(p, dim=(2, 3), norm="ortho") * torch.view_as_complex(self.weight)
        return torch.fft.irfft2(spec, s=(h, w), dim=(2, 3), norm="ortho")


class _MapBlock(nn.Module):
    """One SpectFormer token block on a (B, C, H, W) map: spectral filter (DFT matmuls, which
    contract in this layout) or self-attention (on tokens), then the MLP, each with its residual."""

    norm1: _Norm
    norm2: _Norm
    mixer: nn.Module

    def __init__(self, blk: _FastTokenBlock, spectral_filter: str = "dft") -> None:
        super().__init__()
        self.norm1, self.norm2 = blk.norm1, blk.norm2
        self.spectral = blk.spectral
        self.mixer = blk.mixer
        if isinstance(blk.mixer, _FastSpectral):
            weight = blk.mixer.weight.detach().cpu()
            self.mixer = DFTSpectralFilter(weight) if spectral_filter == "dft" else _FFTMapFilter(weight)
        self.mlp = _MapMlp(blk.mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spectral:
            assert isinstance(self.mixer, (DFTSpectralFilter, _FFTMapFilter))
            x = x + self.mixer.forward_map(_norm_map(x, self.norm1))
        else:
            t = x.permute(0, 2, 3, 1)
            x = self.mixer(self.norm1(t), residual=t).permute(0, 3, 1, 2)
        return x + self.mlp(_norm_map(x, self.norm2))


class _MapSpectFormer(nn.Module):
    """The SpectFormer expert with its residual stream kept as (B, C, H, W) maps."""

    stem: nn.ModuleList
    embeds: nn.ModuleList
    embed_norms: nn.ModuleList
    stage_norms: nn.ModuleList
    post: nn.ModuleList

    def __init__(self, enc: _FastSpectralExpert, spectral_filter: str = "dft") -> None:
        super().__init__()
        self.stem = enc.stem
        self.embeds = enc.embeds
        self.embed_norms = enc.embed_norms
        self.stage_norms = enc.stage_norms
        self.blocks = nn.ModuleList(
            [nn.Sequential(*[_MapBlock(cast(_FastTokenBlock, b), spectral_filter) for b in stage.children()])
             for stage in enc.blocks]
        )
        self.post = enc.post

    @property
    def stage_count(self) -> int:
        return len(self.embeds)

    def stages(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Stages ``start..stop-1`` (0-based) on a map; the stem first when ``start == 0``."""
        if start == 0:
            for conv in self.stem:
                x = conv(x)
        last = self.stage_count - 1
        for i in range(start, stop):
            x = _norm_map(self.embeds[i](x), cast(_Norm, self.embed_norms[i]))
            x = self.blocks[i](x)
            if i != last:
                x = _norm_map(x, cast(_Norm, self.stage_norms[i]))
        return x

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """Class attention on the last stage's map -> the 96-D expert vector."""
        tokens = x.flatten(2).transpose(1, 2)
        cls = tokens.mean(dim=1, keepdim=True)
        for blk in self.post:
            cls = blk(cls, tokens)
        return self.stage_norms[self.stage_count - 1](cls[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.stages(x, 0, self.stage_count))


class _MapFFN(nn.Module):
    """EfficientViT's residual FFN on the map: ``x + conv1x1(relu(conv1x1(x)))`` (no transposes)."""

    w1: torch.Tensor
    b1: torch.Tensor | None
    w2: torch.Tensor
    b2: torch.Tensor | None

    def __init__(self, ffn: _FastFFN) -> None:
        super().__init__()
        (w1, b1), (w2, b2) = _conv1x1(ffn.pw1), _conv1x1(ffn.pw2)
        for name, t in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
            self.register_buffer(name, t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.conv2d(F.relu(F.conv2d(x, self.w1, self.b1)), self.w2, self.b2)


class _MapPatchMerging(nn.Module):
    """EfficientViT's subsample block on the map: 1x1 conv + ReLU, strided 3x3 + ReLU, squeeze-excite,
    1x1 conv."""

    w1: torch.Tensor
    b1: torch.Tensor | None
    w3: torch.Tensor
    b3: torch.Tensor | None

    def __init__(self, pm: _FastPatchMerging) -> None:
        super().__init__()
        (w1, b1), (w3, b3) = _conv1x1(pm.conv1), _conv1x1(pm.conv3)
        for name, t in (("w1", w1), ("b1", b1), ("w3", w3), ("b3", b3)):
            self.register_buffer(name, t, persistent=False)
        self.conv2, self.se1, self.se2 = pm.conv2, pm.se1, pm.se2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(F.conv2d(x, self.w1, self.b1)))
        gate = torch.sigmoid(self.se2(self.se1(h.mean(dim=(2, 3)))))
        return F.conv2d(h * gate[:, :, None, None], self.w3, self.b3)


class _MapAttentionBlock(nn.Module):
    """EfficientViT block: the windowed attention needs tokens anyway, its FFNs run on the map."""

    def __init__(self, blk: _FastAttentionBlock) -> None:
        super().__init__()
        self.dw0, self.mixer, self.dw1 = blk.dw0, blk.mixer, blk.dw1
        self.ffn0, self.ffn1 = _MapFFN(blk.ffn0), _MapFFN(blk.ffn1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))


def _map_stage(m: nn.Module) -> nn.Module:
    if isinstance(m, _FastFFN):
        return _MapFFN(m)
    if isinstance(m, _FastPatchMerging):
        return _MapPatchMerging(m)
    if isinstance(m, _FastAttentionBlock):
        return _MapAttentionBlock(m)
    if isinstance(m, nn.Sequential):
        return nn.Sequential(*[_map_stage(s) for s in m])
    return m


class _MapEfficientViT(nn.Module):
    """The EfficientViT expert with its FFNs and subsample blocks as convolutions on the map."""

    embed: nn.ModuleList

    def __init__(self, enc: _FastWindowExpert) -> None:
        super().__init__()
        self.embed = enc.embed
        self.stages = nn.Sequential(*[_map_stage(m) for m in enc.stages])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.embed:
            x = conv(x)
        return self.stages(x).mean(dim=(2, 3))


class FullGraph(nn.Module):
    """Images (N, 3, 224, 224) -> embedding (N, 192), all in one graph."""

    def __init__(self, fast: FastTinyBioMoE, spectral_filter: str = "dft") -> None:
        super().__init__()
        self.f = fast
        self.enc1 = _MapSpectFormer(fast.enc1, spectral_filter)
        self.enc2 = _MapEfficientViT(fast.enc2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.f.ln_img(x)
        z1, z2 = self.enc1(h), self.enc2(h)
        return self.f.ln_out(torch.cat([_gate(self.f, z1), _gate(self.f, z2)], dim=1))


class NormWindowGraph(nn.Module):
    """Images -> (normalised image, EfficientViT expert vector (N, 96))."""

    def __init__(self, fast: FastTinyBioMoE) -> None:
        super().__init__()
        self.f = fast
        self.enc2 = _MapEfficientViT(fast.enc2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.f.ln_img(x)
        return h, self.enc2(h)


class SpectralHeadGraph(nn.Module):
    """Normalised image -> SpectFormer map (N, C, g, g) after stage ``stages`` (its norm applied)."""

    def __init__(self, fast: FastTinyBioMoE, stages: int = SPECTRAL_SPLIT) -> None:
        super().__init__()
        self.enc1 = _MapSpectFormer(fast.enc1)
        self.stop = stages

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.enc1.stages(h, 0, self.stop)


class TailGraph(nn.Module):
    """(SpectFormer map after stage ``stages``, EfficientViT vector) -> embedding."""

    def __init__(self, fast: FastTinyBioMoE, stages: int = SPECTRAL_SPLIT) -> None:
        super().__init__()
        self.f = fast
        self.enc1 = _MapSpectFormer(fast.enc1)
        self.start = stages

    def forward(self, x: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        z1 = self.enc1.readout(self.enc1.stages(x, self.start, self.enc1.stage_count))
        return self.f.ln_out(torch.cat([_gate(self.f, z1), _gate(self.f, z2)], dim=1))


def _map_shape(stages: int) -> tuple[int, int, int, int]:
    from core.encoder.spectral_expert import TOKEN_GRIDS, WIDTHS

    g = TOKEN_GRIDS[stages - 1]
    return (-1, WIDTHS[stages - 1], g, g)


def export_graphs(fast: FastTinyBioMoE, mode: str, *, spectral_filter: str = "dft",
                  whole_model: bool = False) -> list[GraphPart]:
    """The graphs that compute the embedding in ``mode`` (``fp32`` or ``bf16``), in run order.

    ``fast`` must be an fp32 :class:`FastTinyBioMoE` built with ``onednn=False`` (plain ops that
    exporters understand); it is copied, not modified. For measurements only:
    ``spectral_filter="fft"`` keeps the FFTs (one fp32 graph), and ``whole_model=True`` makes
    ``bf16`` one graph compiled in bf16 throughout (unfaithful: cosine ~0.90 to float64).
    """
    if mode not in MODES:
        raise ValueError(f"export mode must be one of {', '.join(MODES)}, got {mode!r}")
    if spectral_filter not in ("dft", "fft"):
        raise ValueError(f"spectral_filter must be 'dft' or 'fft', got {spectral_filter!r}")
    if fast.onednn:
        raise ValueError("export needs the fast module built with onednn=False (plain ops)")
    f = copy.deepcopy(fast).eval()
    image = (-1, 3, IMAGE_SIZE, IMAGE_SIZE)
    if mode == "fp32" or whole_model or spectral_filter == "fft":
        name = "full" if spectral_filter == "dft" else "full-fft"
        return [GraphPart(name, FullGraph(f, spectral_filter).eval(), (("images", image),), ("embedding",), mode)]
    from core.encoder.model import EXPERT_DIM

    tokens = _map_shape(SPECTRAL_SPLIT)
    return [
        GraphPart("norm_window", NormWindowGraph(f).eval(), (("images", image),),
                  ("normalised", "window_vector"), "fp32"),
        GraphPart("spectral", SpectralHeadGraph(f).eval(), (("normalised", image),), ("spectral_map",), "bf16"),
        GraphPart("tail", TailGraph(f).eval(), (("spectral_map", tokens), ("window_vector", (-1, EXPERT_DIM))),
                  ("embedding",), "fp32"),
    ]


def run_graphs(parts: list[GraphPart], images: torch.Tensor) -> torch.Tensor:
    """Run the export graphs in torch (float32), wiring outputs to inputs by name: the reference
    the converted model must match, and a check that the split computes the whole embedding."""
    values: dict[str, torch.Tensor] = {"images": images}
    with torch.inference_mode():
        for part in parts:
            out = part.module(*[values[name] for name, _ in part.inputs])
            out = out if isinstance(out, tuple) else (out,)
            values.update(zip(part.outputs, out, strict=True))
    return values["embedding"]


__all__ = ["GraphPart", "MODES", "SPECTRAL_SPLIT", "export_graphs", "run_graphs"]
