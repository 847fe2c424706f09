"""GUI benchmark: the dashboard's frame rate and GUI-thread stalls while inference runs.

The main window runs offscreen with the simulator feeding EDA (4 Hz), BVP (64 Hz), RESP
(25 Hz) and SpO2 (1 Hz) at their native rates. Two phases in one run, same window:

(a) **signals only**: plots scrolling, vitals, status bar; no engine;
(b) **signals + engine**: the same, with the engine estimating every second on its worker
    thread (skipped, and said so, when no model can be loaded).

For each phase it reports the frame rate of the redraw timer, frame-interval percentiles,
the longest GUI-thread stall (a 5 ms precise timer measures its own lateness, so any
moment the GUI thread was busy or starved longer than that shows up) and the GUI thread's
own CPU time per frame (what the dashboard costs, whatever else the machine is doing). Ratios (b)/(a) say what the
running model costs the display. Targets: >= 30 fps, no stall > 50 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.options import add_model_options, model_options  # noqa: E402

PROBE_MS = 5
TARGET_FPS = 30.0
TARGET_STALL_MS = 50.0


@dataclass
class PhaseResult:
    """What one phase (signals only, or signals + engine) measured: frame rate, frame and stall times."""
    name: str
    fps: float
    frame_p50_ms: float
    frame_p95_ms: float
    frame_max_ms: float
    stall_max_ms: float
    stall_p99_ms: float
    estimates: int
    cpu_per_frame_ms: float
    """CPU time of the GUI thread per frame: what the dashboard itself costs, independent
    of how busy the rest of the machine is."""


class StallProbe:
    """A 5 ms timer on the GUI thread recording how late each tick is."""

    def __init__(self):
        from PySide6 import QtCore

        self.lateness: list[float] = []
        self._last = time.perf_counter()
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness.append(max(0.0, (now - self._last) * 1000.0 - PROBE_MS))
        self._last = now

    def start(self) -> None:
        self.lateness.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


def run_phase(app, window, name: str, seconds: float, probe: StallProbe) -> PhaseResult:
    """Let the event loop run ``seconds`` and summarise frames and stalls."""
    window.frame_times.clear()
    n_est = len(window.log)
    probe.start()
    cpu0 = time.thread_time()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    cpu = time.thread_time() - cpu0
    probe.stop()
    times = window.frame_times
    frames = np.diff(np.array(times)) * 1000.0
    late = np.array(probe.lateness) if probe.lateness else np.zeros(1)
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return PhaseResult(
        name=name,
        fps=fps,
        frame_p50_ms=float(np.percentile(frames, 50)) if frames.size else float("nan"),
        frame_p95_ms=float(np.percentile(frames, 95)) if frames.size else float("nan"),
        frame_max_ms=float(frames.max()) if frames.size else float("nan"),
        stall_max_ms=float(late.max()),
        stall_p99_ms=float(np.percentile(late, 99)),
        estimates=len(window.log) - n_est,
        cpu_per_frame_ms=1000.0 * cpu / max(1, len(window.frame_times)),
    )


def print_table(results: list[PhaseResult]) -> None:
    """Print the phases side by side, one row each, so (b) reads against (a)."""
    print(f"{'phase':<22}{'fps':>7}{'frame p50':>11}{'p95':>8}{'max':>8}{'stall max':>11}{'p99':>8}"
          f"{'GUI CPU/frame':>15}{'estimates':>11}")
    for r in results:
        print(f"{r.name:<22}{r.fps:>7.1f}{r.frame_p50_ms:>9.1f}ms{r.frame_p95_ms:>6.1f}ms{r.frame_max_ms:>6.1f}ms"
              f"{r.stall_max_ms:>9.1f}ms{r.stall_p99_ms:>6.1f}ms{r.cpu_per_frame_ms:>13.1f}ms{r.estimates:>11d}")


def print_overview(refresh_ms: list[float], marks: list[int], names: list[str]) -> None:
    """The overview's own cost per phase: its once-a-second refresh (data + changed tiles)."""
    for name, (a, b) in zip(names, zip(marks[::2], marks[1::2], strict=False), strict=False):
        ms = np.array(refresh_ms[a:b]) if b > a else np.zeros(1)
        print(f"overview refresh ({name}): {b - a} refreshes, p50 {np.percentile(ms, 50):.1f} ms, "
              f"max {ms.max():.1f} ms on the GUI thread")


