"""Building the estimator from files: a PainMon model checkpoint and, optionally, the
released Tiny-BioMoE encoder weights."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from core.device import resolve_device
from core.errors import PainMonError
from core.inference import Estimator
from monitor.engine.baselines import BaselineOptions, attach_baselines
from monitor.engine.engine import default_torch_threads

log = logging.getLogger(__name__)


class ModelNotFoundError(PainMonError, FileNotFoundError):
    """No model file where one was expected (with what to do about it)."""


@dataclass
class LoadedEstimator:
    """A ready estimator with what the engine needs from its model file: window, working rate, name, path."""
    estimator: Estimator
    window_s: float
    working_rate: float
    name: str
    path: Path


@dataclass(frozen=True)
class ModelOptions:
    """Which model runs, where and how: what the command line's model options say
    (:func:`monitor.options.add_model_options`), in one record the commands hand on."""

    model_path: str | None = None
    """PainMon model file (None: the bundled model)."""
    encoder_path: str | None = None
    """Encoder weights replacing the model file's own (e.g. the released ``Tiny-BioMoE.pth``)."""
    device: str | None = None
    """auto, cpu, cuda or mps (None: auto, or the dashboard's setting)."""
    precision: str | None = None
    """Encoder precision: auto, fp32, bf16 or fp16 (None: auto)."""
    backend: str | None = None
    """Encoder runtime: torch, openvino or auto (None: the loader's default, torch)."""
    threads: int | None = None
    """CPU threads of the model: torch's on the engine's worker, and OpenVINO's, which fixes its
    count when it compiles the model at load (None: the engine's default, all cores; the
    dashboard's, all but one)."""
    baseline: BaselineOptions | None = None
    """How subject baselines are learnt and kept (None: the defaults, 60 s, profiles saved)."""

    def load(self) -> LoadedEstimator:
        """The estimator these options name (seconds: reads and builds the model)."""
        return load_estimator(self.model_path, self.encoder_path, device=self.device or "auto",
                              precision=self.precision or "auto", baseline=self.baseline, backend=self.backend,
                              threads=self.threads)


def load_estimator(
    model_path: str | os.PathLike | None = None,
    encoder_path: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "auto",
    precision: str = "auto",
    baseline: BaselineOptions | None = None,
    backend: str | None = None,
    threads: int | None = None,
) -> LoadedEstimator:
    """Fusion head + metadata from ``model_path`` (default: the bundled model); encoder
    weights from ``encoder_path`` when given (e.g. the released ``Tiny-BioMoE.pth``),
    else from the model file itself. A model with a relative head gets a baseline book
    (:func:`monitor.engine.baselines.attach_baselines` with ``baseline``).

    ``threads`` is the thread count the engine will run the model with (None: the engine's
    default, :func:`monitor.engine.engine.default_torch_threads`). It must be known here, not
    only on the engine's worker: the OpenVINO backend fixes its thread count when it compiles
    the model, and a later ``torch.set_num_threads`` does not reach it."""
    from core.checkpoint import load_model
    from core.encoder import load_encoder
    from core.paths import default_model_path

    if model_path is not None and not str(model_path).strip():
        raise ModelNotFoundError("--model is empty: give a model file, or leave it out for the bundled model")
    path = Path(model_path) if model_path is not None else default_model_path()
    if path.is_dir():
        raise ModelNotFoundError(f"model path {path} is a directory, not a model file")
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file {path} not found; pass --model PATH or train one with `painmon train`"
        )
    dev = resolve_device(device)
    loaded = load_model(path, device=dev)
    meta = loaded.metadata
    if encoder_path is not None:
        enc_src: Path | Mapping[str, torch.Tensor] = Path(encoder_path)
    elif loaded.encoder_state_dict is not None:
        enc_src = loaded.encoder_state_dict
    else:
        raise ModelNotFoundError(
            f"model {path} carries no encoder weights; pass --encoder PATH (e.g. Tiny-BioMoE.pth)"
        )
    encoder = load_encoder(enc_src, device=str(dev), precision=precision, backend=backend or "torch",
                           threads=int(threads) if threads else default_torch_threads())
    if encoder_path is not None:
        check_encoder_identity(meta, getattr(encoder, "info", None), path)
    render_config = representation_config(meta.preprocessing, path)
    check_chains(meta.preprocessing, meta.modalities, path)
    est = Estimator(
        encoder,
        loaded.head,
        meta.modalities,
        meta.representations,
        device=dev,
        model_name=meta.name,
        working_rate=meta.working_rate,
        window_s=meta.window_s,
        render_config=render_config,
        relative_head=loaded.relative_head,
        statistics=loaded.statistics,
        encoder_fingerprint=meta.encoder_fingerprint,
        relative_kind=str((meta.baseline or {}).get("input", "concat")),
    )
    probe_output(est, path)  # before the baselines: probe windows must not become a subject's
    attach_baselines(est, baseline)
    log.info("model %s (%s x %s) on %s", meta.name, meta.modalities, meta.representations, dev)
    return LoadedEstimator(est, float(meta.window_s), float(meta.working_rate), meta.name, path)


