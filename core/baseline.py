"""Per-subject baseline: what a person's windows look like at rest, learnt before judging them.

Why: people differ far more from each other than one person differs between rest and pain
(a resting heart rate of 55 or 95 bpm, skin conductance of 0.5 or 20 µS, a wrist sensor's
gain). Clinical monitors therefore learn the individual first. PainMon does the same with
the encoder's embeddings: a subject's baseline is the mean and spread of its window
embeddings over a calm interval, and the *relative* fusion head sees every later window
beside its distance from that baseline, ``z = (e - mean) / spread``
(:func:`relative_input`).

A baseline comes from

* the first ``duration_s`` (default 60 s) of good signal — learnt automatically;
* a marked interval (:data:`core.wire.BASELINE_START` / :data:`core.wire.BASELINE_END`);
* "the last N seconds" (:meth:`BaselineLearner.use_last`), from a bounded history;
* a saved subject profile or a recording (:meth:`BaselineStats.encode` / :meth:`decode`).

Training uses the very same :class:`BaselineLearner`, fed the windows of a subject in time
order, so the training baselines obey the live rule: only data that existed at that point
of a session, only the subject's own. This module is pure computation (no I/O, no threads).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_BASELINE_S = 60.0
"""Seconds of good signal learnt automatically before a subject's estimates turn relative."""
DEFAULT_HISTORY_S = 300.0
"""Seconds of past window embeddings kept per subject for "use the last N s" (bounded memory)."""
PRIOR_WINDOWS = 5.0
"""Shrinkage of a baseline's spread towards the population's: the spread used is
``sqrt((n * s^2 + k * pop^2) / (n + k))`` with ``k`` = this many windows, so a short or very
steady baseline cannot blow ``z`` up."""
Z_CLIP = 10.0
"""``|z|`` is clipped here: one wild window must not dominate the head's input."""
SOURCES = ("auto", "marked", "last", "profile", "recorded", "training")
"""Where a baseline came from (recorded in :attr:`BaselineStats.source`)."""
_FORMAT = 1


class BaselineError(ValueError):
    """A baseline that cannot be built or used (too little signal, another encoder, bad payload)."""


