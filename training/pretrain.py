"""Multi-task pretraining / fine-tuning of the Tiny-BioMoE encoder on single images.

Without the released weights PainMon needs *some* encoder whose embeddings separate
physiological states. This trains the backbone on images of simulated windows (or, given
``--encoder``, fine-tunes existing weights) with auxiliary heads that each force it to
encode something a pain head will need:

* pain level of the window (no / low / high), from one modality's image alone;
* which modality the image shows, and which representation it is;
* the dominant rhythm (heart rate for BVP, breathing rate for RESP), regression.

BatchNorm layers stay in eval mode: batches of a few images give statistics too noisy to
learn from, and freezing them keeps training and inference identical (and keeps every
rank's buffers equal under DistributedDataParallel without synchronising them).
Works on one process or under ``torchrun`` (see :mod:`training.distributed`).

Resumable: every ``save_every`` steps rank 0 also writes ``OUT/pretrain-state.pt`` (encoder
and task heads, optimiser, step, losses, elapsed minutes, the data order's random state);
``resume=True`` continues from it exactly where it stopped, and the ``max_minutes`` budget
counts the minutes already spent, so a run killed by the end of a session is continued by
re-running the same command with ``--resume``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.fusion import EMBED_DIM
from training.distributed import DistInfo, init_distributed, shard, shutdown_distributed, weights_digest
from training.fit import window_labels
from training.recording_windows import WindowSettings, cut_recording
from training.records import Recording

log = logging.getLogger(__name__)

RHYTHM_BANDS = {"BVP": (0.7, 3.0), "RESP": (0.1, 0.7)}
"""Frequency band (Hz) of the rhythm target per modality; other modalities have none."""


@dataclass
class PretrainOptions:
    """Settings of ``painmon pretrain`` (recorded in the encoder's metadata)."""

    out: Path
    data: Path
    seed: int = 0
    encoder: str | None = None
    """Start from these weights (fine-tuning); None = deterministic seed initialisation."""
    modalities: tuple[str, ...] = ("EDA", "BVP", "RESP", "SpO2")
    representations: tuple[str, ...] = ("waveform", "spectrogram_psd")
    subjects: int = 8
    duration_s: float = 180.0
    stride_s: float = 5.0
    batch: int = 8
    lr: float = 1e-4
    epochs: int = 1
    max_steps: int | None = None
    max_minutes: float | None = None
    save_every: int = 50
    device: str = "cpu"
    progress: bool = True
    variant: str = "plain"
    """Simulator variant of the pretraining subjects (:data:`training.sim_data.VARIANTS`)."""
    resume: bool = False
    """Continue from ``OUT/pretrain-state.pt`` when it exists."""
    window_label: str = "majority"
    """The pain level an image learns (:attr:`training.fit.FitSettings.window_label`): ``majority``
    (windows of one level only) or ``end`` (the level at the window's end, every window, so the
    encoder also learns the seconds after an episode starts or ends)."""


@dataclass
class PretrainResult:
    """What a pretraining run produced: the saved encoder, its steps, images and losses."""

    encoder_path: Path | None
    steps: int
    images: int
    minutes: float
    digest: str
    losses: list[float] = field(default_factory=list)


@dataclass
class ImageItems:
    """Flat list of (window, modality, representation) training images with their targets."""

    signals: np.ndarray  # (W, M, T)
    window: np.ndarray
    modality: np.ndarray
    representation: np.ndarray
    pain: np.ndarray
    rhythm: np.ndarray
    rhythm_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.window.shape[0])


class PretrainNet(nn.Module):
    """The encoder plus small task heads on its 192-D embedding."""

    def __init__(self, encoder: nn.Module, n_modalities: int, n_representations: int):
        super().__init__()
        self.encoder = encoder
        self.pain = nn.Linear(EMBED_DIM, 3)
        self.modality = nn.Linear(EMBED_DIM, n_modalities)
        self.representation = nn.Linear(EMBED_DIM, n_representations)
        self.rhythm = nn.Linear(EMBED_DIM, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(images)
        return {"pain": self.pain(z), "modality": self.modality(z), "representation": self.representation(z),
                "rhythm": self.rhythm(z)[:, 0]}


def dominant_frequency(x: np.ndarray, fs: float, band: tuple[float, float]) -> float:
    """Frequency of the periodogram peak within ``band`` (Hz)."""
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / fs)
    sel = (freqs >= band[0]) & (freqs <= band[1])
    return float(freqs[sel][np.argmax(spec[sel])]) if sel.any() else float("nan")


