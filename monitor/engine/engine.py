"""The real-time engine: hub -> preprocessing -> aligned windows -> one inference worker.

Two threads (:class:`core.worker.BackgroundWorker`), both joined by :meth:`Engine.stop`:

* the **scheduler** wakes on every chunk the hub receives (and every 50 ms regardless, so
  a stalled stream is noticed), preprocesses the new samples, cuts every window that is
  due and offers it to a bounded queue that keeps only the newest window per subject;
* the **worker** takes all queued windows — of all subjects — and runs them through the
  estimator in one batched pass, smooths each subject's index, gives each estimate its
  state and mode (:mod:`monitor.engine.states`) and calls the callbacks.

Live (``realtime=True``) the scheduler thread also watches each subject's time of arrival
by the wall clock: a subject silent for more than ``stale_after_s`` gets a state-only
``stale`` estimate once per hop until its data return (see :mod:`monitor.engine.states`).
Offline the data's own clock rules and nothing is ever stale.

Live, the engine knows what the machine sustains (:mod:`monitor.engine.capacity`): after
the warm-up it times the estimator at the batch sizes it will use and logs how many
subjects it serves at the configured hop; every batch then refreshes a moving images/s.
When the subjects being served need more than that, every subject's hop lengthens alike
(the scheduler's windows move to a longer shared grid, each estimate carries its
``hop_s``, :class:`EngineStats` says "degraded"), and it shortens again once the load
falls. The catch-up skipping of stale windows stays as the safety net for a sudden burst.

A thread (not a process) runs the model: torch releases the GIL inside its kernels, so
the GUI thread keeps running while the encoder computes (``painmon bench realtime``
measures the main thread's stalls), and windows need no serialisation across processes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from core.baseline import BaselineBook, BaselineStats
from core.buffers import BufferHub, Marker
from core.clock import now
from core.encoder import specialise_encoder
from core.estimate import Estimate
from core.inference import Estimator, ModalityWindow, SubjectWindow
from core.streams import StreamSpec
from core.wire import BASELINE_SET
from core.worker import BackgroundWorker
from monitor.engine.capacity import (
    CAPACITY_MARGIN,
    Capacity,
    HopGovernor,
    hop_text,
    images_of,
    load_text,
    measure_throughput,
    measurement_batches,
    rate_text,
    subjects_text,
    summary,
)
from monitor.engine.ingest import StreamIngest, SubjectFilter
from monitor.engine.queue import LatestPerKeyQueue
from monitor.engine.scheduler import WindowScheduler
from monitor.engine.smoothing import HEADLINE, LONG_TAU_S, IndexSmoother, make_smoother
from monitor.engine.states import STALE_AFTER_S, SubjectState

log = logging.getLogger(__name__)

Callback = Callable[[Estimate], None]

SPECIALISE_TIMEOUT_S = 30.0
"""Longest the start waits for the encoder's fixed batch shapes (~0.5 s each on 2 cores); past
it the dynamic model serves until they are ready."""
BASELINE_MARKER_SOURCE = "painmon-engine"
"""``source`` of the ``baseline:set`` markers the engine writes onto the hub (it ignores its own)."""


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's health (safe to hand to the GUI or a log line)."""

    running: bool
    warm: bool
    device: str
    model: str
    subjects: int
    windows_cut: int
    estimates: int
    """Estimates of windows delivered (stale statuses not included)."""
    skipped: int
    """Windows passed over to stay real-time (scheduler catch-up + queue replacement)."""
    queue_depth: int
    errors: int
    rejected_chunks: int
    last_latency: dict[str, float] = field(default_factory=dict)
    mean_total_latency: float = float("nan")
    """Mean of ``latency['total']`` over the recent estimates (seconds)."""
    stale_statuses: int = 0
    """State-only ``stale`` estimates emitted for silent subjects."""
    capacity_subjects: int | None = None
    """Subjects this machine serves at the configured hop (None until measured)."""
    images_per_s: float = float("nan")
    """Moving measure of the images the worker encodes per second of its time."""
    images_per_subject: int = 0
    """Images of one window of one subject (modalities x representations)."""
    configured_hop_s: float = float("nan")
    hop_s: float = float("nan")
    """The hop every subject gets now (longer than ``configured_hop_s`` when degraded)."""
    active_subjects: int = 0
    """Subjects with live streams (the load the hop is planned for)."""
    measured_batch: int = 0
    """Windows per pass of the start-up throughput measurement (0: not measured)."""

    @property
    def degraded(self) -> bool:
        """True while the load makes every subject's hop longer than configured."""
        return math.isfinite(self.hop_s) and self.hop_s > self.configured_hop_s + 1e-9

    @property
    def capacity_text(self) -> str:
        """"capacity: 3 subjects at 1 Hz with 8 images each (24.1 images/s, batch 4)"; "" before it is measured."""
        if self.capacity_subjects is None:
            return ""
        return Capacity(self.images_per_s, self.images_per_subject, self.configured_hop_s,
                        self.measured_batch or 1).describe()

    @property
    def load_text(self) -> str:
        """"degraded: hop 2.0 s for all 5 subjects" while degraded, else ""."""
        return load_text(self.hop_s, self.configured_hop_s, self.active_subjects)

    @property
    def load_summary(self) -> str:
        """One short phrase for a status bar: :attr:`load_text` while degraded, else
        "capacity 3 subjects at 1 Hz" once measured, else ""."""
        if self.degraded:
            return self.load_text
        if self.capacity_subjects is None:
            return ""
        n = self.capacity_subjects
        return f"capacity {n} subject{'' if n == 1 else 's'} at {rate_text(self.configured_hop_s)}"


