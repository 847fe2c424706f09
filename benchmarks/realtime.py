"""Real-time benchmark: simulated subjects on LSL -> engine -> estimates on LSL.

Measured in one run on this machine:

(a) **latency** of one subject: from the moment the outlet pushed the last sample of a
    window (the newest sample, over all modalities, with timestamp <= the window end) to
    the moment that window's estimate arrives on an LSL inlet of ``PainMon-<subject>``;
    p50 / p95 / max;
(b) **capacity**: the largest number of subjects served in real time at 1 Hz *without
    degrading* — every window estimated, none skipped, and the engine's capacity planning
    (:mod:`monitor.engine.capacity`) never lengthening the hop — with the model's
    modalities x representations; beside it, what the engine itself says at start
    ("capacity: N subjects at 1 Hz ...");
(c) **GUI smoothness**: how late a 10 ms timer on the main thread (what a Qt event loop
    experiences) fires with nothing running, with the model computing flat out in a thread
    of the same process, and in a child process — the thread-or-process choice — and
    while the engine serves one subject;
(d) **threads**: images/s of a whole-window pass with 1 torch thread and with all cores;
(e) **warm-up**: the first (cold) pass against the next one, why the engine warms up.

With several backends (``--backends torch:fp32,openvino:fp32,openvino:bf16``) the runs are
interleaved: (a) for every backend in turn (``--rounds`` times), then (b) each subject count for
every backend still in real time before the next count, so outside load on a shared machine
hits them alike. Every run reports the 1-minute load average at its end.

The simulator pushes 64 ms chunks (like a BLE wearable) and pre-fills one window of
history so the first estimate comes at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.wire import estimate_stream_name, stream_source_id  # noqa: E402
from core.worker import BackgroundWorker  # noqa: E402
from monitor.engine import ModelOptions  # noqa: E402
from monitor.options import add_model_options, model_options  # noqa: E402

CHUNK_S = 0.064


@dataclass
class PushLog:
    """When each chunk of one stream was pushed: its first and last timestamps, push time."""

    first_ts: list[float] = field(default_factory=list)
    last_ts: list[float] = field(default_factory=list)
    pushed_at: list[float] = field(default_factory=list)

    def push_time_of(self, t: float) -> float:
        """Push time of the chunk holding the newest sample with timestamp <= t."""
        i = int(np.searchsorted(self.last_ts, t + 1e-9, side="left"))  # first chunk ending at/after t
        if i < len(self.last_ts) and self.first_ts[i] > t + 1e-9:
            i -= 1  # that chunk starts after t: the sample is the previous chunk's last
        if not 0 <= i < len(self.last_ts):
            return float("nan")
        return self.pushed_at[i]


class LSLSimulatorDriver:
    """Simulated subjects pushed to real LSL outlets in real time, logging push times."""

    def __init__(self, n_subjects: int, seed: int = 0, prefill_s: float = 10.0, tag: str = ""):
        import pylsl

        from core.streams import MARKERS
        from devices.lsl import stream_info
        from devices.simulator import SimulatedWearable

        self.sim = SimulatedWearable(n_subjects, seed=seed)
        self.tag = tag
        self.outlets = {}
        self.logs: dict[tuple[str, str], PushLog] = {}
        for spec in self.sim.specs(markers=False):
            if spec.modality == MARKERS:
                continue
            subj = spec.subject + tag
            spec = dataclasses.replace(spec, subject=subj, name=f"{subj} {spec.modality}",
                                       source_id=stream_source_id(subj, spec.modality))
            self.outlets[(spec.subject, spec.modality)] = pylsl.StreamOutlet(stream_info(spec), chunk_size=0)
            self.logs[(spec.subject, spec.modality)] = PushLog()
        self.subjects = [s + tag for s in self.sim.subjects]
        self.prefill_s = prefill_s
        self._worker = BackgroundWorker(self._run, name="bench-sim")
        self.t0 = float("nan")

    def start(self) -> None:
        import pylsl

        self.t0 = pylsl.local_clock() - self.prefill_s
        self._push_until(self.prefill_s)
        self._worker.start()

    def _push_until(self, sim_t: float) -> None:
        import pylsl

        for ch in self.sim.advance(sim_t):
            key = (ch.subject + self.tag, ch.modality)
            out = self.outlets.get(key)
            if out is None or ch.values is None:
                continue
            ts = self.t0 + ch.times
            out.push_chunk(ch.values.reshape(-1, 1).astype(np.float32).tolist(), ts.tolist())
            log = self.logs[key]
            log.first_ts.append(float(ts[0]))
            log.last_ts.append(float(ts[-1]))
            log.pushed_at.append(pylsl.local_clock())

    def _run(self, stop: threading.Event) -> None:
        import pylsl

        while not stop.is_set():
            self._push_until(pylsl.local_clock() - self.t0)
            stop.wait(CHUNK_S)

    def last_sample_push_time(self, subject: str, t_end: float) -> float:
        times = [log.push_time_of(t_end) for (s, _), log in self.logs.items() if s == subject]
        return max(times) if times and not any(np.isnan(times)) else float("nan")

    def stop(self) -> None:
        self._worker.stop(5)
        self.outlets.clear()


class EstimateListener:
    """LSL inlets on each subject's estimate stream (:func:`core.wire.estimate_stream_name`)
    recording (t_end, arrival time)."""

    def __init__(self, subjects: list[str]):
        self.subjects = subjects
        self.received: dict[str, list[tuple[float, float]]] = {s: [] for s in subjects}
        self._inlets: dict[str, Any] = {}
        self._worker = BackgroundWorker(self._run, name="bench-inlets")

    def connect(self, timeout: float = 60.0) -> None:
        import pylsl

        deadline = time.monotonic() + timeout
        for s in self.subjects:
            found: list[Any] = []
            while not found and time.monotonic() < deadline:
                found = pylsl.resolve_byprop("name", estimate_stream_name(s), timeout=1.0)
            if not found:
                raise RuntimeError(f"estimate outlet of {s} never appeared")
            inlet = pylsl.StreamInlet(found[0], max_buflen=30)
            inlet.open_stream(timeout=10)
            self._inlets[s] = inlet
        self._worker.start()

    def _run(self, stop: threading.Event) -> None:
        import pylsl

        while not stop.is_set():
            got = False
            for s, inlet in self._inlets.items():
                _, stamps = inlet.pull_chunk(timeout=0.0)
                if stamps:
                    arrived = pylsl.local_clock()
                    self.received[s].extend((t, arrived) for t in stamps)
                    got = True
            if not got:
                time.sleep(0.001)

    def stop(self) -> None:
        self._worker.stop(5)
        self._inlets.clear()


def timer_lateness(duration_s: float, period_s: float = 0.010) -> np.ndarray:
    """How late (s) each tick of a ``period_s`` sleep loop on this thread wakes: what a
    GUI event loop's timers experience."""
    late = []
    t_next = time.perf_counter() + period_s
    t_stop = time.perf_counter() + duration_s
    while time.perf_counter() < t_stop:
        time.sleep(max(0.0, t_next - time.perf_counter()))
        now = time.perf_counter()
        late.append(now - t_next)
        t_next = max(t_next + period_s, now)
    return np.asarray(late)