def build_items(recordings: Sequence[Recording], settings: WindowSettings, n_reps: int,
                window_label: str = "majority") -> ImageItems:
    """Every labelled window (by ``window_label``) x present modality x representation, with targets."""
    sigs, win, mod, rep, pain, rhythm, rmask = [], [], [], [], [], [], []
    offset = 0
    for rec in recordings:
        wb = cut_recording(rec, settings)
        labels = window_labels(wb, window_label)
        sigs.append(wb.signals)
        for i in range(len(wb)):
            if labels[i] < 0:
                continue
            for j, m in enumerate(settings.modalities):
                if not wb.present[i, j]:
                    continue
                band = RHYTHM_BANDS.get(m)
                f = dominant_frequency(wb.signals[i, j], settings.working_rate, band) if band else float("nan")
                # normalise each band to [-1, 1] so the regression loss is comparable across modalities
                target = 2 * (f - band[0]) / (band[1] - band[0]) - 1 if band else 0.0
                for r in range(n_reps):
                    win.append(offset + i)
                    mod.append(j)
                    rep.append(r)
                    pain.append(labels[i])
                    rhythm.append(target if np.isfinite(target) else 0.0)
                    rmask.append(bool(band) and np.isfinite(f))
        offset += len(wb)
    if not win:
        raise ValueError("no labelled windows to pretrain on")
    return ImageItems(np.concatenate(sigs), np.asarray(win), np.asarray(mod), np.asarray(rep), np.asarray(pain),
                      np.asarray(rhythm, dtype=np.float32), np.asarray(rmask, dtype=bool))


def images_for(items: ImageItems, idx: np.ndarray, representations: Sequence[str], fs: float) -> torch.Tensor:
    """Render the images of ``idx`` (one window-modality per row, its representation picked)."""
    from core.representations import render

    signals = items.signals[items.window[idx], items.modality[idx]][:, None, :]  # (B, 1, T)
    imgs = render(torch.from_numpy(np.ascontiguousarray(signals)), list(representations), fs=fs)  # (B,1,R,3,H,W)
    return imgs[torch.arange(len(idx)), 0, torch.from_numpy(items.representation[idx])]


