"""Window signals -> per-image Tiny-BioMoE embeddings ``(N, M, R, 192)``.

Only present modalities are rendered and encoded: the encoder is by far the slowest step,
and an absent SpO2 probe should not cost a quarter of the compute.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from core.fusion import EMBED_DIM
from training.progress import Progress

log = logging.getLogger(__name__)


@torch.no_grad()
def embed_signals(
    signals: torch.Tensor,
    present: torch.Tensor,
    encoder: torch.nn.Module,
    representations: Sequence[str],
    fs: float = 100.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Embeddings ``(B, M, R, 192)`` of one batch of windows ``(B, M, T)``; absent rows stay 0."""
    from core.representations import render

    b, m, _ = signals.shape
    r = len(representations)
    out = torch.zeros(b, m, r, EMBED_DIM)
    if not bool(present.any()):
        return out
    images = render(signals, list(representations), fs=fs, size=224, device=device)  # (B, M, R, 3, 224, 224)
    sel = present.to(images.device)
    chosen = images[sel]  # (P, R, 3, 224, 224)
    emb = encoder(chosen.reshape(-1, *chosen.shape[-3:]).to(device))
    out[present] = emb.float().cpu().reshape(-1, r, EMBED_DIM)
    return out


def embed_windows(
    signals: np.ndarray,
    present: np.ndarray,
    encoder: torch.nn.Module,
    representations: Sequence[str],
    fs: float = 100.0,
    device: torch.device | str = "cpu",
    batch_windows: int = 4,
    bar: Progress | None = None,
) -> np.ndarray:
    """Embeddings of many windows, batched; advances ``bar`` by one per window."""
    n, m, _ = signals.shape
    out = np.zeros((n, m, len(representations), EMBED_DIM), dtype=np.float32)
    for s in range(0, n, batch_windows):
        sl = slice(s, min(n, s + batch_windows))
        out[sl] = embed_signals(
            torch.from_numpy(np.ascontiguousarray(signals[sl])), torch.from_numpy(present[sl]),
            encoder, representations, fs=fs, device=device,
        ).numpy()
        if bar is not None:
            bar.update(sl.stop - sl.start)
    return out
