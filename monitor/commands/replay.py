"""``painmon replay FILE``: replay a recorded session (XDF) into the monitor, the engine,
or onto LSL for other tools.

* ``--lsl``: re-publish the file's streams as LSL outlets until done (or Ctrl+C);
* default: open the dashboard on the file (its replay bar pauses, seeks, changes speed);
  without a display, run headless;
* ``--headless``: run the engine on the replayed data and print each estimate (and the
  file's markers as they pass); without a usable model, print replay progress instead;
* ``--headless --speed 0 --csv OUT.csv``: score the file offline as fast as the CPU
  allows (:mod:`monitor.scoring`) and write every estimate to a CSV
  (:mod:`monitor.estimate_csv`), with one progress line every 10 % or 5 s. A file with no
  stream the model uses is refused with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time

from core.streams import SELF_REPORT
from core.wire import CSV_COLUMNS, shown_label
from monitor.options import add_model_options, add_record_option, model_options, startup_error

log = logging.getLogger("painmon.replay")

PROGRESS_EVERY_S = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon replay`` and its options to the command line."""
    p = sub.add_parser(
        "replay",
        help="replay a recorded session (XDF): into the monitor, headless, or onto LSL",
        description="Replay an XDF recording (PainMon's own or LabRecorder's) as if live.",
    )
    p.add_argument("file", help="XDF file, e.g. assets/sessions/sample-sim.xdf")
    p.add_argument("--speed", type=float, default=1.0,
                   help="speed factor (1 = real time; 0 or inf = as fast as possible)")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--lsl", action="store_true", help="re-publish the streams as LSL outlets")
    p.add_argument("--headless", action="store_true", help="no GUI: run the engine and print estimates")
    p.add_argument("--duration", type=float, default=None, metavar="SEC",
                   help="stop after this many seconds of wall time")
    p.add_argument("--start", type=float, default=0.0, metavar="SEC", help="begin this far into the file")
    p.add_argument("--csv", default=None, metavar="OUT.csv",
                   help="write every estimate to this CSV (headless; columns: " + ",".join(CSV_COLUMNS) + ")")
    add_model_options(p)
    add_record_option(p, help="record the replayed streams, markers and estimates to this new XDF file "
                      "(dashboard or --headless)")
    p.set_defaults(func=run)


def _say(text: str) -> None:
    print(text, flush=True)


def describe_session(session) -> list[str]:
    """Human-readable summary lines of a loaded session."""
    lines = [
        f"{session.path.name}: {session.duration:.1f} s, subjects {', '.join(session.subjects) or '-'}"
        + (f", recorded by {session.writer}" if session.writer else "")
    ]
    for s in session.streams:
        note = ("" if s.known_modality else "  (self-report)" if s.spec.modality == SELF_REPORT
                else "  (unknown modality: not used by the model)")
        lines.append(
            f"  {s.spec.subject:<12} {s.spec.modality:<8} {s.n_samples:>8} samples "
            f"{s.spec.nominal_rate:g} Hz {s.spec.n_channels} ch  [{s.spec.name}]{note}"
        )
    for s in session.marker_streams:
        lines.append(f"  {s.spec.subject:<12} {'events':<8} {s.n_samples:>8} markers  [{s.spec.name}]")
    for s in session.estimate_streams:
        lines.append(f"  {s.spec.subject:<12} {'estimates':<8} {s.n_samples:>8} recorded estimates  [{s.spec.name}]")
    for name in session.skipped:
        lines.append(f"  skipped empty stream [{name}]")
    return lines


def run(args: argparse.Namespace) -> int:
    """Replay a recording into the dashboard, headless or onto LSL; 2 for invalid options or an unreadable file."""
    from devices.xdf import SessionLoadError, load_session

    if math.isnan(args.speed) or args.speed < 0:
        _say(f"painmon replay: --speed must be >= 0, got {args.speed}")
        return 2
    if args.duration is not None and not args.duration > 0:
        _say(f"painmon replay: --duration must be positive, got {args.duration}")
        return 2
    try:
        session = load_session(args.file)
    except SessionLoadError as exc:
        _say(f"painmon replay: {exc}")
        return 2
    for line in describe_session(session):
        _say(line)
    if args.csv is not None and (args.lsl or not args.headless):
        _say("painmon replay: --csv needs --headless")
        return 2
    if args.lsl:
        if args.record is not None:
            _say("painmon replay: --record works with the dashboard or --headless, not --lsl "
                 "(record the outlets with `painmon record --lsl`)")
            return 2
        return _run_lsl(session, args)
    if not args.headless:
        reason = _gui_unavailable()
        if reason is None:
            return _run_gui(session, args)
        _say(f"(no dashboard: {reason}; running headless)")
    return _run_headless(session, args)


def _gui_unavailable() -> str | None:
    """Why the dashboard cannot open here (None when it can): Qt aborts the whole process
    when it finds no display, so look before trying."""
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec("monitor.gui.app") is None:
        return "the dashboard is not installed"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        return "no display (set DISPLAY, or use --headless / --lsl)"
    return None