@dataclass
class RunResult:
    """What one :func:`run_once` measured: estimates made vs expected, skips, latencies and stage times."""
    n_subjects: int
    seconds: float
    estimates: int
    expected: int
    skipped: int
    latencies: np.ndarray
    lateness: np.ndarray | None = None
    stages: dict[str, float] = field(default_factory=dict)
    """Mean seconds per engine stage (per batch) over the run's estimates."""
    max_hop_s: float = float("nan")
    """Longest hop an estimate of the run carried (> 1 s: the engine degraded)."""
    load: float = float("nan")
    """1-minute load average at the end of the run (``uptime``'s first figure): on a shared
    machine it says how much other work the figures competed with."""

    @property
    def degraded(self) -> bool:
        return self.max_hop_s > 1.0 + 1e-9


def merge_runs(runs: list[RunResult]) -> RunResult:
    """Rounds of the same measurement (same subjects, one backend) as one result: counts summed,
    latencies pooled, stage means and load averages averaged, the longest hop kept."""
    if len(runs) == 1:
        return runs[0]
    lateness = [r.lateness for r in runs if r.lateness is not None]
    stages = {k: float(np.mean([r.stages[k] for r in runs if k in r.stages])) for k in runs[0].stages}
    return RunResult(runs[0].n_subjects, sum(r.seconds for r in runs), sum(r.estimates for r in runs),
                     sum(r.expected for r in runs), sum(r.skipped for r in runs),
                     np.concatenate([r.latencies for r in runs]),
                     np.concatenate(lateness) if lateness else None, stages,
                     max(r.max_hop_s for r in runs), float(np.mean([r.load for r in runs])))


