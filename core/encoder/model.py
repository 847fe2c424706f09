"""The Tiny-BioMoE backbone: two experts, a shared gate, one 192-D embedding per image.

Pure torch, no timm/torchvision. ``TinyBioMoE().state_dict()`` has exactly the keys, shapes and
dtypes of the released ``Tiny-BioMoE.pth`` ``model_state_dict``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from core.encoder.spectral_expert import SpectralExpert
from core.encoder.window_expert import WindowExpert

if TYPE_CHECKING:
    from core.encoder.loader import EncoderInfo

EMBED_DIM = 192
"""Length of the embedding of one image."""
EXPERT_DIM = 96
"""Length of each expert's vector (two experts, concatenated)."""
IMAGE_SIZE = 224
"""Side of the square RGB input image."""
PARAMETER_COUNT = 7_337_278
"""Trainable parameters of the released backbone (a cheap architecture check)."""


class ImageNorm(nn.LayerNorm):
    """LayerNorm over the whole (3, 224, 224) image, with its statistics taken in float64.

    A float32 mean/variance over 150,528 values depends on the reduction order (thread count,
    SIMD width) at the 1e-7 relative level, and the experts amplify that up to ~1e-4 in the
    embedding; float64 statistics make the embedding reproducible across machines and threads.
    (MPS has no float64, so there it stays float32.)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "mps":
            return super().forward(x)
        out = F.layer_norm(x.double(), self.normalized_shape, self.weight.double(), self.bias.double(), self.eps)
        return out.to(x.dtype)


class TinyBioMoE(nn.Module):
    """Reference Tiny-BioMoE encoder: float images (B, 3, 224, 224) in [0, 1] -> (B, 192).

    The input is not mean/std normalised: the first layer, ``ln_img``, is a LayerNorm over the
    whole image tensor. Each expert's vector ``z`` is gated as ``ln_e(z) * fcn(z)`` (shared by both
    experts), the two are concatenated and normalised by ``ln_out``.
    """

    info: EncoderInfo
    """Where the weights came from (set by :func:`core.encoder.load_encoder`)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = SpectralExpert()
        self.enc2 = WindowExpert()
        self.ln_img = ImageNorm((3, IMAGE_SIZE, IMAGE_SIZE))
        self.ln_e = nn.LayerNorm(EXPERT_DIM)
        self.ln_out = nn.LayerNorm(EMBED_DIM)
        self.fcn = nn.Sequential(nn.ELU(), nn.Linear(EXPERT_DIM, EXPERT_DIM), nn.Hardtanh(0.0, 1.0))

    mode = "reference-fp32"
    """What this module computes (the fast path reports e.g. ``fast-fp32``)."""
    backend = "torch"
    """The runtime that computes it (``openvino`` for :class:`core.encoder.openvino_backend.OpenVINOEncoder`)."""
    precision = "fp32"

    def describe(self) -> str:
        """One line for logs: the plain module, as the released quick-start runs it."""
        dev = next(self.parameters()).device
        return f"Tiny-BioMoE {self.mode} on {dev} (unfused reference module)"

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in the released checkpoint format (same as ``state_dict()``)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        """Per-feature gate in [0, 1] learnt from the expert vector itself."""
        return self.ln_e(z) * self.fcn(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        x = self.ln_img(x)
        z1 = self.gate(self.enc1(x))
        z2 = self.gate(self.enc2(x))
        return self.ln_out(torch.cat((z1, z2), dim=1))


def check_images(x: torch.Tensor) -> None:
    """Reject inputs of the wrong shape early, with a message naming the expected layout."""
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected images of shape (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")
