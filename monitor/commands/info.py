"""``painmon info``: versions, compute device and the model in use."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon info`` to the command line."""
    p = sub.add_parser("info", help="print versions, compute device and model in use")
    p.add_argument("--device", default="auto", help="device to report (auto|cpu|cuda|mps)")
    p.set_defaults(func=run)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    """Print what a bug report needs: versions, the compute device and the model files found."""
    import torch

    from core.device import describe_device, resolve_device
    from core.paths import default_model_path, released_encoder_path

    print(f"PainMon {_version('painmon')} (Python {platform.python_version()}, {platform.platform()})")
    for dist in ("torch", "numpy", "scipy", "pylsl", "aiomqtt", "pyxdf", "pyqtgraph", "PySide6-Essentials"):
        print(f"  {dist:<20} {_version(dist)}")
    try:
        import pylsl

        print(f"  {'liblsl':<20} {pylsl.library_version()}")
    except Exception as exc:  # liblsl missing is worth reporting, not crashing
        print(f"  {'liblsl':<20} unavailable ({exc})")
    dev = resolve_device(args.device)
    print(f"Device: {dev} — {describe_device(dev)}")
    print(f"  CUDA available: {torch.cuda.is_available()}")
    model = default_model_path()
    print(f"Model: {model} ({'present' if model.is_file() else 'missing'})")
    if model.is_file():
        _print_model(model)
    enc = released_encoder_path()
    print(f"Released Tiny-BioMoE weights: {enc if enc else 'not supplied (see README)'}")
    return 0


def _print_model(path) -> None:
    """What the model file says about itself: name, training data, encoder identity."""
    from core.checkpoint import ModelLoadError, ModelMetadata, read_checkpoint

    try:
        blob = read_checkpoint(path)
        meta = ModelMetadata.from_dict(blob["metadata"])
    except ModelLoadError as exc:
        print(f"  unusable: {exc}")
        return
    print(f"  name: {meta.name} (created {meta.created}, PainMon {meta.painmon_version})")
    print(f"  trained on: {meta.trained_on}")
    print(f"  inputs: {', '.join(meta.modalities)} x {', '.join(meta.representations)}, "
          f"{meta.window_s:g} s windows at {meta.working_rate:g} Hz")
    encoder = "inside the file" if blob.get("encoder") is not None else "not included (needs --encoder)"
    print(f"  encoder: {meta.encoder_description or 'unknown'} [{meta.encoder_fingerprint}], {encoder}")
    print(f"  {meta.not_clinical}")