def run_once(
    estimator, n_subjects: int, seconds: float, tag: str, measure_gui: bool = False, threads: int | None = None
) -> RunResult:
    """Serve ``n_subjects`` simulated subjects for ``seconds`` of real time, through the
    same :class:`monitor.pipeline.Pipeline` as ``painmon serve``."""
    from devices.lsl import LSLSource
    from monitor.engine import Engine
    from monitor.outputs import LSLEstimateOutlets
    from monitor.pipeline import Pipeline

    pipeline = Pipeline()
    driver = LSLSimulatorDriver(n_subjects, seed=1, prefill_s=estimator_window(estimator) + 0.5, tag=tag)
    mine = set(driver.subjects)
    engine = Engine(pipeline.hub, estimator, window_s=estimator_window(estimator), hop_s=1.0,
                    subjects=lambda s: s in mine, threads=threads)
    pipeline.set_engine(engine)
    outlets = LSLEstimateOutlets(model_name=estimator.model_name)
    for s in driver.subjects:
        outlets.outlet(s)
    pipeline.add_output(outlets)
    stage_log: list[dict[str, float]] = []
    hops: list[float] = []

    def log_estimate(est) -> None:
        stage_log.append(dict(est.latency))
        if settled.is_set():
            hops.append(est.hop_s)

    settled = threading.Event()
    pipeline.add_listener(log_estimate)
    listener = EstimateListener(driver.subjects)
    listener.connect()
    pipeline.add_source(LSLSource(predicate=lambda ds: ds.subject in mine))
    pipeline.add_helper(driver)  # stopped right after the source that reads it
    engine.start(warmup=False)
    driver.start()
    pipeline.start()  # the engine runs already: this starts the source
    try:
        # settle: streams resolved, first windows through
        t_settle = time.monotonic() + 30.0
        while time.monotonic() < t_settle and any(not listener.received[s] for s in driver.subjects):
            time.sleep(0.1)
        st0 = engine.stats()
        settled.set()
        n0 = {s: len(v) for s, v in listener.received.items()}
        t_start = time.monotonic()
        lateness = timer_lateness(seconds) if measure_gui else None
        while time.monotonic() - t_start < seconds:
            time.sleep(0.05)
        elapsed = time.monotonic() - t_start
        st1 = engine.stats()
        time.sleep(0.5)  # let estimates in flight arrive
    finally:
        pipeline.stop_sources()
        pipeline.stop_helpers()  # the driver
        pipeline.stop_engine()  # its last estimates reach the listener...
        listener.stop()
        pipeline.stop()  # ...before the estimate outlets close
    lat = []
    got = 0
    for s in driver.subjects:
        rows = listener.received[s][n0[s]:]
        got += len(rows)
        for t_end, arrived in rows:
            pushed = driver.last_sample_push_time(s, t_end)
            if np.isfinite(pushed):
                lat.append(arrived - pushed)
    expected = int(elapsed) * n_subjects
    stages = {
        k: float(np.mean([d[k] for d in stage_log if k in d]))
        for k in ("preprocess", "represent", "encode", "fuse", "batch")
    }
    return RunResult(n_subjects, elapsed, got, expected, st1.skipped - st0.skipped, np.asarray(lat), lateness, stages,
                     max(hops, default=float("nan")), os.getloadavg()[0])


def estimator_window(estimator) -> float:
    """Window length (s) the estimator scores: the engine's window and the simulator's prefill follow it."""
    return float(estimator.window_s)


