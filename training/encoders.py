"""Which encoder weights training uses, and saving pretrained ones.

Order when no ``--encoder`` is given: the released ``Tiny-BioMoE.pth`` in its documented
place (:func:`core.paths.released_encoder_path`), else the encoder inside the bundled
model, else the deterministic seed-0 initialisation (stated as such in the metadata,
because an untrained encoder is a very different claim from a pretrained one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

INIT_PREFIX = "init"
"""``--encoder init`` / ``init:SEED``: deterministic random initialisation (no pretrained weights)."""


@dataclass
class ResolvedEncoder:
    """The encoder training embeds with, and what to record about it in the model metadata."""

    module: torch.nn.Module
    """Eval-mode encoder used to compute embeddings."""
    state_dict: dict[str, torch.Tensor]
    """Reference-layout weights (stored in trained models)."""
    fingerprint: str
    description: str
    source_fingerprint: str = ""
    """Fingerprint of the weights as read (before float16 rounding)."""


def init_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights of a freshly constructed encoder under ``torch.manual_seed(seed)``."""
    from core.encoder.model import TinyBioMoE

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return TinyBioMoE().state_dict()
    finally:
        torch.random.set_rng_state(state)


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Reference-layout state dict and a description from any supported encoder source file.

    Accepts the released ``Tiny-BioMoE.pth`` (``{"model_state_dict": ...}``), a PainMon
    encoder file (``painmon-encoder``) and a PainMon model (its ``encoder`` entry).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights {path} not found")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(blob, dict) and blob.get("format") == "painmon-model":
        if blob.get("encoder") is None:
            raise ValueError(f"{path} is a PainMon model without encoder weights")
        meta = blob.get("metadata") or {}
        return _float32(blob["encoder"]), meta.get("encoder_description") or f"encoder of PainMon model {path.name}"
    if isinstance(blob, dict) and blob.get("format") == "painmon-encoder":
        meta = blob.get("metadata") or {}
        return _float32(blob["state_dict"]), meta.get("description") or f"PainMon encoder {path.name}"
    if isinstance(blob, dict) and "model_state_dict" in blob:
        return _float32(blob["model_state_dict"]), f"released Tiny-BioMoE weights ({path.name})"
    raise ValueError(
        f"{path}: not encoder weights (expected Tiny-BioMoE.pth with 'model_state_dict', a painmon-encoder "
        "file or a PainMon model)"
    )


def _float32(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def _parse_init(spec: str) -> int | None:
    if spec == INIT_PREFIX:
        return 0
    if spec.startswith(INIT_PREFIX + ":"):
        return int(spec.split(":", 1)[1])
    return None


def encoder_source(spec: str | None) -> tuple[dict[str, torch.Tensor], str]:
    """State dict + description for a ``--encoder`` value (see module docstring)."""
    from core.paths import default_model_path, released_encoder_path

    if spec is not None:
        seed = _parse_init(spec)
        if seed is not None:
            return init_state_dict(seed), f"untrained deterministic initialisation (seed {seed}), no pretrained weights"
        return read_state_dict(Path(spec))
    released = released_encoder_path()
    if released is not None:
        return read_state_dict(released)
    bundled = default_model_path()
    if bundled.is_file():
        try:
            return read_state_dict(bundled)
        except ValueError:
            pass
    log.warning("no released Tiny-BioMoE.pth and no bundled model: using the untrained seed-0 encoder")
    return init_state_dict(0), "untrained deterministic initialisation (seed 0), no pretrained weights"


def resolve_encoder(spec: str | None, device: str = "cpu", half: bool = True) -> ResolvedEncoder:
    """The eval-mode encoder for computing embeddings, with its identity.

    With ``half`` the weights are rounded to float16 first — the precision they are stored
    in inside the model file — so the head is trained on embeddings of exactly the weights
    it ships with, and the recorded fingerprint is that of the shipped weights.
    """
    from core.encoder.weights import encoder_fingerprint

    sd, desc = encoder_source(spec)
    source_fp = encoder_fingerprint(sd)
    if half:
        sd = {k: (v.half().float() if v.is_floating_point() else v) for k, v in sd.items()}
    module = inference_encoder(sd, device)
    return ResolvedEncoder(module, sd, encoder_fingerprint(sd), desc, source_fp)


def inference_encoder(sd: dict[str, torch.Tensor], device: str = "cpu", precision: str = "fp32") -> torch.nn.Module:
    """Eval-mode encoder for embeddings: the engine's own fast path (:func:`core.encoder.load_encoder`).

    float32 by default: training embeddings are computed once and reused for every head,
    so they should be the faithful ones; the engine may run reduced precision live.
    """
    from core.encoder import load_encoder

    return load_encoder(sd, device=device, precision=precision)


def initial_encoder(spec: str | None, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """A *trainable* reference encoder to pretrain or fine-tune (train-mode module)."""
    from core.encoder.model import TinyBioMoE

    if spec is None:
        sd, desc = init_state_dict(seed), f"the untrained deterministic initialisation (seed {seed})"
    else:
        sd, desc = encoder_source(spec)
    model = TinyBioMoE()
    model.load_state_dict(sd, strict=True)
    return model, desc


def save_pretrained(path: Path, encoder: torch.nn.Module, metadata: dict[str, Any]) -> Path:
    """Write encoder weights in the ``painmon-encoder`` format (atomic, by :func:`core.encoder.save_encoder`)."""
    from core.encoder.weights import save_encoder

    return save_encoder(path, {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}, metadata)
