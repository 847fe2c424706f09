"""Training baselines: each subject's own no-pain start, learnt by the live rule.

The relative head must see at training time exactly what it sees live: a window beside a
baseline that a live session would have had at that moment. So for every training (and
held-out) subject this module

1. orders the subject's windows as a live session would have met them (a whole session:
   by window end; AI4PAIN-style pre-cut segments: in the file's column order, laid end to
   end);
2. feeds them, in that order, to a :class:`core.baseline.BaselineLearner` (the engine's
   own class, with the engine's duration) **only while they are no-pain windows at the
   session's start** — the AI4PAIN layout's baseline segments, a simulated subject's initial
   rest; the first window that is not pure no-pain ends the baseline period. If that period
   is shorter than the learner's duration, the baseline is what it had (at least one window);
3. keeps as *relative examples* only windows that end after the baseline was complete, each
   with that baseline.

No look-ahead (a baseline is built from windows ending no later than the first window it
serves) and no leak (a subject's baseline comes from its own windows only; sessions of one
subject are kept apart, except pre-cut segments, which are one session by construction).
:func:`check_no_leak` asserts both and runs on every training set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.baseline import DEFAULT_BASELINE_S, BaselineLearner, BaselineStats, relative_input, stack_baselines
from core.distribution import outside
from training.dataset import EmbeddedDataset
from training.records import Recording

log = logging.getLogger(__name__)

NO_PAIN = 0


@dataclass
class RelativeSet:
    """The relative head's training view of an :class:`EmbeddedDataset`."""

    ds: EmbeddedDataset
    """Relative examples: ``emb`` is ``(N, M, R, 2D)`` = :func:`core.baseline.relative_input`."""
    rows: np.ndarray
    """Index of each example in the source dataset."""
    baselines: dict[str, BaselineStats]
    """Baseline of each session (key: session id)."""
    sessions: np.ndarray
    """(N_source,) session id of every source window."""
    order: np.ndarray
    """(N_source,) live-session time of every source window (its end)."""
    baseline_rows: dict[str, np.ndarray]
    """Source windows each session's baseline was learnt from."""


def session_layout(recordings: Sequence[Recording]) -> dict[str, tuple[str, float]]:
    """Recording id -> (session id, time offset of the recording within its session).

    A whole recording is its own session. Pre-cut segments (``whole_segment``) of one subject
    form one session in the given order, each placed after the previous one's end.
    """
    out: dict[str, tuple[str, float]] = {}
    offsets: dict[str, float] = {}
    for rec in recordings:
        if not rec.whole_segment:
            out[rec.id] = (rec.id, 0.0)
            continue
        start, end = rec.span
        if not np.isfinite(start):
            continue
        key = f"{rec.subject}:segments"
        t = offsets.get(key, 0.0)
        out[rec.id] = (key, t - start)
        offsets[key] = t + (end - start) + 1e-3
    return out


def relative_set(ds: EmbeddedDataset, layout: dict[str, tuple[str, float]], pop_std: np.ndarray, *,
                 duration_s: float = DEFAULT_BASELINE_S, window_s: float = 10.0, kind: str = "concat",
                 ood: np.ndarray | None = None) -> RelativeSet:
    """Baselines per session by the live rule and the relative examples that follow them (module docstring).

    ``ood``: (N,) :meth:`core.distribution.EmbeddingStatistics.ood_score` of every window; as
    live, a window beyond the threshold (``uncertain``) is not learnt into a baseline.
    """
    n = len(ds)
    sessions = np.empty(n, dtype=object)
    order = np.zeros(n)
    for i, rid in enumerate(ds.recordings.tolist()):
        key, offset = layout.get(rid, (rid, 0.0))
        sessions[i] = key
        order[i] = ds.t_end[i] + offset
    rows: list[int] = []
    chosen: list[BaselineStats] = []
    baselines: dict[str, BaselineStats] = {}
    used: dict[str, np.ndarray] = {}
    known = ds.present.any(axis=1) & ~(outside(ood) if ood is not None else np.zeros(n, dtype=bool))
    for key in dict.fromkeys(sessions.tolist()):
        idx = np.flatnonzero(sessions == key)
        idx = idx[np.argsort(order[idx], kind="stable")]
        subjects = set(ds.subjects[idx].tolist())
        if len(subjects) != 1:
            raise ValueError(f"session {key} mixes subjects {sorted(subjects)}")
        learner = BaselineLearner(duration_s, window_s, history_s=max(duration_s, 300.0) * 10,
                                  modalities=ds.modalities, representations=ds.representations)
        stats, fed = None, []
        for i in idx.tolist():
            if ds.labels[i] != NO_PAIN or ds.level_end[i] != NO_PAIN:
                break  # the baseline period (the session's no-pain start) is over
            fed.append(i)
            stats = learner.observe(float(order[i]), ds.emb[i], ds.present[i], good=bool(known[i]))
            if stats is not None:
                break
        if stats is None and fed and learner.windows:
            stats = learner.use_last(float(order[fed[-1]] - order[fed[0]] + window_s), float(order[fed[-1]]))
        if stats is None:
            log.info("session %s: no no-pain start, so no baseline and no relative examples", key)
            continue
        stats = stats.with_source("training")
        baselines[key] = stats
        used[key] = np.array([i for i in fed if order[i] <= stats.t_end and known[i]])
        after = [i for i in idx.tolist() if order[i] > stats.t_end and ds.present[i].any()]
        rows += after
        chosen += [stats] * len(after)
    rows_a = np.asarray(rows, dtype=np.int64)
    rel = ds.subset(rows_a)
    if len(rows_a):
        mean, std, count = stack_baselines(chosen)
        rel.emb = relative_input(ds.emb[rows_a], ds.present[rows_a], mean, std, count, pop_std, kind=kind)
    else:
        width = ds.emb.shape[3] * (2 if kind == "concat" else 1)
        rel.emb = np.zeros((0, *ds.emb.shape[1:3], width), dtype=np.float32)
    out = RelativeSet(rel, rows_a, baselines, sessions, order, used)
    check_no_leak(ds, out)
    return out


def check_no_leak(ds: EmbeddedDataset, rs: RelativeSet) -> None:
    """Raise AssertionError unless every baseline is its own session's, from no-pain windows
    at its start, and ends no later than every window it serves (no look-ahead)."""
    for key, rows in rs.baseline_rows.items():
        stats = rs.baselines[key]
        assert len(rows) > 0, f"{key}: baseline without windows"
        assert (rs.sessions[rows] == key).all(), f"{key}: baseline from another session's windows"
        assert (ds.labels[rows] == NO_PAIN).all(), f"{key}: baseline from windows that are not no-pain"
        assert rs.order[rows].max() <= stats.t_end + 1e-9, f"{key}: baseline from windows after it was complete"
    for j, i in enumerate(rs.rows):
        key = rs.sessions[i]
        assert key in rs.baselines, f"window {i} has a relative example but its session has no baseline"
        assert rs.order[i] > rs.baselines[key].t_end, f"window {i} is served by a baseline learnt after it"
        assert rs.ds.subjects[j] == ds.subjects[i]