def load_bench_estimator(model: ModelOptions):
    """The estimator ``model`` names (by default the bundled model), or a freshly
    initialised head of the default layout when no bundled model exists yet: the timings
    are the same, the numbers meaningless. A model file named explicitly must exist
    (:class:`monitor.engine.ModelNotFoundError` otherwise)."""
    from core.paths import default_model_path

    path = Path(model.model_path) if model.model_path else default_model_path()
    if path.is_file() or model.model_path:
        loaded = dataclasses.replace(model, model_path=str(path)).load()
        return loaded.estimator, f"{loaded.name} ({path.name})"
    from core.device import resolve_device
    from core.encoder import load_encoder
    from core.fusion import FusionHead
    from core.inference import Estimator
    from core.modalities import DEFAULT_MODALITIES
    from core.representations import DEFAULT_REPRESENTATIONS

    dev = resolve_device(model.device or "auto")
    head = FusionHead(DEFAULT_MODALITIES, DEFAULT_REPRESENTATIONS).to(dev).eval()
    from monitor.engine.engine import default_torch_threads

    extra: dict[str, Any] = {"backend": model.backend} if model.backend not in (None, "torch") else {}
    encoder = load_encoder(model.encoder_path, device=str(dev), precision=model.precision or "auto",
                           threads=model.threads or default_torch_threads(), **extra)
    est = Estimator(encoder, head, DEFAULT_MODALITIES, DEFAULT_REPRESENTATIONS, device=dev, model_name="untrained-head")
    return est, "untrained head (no bundled model found)"


def _window_batch(modalities, n: int, n_subjects: int = 1):
    from core.inference import ModalityWindow, SubjectWindow

    rng = np.random.default_rng(0)
    return [
        SubjectWindow(f"s{b}", 0.0, {m: ModalityWindow(rng.standard_normal(n).astype(np.float32)) for m in modalities})
        for b in range(n_subjects)
    ]


def _process_worker(modalities, representations, n, seconds, threads, done):
    """Child process: the same estimator layout, estimating in a loop (spawned, so it
    builds its own model; untrained weights cost the same time as trained ones)."""
    import torch

    from core.encoder import load_encoder
    from core.fusion import FusionHead
    from core.inference import Estimator

    if threads:
        torch.set_num_threads(threads)
    # untrained on purpose (only its cost is measured): keep the loader's warning off the bench output
    logging.getLogger("core.encoder.loader").setLevel(logging.ERROR)
    est = Estimator(load_encoder(None, device="cpu"), FusionHead(modalities, representations).eval(),
                    modalities, representations)
    windows = _window_batch(modalities, n)
    est.estimate(windows)
    done.set()  # warm: the parent starts measuring now
    t_stop = time.perf_counter() + seconds
    while time.perf_counter() < t_stop:
        est.estimate(windows)


def worker_smoothness(estimator, seconds: float, threads: int) -> dict[str, np.ndarray]:
    """Main-thread timer lateness while the estimator runs flat out in a thread of this
    process, and in a separate process: the choice the engine's design rests on."""
    import multiprocessing as mp

    n = int(round(estimator.window_s * estimator.working_rate))
    windows = _window_batch(estimator.modalities, n)
    out = {"idle": timer_lateness(seconds)}

    def loop(stop: threading.Event) -> None:
        import torch

        torch.set_num_threads(threads)
        while not stop.is_set():
            estimator.estimate(windows)

    worker = BackgroundWorker(loop, name="bench-model-loop")
    worker.start()
    out["thread"] = timer_lateness(seconds)
    worker.stop(timeout=None)
    ctx = mp.get_context("spawn")
    done = ctx.Event()
    proc = ctx.Process(target=_process_worker, args=(estimator.modalities, estimator.representations, n,
                                                     seconds + 30.0, threads, done), daemon=True)
    proc.start()
    if done.wait(120):
        out["process"] = timer_lateness(seconds)
    proc.terminate()
    proc.join(10)
    return out


def encoder_threads(estimator, rounds: int = 3) -> dict[int, float]:
    """Images/s of one window's images (all modalities x representations) by torch thread
    count, alternating so outside load hits every setting alike (best of ``rounds``)."""
    import torch

    n = int(round(estimator.window_s * estimator.working_rate))
    windows = _window_batch(estimator.modalities, n)
    n_images = len(estimator.modalities) * len(estimator.representations)
    counts = sorted({1, os.cpu_count() or 1})
    best = {c: 0.0 for c in counts}
    saved = torch.get_num_threads()
    try:
        for _ in range(rounds):
            for c in counts:
                torch.set_num_threads(c)
                t0 = time.perf_counter()
                estimator.estimate(windows)
                best[c] = max(best[c], n_images / (time.perf_counter() - t0))
    finally:
        torch.set_num_threads(saved)
    return best


