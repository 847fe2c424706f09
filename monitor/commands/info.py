"""``painmon info``: versions, compute device and the model in use."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon info`` to the command line."""
    p = sub.add_parser(
        "info",
        help="print versions, compute device and model in use",
        description="Prints PainMon's version and those of its main dependencies (torch, liblsl, Qt, ...), "
        "the compute device the model would run on, and what a model file says about itself: its name, "
        "the data it was trained on, its inputs and its encoder. Without --model: the bundled model. "
        "Include this output in bug reports.",
    )
    p.add_argument("--device", default="auto", help="device to report (auto|cpu|cuda|mps; default auto)")
    p.add_argument("--model", default=None, metavar="PATH",
                   help="describe this PainMon model file instead of the bundled one")
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
    model = Path(args.model).expanduser() if args.model else default_model_path()
    state = "present" if model.is_file() else "a folder, not a model file" if model.is_dir() else "missing"
    print(f"Model: {model} ({state})")
    usable = _print_model(model) if model.is_file() else False
    enc = released_encoder_path()
    print(f"Released Tiny-BioMoE weights: {enc if enc else 'not supplied (see README)'}")
    return 0 if usable or not args.model else 1


def _print_model(path: Path) -> bool:
    """What the model file says about itself: name, training data, encoder identity.
    False when the file is no usable PainMon model (said why, on one line)."""
    from core.checkpoint import ModelLoadError, ModelMetadata, read_checkpoint

    try:
        blob = read_checkpoint(path)
        meta = ModelMetadata.from_dict(blob["metadata"])
    except (ModelLoadError, KeyError, TypeError, ValueError) as exc:
        print(f"  unusable: {' '.join(str(exc).split())}")
        return False
    print(f"  name: {meta.name} (created {meta.created}, PainMon {meta.painmon_version})")
    print(f"  trained on: {meta.trained_on}")
    print(f"  inputs: {', '.join(meta.modalities)} x {', '.join(meta.representations)}, "
          f"{meta.window_s:g} s windows at {meta.working_rate:g} Hz")
    encoder = "inside the file" if blob.get("encoder") is not None else "not included (needs --encoder)"
    print(f"  encoder: {meta.encoder_description or 'unknown'} [{meta.encoder_fingerprint}], {encoder}")
    print(f"  {meta.not_clinical}")
    return True
