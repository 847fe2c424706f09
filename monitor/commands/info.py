"""``painmon info``: versions, compute device and the model in use."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print versions, compute device and model in use")
    p.add_argument("--device", default="auto", help="device to report (auto|cpu|cuda|mps)")
    p.set_defaults(func=run)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
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
    enc = released_encoder_path()
    print(f"Released Tiny-BioMoE weights: {enc if enc else 'not supplied (see README)'}")
    return 0
