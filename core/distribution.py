"""What the model was trained on, as statistics of its embeddings: the ``uncertain`` test.

A fusion head maps embeddings it has seen to pain classes; far away from them its output
is an extrapolation, however confident its probabilities look. The model file therefore
carries the training windows' per-dimension mean and spread of every (modality,
representation) embedding, and a window's distance from them is

    d = mean over present modalities, representations and dimensions of ((e - mean) / std)^2

(a diagonal Mahalanobis distance per dimension: about 1 for a typical training window).
The threshold is a percentile (99th by default) of ``d`` over *held-out* windows — windows
of subjects the head was not trained on — so 1 % of such windows are called ``uncertain``.
:meth:`EmbeddingStatistics.ood_score` is ``d / threshold``: 1.0 is the threshold.
Pure computation (no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_PERCENTILE = 99.0
"""Percentile of held-out windows' distance at which ``ood_score`` = 1 (``uncertain``)."""
MIN_STD = 1e-3
"""Floor of a dimension's spread: a constant training dimension must not make any change infinite."""


def outside(ood_score: np.ndarray | float) -> np.ndarray:
    """True where an :meth:`EmbeddingStatistics.ood_score` says ``uncertain`` (beyond the threshold;
    NaN - no statistics, no present modality - is never outside)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(ood_score, dtype=np.float64) > 1.0


@dataclass(frozen=True)
class EmbeddingStatistics:
    """Training-distribution statistics of a model (stored in the model file)."""

    mean: np.ndarray
    """(M, R, D) mean embedding of the training windows where the modality is present."""
    std: np.ndarray
    """(M, R, D) their spread (floored at :data:`MIN_STD`)."""
    threshold: float = float("nan")
    """Distance at which a window is ``uncertain`` (NaN: not calibrated)."""
    percentile: float = DEFAULT_PERCENTILE
    windows: int = 0
    """Training windows the statistics come from."""
    calibration_windows: int = 0
    """Held-out windows the threshold comes from."""

    @classmethod
    def fit(cls, emb: np.ndarray, present: np.ndarray) -> EmbeddingStatistics:
        """Mean and spread of ``emb`` (N, M, R, D) over the windows where each modality is present."""
        emb = np.asarray(emb, dtype=np.float64)
        w = np.asarray(present, dtype=bool)[:, :, None, None].astype(np.float64)
        n = np.maximum(w.sum(axis=0), 1.0)
        mean = (emb * w).sum(axis=0) / n
        std = np.sqrt((((emb - mean) ** 2) * w).sum(axis=0) / n)
        return cls(mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32), windows=int(len(emb)))

    def calibrated(self, emb: np.ndarray, present: np.ndarray,
                   percentile: float = DEFAULT_PERCENTILE) -> EmbeddingStatistics:
        """These statistics with the threshold at ``percentile`` of held-out windows' distance."""
        d = self.distance(emb, present)
        d = d[np.isfinite(d)]
        if d.size == 0:
            raise ValueError("no held-out window with a present modality to calibrate the threshold on")
        return EmbeddingStatistics(self.mean, self.std, float(np.percentile(d, percentile)), float(percentile),
                                   self.windows, int(d.size))

    def distance(self, emb: np.ndarray | torch.Tensor, present: np.ndarray | torch.Tensor) -> np.ndarray:
        """(B,) mean squared standardised distance over the present entries; NaN where none is present."""
        e = emb.detach().cpu().double().numpy() if isinstance(emb, torch.Tensor) else np.asarray(emb, np.float64)
        p = present.detach().cpu().numpy() if isinstance(present, torch.Tensor) else np.asarray(present)
        p = p.astype(bool)
        z2 = ((e - self.mean[None]) / self.std[None]) ** 2  # (B, M, R, D)
        per_mod = z2.mean(axis=(2, 3))  # (B, M)
        n = p.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, np.where(p, per_mod, 0.0).sum(axis=1) / n, np.nan)

    def ood_score(self, emb: np.ndarray | torch.Tensor, present: np.ndarray | torch.Tensor) -> np.ndarray:
        """(B,) distance / threshold (1.0 = ``uncertain``); NaN without a threshold or a present modality."""
        if not np.isfinite(self.threshold) or self.threshold <= 0:
            return np.full(len(present), np.nan)
        return self.distance(emb, present) / self.threshold

    # --- model-file form: tensors and plain numbers only (torch.load weights_only) ----------
    def to_state(self) -> dict:
        return {"mean": torch.from_numpy(np.ascontiguousarray(self.mean)),
                "std": torch.from_numpy(np.ascontiguousarray(self.std)),
                "threshold": float(self.threshold), "percentile": float(self.percentile),
                "windows": int(self.windows), "calibration_windows": int(self.calibration_windows)}

    @classmethod
    def from_state(cls, state: dict) -> EmbeddingStatistics:
        mean = state["mean"].float().numpy()
        std = state["std"].float().numpy()
        if mean.shape != std.shape or mean.ndim != 3:
            raise ValueError(f"statistics arrays of shapes {mean.shape} and {std.shape}; expected two (M, R, D)")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("statistics hold non-finite or non-positive spreads")
        return cls(mean, std, float(state.get("threshold", float("nan"))),
                   float(state.get("percentile", DEFAULT_PERCENTILE)), int(state.get("windows", 0)),
                   int(state.get("calibration_windows", 0)))