CPU_FLAGS_SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_line() -> str:
    """CPU model, cores, the SIMD/matrix flags that decide the encoder's speed, and whether
    bf16 units are usable (what the targets depend on)."""
    import platform

    from core.encoder.precision import _cpu_flags, cpu_has_native_bf16

    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = _cpu_flags()
    shown = " ".join(f for f in CPU_FLAGS_SHOWN if f in flags) or "(unknown)"
    return (f"CPU: {model}, {os.cpu_count()} logical cores; flags: {shown}; "
            f"bf16 units usable: {'yes' if cpu_has_native_bf16() else 'no'}")


def pct(x: np.ndarray, q: float) -> float:
    """Percentile ``q`` of ``x``; NaN for a run that produced nothing (numpy would raise)."""
    return float(np.percentile(x, q)) if x.size else float("nan")


@dataclass(frozen=True)
class BackendChoice:
    """One encoder runtime to measure: a backend and, optionally, its precision (None: the
    model options' ``--precision``), so one run can compare e.g. OpenVINO fp32 with its mixed mode."""

    backend: str
    precision: str | None = None

    @property
    def label(self) -> str:
        return self.backend + (f":{self.precision}" if self.precision else "")


@dataclass
class BackendResult:
    """(a) and (b) for one encoder backend."""

    backend: str
    encoder: str
    capacity: Any
    """The engine's start-up statement (:class:`monitor.engine.Capacity`)."""
    one: RunResult
    best: int
    """Most subjects served at 1 Hz without degrading."""
    limit: bool
    """``best`` is the search limit (more may fit)."""


def encoder_text(estimator) -> str:
    """What runs the images: backend and precision when the encoder says, else its class."""
    info = getattr(estimator.encoder, "info", None)
    parts = [str(getattr(info, k)) for k in ("backend", "precision") if getattr(info, k, None)]
    return " ".join(parts) or type(estimator.encoder).__name__


def engine_capacity(engine):
    """What ``engine`` says at start, measured as :meth:`Engine.start` does: on a thread of
    its own with the engine's torch threads (here the main thread's OpenMP team measured 3x
    slower than the worker's on a busy 2-core machine)."""
    import torch

    out: list = []

    def measure(stop: threading.Event) -> None:
        torch.set_num_threads(engine.threads)
        out.append(engine.measure_capacity())

    worker = BackgroundWorker(measure, name="bench-capacity")
    worker.start()
    worker.stop(timeout=None)  # joins once the measurement returned
    return out[0]


def in_real_time(r: RunResult) -> bool:
    """Served at 1 Hz without degrading: no lengthened hop, nothing skipped, >= 90 % of the
    expected estimates, p95 latency under the hop."""
    return not r.degraded and r.skipped == 0 and r.estimates >= 0.9 * r.expected and pct(r.latencies, 95) < 1.0


def verdict(r: RunResult) -> str:
    """One word on a run for the progress lines: real time, degraded (with the hop) or falls behind."""
    if in_real_time(r):
        return "real time"
    return f"degraded (hop {r.max_hop_s:.2f} s)" if r.degraded else "falls behind"


@dataclass
class Contender:
    """A loaded backend in the interleaved run: its estimator and what has been measured so far."""

    choice: BackendChoice
    estimator: Any
    capacity: Any
    tag: str
    one: list[RunResult] = field(default_factory=list)
    best: int = 0
    searching: bool = True


