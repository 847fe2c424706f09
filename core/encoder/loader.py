"""``load_encoder``: one call from a weights file (or nothing) to a ready, eval-mode encoder."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from core.device import resolve_device
from core.encoder.fast import FastTinyBioMoE
from core.encoder.model import TinyBioMoE
from core.encoder.precision import resolve_precision
from core.encoder.weights import EncoderLoadError, encoder_fingerprint, read_encoder_weights

log = logging.getLogger(__name__)

UNTRAINED_SEED = 0


@dataclass
class EncoderInfo:
    """Where an encoder's weights came from; attached to it as ``encoder.info``."""

    source: str
    trained: bool
    fingerprint: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ignored_keys: list[str] = field(default_factory=list)


def untrained_encoder() -> TinyBioMoE:
    """A deterministically initialised reference encoder (seed 0), without touching global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        return TinyBioMoE()


def load_encoder(
    path: str | os.PathLike | Mapping[str, Any] | None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    fast: bool = True,
    compile: bool = False,
    strict_extra: bool = False,
) -> nn.Module:
    """A ready, eval-mode Tiny-BioMoE: (N, 3, 224, 224) float in [0, 1] -> (N, 192) float32.

    ``path`` is a weights file (released ``Tiny-BioMoE.pth``, a bare state dict, a PainMon encoder
    or model checkpoint), an already loaded dict of one of those, or None for an untrained
    encoder (seed 0; logged, since its embeddings carry no learnt meaning). ``precision`` is
    ``fp32``, ``bf16``, ``fp16`` (CUDA) or ``auto`` (bf16/fp16 where the hardware runs them fast).
    ``fast=False`` returns the plain reference module (fp32 only). Keys outside the backbone are
    reported and ignored unless ``strict_extra``. Every failure raises :class:`EncoderLoadError`.
    """
    try:
        dev = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        raise EncoderLoadError(f"cannot place the encoder on device {device!r}: {exc}") from None
    try:
        prec = resolve_precision(precision, dev)
    except ValueError as exc:
        raise EncoderLoadError(str(exc)) from None
    if not fast and prec != "fp32":
        raise EncoderLoadError(f"precision {prec!r} needs the fast path (fast=True); the reference module is fp32")

    if path is None:
        ref = untrained_encoder()
        info = EncoderInfo("untrained (seed 0)", False, "")
        log.warning("Tiny-BioMoE encoder is UNTRAINED (deterministic seed-0 weights): embeddings are not "
                    "meaningful; supply the released Tiny-BioMoE.pth for real use")
    else:
        ref = TinyBioMoE()
        weights = read_encoder_weights(path, ref.state_dict(), strict_extra=strict_extra)
        ref.load_state_dict(weights.state_dict, strict=True)
        info = EncoderInfo(weights.source, True, "", weights.metadata, weights.ignored_keys)
    info.fingerprint = encoder_fingerprint(ref.state_dict())
    ref.eval()
    encoder: TinyBioMoE | FastTinyBioMoE = ref if not fast else FastTinyBioMoE(ref, precision=prec, compile=compile)
    encoder = encoder.to(dev).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    encoder.info = info
    log.info("%s; weights %s (fingerprint %s)", encoder.describe(), info.source, info.fingerprint)
    return encoder