def default_torch_threads() -> int:
    """All cores for the model. The encoder is the bottleneck and torch releases the GIL in
    its kernels, so the GUI and sources still get their turn: on an otherwise idle 2-core
    machine two threads encoded 1.6x faster than one while a 10 ms main-thread timer stayed
    within 4 ms (p99) of its schedule (``painmon bench realtime`` measures both). On a
    machine busy with other work fewer threads can be faster: pass ``threads``."""
    return max(1, os.cpu_count() or 1)


def check_encoder_threads(estimator: Estimator, threads: int) -> bool:
    """Warn when the encoder fixed another thread count than the engine's ``threads``.

    The engine sets torch's threads on its worker, but the OpenVINO backend fixed its own when
    it compiled the model at load: an estimator loaded without the engine's count (e.g. built
    by the caller) would silently run with another. Returns True when they agree (or the
    encoder follows torch's setting)."""
    encoder = getattr(estimator, "encoder", None)
    fixed = getattr(encoder, "threads", None) if getattr(encoder, "backend", "torch") != "torch" else None
    if fixed is None or int(fixed) == threads:
        return True
    log.warning("the %s encoder was compiled for %d threads, not the engine's %d: load it with threads=%d "
                "(load_estimator(..., threads=...) / --threads)", getattr(encoder, "backend", "?"), fixed,
                threads, threads)
    return False