def serve_interleaved(contenders: list[Contender], args: argparse.Namespace) -> list[BackendResult]:
    """(a) one subject's latency for every backend in turn, ``--rounds`` times (with the main
    thread's timer lateness, (c)); then (b) the capacity search from 2 subjects up, each subject
    count served by every backend still in real time before the next count, so a burst of outside
    load hits the backends alike instead of whichever was measured at that moment."""
    for r in range(args.rounds):
        for c in contenders:
            run = run_once(c.estimator, 1, args.seconds, f"{c.tag}a{r}", measure_gui=True, threads=args.threads)
            c.one.append(run)
            print(f"  [{c.choice.label}] 1 subject (round {r + 1}): {run.estimates}/{run.expected} estimates, "
                  f"{run.skipped} skipped, p95 latency {pct(run.latencies, 95) * 1e3:.0f} ms -> {verdict(run)} "
                  f"(load average {run.load:.1f})", flush=True)
    for c in contenders:
        c.searching = in_real_time(merge_runs(c.one))
        c.best = 1 if c.searching else 0
    for n in range(2, args.max_subjects + 1):
        for c in contenders:
            if not c.searching:
                continue
            run = run_once(c.estimator, n, args.seconds, f"{c.tag}b{n}", threads=args.threads)
            print(f"  [{c.choice.label}] {n} subjects: {run.estimates}/{run.expected} estimates, {run.skipped} "
                  f"skipped, p95 latency {pct(run.latencies, 95) * 1e3:.0f} ms -> {verdict(run)} "
                  f"(load average {run.load:.1f})", flush=True)
            if in_real_time(run):
                c.best = n
            else:
                c.searching = False
    return [BackendResult(c.choice.label, encoder_text(c.estimator), c.capacity, merge_runs(c.one), c.best,
                          c.best == args.max_subjects) for c in contenders]


def backends_to_run(text: str | None, default: str | None) -> list[BackendChoice]:
    """``--backends torch,openvino:fp32,openvino:bf16`` (``backend[:precision]``) or ``each`` (every
    backend installed here, at ``--precision``); default: the model options' backend alone."""
    if not text:
        return [BackendChoice(default or "torch")]
    if text == "each":
        import importlib.util
        import inspect

        from core.encoder import load_encoder

        has_backends = "backend" in inspect.signature(load_encoder).parameters
        names = ["torch"] + (["openvino"] if has_backends and importlib.util.find_spec("openvino") else [])
        return [BackendChoice(b) for b in names]
    out = []
    for item in (b.strip() for b in text.split(",")):
        if item:
            backend, _, precision = item.partition(":")
            out.append(BackendChoice(backend.strip(), precision.strip() or None))
    return out