def _run_gui(session, args: argparse.Namespace) -> int:
    """The dashboard on the file; its replay bar controls pause, seek, speed and loop."""
    from devices.replay import ReplaySource
    from monitor.gui.app import run_monitor

    source = ReplaySource(session, speed=args.speed, loop=args.loop)
    if args.start:
        source.seek(args.start)
    return int(run_monitor(sources=[source], model=model_options(args), duration=args.duration,
                           record=args.record) or 0)


def _until_done(player, duration: float | None, progress) -> None:
    """Wait for the end of the replay, ``duration`` seconds, or Ctrl+C; report progress."""
    t0 = time.monotonic()
    next_report = t0 + PROGRESS_EVERY_S
    try:
        while not player.finished.wait(0.2):
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            if now >= next_report:
                progress()
                next_report = now + PROGRESS_EVERY_S
    except KeyboardInterrupt:
        _say("interrupted")


def _run_lsl(session, args: argparse.Namespace) -> int:
    from devices.replay import LSLRepublisher

    pub = LSLRepublisher(session, speed=args.speed, loop=args.loop)
    if args.start:
        pub.seek(args.start)
    pub.start()
    _say(f"re-publishing {len(session.replayable)} streams on LSL (Ctrl+C to stop)")
    try:
        _until_done(pub, args.duration,
                    lambda: _say(f"  {pub.position:7.1f} / {pub.duration:.1f} s, {sum(pub.pushed)} samples sent"))
    finally:
        pub.stop()
    _say(f"done: {sum(pub.pushed)} samples sent")
    return 0


def _print_estimate(source, est) -> None:
    _print_estimate_at(source.from_clock(est.t_end), est)


class ModelRequired(Exception):
    """The model the user named (``--model`` / ``--encoder``) cannot be used: stop."""


def _make_engine(hub, args: argparse.Namespace, realtime: bool):
    """The engine, or None when the bundled model is unusable (the replay still shows the
    data). A model the user named that cannot load ends the command before the replay
    starts, with the one line ``serve`` gives (:class:`ModelRequired`)."""
    from monitor.engine import Engine

    model = model_options(args)
    try:
        return Engine(hub, model.load().estimator, realtime=realtime, threads=model.threads)
    except Exception as exc:
        if args.model is not None or args.encoder is not None:
            log.error("%s", startup_error(exc))  # as `painmon serve` says it
            raise ModelRequired(str(exc)) from None
        _say(f"(no estimates: cannot start the engine: {exc})")
        return None


def health_line(source) -> str:
    """Replay progress in one line: position, streams delivering, samples, gaps (the
    per-stream detail only with ``-v``, see :func:`health_details`)."""
    health = source.health()
    samples = sum(h.samples for h in health)
    gaps = sum(h.gaps for h in health)
    live = sum(1 for h in health if h.connected)
    return (f"  {source.position:7.1f} / {source.duration:.1f} s: {live}/{len(health)} streams, "
            f"{samples} samples, {gaps} gaps")


def health_details(source) -> list[str]:
    """One line per stream (``-v``)."""
    return [f"    {h.spec.subject} {h.spec.modality}: {h.samples} samples, "
            f"{h.effective_rate:.1f} Hz, {h.gaps} gaps, {h.status}" for h in source.health()]


HOLD_STALL_S = 10.0
"""A held replay is released when the engine has made no progress for this long (it may
be skipping windows of poor quality): a replay must always end."""


def _engine_lag_hold(source, hub, engine, progress_ts: dict[str, float]):
    """Back-pressure for as-fast-as-possible replay: hold the data while they run more than
    a window (plus slack) ahead of the engine's newest estimate, so every window is cut
    and estimated in order rather than skipped as stale. Only subjects with a stream the
    model uses count, and a hold without progress for :data:`HOLD_STALL_S` is let go."""
    lead_s = engine.window_s + 3.0 * engine.hop_s
    used = set(engine.modalities)
    stall = {"since": math.nan, "progress": -1.0}

    def hold() -> bool:
        subjects = [s for s in hub.subjects() if used & set(hub.modalities(s))]
        newest = max((b.last_timestamp for s in subjects for m in hub.modalities(s)
                      if (b := hub.buffer(s, m)) is not None and math.isfinite(b.last_timestamp)),
                     default=math.nan)
        if not math.isfinite(newest):
            return False
        behind = [progress_ts.get(s, source.to_clock(0.0)) for s in subjects]
        held = bool(behind) and newest - min(behind) > lead_s
        now = time.monotonic()
        progress = sum(progress_ts.values())
        if not held or progress != stall["progress"]:
            stall["since"], stall["progress"] = now, progress
            return held
        return now - stall["since"] < HOLD_STALL_S

    return hold


def _never() -> bool:
    return False


def _drain(engine) -> None:
    """Let the engine finish the windows the replay has already handed it (at most 2 min)."""
    from monitor.scoring import drain

    try:
        drain(engine, quiet_s=1.5, limit_s=120.0)
    except KeyboardInterrupt:
        _say("interrupted")