def _freeze_batchnorm(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(True)  # affine params still learn; only the statistics are frozen


def _losses(out: dict[str, torch.Tensor], items: ImageItems, idx: np.ndarray) -> torch.Tensor:
    ce = nn.functional.cross_entropy
    pain = torch.from_numpy(items.pain[idx])
    mod = torch.from_numpy(items.modality[idx])
    rep = torch.from_numpy(items.representation[idx])
    rmask = torch.from_numpy(items.rhythm_mask[idx])
    rhythm = torch.from_numpy(items.rhythm[idx])
    loss = ce(out["pain"], pain) + 0.5 * ce(out["modality"], mod) + 0.5 * ce(out["representation"], rep)
    diff = (out["rhythm"] - rhythm) * rmask.float()
    return loss + (diff ** 2).sum() / rmask.float().sum().clamp_min(1.0)


def pretrain(opts: PretrainOptions) -> PretrainResult:
    """Run pretraining; rank 0 writes ``encoder.pt`` (painmon-encoder format) into ``opts.out``."""
    from core.device import resolve_device

    device = resolve_device(opts.device)
    info = init_distributed(device)
    try:
        return _pretrain(opts, info, device)
    finally:
        shutdown_distributed()


def _pretrain(opts: PretrainOptions, info: DistInfo, device: torch.device) -> PretrainResult:
    from training.encoders import initial_encoder, save_pretrained
    from training.progress import Progress
    from training.sim_data import sim_dataset

    torch.manual_seed(opts.seed)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(opts.data)
    def load() -> list[Recording]:
        return sim_dataset(data_dir, opts.subjects, opts.duration_s, opts.seed, first=1001,
                           show_progress=opts.progress, variant=opts.variant)

    if info.is_main:  # one rank simulates and stores; the others read the same files
        recs = load()
    if info.distributed:
        torch.distributed.barrier()
    if not info.is_main:
        recs = load()
    settings = WindowSettings(tuple(opts.modalities), 10.0, opts.stride_s, 100.0)
    items = build_items(recs, settings, len(opts.representations), opts.window_label)
    encoder, start_desc = initial_encoder(opts.encoder, seed=opts.seed)
    net = PretrainNet(encoder, len(opts.modalities), len(opts.representations)).to(device)
    model: nn.Module = net
    if info.distributed:
        model = nn.parallel.DistributedDataParallel(net, broadcast_buffers=False)
    opt = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=0.01)
    rng = np.random.default_rng(opts.seed)  # same order on every rank; each takes its shard
    steps, images, losses = 0, 0, []
    per_epoch = len(shard(rng.permutation(len(items)), info, opts.batch)) // opts.batch
    first_epoch, skip, spent_min = 0, 0, 0.0
    state_path = out / STATE_FILE
    if opts.resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["optimizer"])
        steps, images, losses = int(st["steps"]), int(st["images"]), [float(x) for x in st["losses"]]
        first_epoch, skip, spent_min = int(st["epoch"]), int(st["batch_in_epoch"]), float(st["minutes"])
        start_desc = str(st["start"])
        rng.bit_generator.state = json.loads(str(st["epoch_rng"]))
        if "torch_rng" in st:  # states written before it was kept resume without it
            torch.set_rng_state(st["torch_rng"])
        log.info("resuming pretraining at step %d (epoch %d, %.1f min spent)", steps, first_epoch, spent_min)
    elif opts.resume:
        log.info("no %s in %s: starting afresh", STATE_FILE, out)
    t0 = time.monotonic() - spent_min * 60.0  # the budget includes the minutes of earlier runs
    stop = False
    total = per_epoch * opts.epochs if opts.max_steps is None else min(opts.max_steps, per_epoch * opts.epochs)
    bar = Progress(max(0, total - steps), f"pretraining (rank {info.rank})", enabled=opts.progress and info.is_main)
    for epoch in range(first_epoch, opts.epochs):
        epoch_rng = json.dumps(rng.bit_generator.state)
        mine = shard(rng.permutation(len(items)), info, opts.batch)
        for s in range(skip * opts.batch, len(mine) - opts.batch + 1, opts.batch):
            idx = mine[s : s + opts.batch]
            model.train()
            _freeze_batchnorm(model)
            x = images_for(items, idx, opts.representations, settings.working_rate).to(device)
            out_t = model(x)
            loss = _losses({k: v.cpu() for k, v in out_t.items()}, items, idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            images += len(idx) * info.world_size
            losses.append(float(loss.detach()))
            bar.update()
            if info.is_main and opts.save_every and steps % opts.save_every == 0:
                save_pretrained(
                    out / "encoder.pt", net.encoder, _meta(opts, start_desc, steps, images, t0, losses, info)
                )
                _save_state(state_path, net, opt, steps=steps, images=images, losses=losses, epoch=epoch,
                            batch_in_epoch=s // opts.batch + 1, minutes=(time.monotonic() - t0) / 60,
                            start=start_desc, epoch_rng=epoch_rng, torch_rng=torch.get_rng_state())
            limit = (opts.max_steps is not None and steps >= opts.max_steps) or (
                opts.max_minutes is not None and (time.monotonic() - t0) / 60 >= opts.max_minutes)
            flag = torch.tensor([1.0 if limit else 0.0])
            if info.distributed:  # every rank stops at the same step, or the next all-reduce hangs
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() > 0:
                stop = True
                break
        if stop:
            break
        skip = 0
    bar.close()
    digest = weights_digest(net.encoder)
    (out / f"weights-rank{info.rank}.sha1").write_text(digest + "\n")
    path = None
    if info.is_main:
        path = save_pretrained(
            out / "encoder.pt", net.encoder, _meta(opts, start_desc, steps, images, t0, losses, info)
        )
        (out / "pretrain.json").write_text(
            json.dumps(_meta(opts, start_desc, steps, images, t0, losses, info), indent=1)
        )
    minutes = (time.monotonic() - t0) / 60
    log.info(
        "pretraining: %d steps, %d images, %.1f min, final loss %.3f",
        steps,
        images,
        minutes,
        losses[-1] if losses else float("nan"),
    )
    return PretrainResult(path, steps, images, minutes, digest, losses)


STATE_FILE = "pretrain-state.pt"
"""Resume state of a pretraining run (in its output folder)."""


def _save_state(path: Path, net: nn.Module, opt: torch.optim.Optimizer, **fields: Any) -> None:
    """Everything a resumed run needs, written atomically (read back with ``weights_only=True``)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"net": net.state_dict(), "optimizer": opt.state_dict(), **fields}, tmp)
    tmp.replace(path)


def _meta(
    opts, start_desc: str, steps: int, images: int, t0: float, losses: list[float], info: DistInfo
) -> dict[str, Any]:
    minutes = (time.monotonic() - t0) / 60
    recent = float(np.mean(losses[-20:])) if losses else float("nan")
    return {
        "description": (
            f"Tiny-BioMoE pretrained by `painmon pretrain` (multi-task: pain level, modality, representation, "
            f"rhythm; {opts.window_label} window labels) on {opts.subjects} simulated subjects x "
            f"{opts.duration_s:.0f} s ({opts.variant} simulator), "
            f"started from {start_desc}; "
            f"{steps} steps of {opts.batch} images x {info.world_size} process(es), {images} images, "
            f"{minutes:.1f} min on {opts.device}. A short budget: longer pretraining gives better embeddings."
        ),
        "steps": steps,
        "images": images,
        "minutes": round(minutes, 2),
        "seed": opts.seed,
        "representations": list(opts.representations),
        "modalities": list(opts.modalities),
        "first_loss": float(np.mean(losses[:20])) if losses else float("nan"),
        "last_loss": recent,
        "world_size": info.world_size,
        "start": start_desc,
        "training_data": f"{opts.subjects} simulated subjects "
        f"(PainMon simulator, {opts.variant} variant, seed {opts.seed}, subjects sim-1001..)",
        "variant": opts.variant,
    }