PROBE_WINDOWS = 2


def probe_output(estimator: Estimator, path: Path | str = "model") -> None:
    """Refuse (:class:`core.checkpoint.ModelLoadError`, one line) a model whose output is not
    finite on a probe batch of well-formed windows.

    A model with NaN or infinite weights (diverged training, a damaged file), or one whose
    encoder overflows, would otherwise load silently and mark every estimate valid with NaN
    numbers. The probe is a batch of seeded noise windows of every modality at the working
    rate (valid, full quality) through the whole estimator, encoder included: the same
    work as the engine's warm-up, so loading costs little more."""
    import numpy as np

    from core.checkpoint import ModelLoadError
    from core.inference import ModalityWindow, SubjectWindow

    n = int(round(estimator.window_s * estimator.working_rate))
    rng = np.random.default_rng(0)
    windows = [
        SubjectWindow(subject=f"probe-{b}", t_end=0.0,
                      modalities={m: ModalityWindow(rng.standard_normal(n).astype(np.float32))
                                  for m in estimator.modalities})
        for b in range(PROBE_WINDOWS)
    ]
    for est in estimator.estimate(windows):
        numbers = [est.index, *est.probs]
        if not all(np.isfinite(numbers)):
            raise ModelLoadError(f"{path}: refused: the model's output is not finite on a probe batch "
                                 f"(index {est.index}, probabilities {est.probs}); retrain or restore the model file")


def check_encoder_identity(meta, info, path: Path) -> bool:
    """Warn when the supplied encoder is not the one the fusion head was trained on.

    The head maps one encoder's embedding space to pain classes; another encoder's
    embeddings (e.g. the released Tiny-BioMoE weights under a head trained on the bundled
    encoder) give numbers that look plausible but mean nothing, so this must be loud.
    Returns True when the identities match (or the model records none)."""
    if info is None or not meta.encoder_fingerprint:
        return True
    known = {meta.encoder_fingerprint, (meta.extra or {}).get("encoder_source_fingerprint", "")}
    if info.fingerprint in known:
        return True
    log.warning(
        "encoder %s (fingerprint %s) is not the encoder model %s was trained with (%s, %s): "
        "its estimates are not meaningful until the head is retrained on this encoder "
        "(painmon train ... --encoder %s; see README 'The bundled model')",
        info.source, info.fingerprint, path, meta.encoder_fingerprint,
        meta.encoder_description or "no description", info.source,
    )
    return False


def representation_config(preprocessing: dict, path: Path):
    """The image settings the model was trained with (None when it does not say: defaults).

    Images rendered with other settings look different to the encoder, so a model must
    run with its own; a setting this version does not know is an error, not a guess."""
    from core.checkpoint import ModelLoadError
    from core.representations import RepresentationConfig

    d = (preprocessing or {}).get("representation_config")
    if not d:
        return None
    try:
        return RepresentationConfig(**d)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: unusable representation settings {d}: {exc}") from exc


def check_chains(preprocessing: dict, modalities, path: Path) -> list[str]:
    """Warn about modalities whose preprocessing chain differs from the one the model was
    trained with (the model still runs: the chains are part of the code, not the model)."""
    import dataclasses
    import json

    from core.preprocessing import chain_for

    recorded = (preprocessing or {}).get("chains") or {}
    differ = []
    for m in modalities:
        if m not in recorded:
            continue
        now = json.loads(json.dumps(dataclasses.asdict(chain_for(m)), default=list))
        was = json.loads(json.dumps(recorded[m], default=list))
        if now != was:
            differ.append(m)
    if differ:
        log.warning("model %s was trained with other preprocessing for %s than this version applies; "
                    "its estimates may be off", path, ", ".join(differ))
    return differ