def main(argv: list[str] | None = None) -> int:
    """``painmon bench realtime``: latency of one subject, then the largest number of subjects
    served in real time, for each backend asked for, interleaved; returns the exit code."""
    p = argparse.ArgumentParser(prog="painmon bench realtime", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    p.add_argument("--max-subjects", type=int, default=8, help="stop the capacity search here (default 8)")
    p.add_argument("--rounds", type=int, default=1,
                   help="one-subject latency runs per backend, taken in turn with the other backends (default 1)")
    p.add_argument("--backends", default=None, metavar="LIST",
                   help="encoder backends to measure, interleaved: a comma list of backend[:precision] "
                   "(torch:fp32,openvino:fp32,openvino:bf16) or 'each' (every one installed); default: --backend "
                   "alone")
    add_model_options(p)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.max_subjects < 1:
        p.error("--rounds and --max-subjects must be at least 1")

    import torch

    from core.buffers import BufferHub
    from monitor.engine.engine import Engine, default_torch_threads

    model = model_options(args)
    choices = backends_to_run(args.backends, getattr(model, "backend", None))
    print(cpu_line())
    print(f"engine threads (torch and OpenVINO): {args.threads or default_torch_threads()}, "
          f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    tag = f"-bench{os.getpid()}"
    rows: list[tuple[str, str]] = []
    contenders: list[Contender] = []
    by_threads: dict[int, float] = {}
    smooth: dict[str, np.ndarray] = {}
    for k, choice in enumerate(choices):
        estimator, model_desc = load_bench_estimator(dataclasses.replace(
            model, backend=choice.backend, precision=choice.precision or model.precision))
        n_images = len(estimator.modalities) * len(estimator.representations)
        b = f"[{choice.label}] "
        print(f"\n{b}model: {model_desc}; {len(estimator.modalities)} modalities x "
              f"{len(estimator.representations)} representations = {n_images} images per window; "
              f"encoder {encoder_text(estimator)} on {estimator.device}", flush=True)
        # (e) the warm-up Engine.start runs: a cold first pass against the next (warm) one
        warm_engine = Engine(BufferHub(), estimator, window_s=estimator_window(estimator), threads=args.threads)
        torch.set_num_threads(warm_engine.threads)  # as on the engine's worker
        cold_s = warm_engine.warmup()
        warm_s = warm_engine.warmup()
        rows.append((f"{b}(e) one window, first (cold) pass vs warm pass",
                     f"{cold_s * 1e3:.0f} ms vs {warm_s * 1e3:.0f} ms"))
        if k == 0:  # machine-wide measures, once: (c) thread vs process
            smooth = worker_smoothness(estimator, min(5.0, args.seconds), args.threads or default_torch_threads())
        if not by_threads and choice.backend == "torch":  # (d) torch threads (OpenVINO's are fixed at load)
            by_threads = encoder_threads(estimator)
            base = by_threads[min(by_threads)]
            rows += [(f"{b}(d) whole-window pass with {c} torch thread(s)", f"{ips:.1f} images/s ({ips / base:.2f}x)")
                     for c, ips in by_threads.items()]
        capacity = engine_capacity(warm_engine)
        print(f"{b}{capacity.describe()} (load average {os.getloadavg()[0]:.1f})", flush=True)
        contenders.append(Contender(choice, estimator, capacity, f"{tag}{k}"))
        del warm_engine
    print(f"\ninterleaved: {args.rounds} round(s) of one subject per backend, then the capacity search",
          flush=True)
    results = serve_interleaved(contenders, args)
    for res in results:
        one = res.one
        stage_text = ", ".join(f"{name} {v * 1e3:.0f}" for name, v in one.stages.items())
        b = f"[{res.backend}] "
        rows += [(f"{b}(a) latency, 1 subject: p50 / p95 / max",
                  f"{pct(one.latencies, 50) * 1e3:.0f} / {pct(one.latencies, 95) * 1e3:.0f} / "
                  f"{one.latencies.max() * 1e3 if one.latencies.size else float('nan'):.0f} ms "
                  f"(load average {one.load:.1f})"),
                 (f"{b}(a) estimates / expected", f"{one.estimates} / {one.expected} (skipped {one.skipped})"),
                 (f"{b}(a) mean ms per stage, 1 subject", stage_text),
                 (f"{b}(b) subjects at 1 Hz without degrading",
                  f"{res.best}{' (search limit)' if res.limit else ''}"),
                 (f"{b}(b) the engine's own statement at start", res.capacity.describe())]
        busy = one.lateness if one.lateness is not None else np.zeros(0)
        rows.append((f"{b}(c) 10 ms main-thread timer lateness, engine serving 1 subject (thread): p99 / max",
                     f"{pct(busy, 99) * 1e3:.1f} / {busy.max() * 1e3 if busy.size else float('nan'):.1f} ms"))
    for name, label in (("idle", "nothing running"), ("thread", "model looping in a thread"),
                        ("process", "model looping in a child process")):
        x = smooth.get(name, np.zeros(0))
        rows.append((f"(c) 10 ms main-thread timer lateness, {label} ({choices[0].label}): p99 / max",
                     f"{pct(x, 99) * 1e3:.1f} / {x.max() * 1e3 if x.size else float('nan'):.1f} ms"))
    print()
    print("| measure | value |")
    print("|---|---|")
    for name, v in rows:
        print(f"| {name} | {v} |")
    print(f"load average after: {os.getloadavg()[0]:.1f} (other processes share this machine's cores)")
    from core.encoder.precision import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16()
    p95_target, subjects_target = (0.2, 4) if bf16 else (0.4, 2)
    kind = "with bf16 units" if bf16 else "without bf16 units (AVX2 targets)"
    print(f"\ntargets {kind}: p95 latency <= {p95_target * 1e3:.0f} ms for one subject, >= {subjects_target} "
          "subjects at 1 Hz without degrading")
    for res in results:
        p95 = pct(res.one.latencies, 95)
        print(f"  {res.backend} ({res.encoder}): p95 {p95 * 1e3:.0f} ms {'met' if p95 <= p95_target else 'NOT met'}; "
              f"{res.best} subjects {'met' if res.best >= subjects_target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
