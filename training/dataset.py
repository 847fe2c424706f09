"""The embedded dataset: every window's embeddings, labels and provenance in flat arrays.

Training heads, evaluating and ablating all work on this, so trying a fusion variant is a
matter of seconds once the (slow) encoder has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class EmbeddedDataset:
    """Flat arrays over N windows of M modalities x R representations."""

    emb: np.ndarray
    """(N, M, R, 192) float32; zeros where the modality is absent."""
    present: np.ndarray
    """(N, M) bool."""
    labels: np.ndarray
    """(N,) int64: 0/1/2, or -1 when the window mixes levels (not trained on)."""
    level_end: np.ndarray
    t_end: np.ndarray
    subjects: np.ndarray
    """(N,) str."""
    recordings: np.ndarray
    """(N,) str: recording id each window came from."""
    quality: np.ndarray
    modalities: tuple[str, ...]
    representations: tuple[str, ...]
    info: dict = field(default_factory=dict)
    targets: np.ndarray | None = None
    """(N,) float: the continuous target of each window (mean self-reported rating 0-100,
    NaN where not rated), or None. Derived from the recording, never cached."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def subject_ids(self) -> list[str]:
        return sorted(set(self.subjects.tolist()))

    def subset(self, idx: np.ndarray) -> EmbeddedDataset:
        return EmbeddedDataset(
            self.emb[idx], self.present[idx], self.labels[idx], self.level_end[idx], self.t_end[idx],
            self.subjects[idx], self.recordings[idx], self.quality[idx], self.modalities, self.representations,
            dict(self.info), None if self.targets is None else self.targets[idx],
        )

    def select_representations(self, names: tuple[str, ...]) -> EmbeddedDataset:
        idx = [self.representations.index(n) for n in names]
        ds = self.subset(np.arange(len(self)))
        ds.emb = self.emb[:, :, idx]
        ds.representations = tuple(names)
        return ds

    @classmethod
    def concat(cls, parts: list[EmbeddedDataset]) -> EmbeddedDataset:
        if not parts:
            raise ValueError("no windows: nothing to concatenate (is the dataset empty?)")
        first = parts[0]

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        targets = None
        if any(p.targets is not None for p in parts):  # parts without a target: NaN (not rated)
            targets = np.concatenate([p.targets if p.targets is not None else np.full(len(p), np.nan)
                                      for p in parts])
        return cls(
            cat("emb"), cat("present"), cat("labels"), cat("level_end"), cat("t_end"), cat("subjects"),
            cat("recordings"), cat("quality"), first.modalities, first.representations, dict(first.info), targets,
        )

    def save(self, path: Path) -> None:
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(
            tmp,
            emb=self.emb,
            present=self.present,
            labels=self.labels,
            level_end=self.level_end,
            t_end=self.t_end,
            subjects=self.subjects.astype(str),
            recordings=self.recordings.astype(str),
            quality=self.quality,
            modalities=np.array(self.modalities),
            representations=np.array(self.representations),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> EmbeddedDataset:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["emb"], z["present"], z["labels"], z["level_end"], z["t_end"], z["subjects"],
                       z["recordings"], z["quality"], tuple(z["modalities"].tolist()),
                       tuple(z["representations"].tolist()))
