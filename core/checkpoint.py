"""PainMon model checkpoints: fusion head (+ optional encoder weights) + metadata.

Format (a ``torch.save``'d dict, read only with ``torch.load(weights_only=True)`` so a
checkpoint can never run code)::

    {"format": "painmon-model", "version": 2,
     "head": state_dict, "encoder": state_dict | None, "metadata": {...plain types...},
     "relative_head": state_dict | None, "statistics": {...tensors and numbers...} | None}

``head`` is the population (``absolute``) head; ``relative_head``, when present, the head
that sees each window beside its subject's baseline (:mod:`core.baseline`; its
configuration is ``metadata.relative_fusion``, with ``embed_dim`` twice the encoder's);
``statistics`` the training distribution behind the ``uncertain`` state
(:class:`core.distribution.EmbeddingStatistics`). Version-1 files (absolute head only)
still load.

The metadata says what the model expects (modalities, representations, window length,
working rate, preprocessing) so that loading can refuse, with a list of every mismatch, a
configuration the model was not trained for — a silently mismatched model would still
produce numbers, just meaningless ones.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from core.distribution import EmbeddingStatistics
from core.errors import PainMonError
from core.estimate import CLASS_NAMES
from core.fusion import FusionConfigError, FusionHead
from core.safeload import UnsafeOrUnreadableFile, load_weights_only

log = logging.getLogger(__name__)

FORMAT = "painmon-model"
VERSION = 2
READABLE_VERSIONS = (1, 2)

NOT_CLINICAL = (
    "Research tool, not a medical device: do not use this model's output for clinical decisions."
)


class ModelLoadError(PainMonError, RuntimeError):
    """A model file that cannot be used, with the reason spelled out for the user."""


def non_finite_weights(state_dict: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity (a model that cannot
    give a finite output; training that diverged, or a damaged file)."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _painmon_version() -> str:
    try:
        from importlib.metadata import version

        return version("painmon")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


@dataclass
class ModelMetadata:
    """What a PainMon model is, what it expects and how it was made."""

    name: str
    modalities: list[str]
    representations: list[str]
    fusion: dict[str, Any] = field(default_factory=dict)
    """:meth:`core.fusion.FusionConfig.to_dict` of the head (filled in by :func:`save_model`)."""
    description: str = ""
    trained_on: str = ""
    """Plain statement of the training data (shown on the dashboard)."""
    not_clinical: str = NOT_CLINICAL
    window_s: float = 10.0
    working_rate: float = 100.0
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    preprocessing: dict[str, Any] = field(default_factory=dict)
    encoder_fingerprint: str = ""
    encoder_description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    painmon_version: str = field(default_factory=_painmon_version)
    extra: dict[str, Any] = field(default_factory=dict)
    relative_fusion: dict[str, Any] = field(default_factory=dict)
    """:meth:`core.fusion.FusionConfig.to_dict` of the relative head (empty: absolute only)."""
    baseline: dict[str, Any] = field(default_factory=dict)
    """How the relative head's training baselines were made (``duration_s``, ``rule``, ...):
    live baselines should be learnt the same way."""

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes this model offers (:data:`core.estimate.MODES`)."""
        return ("relative", "absolute") if self.relative_fusion else ("absolute",)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelMetadata:
        names = {f.name for f in fields(cls)}
        required = {"name", "modalities", "representations", "fusion"}
        missing = sorted(required - set(d))
        if missing:
            raise ModelLoadError(f"model metadata lacks {missing}")
        unknown = sorted(set(d) - names)
        if unknown:  # newer writer: keep going, but say so
            log.warning("ignoring unknown model metadata fields %s", unknown)
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class LoadedModel:
    """A model ready for inference: head in eval mode on the requested device."""

    head: FusionHead
    metadata: ModelMetadata
    encoder_state_dict: dict[str, torch.Tensor] | None
    path: Path | None = None
    relative_head: FusionHead | None = None
    """The head for windows relative to a subject's baseline (None: absolute only)."""
    statistics: EmbeddingStatistics | None = None
    """Training-distribution statistics (None: the model cannot say ``uncertain``)."""


