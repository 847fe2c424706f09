"""``painmon pretrain``: multi-task pretraining / fine-tuning of the Tiny-BioMoE encoder."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands._outdir import output_folder
from training.recording_windows import WINDOW_LABELS


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon pretrain`` and its options to the command line."""
    p = sub.add_parser(
        "pretrain",
        help="pretrain or fine-tune the encoder on simulated images (runs under torchrun for DDP)",
        description="Multi-task training of the Tiny-BioMoE encoder (pain level, modality, representation, rhythm) "
        "on images of simulated windows. Run several processes with "
        "`torchrun --nproc-per-node N -m monitor.cli pretrain ...`. Writes OUT/encoder.pt.",
    )
    p.add_argument("--dataset", nargs=2, metavar=("KIND", "PATH"), default=None,
                   help="sim DIR: where simulated pretraining subjects are generated/stored (default OUT/sim)")
    p.add_argument("--out", type=Path, required=True,
                   help="run folder: encoder.pt, training log and (by default) the simulated data")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the simulated subjects and the initial weights (default 0)")
    p.add_argument("--encoder", default=None,
                   help="start from these weights (fine-tuning); default: seed initialisation")
    p.add_argument("--subjects", type=int, default=8, help="simulated subjects to train on (default 8)")
    p.add_argument("--duration", type=float, default=180.0, help="seconds per simulated subject (default 180)")
    p.add_argument("--stride", type=float, default=5.0, help="seconds between training windows (default 5)")
    p.add_argument("--representations", default="waveform,spectrogram_psd",
                   help="comma-separated image representations to train on (default waveform,spectrogram_psd)")
    p.add_argument("--batch", type=int, default=8, help="images per step per process")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training images (default 1)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--device", default="cpu", help="compute device: cpu|cuda|mps|auto (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (0: torch default)")
    p.add_argument("--sim-variant", choices=("plain", "varied"), default="plain",
                   help="simulator variant of the pretraining subjects (varied: wide physiology and random devices)")
    p.add_argument("--save-every", type=int, default=50, help="steps between checkpoints (encoder + resume state)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/pretrain-state.pt (the minutes already spent count towards --max-minutes)")
    p.add_argument("--window-labels", choices=WINDOW_LABELS, default="majority",
                   help="the pain level an image learns: majority (windows of one level only) or end (the level "
                   "at the window's end, every window; as painmon train --window-labels)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pretrain or fine-tune the encoder into ``OUT/encoder.pt`` (one process of a torchrun group, or alone)."""
    import torch

    from training.pretrain import PretrainOptions, pretrain

    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.out / "sim"
    if args.dataset is not None:
        kind, path = args.dataset
        if kind.lower() != "sim":
            print(f"painmon pretrain: only simulated data is supported for pretraining (got {kind!r})")
            return 2
        data = Path(path)
    opts = PretrainOptions(
        out=args.out, data=data, seed=args.seed, encoder=args.encoder, subjects=args.subjects, duration_s=args.duration,
        stride_s=args.stride, representations=tuple(s.strip() for s in args.representations.split(",") if s.strip()),
        batch=args.batch, lr=args.lr, epochs=args.epochs, max_steps=args.max_steps, max_minutes=args.max_minutes,
        device=args.device, progress=not args.quiet, variant=args.sim_variant, save_every=args.save_every,
        resume=args.resume, window_label=args.window_labels,
    )
    try:
        with output_folder(args.out):  # a failed run leaves no empty folder behind
            result = pretrain(opts)
    except (ValueError, FileNotFoundError) as exc:
        print(f"painmon pretrain: {exc}")
        return 2
    if result.encoder_path is not None:
        first = sum(result.losses[:20]) / max(1, len(result.losses[:20]))
        last = sum(result.losses[-20:]) / max(1, len(result.losses[-20:]))
        print(f"Pretrained {result.steps} steps ({result.images} images, {result.minutes:.1f} min): "
              f"loss {first:.3f} -> {last:.3f}")
        print(f"Encoder: {result.encoder_path}")
    return 0
