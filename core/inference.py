"""One batched inference pass: windows of many subjects -> pain estimates.

The engine hands over the ready windows of *all* subjects at once. Rendering, the encoder
and the fusion head each run once over the whole batch, because per-call overheads
(kernel launches, Python, thread pool wake-ups) dominate at batch 1 and the encoder is by
far the most expensive stage. Only modalities that are actually present are rendered and
encoded: a subject without an SpO2 probe costs a quarter less, and the fusion head gets a
mask that tells it what was absent. This module is pure computation (no threads, no I/O).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.baseline import BaselineBook, relative_input, stack_baselines
from core.clock import now
from core.distribution import EmbeddingStatistics, outside
from core.errors import PainMonError
from core.estimate import CLASS_NAMES, Estimate
from core.fusion import pain_index

log = logging.getLogger(__name__)

DEFAULT_ENCODER_BATCH = 32
"""Images per encoder call: large enough to amortise overheads, small enough for memory."""


@dataclass(frozen=True)
class ModalityWindow:
    """One modality's signal over one window, at the model's working rate."""

    signal: np.ndarray
    """(T,) float signal; meaningless where ``valid`` is False."""
    quality: float = 1.0
    """0-1 share of the window with good signal."""
    valid: bool = True
    """False when too little usable signal: the modality is treated as missing."""
    reason: str = ""
    """Why it is invalid (shown to the user)."""


@dataclass
class SubjectWindow:
    """All modalities of one subject over one window: the unit the engine queues."""

    subject: str
    t_end: float
    """Window end on the shared clock."""
    modalities: dict[str, ModalityWindow] = field(default_factory=dict)
    """What was cut, keyed by modality; expected modalities absent here are missing."""
    preprocess_s: float = 0.0
    """Seconds spent preprocessing and cutting this window (for the latency record)."""
    ready_at: float = float("nan")
    """Shared-clock time the window was complete (queued)."""
    hop_s: float = float("nan")
    """Seconds between this subject's windows when it was cut (passed on to the estimate)."""


class EstimatorError(PainMonError, ValueError):
    """The model and the windows do not fit together."""


RenderFn = Callable[..., torch.Tensor]