def _plain(obj: Any) -> Any:
    """Convert tuples / numpy scalars to plain Python so weights_only loading accepts them."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"metadata value {obj!r} of type {type(obj).__name__} is not a plain type")


def save_model(
    path: str | os.PathLike,
    head: FusionHead,
    metadata: ModelMetadata,
    encoder_state_dict: Mapping[str, torch.Tensor] | None = None,
    encoder_half: bool = True,
    *,
    relative_head: FusionHead | None = None,
    statistics: EmbeddingStatistics | None = None,
    head_half: bool = False,
) -> Path:
    """Write a checkpoint atomically (temp file + rename: a crash never leaves half a model).

    ``encoder_half`` stores floating encoder tensors as float16, halving the file (the
    bundled model stays < 16 MB); ``head_half`` does the same for the heads (a relative
    head doubles their size); :func:`load_model` returns both as float32.
    """
    path = Path(path)
    cfg = head.config.to_dict()
    if metadata.fusion and metadata.fusion != cfg:
        raise ValueError("metadata.fusion differs from the head's configuration")
    metadata.fusion = cfg
    if list(metadata.modalities) != list(head.modalities) or list(metadata.representations) != list(
        head.representations
    ):
        raise ValueError(
            f"metadata modalities/representations {metadata.modalities}/{metadata.representations} "
            f"differ from the head's {list(head.modalities)}/{list(head.representations)}"
        )
    if relative_head is not None:
        metadata.relative_fusion = relative_head.config.to_dict()
        if tuple(relative_head.modalities) != tuple(head.modalities) or tuple(relative_head.representations) != tuple(
                head.representations):
            raise ValueError("the relative head's modalities/representations differ from the absolute head's")
    else:
        metadata.relative_fusion = {}
    enc = None
    if encoder_state_dict is not None:
        enc = {}
        for k, v in encoder_state_dict.items():
            v = v.detach().cpu()
            if encoder_half and v.is_floating_point():
                v = v.half()
            enc[k] = v.clone()
    blob = {
        "format": FORMAT,
        "version": VERSION,
        "head": _head_state(head, head_half),
        "encoder": enc,
        "metadata": metadata.to_dict(),
        "relative_head": None if relative_head is None else _head_state(relative_head, head_half),
        "statistics": None if statistics is None else statistics.to_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    log.info("saved model %s to %s", metadata.name, path)
    return path


def _head_state(head: FusionHead, half: bool) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in head.state_dict().items():
        v = v.detach().cpu()
        out[k] = (v.half() if half and v.is_floating_point() else v).clone()
    return out


def _float32(sd: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in sd.items()}


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate the raw checkpoint dict (no model built)."""
    try:
        blob = load_weights_only(path, "model file")
    except UnsafeOrUnreadableFile as exc:
        raise ModelLoadError(str(exc)) from None
    path = Path(path)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        hint = ""
        if isinstance(blob, dict) and ("model_state_dict" in blob or blob.get("format") == "painmon-encoder"):
            hint = " — this looks like encoder weights; pass it as the encoder (--encoder), not as the model"
        raise ModelLoadError(f"{path} is not a PainMon model: format {found!r}, expected {FORMAT!r}{hint}")
    if blob.get("version") not in READABLE_VERSIONS:
        raise ModelLoadError(
            f"{path} is PainMon model format version {blob.get('version')!r}; this PainMon reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    for key in ("head", "metadata"):
        if not isinstance(blob.get(key), dict):
            raise ModelLoadError(f"{path} lacks its {key!r} entry")
    return blob


def check_expectations(metadata: ModelMetadata, expect: Mapping[str, Any]) -> list[str]:
    """Every way the running configuration ``expect`` differs from the model's metadata.

    Numbers compare with a small tolerance; lists compare in order (the head's input layout
    depends on it). Unknown keys are themselves reported, so a typo cannot pass silently.
    """
    problems = []
    for key, want in expect.items():
        if not hasattr(metadata, key):
            problems.append(f"{key}: not a model metadata field")
            continue
        have = getattr(metadata, key)
        if isinstance(want, (int, float)) and isinstance(have, (int, float)) and not isinstance(want, bool):
            same = abs(float(want) - float(have)) <= 1e-6 * max(1.0, abs(float(have)))
        elif isinstance(want, (list, tuple)) and isinstance(have, (list, tuple)):
            same = list(want) == list(have)
        else:
            same = want == have
        if not same:
            problems.append(f"{key}: model has {have!r}, running configuration has {want!r}")
    return problems


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    expect: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Load a model, check it against ``expect`` and return the head in eval mode.

    Raises :class:`ModelLoadError` listing *all* mismatches at once, so a user fixes a
    configuration in one go rather than one error at a time.
    """
    path = Path(path)
    blob = read_checkpoint(path)
    meta = ModelMetadata.from_dict(blob["metadata"])
    if expect:
        problems = check_expectations(meta, expect)
        if problems:
            raise ModelLoadError(
                f"model {path} does not match the running configuration:\n  - " + "\n  - ".join(problems)
            )
    try:
        head = FusionHead.from_config(meta.fusion)
    except (FusionConfigError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path}: cannot rebuild the fusion head from its metadata: {exc}") from exc
    bad = non_finite_weights(blob["head"])
    if bad:
        raise ModelLoadError(f"{path}: refused: the fusion head's weights are not finite ({', '.join(bad[:3])}"
                             f"{', ...' if len(bad) > 3 else ''}); retrain or restore the model file")
    try:
        head.load_state_dict(_float32(blob["head"]), strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: head weights do not fit its own configuration: {exc}") from exc
    head.to(device).eval()
    relative = None
    if meta.relative_fusion:
        if not isinstance(blob.get("relative_head"), dict):
            raise ModelLoadError(f"{path}: metadata names a relative head but the file holds none")
        try:
            relative = FusionHead.from_config(meta.relative_fusion)
            relative.load_state_dict(_float32(blob["relative_head"]), strict=True)
        except (FusionConfigError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelLoadError(f"{path}: cannot rebuild the relative head: {exc}") from exc
        relative.to(device).eval()
    stats = None
    if isinstance(blob.get("statistics"), dict):
        try:
            stats = EmbeddingStatistics.from_state(blob["statistics"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelLoadError(f"{path}: unusable training-distribution statistics: {exc}") from exc
    enc = blob.get("encoder")
    if enc is not None:
        enc = {k: (v.float() if v.is_floating_point() else v) for k, v in enc.items()}
    return LoadedModel(head=head, metadata=meta, encoder_state_dict=enc, path=path, relative_head=relative,
                       statistics=stats)