class Engine:
    """Continuous pain estimation for every subject in a :class:`BufferHub`.

    Args:
        hub: where the sources deliver their samples.
        estimator: a ready :class:`core.inference.Estimator` (built by
            :func:`monitor.engine.load_estimator` from a model file, or by the caller). The
            engine never loads a model itself, so building one cannot block on file I/O.
        window_s: analysis window (default: the one the model was trained on).
        hop_s: time between a subject's estimates.
        subjects: restricts the subjects served (e.g. a shard).
        max_queue: subjects held waiting for the worker at most.
        realtime: False processes every window in order and blocks instead of skipping
            (offline replay); up to ``max_queue`` windows wait, batched in order.
        stall_s: a stream silent this long is not waited for.
        threads: torch CPU threads for the model (default: all cores, see
            :func:`default_torch_threads`).
        headline: the headline's smoother (:func:`monitor.engine.smoothing.make_smoother` name).
        long_tau_s: time constant of the slow trend.
        max_batch: windows per inference pass at most (default: all that are ready).
        stale_after_s: a subject silent this long (wall clock) reads ``stale`` (live only).
        capacity_margin: work planned per unit of measured throughput (live only; see
            :mod:`monitor.engine.capacity`): 1.25 keeps a quarter of the machine spare.
    """

    def __init__(
        self,
        hub: BufferHub,
        estimator: Estimator,
        *,
        window_s: float | None = None,
        hop_s: float = 1.0,
        subjects: SubjectFilter | None = None,
        max_queue: int = 256,
        realtime: bool = True,
        stall_s: float = 2.0,
        threads: int | None = None,
        headline: str = HEADLINE,
        long_tau_s: float = LONG_TAU_S,
        max_batch: int | None = None,
        stale_after_s: float = STALE_AFTER_S,
        capacity_margin: float = CAPACITY_MARGIN,
    ):
        self.estimator = estimator
        self.hub = hub
        self.window_s = float(window_s if window_s is not None else estimator.window_s)
        if abs(self.window_s - estimator.window_s) > 1e-9:
            log.warning("window %.3g s differs from the %.3g s the model was trained on: "
                        "its estimates may be off", self.window_s, estimator.window_s)
        self.hop_s = float(hop_s)
        if self.window_s <= 0 or self.hop_s <= 0:
            raise ValueError(f"window ({self.window_s} s) and hop ({self.hop_s} s) must be positive")
        self.realtime = realtime
        self.threads = int(threads) if threads else default_torch_threads()
        """torch intra-op threads of the worker (process-wide in torch)."""
        check_encoder_threads(estimator, self.threads)
        self.max_batch = max_batch
        self._headline, self._long_tau = headline, long_tau_s
        make_smoother(headline)  # a bad name fails here, not on the first window
        self._wake = threading.Event()
        self._sched_lock = threading.Lock()
        self.scheduler = WindowScheduler(
            self.window_s, self.hop_s, stall_s=stall_s, catch_up=realtime, modalities=estimator.modalities,
            data_clock=not realtime,
        )
        self.ingest = StreamIngest(
            estimator.modalities,
            working_rate=estimator.working_rate,
            window_s=self.window_s,
            subjects=subjects,
            on_chunk=self._on_chunk,
            wake=self._wake,
        )
        self.queue: LatestPerKeyQueue[SubjectWindow] = LatestPerKeyQueue(max_keys=max_queue, drop_stale=realtime)
        self._callbacks: list[Callback] = []
        self._cb_lock = threading.Lock()
        self._smoothers: dict[str, IndexSmoother] = {}
        self.stale_after_s = float(stale_after_s)
        self._states: dict[str, SubjectState] = {}
        self._states_lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._latest: dict[str, Estimate] = {}
        self._warmup_first = True
        self._worker = BackgroundWorker(self._worker_loop, name="painmon-worker")
        self._scheduler = BackgroundWorker(self._scheduler_loop, name="painmon-scheduler")
        self._started = False
        self._warm = threading.Event()
        self._counts = {"cut": 0, "estimates": 0, "sched_skipped": 0, "errors": 0, "stale": 0}
        self._recent_total: list[float] = []
        self._last_latency: dict[str, float] = {}
        self._stats_lock = threading.Lock()
        self.images_per_subject = len(estimator.modalities) * len(estimator.representations)
        self.governor = HopGovernor(self.hop_s, self.images_per_subject, margin=capacity_margin)
        """Throughput and effective hop (live only; offline every window is cut on ``hop_s``)."""
        self._gov_lock = threading.Lock()
        self._measured = False

    # --- public API ------------------------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        return self.estimator.modalities

    @property
    def model_name(self) -> str:
        return self.estimator.model_name

    def add_callback(self, fn: Callback) -> None:
        """``fn(estimate)`` is called on the worker thread for every estimate; it must be
        quick (the GUI marshals to its own thread). An exception is logged and ignored."""
        with self._cb_lock:
            self._callbacks.append(fn)

    def start(self, warmup: bool = True) -> None:
        """Attach to the hub and start the threads; returns at once (warm-up runs on the
        worker thread before the first window). Calling it twice does nothing."""
        if self._started:
            return
        self._started = True
        self._warmup_first = warmup
        self.queue.reopen()
        self.hub.add_listener(self.ingest.listener)
        self.hub.add_marker_listener(self._on_marker)
        if self.estimator.baselines is not None:
            self.estimator.baselines.add_listener(self._publish_baseline)
        self.ingest.attach_existing(self.hub)
        self._worker.start()
        self._scheduler.start()

    @property
    def baselines(self) -> BaselineBook | None:
        """The subjects' baselines (None: the model has no relative head). The dashboard's
        "use the last N s as baseline" is ``engine.baselines.use_last(subject, seconds)``;
        a marked interval is a :data:`core.wire.BASELINE_START` / ``BASELINE_END`` marker pair
        on the hub. Every baseline that takes effect is written onto the hub as a
        :data:`core.wire.BASELINE_SET` marker (so a recording keeps it and replay installs it)."""
        return self.estimator.baselines

    def _on_marker(self, marker: Marker) -> None:
        book = self.estimator.baselines
        if book is not None and marker.source != BASELINE_MARKER_SOURCE:
            book.on_marker(marker.subject, marker.label, marker.timestamp)

    def _publish_baseline(self, subject: str, stats: BaselineStats, t: float) -> None:
        """Put a baseline that took effect for the windows after ``t`` on the hub (and so into recordings)."""
        if stats.source == "recorded" or not np.isfinite(t):
            return
        self.hub.push_markers(subject, [f"{BASELINE_SET}:{stats.encode()}"], [t], source=BASELINE_MARKER_SOURCE)

    def stop(self, timeout: float = 10.0) -> None:
        """Detach from the hub, stop and join both threads. Safe to call twice. The batch
        the worker is computing is finished and delivered before its thread ends."""
        self.hub.remove_listener(self.ingest.listener)
        self.hub.remove_marker_listener(self._on_marker)
        if self.estimator.baselines is not None:
            self.estimator.baselines.remove_listener(self._publish_baseline)
        for worker in (self._worker, self._scheduler):
            worker.request_stop()
        self._wake.set()
        self.queue.close()
        for worker in (self._worker, self._scheduler):
            worker.stop(timeout)  # logs a thread that does not end in time
        self._started = False

    @property
    def running(self) -> bool:
        return self._worker.running or self._scheduler.running

    def wait_warm(self, timeout: float | None = None) -> bool:
        return self._warm.wait(timeout)

    def warmup(self, batch: int = 1) -> float:
        """Run the model once on synthetic windows so the first real estimate is not late
        (first calls allocate, pick kernels, fill caches). Returns the seconds it took."""
        dt = self._warm_up(batch)
        self._warm.set()
        return dt

    def _warm_up(self, batch: int = 1) -> float:
        t0 = time.perf_counter()
        specialise_encoder(self.estimator.encoder, self.estimator.encoder_calls(batch), SPECIALISE_TIMEOUT_S)
        self.estimator.estimate(self._synthetic_windows(batch))
        dt = time.perf_counter() - t0
        log.info("engine warm-up took %.2f s", dt)
        return dt

    def measure_capacity(self) -> Capacity:
        """Time the (warm) estimator at the batch sizes the engine will use — one window,
        and the windows that fill one encoder call — a second or two; seed the moving
        throughput with it and log how many subjects the configured hop allows."""
        batches = measurement_batches(self.images_per_subject, self.estimator.encoder_batch, self.max_batch)
        # compiled before timing and serving: the batch shapes of one window, of a full encoder
        # call, and of two and three windows together (others are compiled once they recur)
        full = max(batches)
        sizes = {n for k in {1, full, 2, 3} if k <= full for n in self.estimator.encoder_calls(k)}
        specialise_encoder(self.estimator.encoder, sorted(sizes), SPECIALISE_TIMEOUT_S)
        rates = measure_throughput(lambda b: self.estimator.estimate(self._synthetic_windows(b)),
                                   self.images_per_subject, batches)
        with self._gov_lock:
            self.governor.seed(rates)
            cap = self.governor.capacity()
            self._measured = True
        log.info("%s (measured %s; hop %s)", cap.describe(), summary(rates), hop_text(self.hop_s))
        if cap.subjects < 1:
            log.warning("this machine cannot serve even one subject at %s with this model: every hop will "
                        "be lengthened (a longer --hop, a faster --backend or a less busy machine helps)",
                        rate_text(self.hop_s))
        return cap

    def _synthetic_windows(self, batch: int) -> list[SubjectWindow]:
        n = int(round(self.window_s * self.estimator.working_rate))
        rng = np.random.default_rng(0)
        return [
            SubjectWindow(
                subject=f"warmup-{b}",
                t_end=0.0,
                modalities={m: ModalityWindow(rng.standard_normal(n).astype(np.float32)) for m in self.modalities},
            )
            for b in range(max(1, batch))
        ]

    def forget(self, subject: str) -> None:
        """Drop everything kept about ``subject`` (a bed emptied): its streams' processed
        signal, window timing and trends. New data of that subject starts afresh."""
        with self._sched_lock:
            self.scheduler.forget(subject)
            self.ingest.forget_subject(subject)
        with self._stats_lock:
            self._latest.pop(subject, None)
        with self._states_lock:
            self._states.pop(subject, None)
        with self._gov_lock:
            self.governor.forget(subject)
        self._smoothers.pop(subject, None)
        if self.estimator.baselines is not None:
            self.estimator.baselines.forget(subject)

    def latest(self, subject: str) -> Estimate | None:
        with self._stats_lock:
            return self._latest.get(subject)

    def stats(self) -> EngineStats:
        with self._gov_lock:
            gov = self.governor
            known = self._measured or math.isfinite(gov.images_per_s)
            capacity = gov.capacity().subjects if known else None
            rate, active, batch = gov.images_per_s, gov.active, gov.batch if self._measured else 0
        with self._stats_lock:
            recent = list(self._recent_total)
            return EngineStats(
                running=self.running,
                warm=self._warm.is_set(),
                device=str(self.estimator.device),
                model=self.model_name,
                subjects=len(self._latest),
                windows_cut=self._counts["cut"],
                estimates=self._counts["estimates"],
                skipped=self._counts["sched_skipped"] + self.queue.skipped,
                queue_depth=len(self.queue),
                errors=self._counts["errors"],
                rejected_chunks=self.ingest.rejected,
                last_latency=dict(self._last_latency),
                mean_total_latency=float(np.mean(recent)) if recent else float("nan"),
                stale_statuses=self._counts["stale"],
                capacity_subjects=capacity,
                images_per_s=rate,
                images_per_subject=self.images_per_subject,
                configured_hop_s=self.hop_s,
                hop_s=self.scheduler.stride_s,
                active_subjects=active,
                measured_batch=batch,
            )

    # --- scheduler thread ------------------------------------------------------------
    def _on_chunk(self, spec: StreamSpec, first_ts: float, last_ts: float, received: float) -> None:
        self.scheduler.observe(spec.subject, spec.modality, spec.nominal_rate, first_ts, last_ts, received)
        self._state_of(spec.subject).arrived(received)

    def _state_of(self, subject: str) -> SubjectState:
        with self._states_lock:
            st = self._states.get(subject)
            if st is None:
                st = self._states[subject] = SubjectState(stale_after_s=self.stale_after_s)
            return st

    def _check_stale(self) -> None:
        """Emit a stale status for every subject silent too long (live only), once per hop
        in force (a degraded engine's longer hop too)."""
        t = now()
        hop = self.scheduler.stride_s
        with self._states_lock:
            states = list(self._states.values())
        for st in states:
            est = st.check_stale(t, every_s=hop)
            if est is not None:
                self._deliver(dataclasses.replace(est, hop_s=hop))

    def _scheduler_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if stop.is_set():
                break
            try:
                self._schedule_once(stop)
                if self.realtime:
                    self._check_stale()
            except Exception:
                log.exception("window scheduling failed")
                with self._stats_lock:
                    self._counts["errors"] += 1

    def _schedule_once(self, stop: threading.Event) -> None:
        with self._sched_lock:  # forget() may run on another thread
            prep = self.ingest.drain()
            t = now()
            if self.realtime:
                self._govern(t)
            cuts = self.scheduler.due(t)
            hop = self.scheduler.stride_s
        for cut in cuts:
            t0 = time.perf_counter()
            mods = self.ingest.cut(cut.subject, cut.t_end, self.window_s)
            window = SubjectWindow(
                subject=cut.subject,
                t_end=cut.t_end,
                modalities=mods,
                preprocess_s=prep + (time.perf_counter() - t0),
                ready_at=now(),
                hop_s=hop,
            )
            with self._stats_lock:
                self._counts["cut"] += 1
                self._counts["sched_skipped"] += cut.skipped
            if cut.skipped:
                log.debug("%s: skipped %d stale window(s) to stay real-time", cut.subject, cut.skipped)
            # live: one window per subject (a newer one replaces it); offline: every window
            # is its own entry, so one subject's consecutive windows share a batch (the
            # encoder runs several windows per pass much faster than one at a time)
            key = cut.subject if self.realtime else (cut.subject, cut.t_end)
            while not self.queue.put(key, window, timeout=0.2):
                if stop.is_set():
                    return

    def _govern(self, t: float) -> None:
        """Lengthen or shorten every subject's hop to the load (scheduler thread, under
        ``_sched_lock``); a change is logged once, with its reason."""
        before = self.scheduler.stride_s
        active = self.scheduler.active(t)
        with self._gov_lock:
            hop = self.governor.update(t, active)
            rate = self.governor.images_per_s
            capacity = self.governor.capacity().subjects
        if abs(hop - before) < 1e-9:
            return
        self.scheduler.set_stride(hop)
        n = len(active)
        if hop > self.hop_s + 1e-9:
            log.warning("%s: %d subjects need more than this machine's %.1f images/s at %s (capacity %d); "
                        "every subject's estimates come less often until the load falls",
                        load_text(hop, self.hop_s, n), n, rate, rate_text(self.hop_s), capacity)
            if hop > self.window_s:
                log.warning("the hop (%s) is longer than the window (%s): part of every signal is never "
                            "estimated", hop_text(hop), hop_text(self.window_s))
        else:
            log.warning("recovered: hop %s for %s (%.1f images/s)", hop_text(hop), subjects_text(n), rate)

    # --- worker thread ---------------------------------------------------------------
    def _worker_loop(self, stop: threading.Event) -> None:
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        if self._warmup_first:
            try:  # warm only once measured: a caller waiting for warm sees the capacity
                self._warm_up()
                if self.realtime:
                    self.measure_capacity()
            except Exception:
                log.exception("engine warm-up failed")
                with self._stats_lock:
                    self._counts["errors"] += 1
        self._warm.set()
        n_mod, n_rep = len(self.estimator.modalities), len(self.estimator.representations)
        cold = not self._warmup_first
        while not stop.is_set():
            batch = self.queue.get_batch(self.max_batch, timeout=0.2)
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                estimates = self.estimator.estimate(batch)
            except Exception:
                log.exception("inference failed for %d window(s)", len(batch))
                with self._stats_lock:
                    self._counts["errors"] += 1
                continue
            busy = time.perf_counter() - t0
            if cold:  # the first pass without a warm-up is the warm-up: its time says nothing
                cold = False
            else:
                images = [(e.subject, images_of(n_mod, n_rep, len(e.missing), e.valid)) for e in estimates]
                with self._gov_lock:
                    self.governor.observe_batch(images, busy)
            for est in estimates:
                self._deliver(self._state_of(est.subject).on_window(self._smooth(est)))

    def _smooth(self, est: Estimate) -> Estimate:
        sm = self._smoothers.get(est.subject)
        if sm is None:
            sm = self._smoothers[est.subject] = IndexSmoother(self._headline, self._long_tau)
        measured = est.valid and math.isfinite(est.index)
        short, long = sm.update(est.t_end, est.index if measured else math.nan)
        if not measured:  # no number this window: no headline either (the trend keeps its memory)
            short = long = math.nan
        return dataclasses.replace(est, smoothed=short, smoothed_long=long)

    def _deliver(self, est: Estimate) -> None:
        # window estimates (worker thread) and stale status (scheduler thread) reach the
        # callbacks one at a time, so a consumer never sees them interleaved
        with self._deliver_lock:
            self._deliver_locked(est)

    def _deliver_locked(self, est: Estimate) -> None:
        with self._stats_lock:
            self._latest[est.subject] = est
            if est.state == "stale":  # a status, not an estimate of a window
                self._counts["stale"] += 1
            else:
                self._counts["estimates"] += 1
                self._last_latency = dict(est.latency)
                self._recent_total.append(est.latency.get("total", float("nan")))
                del self._recent_total[:-100]
        with self._cb_lock:
            callbacks = list(self._callbacks)
        for fn in callbacks:
            try:
                fn(est)
            except Exception:
                log.exception("estimate callback %r failed", fn)
