"""Training a fusion head on cached embeddings (seconds on a CPU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from core.fusion import FusionConfig, FusionHead
from training.dataset import EmbeddedDataset

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


def trainable(ds: EmbeddedDataset) -> np.ndarray:
    """Indices of windows with a clean label and at least one present modality."""
    return np.flatnonzero((ds.labels >= 0) & ds.present.any(axis=1))


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
    idx = trainable(ds)
    if idx.size == 0:
        raise ValueError("no labelled windows to train on")
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    head = FusionHead.from_config(config)
    x = torch.from_numpy(ds.emb[idx])
    m = torch.from_numpy(ds.present[idx])
    y = torch.from_numpy(ds.labels[idx])
    counts = torch.bincount(y, minlength=config.n_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (counts.clamp_min(1) * (counts > 0).sum()), torch.zeros(()))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=settings.label_smoothing)
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