class Estimator:
    """Encoder + fusion head + representation renderer, run as one batched pass.

    ``encoder`` maps (N, 3, 224, 224) images in [0, 1] to (N, 192); ``head`` maps
    (B, M, R, 192) embeddings and a (B, M) presence mask to logits (see
    :class:`core.fusion.FusionHead`). ``modalities`` and ``representations`` are the
    head's order. ``render`` defaults to :func:`core.representations.render`. Everything
    after the four model parts is keyword-only (the options are many and easily swapped).

    Modes: with a ``relative_head`` and a ``baselines`` book, a window of a subject whose
    baseline is in force goes through the relative head (``mode="relative"``), every other
    window through ``head`` (``"absolute"``); ``calibration`` says how much of the subject's
    baseline is learnt. Every window is then handed to the book (in order, after it was
    estimated), which is how baselines are learnt. With ``statistics`` each estimate carries
    its ``ood_score`` (:mod:`core.distribution`).

    (This module holds the batched inference pass; the record it produces,
    :class:`core.estimate.Estimate`, lives in :mod:`core.estimate`.)
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        head: torch.nn.Module,
        modalities: Sequence[str],
        representations: Sequence[str],
        *,
        device: torch.device | str = "cpu",
        model_name: str = "",
        working_rate: float = 100.0,
        window_s: float = 10.0,
        render: RenderFn | None = None,
        encoder_batch: int = DEFAULT_ENCODER_BATCH,
        min_modalities: int = 1,
        render_config: object | None = None,
        relative_head: torch.nn.Module | None = None,
        statistics: EmbeddingStatistics | None = None,
        baselines: BaselineBook | None = None,
        encoder_fingerprint: str = "",
        relative_kind: str = "concat",
    ):
        if not modalities:
            raise EstimatorError("the model names no modalities")
        if not representations:
            raise EstimatorError("the model names no representations")
        self.encoder = encoder.eval()
        self.head = head.eval()
        self.modalities = tuple(modalities)
        self.representations = tuple(representations)
        self.device = torch.device(device)
        self.model_name = model_name
        self.working_rate = float(working_rate)
        self.window_s = float(window_s)
        """Window length the model was trained on (the engine's default)."""
        if render is None:
            from core.representations import render as default_render

            render = default_render
        self._render: RenderFn = render
        self.render_config = render_config
        """:class:`core.representations.RepresentationConfig` the model was trained with (None: defaults)."""
        self.encoder_batch = max(1, int(encoder_batch))
        self.min_modalities = max(1, int(min_modalities))
        self.relative_head = relative_head.eval() if relative_head is not None else None
        self.statistics = statistics
        self.encoder_fingerprint = encoder_fingerprint
        """Identity of the encoder (baselines learnt with another encoder are refused)."""
        self.relative_kind = relative_kind
        """What the relative head sees (:data:`core.baseline.RELATIVE_INPUTS`; the model's ``baseline.input``)."""
        self.baselines = baselines
        """Per-subject baselines (:class:`core.baseline.BaselineBook`); None: absolute mode only."""

    def new_baseline_book(self, **options) -> BaselineBook:
        """A :class:`core.baseline.BaselineBook` for this model's layout and encoder (``options``:
        ``duration_s``, ``auto``, ``history_s``, ``on_baseline``, ``loader``), installed as :attr:`baselines`."""
        self.baselines = BaselineBook(self.modalities, self.representations, encoder=self.encoder_fingerprint,
                                      window_s=self.window_s, **options)
        return self.baselines

    # ------------------------------------------------------------------------------------
    def estimate(self, windows: Sequence[SubjectWindow]) -> list[Estimate]:
        """One estimate per window, in order. Smoothed fields are left NaN (the engine
        keeps the per-subject trends)."""
        if not windows:
            return []
        t0 = time.perf_counter()
        present, missing = self._presence(windows)
        usable = present.sum(axis=1) >= self.min_modalities
        present &= usable[:, None]
        probs = np.full((len(windows), len(CLASS_NAMES)), np.nan)
        index = np.full(len(windows), np.nan)
        ood = np.full(len(windows), np.nan)
        modes = ["absolute"] * len(windows)
        calibration = np.full(len(windows), np.nan)
        stages = {"represent": 0.0, "encode": 0.0, "fuse": 0.0}
        emb = None
        if present.any():
            with torch.inference_mode():
                pairs = np.argwhere(present)  # (K, 2): (window, modality) to render and encode
                z = self._embed(self._stack_signals(windows, pairs), stages)
                t3 = time.perf_counter()
                emb = self._scatter(z, pairs, len(windows))
                rows = np.flatnonzero(usable)
                p = self._fuse(emb, present, rows)
                probs[rows], index[rows] = p, pain_index(torch.from_numpy(p)).numpy()
                if self.statistics is not None:
                    ood[rows] = self.statistics.ood_score(emb[rows], present[rows])
                stages["fuse"] = time.perf_counter() - t3
        if self.baselines is not None:
            emb_np = emb.cpu().numpy() if emb is not None else None
            self._relative(windows, emb_np, present, usable & ~outside(ood), probs, index, modes, calibration)
        created = now()
        batch_s = time.perf_counter() - t0
        return [
            Estimate(
                subject=w.subject,
                t_end=float(w.t_end),
                index=float(index[b]),
                probs=tuple(float(v) for v in probs[b]),  # type: ignore[arg-type]
                quality={m: float(mw.quality) for m, mw in w.modalities.items() if m in self.modalities},
                missing=missing[b],
                valid=bool(usable[b]),
                model=self.model_name,
                mode=modes[b],
                calibration=float(calibration[b]),
                ood_score=float(ood[b]),
                latency={
                    "preprocess": float(w.preprocess_s),
                    **stages,
                    "batch": batch_s,
                    "total": (created - w.ready_at if np.isfinite(w.ready_at) else batch_s) + float(w.preprocess_s),
                },
                created=created,
                hop_s=float(w.hop_s),
            )
            for b, w in enumerate(windows)
        ]

    def encoder_calls(self, windows: int) -> list[int]:
        """Images in each encoder call of one :meth:`estimate` of ``windows`` windows with every
        modality present (how :meth:`_embed` and :meth:`_encode` chunk them): the batch shapes
        an encoder that compiles per shape should be ready for."""
        signals = max(0, int(windows)) * len(self.modalities)
        per_chunk = max(1, self.encoder_batch // len(self.representations))
        sizes = []
        for i in range(0, signals, per_chunk):
            images = min(per_chunk, signals - i) * len(self.representations)
            sizes += [min(self.encoder_batch, images - j) for j in range(0, images, self.encoder_batch)]
        return sizes

    def _embed(self, signals: np.ndarray, stages: dict[str, float]) -> torch.Tensor:
        """(K, T) signals -> (K, R, D) embeddings, rendering and encoding a chunk of
        signals at a time: memory stays bounded (a 224x224 image is 0.6 MB; a ward's
        batch rendered at once would be hundreds of MB) and results do not change."""
        per_chunk = max(1, self.encoder_batch // len(self.representations))
        out = []
        for i in range(0, signals.shape[0], per_chunk):
            t1 = time.perf_counter()
            images = self._render_images(signals[i : i + per_chunk])
            t2 = time.perf_counter()
            out.append(self._encode(images).reshape(images.shape[0] // len(self.representations),
                                                    len(self.representations), -1))
            stages["represent"] += t2 - t1
            stages["encode"] += time.perf_counter() - t2
        return torch.cat(out, dim=0)

    def _render_images(self, signals: np.ndarray) -> torch.Tensor:
        """(K, T) signals -> (K * R, 3, 224, 224) images, representation-major per signal."""
        extra = {"config": self.render_config} if self.render_config is not None else {}
        images = self._render(
            torch.from_numpy(signals)[:, None, :],
            self.representations,
            fs=self.working_rate,
            device=self.device,
            **extra,
        )  # (K, 1, R, 3, 224, 224)
        return images.reshape(-1, *images.shape[-3:])

    def _scatter(self, z: torch.Tensor, pairs: np.ndarray, n: int) -> torch.Tensor:
        """The (K, R, D) embeddings of the encoded (window, modality) pairs as (B, M, R, D), zeros elsewhere."""
        emb = torch.zeros(n, len(self.modalities), z.shape[1], z.shape[2], dtype=z.dtype, device=z.device)
        idx = torch.from_numpy(pairs).to(z.device)
        emb[idx[:, 0], idx[:, 1]] = z
        return emb

    def _fuse(self, emb: torch.Tensor, present: np.ndarray, rows: np.ndarray, head: torch.nn.Module | None = None
              ) -> np.ndarray:
        """Run ``head`` (default: the absolute one) on ``rows`` of ``emb`` with the presence mask;
        returns their (len(rows), 3) probabilities."""
        sel = torch.from_numpy(rows).to(emb.device)
        mask = torch.from_numpy(present).to(emb.device)
        logits = (head or self.head)(emb[sel], mask[sel])
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def _relative(self, windows: Sequence[SubjectWindow], emb: np.ndarray | None, present: np.ndarray,
                  known: np.ndarray, probs: np.ndarray, index: np.ndarray, modes: list[str],
                  calibration: np.ndarray) -> None:
        """Relative-head estimates for windows whose subject has a baseline, then every ``known``
        window (usable and not ``uncertain``) to the book.

        Windows are taken in order, each seeing the baselines as they stood before it (a
        batch with two windows of one subject gives the same results as two batches). A window
        beyond the training distribution never enters a baseline: the model cannot read it, so
        a baseline of such windows would make every later estimate relative to noise (a PPG in
        raw ADC counts read 11 of 11 ``ok`` windows as high pain that way).
        """
        book = self.baselines
        assert book is not None
        chosen: list[tuple[int, object]] = []
        for b, w in enumerate(windows):
            stats, cal = book.current(w.subject, float(w.t_end))
            calibration[b] = cal if self.relative_head is not None else np.nan
            if stats is not None and self.relative_head is not None and present[b].any() and emb is not None:
                chosen.append((b, stats))
            if emb is not None:  # every window moves a marked interval on; only known ones are learnt from
                book.observe(w.subject, float(w.t_end), emb[b], present[b], good=bool(known[b]))
        if not chosen or emb is None or self.relative_head is None:
            return
        rows = np.array([b for b, _ in chosen])
        mean, std, count = stack_baselines([s for _, s in chosen])  # type: ignore[misc]
        pop = self.statistics.std if self.statistics is not None else np.zeros(mean.shape[1:], np.float32)
        x = relative_input(emb[rows], present[rows], mean, std, count, pop, kind=self.relative_kind)
        with torch.inference_mode():
            p = self._fuse(torch.from_numpy(x).to(self.device), present[rows], np.arange(len(rows)),
                           self.relative_head)
        probs[rows], index[rows] = p, pain_index(torch.from_numpy(p)).numpy()
        for b in rows:
            modes[b] = "relative"

    # ------------------------------------------------------------------------------------
    def _presence(self, windows: Sequence[SubjectWindow]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        present = np.zeros((len(windows), len(self.modalities)), dtype=bool)
        missing: list[tuple[str, ...]] = []
        for b, w in enumerate(windows):
            lacks = []
            for m, name in enumerate(self.modalities):
                mw = w.modalities.get(name)
                ok = mw is not None and mw.valid and np.isfinite(mw.signal).all() and mw.signal.size > 1
                present[b, m] = ok
                if not ok:
                    lacks.append(name)
            missing.append(tuple(lacks))
        return present, missing

    def _stack_signals(self, windows: Sequence[SubjectWindow], pairs: np.ndarray) -> np.ndarray:
        """Equal-length float32 rows; a window a sample short or long (rounding at the edges)
        is cut or edge-padded to the most common length rather than rejected."""
        sigs = [
            np.asarray(windows[b].modalities[self.modalities[m]].signal, dtype=np.float32).reshape(-1)
            for b, m in pairs
        ]
        lengths = [s.size for s in sigs]
        target = max(set(lengths), key=lengths.count)
        out = np.empty((len(sigs), target), dtype=np.float32)
        for i, s in enumerate(sigs):
            if s.size >= target:
                out[i] = s[-target:]
            else:
                out[i, target - s.size :] = s
                out[i, : target - s.size] = s[0]
        return out

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        chunks = [
            self.encoder(images[i : i + self.encoder_batch]).float()
            for i in range(0, images.shape[0], self.encoder_batch)
        ]
        return torch.cat(chunks, dim=0)
