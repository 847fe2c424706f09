"""Fast, numerically faithful inference path for Tiny-BioMoE.

:class:`FastTinyBioMoE` is built from a loaded reference :class:`~core.encoder.model.TinyBioMoE`
and computes the same embedding with less work:

* every BatchNorm is folded into the convolution before it; ReLU/GELU and residual adds are fused
  into the convolution or matmul (oneDNN on CPU, see :mod:`core.encoder.fused`);
* EfficientViT's attention-bias tables are gathered once per load, kept as buffers (so they
  follow ``.to(device)``), and rebuilt by :meth:`FastTinyBioMoE.load_state_dict` - never stale;
* activations stay in channels-last / token-major layout end to end, so no transposing copies
  sit between the token MLPs and their depth-wise convs;
* attention runs through ``scaled_dot_product_attention``; the q and kv projections are one matmul;
* the spectral filter's complex weight is precomputed and the FFT runs over contiguous planes;
* reduced precision (bf16/fp16) applies only to convolutions and matmuls: norms, the spectral
  filter, softmax/attention and the gate stay in float32, which keeps cosine similarity to the
  float32 reference >= 0.999 (whole-model autocast drifts to 0.90-0.99);
* forward runs under ``torch.inference_mode``; optional ``torch.compile`` of the whole forward.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from core.encoder.backbone import copy_backbone, reference_from_state_dict, released_state_dict, snapshot_backbone
from core.encoder.fused import FusedConv2d, FusedLinear, onednn_fusion_available
from core.encoder.layers import ConvBN, Residual
from core.encoder.model import TinyBioMoE, check_images
from core.encoder.precision import DTYPES
from core.encoder.spectral_expert import SpectralExpert, SpectralGating, TokenBlock
from core.encoder.window_expert import (
    AttentionBlock,
    CascadedGroupAttention,
    FeedForward,
    LocalWindowAttention,
    PatchMerging,
    WindowExpert,
)

if TYPE_CHECKING:
    from core.encoder.loader import EncoderInfo

log = logging.getLogger(__name__)


class _Norm(nn.Module):
    """LayerNorm over the last dim, always in float32 (the sensitive part of reduced precision)."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, ln: nn.LayerNorm) -> None:
        super().__init__()
        self.register_buffer("weight", ln.weight.detach().float().clone(), persistent=False)
        self.register_buffer("bias", ln.bias.detach().float().clone(), persistent=False)
        self.shape = tuple(ln.normalized_shape)
        self.eps = ln.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.shape, self.weight, self.bias, self.eps)


def _to_map(t: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) tokens -> (B, C, H, W) view in channels-last memory (no copy)."""
    return t.permute(0, 3, 1, 2)


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) map -> (B, H, W, C) contiguous tokens (a view if x is channels-last)."""
    return x.permute(0, 2, 3, 1).contiguous()


# --------------------------------------------------------------------------- expert 1 (SpectFormer)


