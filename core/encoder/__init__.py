"""Tiny-BioMoE encoder: 224x224 RGB representation images -> 192-D embeddings.

Public API::

    TinyBioMoE()                       reference nn.Module, released-checkpoint compatible
    load_encoder(path, device="auto", precision="fp32", fast=True, compile=False,
                 strict_extra=False, *, backend="torch", threads=None, hint="auto")
                                       ready eval-mode encoder (fast path by default);
                                       backend "torch" | "openvino" | "auto",
                                       precision "fp32" | "bf16" | "fp16" | "auto"
    OpenVINOEncoder                    the OpenVINO CPU backend's module (optional extra)
    specialise_encoder(encoder, sizes) compile the fixed batch shapes of these sizes now (OpenVINO)
    save_encoder(path, model_or_state_dict, metadata)
    encoder_fingerprint(state_dict)    short stable hash of the backbone weights
    EncoderLoadError                   raised for every load problem
    EMBED_DIM = 192, IMAGE_SIZE = 224
"""

from core.encoder.fast import FastTinyBioMoE, fast_encoder
from core.encoder.loader import BACKENDS, EncoderInfo, load_encoder, resolve_backend, untrained_encoder
from core.encoder.model import EMBED_DIM, IMAGE_SIZE, PARAMETER_COUNT, TinyBioMoE
from core.encoder.openvino_backend import OpenVINOEncoder
from core.encoder.precision import cpu_has_native_bf16, resolve_precision
from core.encoder.shapes import specialise_encoder
from core.encoder.weights import EncoderLoadError, encoder_fingerprint, save_encoder

__all__ = [
    "BACKENDS",
    "EMBED_DIM",
    "IMAGE_SIZE",
    "PARAMETER_COUNT",
    "EncoderInfo",
    "EncoderLoadError",
    "FastTinyBioMoE",
    "OpenVINOEncoder",
    "TinyBioMoE",
    "cpu_has_native_bf16",
    "encoder_fingerprint",
    "fast_encoder",
    "load_encoder",
    "resolve_backend",
    "resolve_precision",
    "save_encoder",
    "specialise_encoder",
    "untrained_encoder",
]