@dataclass(frozen=True)
class BaselineStats:
    """Mean and spread of one subject's window embeddings over its baseline interval.

    ``mean``/``std`` are ``(M, R, D)`` float32 in the model's modality x representation
    order, rounded to float16 precision so the stats written into a recording or profile are
    exactly the ones used live; NaN for a modality the baseline never saw (``count`` 0).
    """

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    """(M,) windows per modality."""
    seconds: float
    """Seconds of signal the baseline covers."""
    t_start: float
    t_end: float
    source: str = "auto"
    modalities: tuple[str, ...] = ()
    representations: tuple[str, ...] = ()
    encoder: str = ""
    """Fingerprint of the encoder whose embeddings these are (another encoder's do not compare)."""

    @classmethod
    def from_embeddings(
        cls,
        emb: np.ndarray,
        present: np.ndarray,
        t_end: np.ndarray,
        *,
        window_s: float,
        source: str = "auto",
        modalities: Sequence[str] = (),
        representations: Sequence[str] = (),
        encoder: str = "",
    ) -> BaselineStats:
        """Statistics of windows ``emb`` (N, M, R, D) with presence ``present`` (N, M) ending at ``t_end``."""
        emb = np.asarray(emb, dtype=np.float64)
        present = np.asarray(present, dtype=bool)
        t_end = np.asarray(t_end, dtype=np.float64)
        if emb.ndim != 4 or present.shape != emb.shape[:2] or t_end.shape != emb.shape[:1]:
            raise BaselineError(f"expected emb (N, M, R, D), present (N, M), t_end (N,); got "
                                f"{emb.shape}, {present.shape}, {t_end.shape}")
        if emb.shape[0] == 0 or not present.any():
            raise BaselineError("no usable window to learn a baseline from")
        if source not in SOURCES:
            raise BaselineError(f"unknown baseline source {source!r}; one of {SOURCES}")
        w = present[:, :, None, None].astype(np.float64)
        count = present.sum(axis=0)
        n = np.maximum(count, 1)[:, None, None]
        mean = (emb * w).sum(axis=0) / n
        var = (((emb - mean) ** 2) * w).sum(axis=0) / n
        nan = count == 0
        mean[nan], var[nan] = np.nan, np.nan
        used = t_end[present.any(axis=1)]
        return cls(
            mean=_f16(mean), std=_f16(np.sqrt(var)), count=count.astype(np.int64),
            seconds=covered_seconds(used, window_s), t_start=float(used.min() - window_s), t_end=float(used.max()),
            source=source, modalities=tuple(modalities), representations=tuple(representations), encoder=encoder,
        )

    def with_source(self, source: str) -> BaselineStats:
        """The same statistics, said to come from ``source`` (e.g. ``recorded`` when replayed)."""
        return replace(self, source=source)

    # --- serialisation (profiles, recordings): JSON header + base64 float16, never pickle --------
    def encode(self) -> str:
        """A one-line text form (about 8 kB for 4 x 2 x 192): ``{json header}|{base64 float16}``."""
        header = {
            "v": _FORMAT, "shape": list(self.mean.shape), "count": [int(c) for c in self.count],
            "seconds": round(float(self.seconds), 3), "t_start": float(self.t_start), "t_end": float(self.t_end),
            "source": self.source, "modalities": list(self.modalities),
            "representations": list(self.representations), "encoder": self.encoder,
        }
        body = np.concatenate([self.mean.ravel(), self.std.ravel()]).astype("<f2").tobytes()
        return json.dumps(header, separators=(",", ":")) + "|" + base64.b64encode(body).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> BaselineStats:
        """Inverse of :meth:`encode`; a malformed payload is a :class:`BaselineError`, never a crash."""
        head, sep, body = str(text).partition("|")
        try:
            if not sep:
                raise ValueError("no '|' between header and data")
            h = json.loads(head)
            if not isinstance(h, dict) or h.get("v") != _FORMAT:
                raise ValueError(f"format {h.get('v') if isinstance(h, dict) else h!r}, expected {_FORMAT}")
            shape = tuple(int(x) for x in h["shape"])
            if len(shape) != 3 or any(x <= 0 for x in shape) or math.prod(shape) > 1_000_000:
                raise ValueError(f"implausible shape {shape}")
            raw = base64.b64decode(body.encode("ascii"), validate=True)
            values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
            if values.size != 2 * math.prod(shape):
                raise ValueError(f"{values.size} values for two arrays of shape {shape}")
            count = np.asarray(h["count"], dtype=np.int64)
            if count.shape != (shape[0],):
                raise ValueError(f"count has {count.size} entries for {shape[0]} modalities")
            source = str(h.get("source", "profile"))
            if source not in SOURCES:
                raise ValueError(f"unknown source {source!r}")
            k = math.prod(shape)
            return cls(
                mean=values[:k].reshape(shape), std=values[k:].reshape(shape), count=count,
                seconds=float(h["seconds"]), t_start=float(h["t_start"]), t_end=float(h["t_end"]), source=source,
                modalities=tuple(str(m) for m in h.get("modalities", ())),
                representations=tuple(str(r) for r in h.get("representations", ())), encoder=str(h.get("encoder", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BaselineError(f"not a PainMon baseline: {exc}") from None

    def check_fits(self, modalities: Sequence[str], representations: Sequence[str], encoder: str = "") -> None:
        """Raise :class:`BaselineError` when these statistics cannot serve a model of this layout/encoder."""
        problems = []
        if self.modalities and tuple(self.modalities) != tuple(modalities):
            problems.append(f"modalities {list(self.modalities)} vs the model's {list(modalities)}")
        if self.representations and tuple(self.representations) != tuple(representations):
            problems.append(f"representations {list(self.representations)} vs the model's {list(representations)}")
        if self.mean.shape[:2] != (len(modalities), len(representations)):
            problems.append(f"shape {self.mean.shape} does not fit {len(modalities)} x {len(representations)}")
        if encoder and self.encoder and encoder != self.encoder:
            problems.append(f"learnt with encoder {self.encoder}, the model's is {encoder}")
        if problems:
            raise BaselineError("baseline does not fit this model: " + "; ".join(problems))


def _f16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float32)


def covered_seconds(t_end: np.ndarray, window_s: float) -> float:
    """Length of the union of windows ``[t - window_s, t]`` (seconds of signal they cover)."""
    t = np.sort(np.asarray(t_end, dtype=np.float64))
    if t.size == 0:
        return 0.0
    return float(window_s + np.minimum(np.diff(t), window_s).sum())


RELATIVE_INPUTS = ("concat", "z")
"""What the relative head sees: ``concat`` = ``[e, z]`` (2D per image), ``z`` = the distance alone (D)."""


def relative_input(emb: np.ndarray, present: np.ndarray, mean: np.ndarray, std: np.ndarray, count: np.ndarray,
                   pop_std: np.ndarray, prior: float = PRIOR_WINDOWS, kind: str = "concat") -> np.ndarray:
    """The relative head's input: each window's embedding beside its distance from the baseline.

    Args:
        emb: (B, M, R, D) window embeddings.
        present: (B, M) modality present in the window.
        mean: (B, M, R, D) baseline mean of each window's subject.
        std: (B, M, R, D) baseline spread of each window's subject.
        count: (B, M) windows each baseline had per modality.
        pop_std: (M, R, D) spread of the training population (shrinkage prior).
        prior: weight of ``pop_std`` in windows (:data:`PRIOR_WINDOWS`).
        kind: one of :data:`RELATIVE_INPUTS`.

    Returns:
        (B, M, R, 2D) float32 ``[e, z]`` (``kind="z"``: (B, M, R, D) ``z``) with
        ``z = clip((e - mean) / spread, ±Z_CLIP)``, 0 where the baseline lacks the modality or the window does.
    """
    if kind not in RELATIVE_INPUTS:
        raise BaselineError(f"relative input {kind!r}: use one of {RELATIVE_INPUTS}")
    n = np.asarray(count, dtype=np.float64)[:, :, None, None]
    s2 = np.nan_to_num(np.asarray(std, dtype=np.float64) ** 2, nan=0.0)
    spread = np.sqrt((n * s2 + prior * np.asarray(pop_std, dtype=np.float64)[None] ** 2) / (n + prior))
    centre = np.nan_to_num(np.asarray(mean, dtype=np.float64))
    z = (np.asarray(emb, dtype=np.float64) - centre) / np.maximum(spread, 1e-6)
    ok = (np.asarray(present, dtype=bool) & (np.asarray(count) > 0))[:, :, None, None]
    z = np.where(ok, np.clip(z, -Z_CLIP, Z_CLIP), 0.0)
    if kind == "z":
        return z.astype(np.float32)
    return np.concatenate([np.asarray(emb, dtype=np.float32), z.astype(np.float32)], axis=-1)


def stack_baselines(stats: Sequence[BaselineStats]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, M, R, D) means, spreads and (B, M) counts of one baseline per window."""
    return (np.stack([s.mean for s in stats]), np.stack([s.std for s in stats]),
            np.stack([s.count for s in stats]))


@dataclass
class _Pending:
    """A marked interval waiting for its end (``end`` NaN) or for windows to reach it."""

    start: float
    end: float = float("nan")


@dataclass
class BaselineLearner:
    """One subject's baseline: learnt automatically, from a marked interval, or installed.

    Feed it every estimated window in time order with :meth:`observe` (after the window was
    estimated: the window that completes a baseline is itself still estimated without it).
    ``auto`` learns from the first ``duration_s`` of good signal (the union of the good
    windows' spans), so ``calibration`` is the fraction of that learnt.
    """

    duration_s: float = DEFAULT_BASELINE_S
    window_s: float = 10.0
    history_s: float = DEFAULT_HISTORY_S
    auto: bool = True
    modalities: tuple[str, ...] = ()
    representations: tuple[str, ...] = ()
    encoder: str = ""
    stats: BaselineStats | None = None
    _history: deque = field(default_factory=deque, repr=False)
    _auto_t: list[float] = field(default_factory=list, repr=False)
    _auto_done: bool = False
    _pending: _Pending | None = None

    def __post_init__(self) -> None:
        if not self.duration_s > 0 or not self.window_s > 0:
            raise BaselineError(f"baseline duration ({self.duration_s} s) and window ({self.window_s} s) must be > 0")

    @property
    def newest(self) -> float:
        """End of the newest good window seen (-inf before any)."""
        return float(self._history[-1][0]) if self._history else -math.inf

    @property
    def windows(self) -> int:
        """Good windows kept (for :meth:`use_last`)."""
        return len(self._history)

    @property
    def calibration(self) -> float:
        """0-1: how much of the baseline is learnt (1 once one is in force)."""
        if self.stats is not None:
            return 1.0
        if not self.auto or self._auto_done:
            return 0.0
        return min(1.0, covered_seconds(np.asarray(self._auto_t), self.window_s) / self.duration_s)

    def observe(self, t_end: float, emb: np.ndarray, present: np.ndarray, good: bool = True) -> BaselineStats | None:
        """Record one estimated window; returns the baseline if this window completed one."""
        present = np.asarray(present, dtype=bool)
        good = bool(good) and bool(present.any())
        if good:
            self._history.append((float(t_end), np.asarray(emb, dtype=np.float16), present.copy()))
            while self._history and self._history[0][0] < t_end - self.history_s:
                self._history.popleft()
        done = self._finish_marked(t_end)
        if done is not None:
            return done
        if self.auto and not self._auto_done and self.stats is None and self._pending is None and good:
            self._auto_t.append(float(t_end))
            if covered_seconds(np.asarray(self._auto_t), self.window_s) >= self.duration_s - 1e-6:
                self._auto_done = True
                return self._learn(self._auto_t[0] - self.window_s, float(t_end), "auto")
        return None

    def mark_start(self, t: float) -> None:
        """A ``baseline:start`` marker: learn from the windows ending after ``t`` (until the end marker)."""
        self._pending = _Pending(float(t))

    def mark_end(self, t: float) -> BaselineStats | None:
        """A ``baseline:end`` marker; the baseline is built once windows up to ``t`` have been seen."""
        if self._pending is None:
            raise BaselineError("baseline:end without a preceding baseline:start")
        self._pending.end = float(t)
        return self._finish_marked(self._history[-1][0] if self._history else -math.inf)

    def use_last(self, seconds: float, now_t: float | None = None) -> BaselineStats:
        """Make the windows of the last ``seconds`` (up to ``now_t``, default the newest) the baseline."""
        if not seconds > 0:
            raise BaselineError(f"seconds must be positive, got {seconds!r}")
        if seconds > self.history_s:
            raise BaselineError(f"only the last {self.history_s:g} s are kept; cannot use {seconds:g} s")
        if not self._history:
            raise BaselineError("no good window yet to learn a baseline from")
        end = float(self._history[-1][0] if now_t is None else now_t)
        return self._learn(end - seconds, end, "last")

    def install(self, stats: BaselineStats) -> None:
        """Use ``stats`` from now on (a profile, a recording, a training baseline)."""
        stats.check_fits(self.modalities or tuple(stats.modalities), self.representations
                         or tuple(stats.representations), self.encoder)
        self.stats = stats
        self._auto_done = True

    def _finish_marked(self, newest: float) -> BaselineStats | None:
        p = self._pending
        if p is None or not np.isfinite(p.end) or newest < p.end:
            return None
        self._pending = None
        return self._learn(p.start, p.end, "marked")

    def _learn(self, start: float, end: float, source: str) -> BaselineStats:
        """Baseline from the kept windows that end within ``(start, end]``."""
        rows = [h for h in self._history if start < h[0] <= end]
        if not rows:
            raise BaselineError(f"no good window ended between {start:.1f} s and {end:.1f} s")
        stats = BaselineStats.from_embeddings(
            np.stack([r[1] for r in rows]).astype(np.float32), np.stack([r[2] for r in rows]),
            np.array([r[0] for r in rows]), window_s=self.window_s, source=source,
            modalities=self.modalities, representations=self.representations, encoder=self.encoder)
        self.stats = stats
        return stats


Listener = Callable[[str, "BaselineStats", float], None]
"""``fn(subject, stats, t)``: ``stats`` is in force for the subject's windows ending after ``t``."""


class BaselineBook:
    """The baselines of every subject an engine serves (thread-safe: the worker observes,
    the GUI or a marker listener marks and installs).

    Args:
        modalities, representations: the model's layout; encoder: its encoder fingerprint.
        duration_s: seconds of good signal learnt automatically (``auto``).
        window_s: the model's window; history_s: seconds kept for :meth:`use_last`.
        auto: learn automatically; False waits for a marked interval, "use last" or a profile.
        on_baseline: ``fn(subject, stats, t)`` called (under no lock) when a subject's baseline
            takes effect for the windows ending after ``t``, e.g. to write it into the recording
            and the subject's profile (more with :meth:`add_listener`).
        loader: ``fn(subject) -> BaselineStats | None`` asked once when a subject is first
            seen (a saved profile); a baseline that does not fit the model is ignored.
    """

    def __init__(self, modalities: Sequence[str], representations: Sequence[str], *, encoder: str = "",
                 duration_s: float = DEFAULT_BASELINE_S, window_s: float = 10.0,
                 history_s: float = DEFAULT_HISTORY_S, auto: bool = True,
                 on_baseline: Listener | None = None,
                 loader: Callable[[str], BaselineStats | None] | None = None):
        if duration_s > history_s:
            history_s = duration_s
        self.modalities, self.representations = tuple(modalities), tuple(representations)
        self.encoder = encoder
        self.duration_s, self.window_s, self.history_s, self.auto = float(duration_s), float(window_s), history_s, auto
        self._listeners: list[Listener] = [on_baseline] if on_baseline else []
        self._loaded: list[tuple[str, BaselineStats, float]] = []
        self.loader = loader
        self._scheduled: dict[str, tuple[float, BaselineStats]] = {}
        self._learners: dict[str, BaselineLearner] = {}
        self._lock = threading.Lock()

    def _learner(self, subject: str, t: float = float("nan")) -> BaselineLearner:
        """The subject's learner (under the lock); a new one starts from a saved profile if any,
        announced (by :meth:`_flush_loaded`) as in force from just before ``t``."""
        lr = self._learners.get(subject)
        if lr is None:
            lr = self._learners[subject] = BaselineLearner(
                self.duration_s, self.window_s, self.history_s, self.auto, self.modalities, self.representations,
                self.encoder)
            stats = self.loader(subject) if self.loader is not None else None
            if stats is not None:
                try:
                    lr.install(stats)
                    self._loaded.append((subject, stats, t - 1e-3))
                    log.info("%s: baseline from its saved profile (%.0f s)", subject, stats.seconds)
                except BaselineError as exc:
                    log.warning("%s: saved baseline not used: %s", subject, exc)
        return lr

    def add_listener(self, fn: Listener) -> None:
        """Also call ``fn(subject, stats, t)`` whenever a baseline takes effect."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def current(self, subject: str, t_end: float | None = None) -> tuple[BaselineStats | None, float]:
        """(the baseline in force or None, calibration 0-1) of ``subject`` for a window ending at
        ``t_end`` (a recorded baseline takes effect for windows ending after its marker)."""
        with self._lock:
            lr = self._learner(subject, float("nan") if t_end is None else float(t_end))
            due = self._scheduled.get(subject)
            if due is not None and (t_end is None or t_end > due[0]):
                del self._scheduled[subject]
                if lr.stats is None or lr.stats.encode() != due[1].encode():
                    try:
                        lr.install(due[1])
                    except BaselineError as exc:
                        log.warning("%s: recorded baseline ignored: %s", subject, exc)
            out = lr.stats, lr.calibration
        self._flush_loaded()
        return out

    def observe(self, subject: str, t_end: float, emb: np.ndarray, present: np.ndarray, good: bool = True) -> None:
        with self._lock:
            try:
                stats = self._learner(subject).observe(t_end, emb, present, good)
            except BaselineError as exc:  # e.g. a marked interval without a good window
                log.warning("%s: baseline not learnt: %s", subject, exc)
                stats = None
        self._flush_loaded()
        self._announce(subject, stats, t_end)

    def mark_start(self, subject: str, t: float) -> None:
        with self._lock:
            self._learner(subject).mark_start(t)

    def mark_end(self, subject: str, t: float) -> None:
        with self._lock:
            lr = self._learner(subject)
            try:
                stats = lr.mark_end(t)
            except BaselineError as exc:
                log.warning("%s: %s", subject, exc)
                stats = None
            newest = lr.newest
        self._flush_loaded()
        self._announce(subject, stats, newest)

    def use_last(self, subject: str, seconds: float, now_t: float | None = None) -> BaselineStats:
        """Baseline of ``subject`` from its last ``seconds`` of good windows (raises :class:`BaselineError`)."""
        with self._lock:
            stats = self._learner(subject).use_last(seconds, now_t)
        self._flush_loaded()
        self._announce(subject, stats, stats.t_end)
        return stats

    def install(self, subject: str, stats: BaselineStats, announce: bool = False) -> None:
        """Use ``stats`` for ``subject`` from now on (raises :class:`BaselineError` if it does not fit)."""
        with self._lock:
            lr = self._learner(subject)
            lr.install(stats)
            newest = lr.newest
        self._flush_loaded()
        if announce:
            self._announce(subject, stats, newest)

    def on_marker(self, subject: str, label: str, t: float) -> bool:
        """Apply a baseline marker (start, end, or a recorded baseline); False for other labels."""
        from core.wire import BASELINE_END, BASELINE_SET, BASELINE_START

        label = str(label)
        if label == BASELINE_START:
            self.mark_start(subject, t)
        elif label == BASELINE_END:
            self.mark_end(subject, t)
        elif label.startswith(BASELINE_SET + ":"):
            # a recorded baseline: in force for the windows ending after the marker, as it was live
            try:
                stats = BaselineStats.decode(label[len(BASELINE_SET) + 1:]).with_source("recorded")
                stats.check_fits(self.modalities, self.representations, self.encoder)
            except BaselineError as exc:
                log.warning("%s: recorded baseline ignored: %s", subject, exc)
            else:
                with self._lock:
                    self._scheduled[subject] = (float(t), stats)
        else:
            return False
        return True

    def forget(self, subject: str) -> None:
        with self._lock:
            self._learners.pop(subject, None)
            self._scheduled.pop(subject, None)

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(s for s, lr in self._learners.items() if lr.stats is not None)

    def _flush_loaded(self) -> None:
        with self._lock:
            loaded, self._loaded = self._loaded, []
        for subject, stats, t in loaded:
            self._announce(subject, stats, t)

    def _announce(self, subject: str, stats: BaselineStats | None, t: float) -> None:
        if stats is None:
            return
        for fn in list(self._listeners):
            try:
                fn(subject, stats, t)
            except Exception:
                log.exception("baseline callback failed for %s", subject)
