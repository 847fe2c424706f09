"""Dataset windowing: recordings -> 10 s model-ready windows, prepared as the engine does.

Training must see windows exactly like the ones the real-time engine will feed the model,
otherwise the head learns preprocessing artefacts it never meets live. So each modality
goes through the same :class:`core.preprocessing.StreamPreprocessor` (device rate ->
working rate, filtering, artefact flags), the engine's end-of-window rule
(:func:`core.windows.end_at_input`) and :func:`core.windows.cut_window` as live data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from training.records import UNLABELLED, Recording

log = logging.getLogger(__name__)

WINDOW_LABELS = ("majority", "end")
"""The rules for the class a cut window learns (:func:`training.fit.window_labels`): the level
covering most of it (``majority``; windows mixing levels have none) or the level at its end
(``end``). Here, beside the labels they choose between, so the commands can offer them
without importing torch."""


@dataclass(frozen=True)
class WindowSettings:
    """How windows are cut; part of the embedding-cache key and of the model metadata."""

    modalities: tuple[str, ...]
    window_s: float = 10.0
    stride_s: float = 2.0
    working_rate: float = 100.0
    min_purity: float = 0.8
    """Fraction of a window that must share one pain level for it to get a training label."""

    def as_dict(self) -> dict:
        return {"modalities": list(self.modalities), "window_s": self.window_s, "stride_s": self.stride_s,
                "working_rate": self.working_rate, "min_purity": self.min_purity}


@dataclass
class WindowBatch:
    """Windows of one recording: signals ``(N, M, T)`` with presence / quality ``(N, M)``."""

    signals: np.ndarray
    present: np.ndarray
    quality: np.ndarray
    labels: np.ndarray
    """Majority pain level of each window (UNLABELLED when below ``min_purity``)."""
    level_end: np.ndarray
    """True level at the window's end (for tracking plots)."""
    t_end: np.ndarray
    reasons: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.signals.shape[0])


def window_ends(rec: Recording, settings: WindowSettings) -> np.ndarray:
    """Window end times: every ``stride_s`` through a session, or anchored at a segment's end;
    on the working rate's grid, as the engine's (a window ending between two processed
    samples would be an average of neighbours, see :class:`monitor.engine.scheduler.WindowScheduler`)."""
    start, end = rec.span
    if not np.isfinite(start):
        return np.zeros(0)
    rate = settings.working_rate
    start = np.floor(start * rate + 1e-6) / rate
    if rec.whole_segment:
        # AI4PAIN segments are ~10 s: anchor at the end so a full-length segment gives one
        # full window; longer ones give more, stepping back by the stride.
        end = np.floor(end * rate + 1e-6) / rate
        n_more = int(np.floor(max(0.0, (end - start) - settings.window_s) / settings.stride_s + 1e-9))
        return end - settings.stride_s * np.arange(n_more, -1, -1)
    first = start + settings.window_s
    if first > end + 1e-9:
        return np.zeros(0)
    return np.arange(first, end + 1e-9, settings.stride_s)


def engine_window_input(proc, sig, t_end: float, settings: WindowSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The processed samples the engine would cut the window ending at ``t_end`` from.

    The engine (:meth:`monitor.engine.ingest.StreamIngest.cut`) reads its processed buffer
    between ``t_end - window_s`` and ``t_end`` (two working-rate samples of margin either
    side) and ends the signal at the newest input sample before ``t_end``, held over at
    most one input period (:func:`core.windows.end_at_input`). Training windows are cut by
    the same rule, so the model learns the windows it is served (a window interpolated on
    to a sample *at* its end differs in its last input period: for 1 Hz SpO2, the last
    second).
    """
    from core.windows import end_at_input

    margin = 2.0 / settings.working_rate
    # masks, not searchsorted: like the engine's ring buffer, robust to a clock reset
    sel = (proc.timestamps >= t_end - settings.window_s - margin) & (proc.timestamps < t_end + margin)
    return end_at_input(proc.values[sel], proc.timestamps[sel], proc.flags[sel], sig.timestamps, t_end,
                        settings.window_s, sig.rate, settings.working_rate)


def cut_recording(rec: Recording, settings: WindowSettings) -> WindowBatch:
    """All windows of ``rec`` (windows where no modality is usable are dropped)."""
    from core.preprocessing import StreamPreprocessor
    from core.windows import cut_window

    ends = window_ends(rec, settings)
    n_t = int(round(settings.window_s * settings.working_rate))
    m = len(settings.modalities)
    signals = np.zeros((len(ends), m, n_t), dtype=np.float32)
    present = np.zeros((len(ends), m), dtype=bool)
    quality = np.zeros((len(ends), m), dtype=np.float32)
    reasons = [["absent"] * m for _ in ends]
    for j, modality in enumerate(settings.modalities):
        sig = rec.signals.get(modality)
        if sig is None or sig.values.size == 0:
            continue
        pre = StreamPreprocessor(modality, sig.rate, n_channels=1, working_rate=settings.working_rate)
        proc = pre.process(sig.values[:, None], sig.timestamps)
        for i, t_end in enumerate(ends):
            values, ts, flags = engine_window_input(proc, sig, float(t_end), settings)
            w = cut_window(values, ts, flags, float(t_end), settings.window_s, settings.working_rate)
            reasons[i][j] = w.reason or ""
            quality[i, j] = float(w.quality)
            if w.valid:
                values = np.asarray(w.signal, dtype=np.float32).reshape(-1)
                if values.shape[0] != n_t:
                    raise ValueError(f"cut_window gave {values.shape[0]} samples, expected {n_t}")
                signals[i, j] = values
                present[i, j] = True
    labels = np.full(len(ends), UNLABELLED, dtype=np.int64)
    for i, t_end in enumerate(ends):
        level, purity = rec.levels.majority(float(t_end) - settings.window_s, float(t_end))
        if purity >= settings.min_purity:
            labels[i] = level
    keep = np.asarray(present.any(axis=1), dtype=bool)
    if not keep.all():
        log.info("%s: %d of %d windows have no usable modality and are dropped", rec.id, int((~keep).sum()), len(ends))
    return WindowBatch(
        signals=signals[keep], present=present[keep], quality=quality[keep], labels=labels[keep],
        level_end=np.asarray(rec.levels.level_at(ends), dtype=np.int64)[keep], t_end=ends[keep],
        reasons=[r for r, k in zip(reasons, keep, strict=True) if k],
    )
