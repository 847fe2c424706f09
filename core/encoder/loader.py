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
from core.encoder.auto import choose_precision
from core.encoder.fast import FastTinyBioMoE
from core.encoder.model import TinyBioMoE
from core.encoder.openvino_backend import OpenVINOEncoder
from core.encoder.precision import PRECISIONS, resolve_precision
from core.encoder.weights import EncoderLoadError, encoder_fingerprint, read_encoder_weights

log = logging.getLogger(__name__)

UNTRAINED_SEED = 0


BACKENDS = ("torch", "openvino", "auto")
"""``load_encoder(..., backend=...)`` values; ``auto`` is OpenVINO on the CPU when installed, else torch."""


@dataclass
class EncoderInfo:
    """Where an encoder's weights came from and how it runs; attached to it as ``encoder.info``."""

    source: str
    trained: bool
    fingerprint: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ignored_keys: list[str] = field(default_factory=list)
    backend: str = "torch"
    """``torch`` or ``openvino``: the runtime actually in use (``auto`` resolved)."""
    precision: str = "fp32"
    """The precision actually in use (``auto`` resolved): ``fp32``, ``bf16`` or ``fp16``."""


def untrained_encoder() -> TinyBioMoE:
    """A deterministically initialised reference encoder (seed 0), without touching global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        return TinyBioMoE()


def resolve_backend(backend: str, device: torch.device, *, fast: bool = True, compile: bool = False) -> str:
    """``torch`` or ``openvino`` for ``backend`` on ``device`` (``auto``: OpenVINO on the CPU when it
    imports, else torch, saying so in one log line). Raises :class:`EncoderLoadError`."""
    if backend not in BACKENDS:
        raise EncoderLoadError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        return "torch"
    from core.encoder.openvino_backend import OpenVINOUnavailable, import_openvino

    if backend == "openvino":
        if device.type != "cpu":
            raise EncoderLoadError(
                f"the OpenVINO backend runs on the CPU only, not {device.type}; use backend='torch' there")
        if not fast or compile:
            raise EncoderLoadError(
                "the OpenVINO backend has no fast=False/compile=True variants; use backend='torch' for those")
        try:
            import_openvino()
        except OpenVINOUnavailable as exc:
            raise EncoderLoadError(str(exc)) from None
        return "openvino"
    if device.type != "cpu" or not fast or compile:
        return "torch"  # OpenVINO serves only the fast CPU path
    try:
        import_openvino()
    except OpenVINOUnavailable as exc:
        log.warning("encoder backend auto: falling back to torch - %s", exc)
        return "torch"
    return "openvino"


def _build(ref: TinyBioMoE, backend: str, dev: torch.device, precision: str, *, fast: bool, compile: bool,
           threads: int | None, hint: str) -> TinyBioMoE | FastTinyBioMoE | OpenVINOEncoder:
    """The ready encoder module for one resolved backend and precision (``ref`` is only read)."""
    if backend == "openvino":
        return OpenVINOEncoder(ref, precision=precision, threads=threads, hint=hint).eval()
    encoder: TinyBioMoE | FastTinyBioMoE = (
        ref if not fast else FastTinyBioMoE(ref, precision=precision, compile=compile))
    encoder = encoder.to(dev).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def _resolve_precision(precision: str, backend: str, dev: torch.device, *, fast: bool, compile: bool,
                       threads: int | None, hint: str) -> str:
    if precision not in PRECISIONS:
        raise EncoderLoadError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if not fast:
            return "fp32"

        def build(sd, prec: str) -> nn.Module:
            # uncompiled: the precisions rank alike with and without torch.compile/CUDA graphs, and
            # compiling every candidate would cost minutes at the first start
            probe = TinyBioMoE()
            probe.load_state_dict(sd, strict=True)
            return _build(probe.eval(), backend, dev, prec, fast=True, compile=False, threads=threads, hint=hint)

        return choose_precision(backend, dev, build, threads=threads)
    try:
        prec = resolve_precision(precision, dev)
    except ValueError as exc:
        raise EncoderLoadError(str(exc)) from None
    if backend == "openvino":
        from core.encoder.openvino_backend import openvino_supports_bf16

        if prec not in ("fp32", "bf16"):
            raise EncoderLoadError(f"the OpenVINO backend runs fp32 or bf16, not {prec!r}")
        if prec == "bf16" and not openvino_supports_bf16():
            raise EncoderLoadError("precision 'bf16' with the OpenVINO backend needs a CPU with bf16 units "
                                   "(AVX512-BF16 or AMX, not hidden by ONEDNN_MAX_CPU_ISA); use 'fp32' or 'auto'")
    return prec


def load_encoder(
    path: str | os.PathLike | Mapping[str, Any] | None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    fast: bool = True,
    compile: bool = False,
    strict_extra: bool = False,
    *,
    backend: str = "torch",
    threads: int | None = None,
    hint: str = "auto",
) -> nn.Module:
    """A ready, eval-mode Tiny-BioMoE: (N, 3, 224, 224) float in [0, 1] -> (N, 192) float32.

    ``path`` is a weights file (released ``Tiny-BioMoE.pth``, a bare state dict, a PainMon encoder
    or model checkpoint), an already loaded dict of one of those, or None for an untrained
    encoder (seed 0; logged, since its embeddings carry no learnt meaning).

    ``backend``: ``torch`` (default; any device), ``openvino`` (CPU; the optional extra
    ``painmon[openvino]``; converted once per weights and cached in the user cache folder) or
    ``auto`` (OpenVINO on the CPU when installed, else torch, logged). ``precision``: ``fp32``;
    ``bf16`` (mixed: the SpectFormer expert in bf16, image norm, EfficientViT expert and gate in
    fp32); ``fp16`` (CUDA); or ``auto``: the fastest of those that stays faithful to the float64
    reference on the parity fixture, measured once per machine and cached. ``fast=False`` returns
    the plain reference module (torch, fp32 only). ``threads``/``hint`` tune the OpenVINO backend
    (default: torch's thread count; ``hint="auto"``: one request for small batches, the batch split
    over 2 streams from 4 images, see :data:`core.encoder.openvino_backend.HINTS`). Keys outside
    the backbone are reported and ignored unless ``strict_extra``. Every failure raises :class:`EncoderLoadError`.
    """
    try:
        dev = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        raise EncoderLoadError(f"cannot place the encoder on device {device!r}: {exc}") from None
    kind = resolve_backend(backend, dev, fast=fast, compile=compile)
    from core.encoder.openvino_backend import HINTS

    if hint not in HINTS:
        raise EncoderLoadError(f"hint must be one of {', '.join(HINTS)}, got {hint!r}")
    if threads is not None and int(threads) < 1:
        raise EncoderLoadError(f"threads must be at least 1, got {threads}")
    if not fast and precision not in ("fp32", "auto"):
        if precision not in PRECISIONS:
            raise EncoderLoadError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        raise EncoderLoadError(f"precision {precision!r} needs the fast path (fast=True); the reference module is fp32")
    if precision != "auto":  # validate before reading weights; auto is measured after
        prec = _resolve_precision(precision, kind, dev, fast=fast, compile=compile, threads=threads, hint=hint)

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
    if precision == "auto":
        prec = _resolve_precision(precision, kind, dev, fast=fast, compile=compile, threads=threads, hint=hint)
    info.backend, info.precision = kind, prec
    encoder = _build(ref, kind, dev, prec, fast=fast, compile=compile, threads=threads, hint=hint)
    encoder.info = info
    log.info("%s; weights %s (fingerprint %s)", encoder.describe(), info.source, info.fingerprint)
    return encoder