def main(argv: list[str] | None = None) -> int:
    """``painmon bench gui``: run both phases in one offscreen window and print the table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="painmon bench gui", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each phase (default 8)")
    parser.add_argument("--subjects", type=int, default=1, help="simulated subjects (default 1)")
    parser.add_argument("--overview", action="store_true",
                        help="measure with the overview tab (a tile per subject) in front instead of the first "
                        "subject's signals, e.g. --subjects 32 --overview")
    add_model_options(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import tempfile

    from devices.simulator import SimulatedWearable, SimulatorSource
    from monitor.gui.app import application
    from monitor.gui.main_window import MainWindow
    from monitor.gui.session import EngineConfig, Session, gui_torch_threads
    from monitor.gui.settings import SETTINGS_ENV, GuiSettings

    os.environ.setdefault(SETTINGS_ENV, str(Path(tempfile.mkdtemp()) / "bench-settings.ini"))
    app = application()
    session = Session()
    window = MainWindow(session, GuiSettings())
    window.show()
    source = SimulatorSource(SimulatedWearable(args.subjects, seed=0))
    window.add_source(source)
    probe = StallProbe()
    print(f"GUI benchmark: {args.subjects} subject(s), 4 modalities at native rates, "
          f"{args.seconds:g} s per phase, platform {app.platformName()}")
    # let every plot fill once before measuring
    run_phase(app, window, "warm-up", 2.0, probe)
    if args.overview:
        window.tabs.setCurrentWidget(window.overview)
    elif window.panels:
        window.show_subject(sorted(window.panels)[0])
    print(f"in front: {'overview, ' + str(len(window.panels)) + ' tiles' if args.overview else 'one subject tab'}")
    marks = [len(window.overview.refresh_ms)]
    results = [run_phase(app, window, "signals only", args.seconds, probe)]
    marks.append(len(window.overview.refresh_ms))

    from benchmarks.realtime import load_bench_estimator

    model = model_options(args)
    estimator, model_desc = load_bench_estimator(model)
    threads = model.threads or gui_torch_threads()
    print(f"model: {model_desc}; {len(estimator.modalities)} modalities x {len(estimator.representations)} "
          f"representations on {estimator.device}, torch threads {threads}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    session.start_engine(EngineConfig(estimator=estimator, threads=threads), wait=True)
    engine_note = session.engine_state
    if session.engine is not None:
        session.engine.wait_warm(60)
        run_phase(app, window, "engine warm-up", 3.0, probe)
        marks.append(len(window.overview.refresh_ms))
        results.append(run_phase(app, window, "signals + engine", args.seconds, probe))
        marks.append(len(window.overview.refresh_ms))
    print_table(results)
    if args.overview:
        print_overview(window.overview.refresh_ms, marks, [r.name for r in results])
    if len(results) == 2:
        a, b = results
        print(f"ratio engine/no-engine: fps {b.fps / a.fps:.2f}x, frame p95 {b.frame_p95_ms / a.frame_p95_ms:.2f}x, "
              f"longest stall {b.stall_max_ms / max(a.stall_max_ms, 1e-3):.2f}x")
    else:
        print(f"engine not measured: {engine_note}")
    worst = results[-1]
    ok = worst.fps >= TARGET_FPS * 0.95 and worst.stall_max_ms <= TARGET_STALL_MS
    print(f"target >= {TARGET_FPS:g} fps and no stall > {TARGET_STALL_MS:g} ms: {'met' if ok else 'NOT met'} "
          f"({worst.fps:.1f} fps, longest stall {worst.stall_max_ms:.1f} ms)")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