def _unusable(session, engine) -> str | None:
    """Why no estimate can come from ``session`` (no stream of a modality the model
    uses), or None."""
    from monitor.scoring import NothingToScoreError, check_scorable

    try:
        check_scorable(session, engine.modalities)
    except NothingToScoreError as exc:
        return str(exc)
    return None


def _score_offline(session, args: argparse.Namespace) -> int | None:
    """Speed 0: every window of the file through the offline engine, in order. None when
    no model can be loaded and no CSV was asked for: the caller replays the data alone."""
    from monitor.engine import Engine
    from monitor.estimate_csv import EstimateCSV
    from monitor.scoring import NothingToScoreError, check_scorable, score_session

    try:
        model = model_options(args)
        loaded = model.load()
    except Exception as exc:
        if not args.csv:
            return None
        _say(f"painmon replay: cannot score {session.path.name}: cannot load the model: {exc}")
        return 1
    try:
        check_scorable(session, loaded.estimator.modalities)
    except NothingToScoreError as exc:
        _say(f"painmon replay: {exc}")
        return 1

    def factory(hub):
        return Engine(hub, loaded.estimator, realtime=False, threads=model.threads)

    out = EstimateCSV(args.csv, session.recorded_at) if args.csv else None
    lock = threading.Lock()

    def on_estimate(est, t_s: float) -> None:
        if out is not None:
            out.write(est, t_s)
        else:
            with lock:
                _print_estimate_at(t_s, est)

    def on_marker(m, t_s: float) -> None:
        if out is None:
            with lock:
                _say(f"{t_s:8.1f} s  {m.subject:<10} event {shown_label(m.label)!r}")

    try:
        final = score_session(session, factory, on_estimate=on_estimate, on_marker=on_marker,
                              on_progress=lambda p: _say(p.line()), start_s=args.start)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    finally:
        if out is not None:
            out.close()
    if out is not None:
        _say(f"wrote {out.rows} estimates to {args.csv}")
    if not final.estimates:
        _say("painmon replay: no estimate (the file holds less than one window of usable signal)")
        return 1
    return 0


def _print_estimate_at(t: float, est) -> None:
    probs = " ".join(f"{name} {p:.2f}" for name, p in zip(("no", "low", "high"), est.probs, strict=True))
    missing = f"  missing {','.join(est.missing)}" if est.missing else ""
    _say(f"{t:8.1f} s  {est.subject:<10} {est.state:<11} {est.mode:<8} index {est.index:5.1f}  "
         f"smoothed {est.smoothed:5.1f}  [{probs}]  quality {est.quality_overall:.2f}{missing}")


def _run_headless(session, args: argparse.Namespace) -> int:
    if (args.speed == 0 or math.isinf(args.speed)) and args.record is None:  # --record: through the pipeline
        rc = _score_offline(session, args)
        if rc is not None:
            return rc
    from devices.replay import ReplaySource
    from monitor.pipeline import Pipeline

    pipeline = Pipeline()
    hub = pipeline.hub
    # the replay asks hold() only when as fast as possible, and only once started: by
    # then hold is the engine's back-pressure (or never holds without an engine)
    source = ReplaySource(session, speed=args.speed, loop=args.loop, hold=lambda: hold())
    if args.start:
        source.seek(args.start)
    try:
        engine = _make_engine(hub, args, realtime=not source.asap)
    except ModelRequired:
        return 1
    if engine is not None:
        problem = _unusable(session, engine)
        if problem:
            _say(f"painmon replay: {problem}")
            return 1
    lock = threading.Lock()
    progress_ts: dict[str, float] = {}  # newest estimate window end per subject
    hold = _engine_lag_hold(source, hub, engine, progress_ts) if engine is not None else _never

    def on_marker(m) -> None:
        with lock:
            _say(f"{source.from_clock(m.timestamp):8.1f} s  {m.subject:<10} event {shown_label(m.label)!r}")

    def on_estimate(est) -> None:
        with lock:
            progress_ts[est.subject] = max(est.t_end, progress_ts.get(est.subject, -math.inf))
            _print_estimate(source, est)

    hub.add_marker_listener(on_marker)
    pipeline.add_listener(on_estimate)
    pipeline.set_engine(engine)
    if args.record is not None:
        _say(f"recording to {pipeline.start_recording(args.record, on_error=_say)}")
    pipeline.add_source(source)

    def progress() -> None:
        with lock:
            _say(health_line(source))
            if getattr(args, "verbose", 0):
                for line in health_details(source):
                    _say(line)

    if engine is not None:
        engine.start(warmup=True)
        engine.wait_warm(60)
    pipeline.start()  # the engine is running already: this starts the replay
    try:
        _until_done(source, args.duration, progress)
        if engine is not None and source.finished.is_set():
            _drain(engine)
    finally:
        pipeline.stop()
    progress()
    if engine is not None:
        st = engine.stats()
        _say(f"done: {st.estimates} estimates, {st.windows_cut} windows, {st.skipped} skipped")
    return 0
