"""Embedding cache: representations + encoder run once per recording, stored on disk.

The key of a cache folder is a hash of everything that changes embeddings (encoder
fingerprint, representations, window settings, preprocessing); inside it, one file per
recording keyed by a hash of the recording's content. Re-running training with another
fusion mode, seed or number of epochs then reads embeddings in seconds, and an
interrupted embedding run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.dataset import EmbeddedDataset
from training.records import Recording

log = logging.getLogger(__name__)


def recording_digest(rec: Recording) -> str:
    """Content hash of a recording (signals, timestamps, labels), so edited data is re-embedded."""
    h = hashlib.sha1(rec.id.encode())
    for name in sorted(rec.signals):
        s = rec.signals[name]
        h.update(name.encode())
        h.update(np.ascontiguousarray(s.values).tobytes())
        h.update(np.ascontiguousarray(s.timestamps).tobytes())
        h.update(str(s.rate).encode())
    h.update(np.ascontiguousarray(rec.levels.times).tobytes())
    h.update(np.ascontiguousarray(rec.levels.levels).tobytes())
    return h.hexdigest()[:20]


class EmbeddingCache:
    """A folder of per-recording embedding files for one set of settings."""

    def __init__(self, root: str | Path, settings: dict[str, Any]):
        blob = json.dumps(settings, sort_keys=True, default=str)
        self.key = hashlib.sha1(blob.encode()).hexdigest()[:16]
        self.dir = Path(root) / self.key
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "settings.json").write_text(json.dumps(settings, sort_keys=True, indent=1, default=str))
        self.hits = 0
        self.misses = 0

    def _path(self, rec: Recording) -> Path:
        return self.dir / f"{recording_digest(rec)}.npz"

    def has(self, rec: Recording) -> bool:
        return self._path(rec).is_file()

    def get_or_compute(self, rec: Recording, compute: Callable[[Recording], EmbeddedDataset]) -> EmbeddedDataset:
        path = self._path(rec)
        if path.is_file():
            try:
                ds = EmbeddedDataset.load(path)
                self.hits += 1
                return ds
            except Exception as exc:  # a truncated file from a killed run: recompute it
                log.warning("cache file %s unreadable (%s); recomputing", path, exc)
        self.misses += 1
        ds = compute(rec)
        ds.save(path)
        return ds
