"""Reading, checking, saving and fingerprinting encoder weights.

Accepted inputs (all read with ``torch.load(weights_only=True)``, never arbitrary pickles):

* the released ``Tiny-BioMoE.pth``: ``{"model_state_dict": state_dict}``;
* a bare state dict;
* a PainMon encoder checkpoint ``{"format": "painmon-encoder", "version": 1, "state_dict": ...,
  "metadata": {...}}`` (written by :func:`save_encoder`);
* a PainMon model checkpoint ``{"format": "painmon-model", ..., "encoder": state_dict | None}``.

Every problem becomes one :class:`EncoderLoadError` naming it, not a traceback from inside torch.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.safeload import UnsafeOrUnreadableFile, load_weights_only

log = logging.getLogger(__name__)

ENCODER_FORMAT = "painmon-encoder"
ENCODER_FORMAT_VERSION = 1
MODEL_FORMAT = "painmon-model"
_SHOW = 5
"""How many offending keys an error message lists."""


class EncoderLoadError(ValueError):
    """Encoder weights could not be loaded; the message says which file and what is wrong."""


@dataclass
class EncoderWeights:
    """A checked backbone state dict plus what is known about where it came from."""

    state_dict: dict[str, torch.Tensor]
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ignored_keys: list[str] = field(default_factory=list)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f" (and {len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def read_checkpoint_file(path: str | os.PathLike) -> Any:
    """``torch.load`` a file safely, turning every failure into a specific EncoderLoadError."""
    try:
        return load_weights_only(path, "encoder weights file")
    except UnsafeOrUnreadableFile as exc:
        raise EncoderLoadError(str(exc)) from None


def _strip_prefix(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Remove a wrapper prefix (DataParallel's ``module.``, torch.compile's ``_orig_mod.``)."""
    out = dict(sd)
    for prefix in ("module.", "_orig_mod."):
        if out and all(isinstance(k, str) and k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out


def unwrap_checkpoint(obj: Any, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Find the backbone state dict (and any metadata) inside one of the accepted layouts."""
    if not isinstance(obj, Mapping):
        raise EncoderLoadError(f"{source}: expected a dict of tensors or a checkpoint dict, got {type(obj).__name__}")
    fmt = obj.get("format")
    if fmt == ENCODER_FORMAT:
        version = obj.get("version")
        if version != ENCODER_FORMAT_VERSION:
            raise EncoderLoadError(
                f"{source}: PainMon encoder checkpoint version {version!r} is not supported "
                f"(this PainMon reads version {ENCODER_FORMAT_VERSION})"
            )
        if not isinstance(obj.get("state_dict"), Mapping):
            raise EncoderLoadError(f"{source}: PainMon encoder checkpoint has no 'state_dict' dict")
        return _strip_prefix(obj["state_dict"]), dict(obj.get("metadata") or {})
    if fmt == MODEL_FORMAT:
        enc = obj.get("encoder")
        if enc is None:
            raise EncoderLoadError(
                f"{source}: this PainMon model checkpoint carries no encoder weights (its 'encoder' entry "
                "is empty); supply the encoder separately, e.g. the released Tiny-BioMoE.pth"
            )
        if not isinstance(enc, Mapping):
            raise EncoderLoadError(f"{source}: the model checkpoint's 'encoder' entry is not a state dict")
        meta = {"from_model_checkpoint": True}
        if isinstance(obj.get("metadata"), Mapping):
            meta.update(obj["metadata"])
        return _strip_prefix(enc), meta
    if fmt is not None:
        raise EncoderLoadError(f"{source}: unknown checkpoint format {fmt!r}")
    for key in ("model_state_dict", "state_dict"):
        if isinstance(obj.get(key), Mapping):
            return _strip_prefix(obj[key]), {}
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefix(obj), {}
    raise EncoderLoadError(
        f"{source}: unrecognised checkpoint contents (top-level keys: {_listing(sorted(map(str, obj)))}); "
        "expected the released {'model_state_dict': ...}, a bare state dict or a PainMon checkpoint"
    )


def check_state_dict(
    sd: Mapping[str, Any], template: Mapping[str, torch.Tensor], source: str, strict_extra: bool = False
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Match ``sd`` against the backbone's own state dict ``template``.

    Missing or mis-shaped backbone keys, non-tensor or non-finite values are errors; keys outside
    the backbone (the released file carries extra tensors) are returned so they can be reported
    and ignored, or are an error with ``strict_extra``. Float tensors are cast to float32.
    """
    missing = [k for k in template if k not in sd]
    extra = [k for k in sd if k not in template]
    if missing:
        raise EncoderLoadError(
            f"{source}: {len(missing)} of {len(template)} encoder keys are missing: {_listing(missing)}"
            + (f"; it has {len(extra)} unexpected keys such as {_listing(extra)}" if extra else "")
        )
    if extra and strict_extra:
        raise EncoderLoadError(f"{source}: {len(extra)} unexpected keys outside the encoder: {_listing(extra)}")
    out: dict[str, torch.Tensor] = {}
    bad_shape, bad_type, non_finite = [], [], []
    for key, ref in template.items():
        val = sd[key]
        if not isinstance(val, torch.Tensor):
            bad_type.append(f"{key} ({type(val).__name__})")
            continue
        if tuple(val.shape) != tuple(ref.shape):
            bad_shape.append(f"{key} {tuple(val.shape)} != expected {tuple(ref.shape)}")
            continue
        if ref.is_floating_point() != val.is_floating_point() or val.is_complex():
            bad_type.append(f"{key} ({val.dtype}, expected {ref.dtype})")
            continue
        if val.is_floating_point() and not bool(torch.isfinite(val).all()):
            non_finite.append(key)
            continue
        out[key] = val.detach().to(device="cpu", dtype=ref.dtype)
    if bad_shape:
        raise EncoderLoadError(
            f"{source}: {len(bad_shape)} encoder tensors have the wrong shape: {_listing(bad_shape)}"
        )
    if bad_type:
        raise EncoderLoadError(f"{source}: {len(bad_type)} encoder entries have the wrong type: {_listing(bad_type)}")
    if non_finite:
        raise EncoderLoadError(
            f"{source}: {len(non_finite)} encoder tensors contain NaN or inf: {_listing(non_finite)}"
        )
    bad_idx = [k for k in template if k.endswith("attention_bias_idxs") and not torch.equal(out[k], template[k])]
    if bad_idx:
        raise EncoderLoadError(
            f"{source}: attention offset tables differ from the Tiny-BioMoE layout (weights for another "
            f"window size?): {_listing(bad_idx)}"
        )
    return out, extra


def read_encoder_weights(
    source: str | os.PathLike | Mapping[str, Any], template: Mapping[str, torch.Tensor], strict_extra: bool = False
) -> EncoderWeights:
    """Load (if a path), unwrap and check encoder weights against the backbone ``template``."""
    if isinstance(source, Mapping):
        name, obj = "state dict", source
    else:
        name, obj = str(Path(source).expanduser()), read_checkpoint_file(source)
    raw, meta = unwrap_checkpoint(obj, name)
    sd, extra = check_state_dict(raw, template, name, strict_extra)
    if extra:
        log.warning("%s: ignoring %d keys outside the encoder backbone: %s", name, len(extra), _listing(extra))
    return EncoderWeights(sd, name, meta, extra)


def backbone_state_dict(model_or_sd: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The backbone (released-format) state dict of a reference or fast encoder, or a dict as-is."""
    if isinstance(model_or_sd, Mapping):
        return dict(model_or_sd)
    getter = getattr(model_or_sd, "backbone_state_dict", None)
    return dict(getter() if callable(getter) else model_or_sd.state_dict())


def encoder_fingerprint(state_dict: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """Short stable hash of the backbone weights: the encoder's identity in model checkpoints.

    Hashes key names, shapes and float32 values in sorted key order, so it does not depend on
    the device, on the dtype the weights were stored in, or on dict order.
    """
    sd = backbone_state_dict(state_dict)
    h = hashlib.sha256()
    for key in sorted(sd):
        t = sd[key].detach().to("cpu")
        t = t.float() if t.is_floating_point() else t.long()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_metadata(value: Any, where: str = "metadata") -> None:
    """Metadata must survive ``torch.load(weights_only=True)``: plain JSON-like values only."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings, got {k!r}")
            _check_metadata(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_metadata(v, f"{where}[{i}]")
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise ValueError(f"{where}: {type(value).__name__} is not allowed (use str, int, float, bool, list, dict)")


def save_encoder(
    path: str | os.PathLike, model_or_state_dict: nn.Module | Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> Path:
    """Write encoder weights in the PainMon encoder format, with metadata saying what they are.

    ``metadata`` should say what the weights are (``description``), what they were trained on
    (``training_data``) and anything else worth keeping; ``date`` (UTC, ISO 8601) and
    ``fingerprint`` are filled in. Written to a temporary file and renamed, so an interrupted
    save never leaves a truncated checkpoint under the final name.
    """
    from core.encoder.model import TinyBioMoE

    template = TinyBioMoE().state_dict()
    sd, _ = check_state_dict(backbone_state_dict(model_or_state_dict), template, "encoder to save", strict_extra=True)
    _check_metadata(metadata)
    meta = dict(metadata)
    meta.setdefault("date", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    meta["fingerprint"] = encoder_fingerprint(sd)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save({"format": ENCODER_FORMAT, "version": ENCODER_FORMAT_VERSION, "state_dict": sd, "metadata": meta}, tmp)
    os.replace(tmp, out)
    return out