class _FastConvMlp(nn.Module):
    """fc1 -> depth-wise 3x3 conv with GELU fused -> fc2 (+ residual), on (B, H, W, C) tokens."""

    def __init__(self, mlp: nn.Module, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.dtype = dtype
        self.fc1 = FusedLinear.from_linear(mlp.fc1, dtype=dtype, onednn=onednn)
        self.dw = FusedConv2d.from_conv(mlp.dwconv.dwconv, act="gelu", dtype=dtype, onednn=onednn)
        self.fc2 = FusedLinear.from_linear(mlp.fc2, dtype=dtype, onednn=onednn)

    def forward(self, u: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        h = self.fc1(u.to(self.dtype))
        h = _to_tokens(self.dw(_to_map(h)))
        if self.dtype == torch.float32:
            return self.fc2(h, residual=residual)
        return residual + self.fc2(h).float()


class _FastSpectral(nn.Module):
    """The spectral gating filter on (B, H, W, C) tokens, always in float32.

    The complex weight is converted once per load (not on every call) and kept as real pairs,
    because ``Module.to(dtype)`` would silently drop the imaginary part of a complex buffer. The
    FFTs run directly over the token-major layout: measured faster than permuting to contiguous
    planes, since the permute copies cost more than the strided transforms save.
    """

    weight: torch.Tensor

    def __init__(self, sg: SpectralGating) -> None:
        super().__init__()
        self.register_buffer("weight", sg.complex_weight.detach().float().contiguous(), persistent=False)
        self.grid = sg.grid

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = u.shape
        spec = torch.fft.rfft2(u, dim=(1, 2), norm="ortho") * torch.view_as_complex(self.weight)
        return torch.fft.irfft2(spec, s=(h, w), dim=(1, 2), norm="ortho")


class _FastSelfAttention(nn.Module):
    """q and kv as one matmul, then fused scaled-dot-product attention in float32."""

    def __init__(self, attn: nn.Module, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.heads = attn.heads
        self.dtype = dtype
        self.qkv = FusedLinear.from_linear(attn.q, attn.kv, dtype=dtype, onednn=onednn)
        self.proj = FusedLinear.from_linear(attn.proj, dtype=dtype, onednn=onednn)

    def forward(self, u: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        b, h, w, c = u.shape
        n, d = h * w, c // self.heads
        qkv = self.qkv(u.to(self.dtype).reshape(b, n, c)).float()
        q, k, v = qkv.view(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h, w, c)
        if self.dtype == torch.float32:
            return self.proj(o.contiguous(), residual=residual)
        return residual + self.proj(o.to(self.dtype)).float()


class _FastTokenBlock(nn.Module):
    def __init__(self, blk: TokenBlock, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.norm1 = _Norm(blk.norm1)
        self.norm2 = _Norm(blk.norm2)
        self.spectral = isinstance(blk.attn, SpectralGating)
        self.mixer = _FastSpectral(blk.attn) if self.spectral else _FastSelfAttention(blk.attn, dtype, onednn)
        self.mlp = _FastConvMlp(blk.mlp, dtype, onednn)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.spectral:
            t = t + self.mixer(self.norm1(t))
        else:
            t = self.mixer(self.norm1(t), residual=t)
        return self.mlp(self.norm2(t), residual=t)


class _FastClassBlock(nn.Module):
    """Class attention: only the mean token is updated, so only it gets q, proj and the MLP."""

    def __init__(self, blk: nn.Module, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.heads = blk.attn.heads
        self.dtype = dtype
        self.norm1, self.norm2 = _Norm(blk.norm1), _Norm(blk.norm2)
        self.q = FusedLinear.from_linear(blk.attn.q, dtype=dtype, onednn=onednn)
        self.kv = FusedLinear.from_linear(blk.attn.kv, dtype=dtype, onednn=onednn)
        self.proj = FusedLinear.from_linear(blk.attn.proj, dtype=dtype, onednn=onednn)
        self.fc1 = FusedLinear.from_linear(blk.mlp.fc1, act="gelu", dtype=dtype, onednn=onednn)
        self.fc2 = FusedLinear.from_linear(blk.mlp.fc2, dtype=dtype, onednn=onednn)

    def forward(self, cls: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        d = c // self.heads
        u = self.norm1(torch.cat([cls, tokens], dim=1)).to(self.dtype)
        k, v = self.kv(u).float().view(b, n + 1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        q = self.q(u[:, :1].contiguous()).float().view(b, 1, self.heads, d).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, c)
        cls = cls + self.proj(o.to(self.dtype)).float()
        return cls + self.fc2(self.fc1(self.norm2(cls).to(self.dtype))).float()


class _FastSpectralExpert(nn.Module):
    def __init__(self, enc: SpectralExpert, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.dtype = dtype
        stem = enc.patch_embed1.conv
        self.stem = nn.ModuleList(
            [FusedConv2d.from_conv(stem[i], stem[i + 1], act="relu", dtype=dtype, onednn=onednn) for i in (0, 3, 6)]
        )
        self.embeds = nn.ModuleList()
        self.embed_norms = nn.ModuleList()
        self.blocks = nn.ModuleList()
        self.stage_norms = nn.ModuleList()
        n_stages = sum(1 for name, _ in enc.named_children() if name.startswith("patch_embed"))
        for i in range(1, n_stages + 1):
            embed = getattr(enc, f"patch_embed{i}")
            self.embeds.append(FusedConv2d.from_conv(embed.proj, dtype=dtype, onednn=onednn))
            self.embed_norms.append(_Norm(embed.norm))
            self.blocks.append(nn.Sequential(*[_FastTokenBlock(b, dtype, onednn) for b in getattr(enc, f"block{i}")]))
            self.stage_norms.append(_Norm(getattr(enc, f"norm{i}")))
        self.post = nn.ModuleList([_FastClassBlock(b, dtype, onednn) for b in enc.post_network])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.stem:
            x = conv(x)
        last = len(self.embeds) - 1
        t = x
        for i, (embed, enorm, blocks, snorm) in enumerate(
            zip(self.embeds, self.embed_norms, self.blocks, self.stage_norms, strict=True)
        ):
            t = enorm(_to_tokens(embed(x if i == 0 else _to_map(t).to(self.dtype))))
            t = blocks(t)
            if i != last:
                t = snorm(t)
        b, h, w, c = t.shape
        tokens = t.reshape(b, h * w, c)
        cls = tokens.mean(dim=1, keepdim=True)
        for blk in self.post:
            cls = blk(cls, tokens)
        return self.stage_norms[last](cls[:, 0])


# --------------------------------------------------------------------------- expert 2 (EfficientViT)


class _FastFFN(nn.Module):
    """1x1 expand with ReLU fused, 1x1 project with the residual add fused, on tokens."""

    def __init__(self, ffn: FeedForward, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.pw1 = _linear_from_convbn(ffn.pw1, "relu", dtype, onednn)
        self.pw2 = _linear_from_convbn(ffn.pw2, None, dtype, onednn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = _to_tokens(x)
        return _to_map(self.pw2(self.pw1(t), residual=t))


def _linear_from_convbn(cb: ConvBN, act: str | None, dtype: torch.dtype, onednn: bool) -> FusedLinear:
    from core.encoder.layers import fold_conv_bn

    w, b = fold_conv_bn(cb.c, cb.bn)
    return FusedLinear(w.reshape(w.shape[0], -1), b, act=act, dtype=dtype, onednn=onednn)


class _FastResidualDW(nn.Module):
    """``x + bn(dwconv(x))`` as one fused depth-wise conv with the add inside."""

    def __init__(self, cb: ConvBN, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.conv = FusedConv2d.from_conv(cb.c, cb.bn, dtype=dtype, onednn=onednn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, residual=x)


class _FastGroupAttention(nn.Module):
    """Cascaded group attention over windows, with the bias table gathered once per load."""

    bias: torch.Tensor

    def __init__(self, lwa: LocalWindowAttention, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        cga: CascadedGroupAttention = lwa.attn
        self.window, self.resolution = lwa.window, lwa.resolution
        self.heads, self.key_dim, self.d = cga.heads, cga.key_dim, cga.d
        self.scale = cga.scale
        self.dtype = dtype
        # q/k feed softmax logits that reach the hundreds on real inputs, where bf16's 3 significant
        # digits flip the attention pattern; these projections are <1% of the FLOPs, so stay fp32
        self.qkvs = nn.ModuleList([_linear_from_convbn(m, None, torch.float32, onednn) for m in cga.qkvs])
        self.dws = nn.ModuleList(
            [FusedConv2d.from_conv(m.c, m.bn, dtype=torch.float32, onednn=onednn) for m in cga.dws]
        )
        self.proj = _linear_from_convbn(cga.proj[1], None, dtype, onednn)
        table = cga.attention_biases.detach().float()[:, cga.attention_bias_idxs]
        self.register_buffer("bias", table.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        win = self.window
        t = x.permute(0, 2, 3, 1)
        split = h > win or w > win
        if split:
            pb, pr = (win - h % win) % win, (win - w % win) % win
            if pb or pr:
                t = F.pad(t, (0, 0, 0, pr, 0, pb))
            ph, pw = h + pb, w + pr
            nh, nw = ph // win, pw // win
            t = t.reshape(b, nh, win, nw, win, c).transpose(2, 3).reshape(b * nh * nw, win, win, c)
        else:
            t = t.contiguous()
        bw, sh, sw, _ = t.shape
        tokens = t.reshape(bw, sh * sw, c).float()
        chunk = c // self.heads
        outs = []
        feat = None
        for i in range(self.heads):
            part = tokens[..., i * chunk:(i + 1) * chunk]
            feat = part if feat is None else feat + part
            q, k, v = self.qkvs[i](feat).split([self.key_dim, self.key_dim, self.d], dim=-1)
            q = self.dws[i](
                q.reshape(bw, sh, sw, self.key_dim).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            )
            q = q.permute(0, 2, 3, 1).reshape(bw, sh * sw, self.key_dim)
            # explicit baddbmm: SDPA with an additive mask takes a slower generic path on CPU
            logits = torch.baddbmm(self.bias[i], q, k.transpose(1, 2), alpha=self.scale)
            feat = torch.bmm(logits.softmax(dim=-1), v)
            outs.append(feat)
        y = self.proj(F.relu(torch.cat(outs, dim=-1)).to(self.dtype))
        y = y.view(bw, sh, sw, c)
        if split:
            y = y.view(b, nh, nw, win, win, c).transpose(2, 3).reshape(b, ph, pw, c)[:, :h, :w]
        return x + y.permute(0, 3, 1, 2).to(x.dtype)


class _FastAttentionBlock(nn.Module):
    def __init__(self, blk: AttentionBlock, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.dw0 = _FastResidualDW(blk.dw0.m, dtype, onednn)
        self.ffn0 = _FastFFN(blk.ffn0.m, dtype, onednn)
        self.mixer = _FastGroupAttention(blk.mixer.m, dtype, onednn)
        self.dw1 = _FastResidualDW(blk.dw1.m, dtype, onednn)
        self.ffn1 = _FastFFN(blk.ffn1.m, dtype, onednn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))


class _FastPatchMerging(nn.Module):
    def __init__(self, pm: PatchMerging, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        self.dtype = dtype
        self.conv1 = _linear_from_convbn(pm.conv1, "relu", dtype, onednn)
        self.conv2 = FusedConv2d.from_conv(pm.conv2.c, pm.conv2.bn, act="relu", dtype=dtype, onednn=onednn)
        self.se1 = FusedLinear.from_linear(pm.se.fc1, act="relu", dtype=torch.float32, onednn=onednn)
        self.se2 = FusedLinear.from_linear(pm.se.fc2, dtype=torch.float32, onednn=onednn)
        self.conv3 = _linear_from_convbn(pm.conv3, None, dtype, onednn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(_to_map(self.conv1(_to_tokens(x))))
        t = _to_tokens(h)
        gate = torch.sigmoid(self.se2(self.se1(t.float().mean(dim=(1, 2)))))
        t = t * gate[:, None, None, :].to(t.dtype)
        return _to_map(self.conv3(t))


def _fast_stage_module(m: nn.Module, dtype: torch.dtype, onednn: bool) -> nn.Module:
    if isinstance(m, AttentionBlock):
        return _FastAttentionBlock(m, dtype, onednn)
    if isinstance(m, PatchMerging):
        return _FastPatchMerging(m, dtype, onednn)
    if isinstance(m, nn.Sequential):
        return nn.Sequential(*[_fast_stage_module(s, dtype, onednn) for s in m])
    if isinstance(m, Residual) and isinstance(m.m, ConvBN):
        return _FastResidualDW(m.m, dtype, onednn)
    if isinstance(m, Residual) and isinstance(m.m, FeedForward):
        return _FastFFN(m.m, dtype, onednn)
    raise TypeError(f"no fast equivalent for {type(m).__name__}")


class _FastWindowExpert(nn.Module):
    def __init__(self, enc: WindowExpert, dtype: torch.dtype, onednn: bool) -> None:
        super().__init__()
        convs = [m for m in enc.patch_embed if isinstance(m, ConvBN)]
        self.embed = nn.ModuleList(
            [FusedConv2d.from_conv(cb.c, cb.bn, act="relu" if i < len(convs) - 1 else None, dtype=dtype, onednn=onednn)
             for i, cb in enumerate(convs)]
        )
        self.stages = nn.Sequential(
            *[_fast_stage_module(m, dtype, onednn) for stage in (enc.blocks1, enc.blocks2, enc.blocks3) for m in stage]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.embed:
            x = conv(x)
        return self.stages(x).float().mean(dim=(2, 3))


# --------------------------------------------------------------------------- whole model


class FastTinyBioMoE(nn.Module):
    """Inference-only Tiny-BioMoE: same embedding as the reference, computed faster.

    ``forward`` takes (N, 3, 224, 224) float images in [0, 1] on the module's device and returns
    (N, 192) float32. ``state_dict()`` / ``load_state_dict()`` speak the released backbone
    format (the fused tensors are derived, never saved), and loading rebuilds every derived
    table, so the module can never serve weights other than the ones last loaded.
    """

    info: EncoderInfo
    """Where the weights came from (set by :func:`core.encoder.load_encoder`)."""
    backend = "torch"
    """The runtime that computes it (``openvino`` for :class:`core.encoder.openvino_backend.OpenVINOEncoder`)."""

    def __init__(self, reference: TinyBioMoE, precision: str = "fp32", compile: bool = False,
                 onednn: bool | None = None) -> None:
        super().__init__()
        if precision not in DTYPES:
            raise ValueError(f"precision must be one of {', '.join(DTYPES)}, got {precision!r}")
        self.precision = precision
        self.compiled = compile
        # inductor fuses elementwise work itself and does better on plain ops
        self.onednn = (not compile) if onednn is None else onednn
        self._compiled_forward: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._build(reference)

    # -- construction -------------------------------------------------------------------------
    def _build(self, reference: TinyBioMoE) -> None:
        device = next(reference.parameters()).device
        # only read (folding copies every tensor it uses); folding runs in float64, which MPS lacks
        ref = reference if device.type != "mps" else TinyBioMoE().requires_grad_(False)
        if ref is not reference:
            ref.load_state_dict({k: v.to("cpu") for k, v in reference.state_dict().items()})
        dtype = DTYPES[self.precision]
        self._backbone = snapshot_backbone(ref)
        # float32 statistics here: the reference's float64 ones only pin rounding for the parity
        # fixture, and cost 3x as much; the fast path is held to cosine similarity instead
        self.ln_img = _Norm(ref.ln_img)
        self.enc1 = _FastSpectralExpert(ref.enc1, dtype, self.onednn)
        # The EfficientViT expert stays float32 in every mode: its cascaded attention turns
        # bf16 rounding in the residual stream into different attention patterns (cosine to the
        # reference fell to 0.86-0.99 when it ran in bf16); it is about 20% of the FLOPs.
        self.enc2 = _FastWindowExpert(ref.enc2, torch.float32, self.onednn)
        self.ln_e, self.ln_out = _Norm(ref.ln_e), _Norm(ref.ln_out)
        self.fcn = FusedLinear.from_linear(ref.fcn[1], dtype=torch.float32, onednn=self.onednn)
        self._compiled_forward = None
        self.to(device)

    @property
    def mode(self) -> str:
        """Short name of what this module computes, e.g. ``fast-fp32`` or ``fast-bf16-compiled``."""
        return f"fast-{self.precision}" + ("-compiled" if self.compiled else "")

    @property
    def device(self) -> torch.device:
        return self.ln_out.weight.device

    def describe(self) -> str:
        """One line for logs and status bars: mode, device and which optimisations are active."""
        fused = (
            "oneDNN-fused" if (self.onednn and onednn_fusion_available() and self.device.type == "cpu") else "plain ops"
        )
        return f"Tiny-BioMoE {self.mode} on {self.device} ({fused}, BN folded, bias tables precomputed)"

    # -- checkpoint interface in the released format ------------------------------------------
    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights this module was built from, in the released backbone format (on CPU)."""
        return copy_backbone(self._backbone)

    def state_dict(  # type: ignore[override]  # accepts torch's call forms, returns the released format
        self, *args: Any, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> dict:
        """The released-format weights (the folded tensors are derived, never saved)."""
        return released_state_dict(self._backbone, *args, destination=destination, prefix=prefix, keep_vars=keep_vars)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load released-format backbone weights and rebuild every folded tensor and table."""
        ref, result = reference_from_state_dict(state_dict, strict=strict)
        device = self.device
        self._build(ref)  # folded on CPU in float64 (MPS has no float64), then moved
        self.to(device)
        return result

    # -- inference ----------------------------------------------------------------------------
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        dtype = DTYPES[self.precision]
        h = self.ln_img(x).contiguous(memory_format=torch.channels_last)
        z1 = self.enc1(h.to(dtype))
        z2 = self.enc2(h)
        gated = [self.ln_e(z) * torch.clamp(self.fcn(F.elu(z)), 0.0, 1.0) for z in (z1, z2)]
        return self.ln_out(torch.cat(gated, dim=1))

    def _compile(self):
        """CPU: inductor with freezing (weights become constants it can prepack for oneDNN).
        CUDA: CUDA graphs via "reduce-overhead", which removes per-kernel launch cost at small
        batches. Compiled lazily at the first call, per input shape."""
        if self.device.type == "cuda":
            return torch.compile(self._embed, mode="reduce-overhead", dynamic=False)
        return torch.compile(self._embed, dynamic=False, options={"freezing": True})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        with torch.inference_mode():
            if self.compiled:
                if self._compiled_forward is None:
                    self._compiled_forward = self._compile()
                n = x.shape[0]
                if self.device.type != "cuda" or n == 0:
                    return self._compiled_forward(x)
                # CUDA graphs are recorded per shape: pad to a few bucket sizes so the engine's
                # varying batches replay a handful of graphs instead of recording one per size; and
                # copy the output, which the graph's next replay overwrites
                if batch_bucket(n) != n:
                    x = torch.cat([x, x.new_zeros((batch_bucket(n) - n, *x.shape[1:]))])
                return self._compiled_forward(x)[:n].clone()
            return self._embed(x)

    def _apply(self, fn, recurse: bool = True):
        probe = fn(torch.zeros(1))
        if probe.dtype != torch.float32:
            raise TypeError(
                f"FastTinyBioMoE computes in its build precision ({self.precision}); changing its dtype to "
                f"{probe.dtype} is not supported - use load_encoder(..., precision=...) instead"
            )
        self._compiled_forward = None  # a compiled graph is specialised to the old tensors
        return super()._apply(fn, recurse)


def batch_bucket(n: int, smallest: int = 8, step: int = 256) -> int:
    """The padded batch size for ``n`` images on a CUDA-graph path: powers of two from ``smallest``
    up to ``step``, then multiples of ``step`` (at most ~2x the work below ``step``, <1 step above)."""
    if n <= smallest:
        return smallest
    if n <= step:
        return 1 << (n - 1).bit_length()
    return -(-n // step) * step


def fast_encoder(reference: TinyBioMoE, precision: str = "fp32", compile: bool = False) -> FastTinyBioMoE:
    """Build the fast path from a loaded reference encoder (which is left unchanged)."""
    return FastTinyBioMoE(reference, precision=precision, compile=compile).eval()


__all__ = ["FastTinyBioMoE", "batch_bucket", "fast_encoder"]
