"""Training a fusion head on cached embeddings (seconds on a CPU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from core.estimate import BAND_EDGES
from core.fusion import FusionConfig, FusionHead
from training.dataset import EmbeddedDataset
from training.recording_windows import WINDOW_LABELS
from training.records import TARGETS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """Optimiser settings of a head fit (part of what makes a run reproducible)."""

    epochs: int = 60
    lr: float = 2e-3
    weight_decay: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    label_smoothing: float = 0.05
    target: str = "class"
    """``class``: train on pain levels; ``continuous``: on the self-reported rating of each
    window, through :func:`rating_targets` (windows without a rating are not trained on)."""
    window_label: str = "majority"
    """Which level a window is trained on (``class`` target): ``majority`` - the level covering
    most of the window, windows mixing levels left out; ``end`` - the level at the window's end,
    every window, so the head learns what the engine is judged on (the level *now*), including
    the seconds after an episode starts or ends."""


class LabelledWindows(Protocol):
    """Windows with both labels (an :class:`EmbeddedDataset`, or the cut windows of one recording)."""

    labels: np.ndarray
    level_end: np.ndarray


def window_labels(ds: LabelledWindows, rule: str = "majority") -> np.ndarray:
    """(N,) class label of every window of ``ds`` under ``rule`` (:attr:`FitSettings.window_label`);
    -1 where it has none."""
    if rule not in WINDOW_LABELS:
        raise ValueError(f"unknown window label rule {rule!r}; use one of {', '.join(WINDOW_LABELS)}")
    return ds.level_end.astype(np.int64) if rule == "end" else ds.labels


def rating_targets(ratings: np.ndarray) -> np.ndarray:
    """Class probabilities ``(N, 3)`` whose pain index (``50 * p_low + 100 * p_high``, see
    :func:`core.fusion.pain_index`) equals each rating 0-100: the two classes around it share
    the probability linearly (30 -> no 0.4 / low 0.6; 80 -> low 0.4 / high 0.6). Training on
    these soft targets makes the head's index track the rating, with the same head, loss
    and output as class training."""
    r = np.clip(np.asarray(ratings, dtype=np.float64).reshape(-1), 0.0, 100.0) / 50.0  # expected level 0-2
    out = np.zeros((r.size, 3), dtype=np.float32)
    low_half = r <= 1.0
    out[low_half, 0] = 1.0 - r[low_half]
    out[low_half, 1] = r[low_half]
    out[~low_half, 1] = 2.0 - r[~low_half]
    out[~low_half, 2] = r[~low_half] - 1.0
    return out


def trainable(ds: EmbeddedDataset, target: str = "class", window_label: str = "majority") -> np.ndarray:
    """Indices of windows with a label under ``window_label`` (``continuous``: a rating) and at
    least one present modality."""
    if target == "continuous":
        if ds.targets is None:
            raise ValueError("continuous training needs self-reported ratings (ds.targets)")
        return np.flatnonzero(np.isfinite(ds.targets) & ds.present.any(axis=1))
    return np.flatnonzero((window_labels(ds, window_label) >= 0) & ds.present.any(axis=1))


def fit_head(ds: EmbeddedDataset, config: FusionConfig, settings: FitSettings = FitSettings()) -> FusionHead:
    """Train a fresh head on the labelled windows of ``ds``; deterministic for a given seed.

    Classes are weighted by inverse frequency because protocols spend far more time at
    rest than in pain, and a head that always says "no pain" would otherwise look good.
    """
    if tuple(ds.modalities) != tuple(config.modalities) or tuple(ds.representations) != tuple(config.representations):
        raise ValueError(
            f"dataset has {list(ds.modalities)} x {list(ds.representations)}, head wants "
            f"{list(config.modalities)} x {list(config.representations)}"
        )
    if settings.target not in TARGETS:
        raise ValueError(f"unknown training target {settings.target!r}; use one of {', '.join(TARGETS)}")
    continuous = settings.target == "continuous"
    idx = trainable(ds, settings.target, settings.window_label)
    if idx.size == 0:
        raise ValueError("no labelled windows to train on")
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    head = FusionHead.from_config(config)
    x = torch.from_numpy(ds.emb[idx])
    m = torch.from_numpy(ds.present[idx])
    if continuous:
        assert ds.targets is not None
        soft = rating_targets(ds.targets[idx])
        y = torch.from_numpy(soft)  # probabilities: CrossEntropyLoss takes them as targets
        bands = torch.from_numpy(np.digitize(ds.targets[idx], BAND_EDGES).astype(np.int64))  # for the weights
    else:
        y = torch.from_numpy(window_labels(ds, settings.window_label)[idx])
        bands = y
    counts = torch.bincount(bands, minlength=config.n_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (counts.clamp_min(1) * (counts > 0).sum()), torch.zeros(()))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.0 if continuous else settings.label_smoothing)
    opt = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(idx) / settings.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.epochs * steps_per_epoch)
    head.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(idx), generator=gen)
        total = 0.0
        for s in range(0, len(idx), settings.batch_size):
            b = order[s : s + settings.batch_size]
            opt.zero_grad()
            loss = loss_fn(head(x[b], m[b]), y[b])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        if epoch == settings.epochs - 1 or epoch % 20 == 0:
            log.info("epoch %d/%d loss %.4f", epoch + 1, settings.epochs, total / len(idx))
    return head.eval()
