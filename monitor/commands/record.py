"""``painmon record FILE.xdf``: record LSL and/or MQTT streams to XDF, headless.

What LabRecorder's command line does, for the streams PainMon understands: biosignals of a
known modality (EDA, BVP, RESP, SpO2, ...) and marker streams, from LSL
(``--lsl``, narrowed by ``--lsl-type`` / ``--lsl-name``) and/or an MQTT broker (``--mqtt``
and the shared broker options). It is a :class:`monitor.pipeline.Pipeline` without an
engine: sources -> hub -> recorder, so the file is the same as the dashboard's recordings
and replays and trains alike. Each stream is printed when it first arrives; SIGINT or
SIGTERM (or ``--duration``) stops it cleanly: sources first, then the file is finished.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

from monitor.options import (
    add_broker_options,
    add_ingest_options,
    add_lsl_options,
    broker_config,
    ingest_limits,
    lsl_source,
    record_path,
    wants_lsl,
)

if TYPE_CHECKING:
    from devices.source import Source

log = logging.getLogger("painmon.record")

STATUS_EVERY_S = 10.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon record`` and its source options to the command line."""
    p = sub.add_parser(
        "record",
        help="record LSL and/or MQTT streams to an XDF file, headless (like LabRecorder's CLI)",
        description="Record biosignals and markers from LSL and/or an MQTT broker to a new "
        "XDF file, without the dashboard. Stop with Ctrl+C or SIGTERM (the file is finished cleanly), "
        "or give --duration. Streams of unknown type (e.g. EEG) are not recorded: use LabRecorder for those.",
    )
    p.add_argument("file", type=record_path, metavar="FILE.xdf", help="the new XDF file (never overwritten)")
    src = p.add_argument_group("inputs")
    add_lsl_options(src, help="record LSL streams on the network")
    add_broker_options(p, address_group=src, help="record the streams published on this MQTT broker")
    add_ingest_options(p)
    p.add_argument("--duration", type=float, default=None, metavar="SEC",
                   help="stop after SEC seconds (default: until Ctrl+C / SIGTERM)")
    p.add_argument("--status-every", type=float, default=STATUS_EVERY_S, metavar="SEC",
                   help=f"print a one-line status every SEC seconds (default {STATUS_EVERY_S:g}; 0: never)")
    p.set_defaults(func=run)


def _say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    """Record until the duration, SIGINT or SIGTERM; exit 0, or 1 when the recording failed."""
    lsl = wants_lsl(args)
    if not lsl and not args.mqtt:
        _say("painmon record: give at least one input: --lsl (--lsl-type, --lsl-name) and/or --mqtt URL")
        return 2
    if args.duration is not None and not args.duration > 0:
        _say(f"painmon record: --duration must be positive, got {args.duration}")
        return 2
    if args.status_every < 0:
        _say(f"painmon record: --status-every must be >= 0, got {args.status_every}")
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return Recording(args, lsl).run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Recording:
    """The sources the options name, a hub and a recorder; started, watched and stopped."""

    def __init__(self, args: argparse.Namespace, lsl: bool) -> None:
        from monitor.pipeline import Pipeline

        self.args = args
        self.lsl = lsl
        self.pipeline = Pipeline()
        self.announced: set[tuple[str, str]] = set()
        self.failed: str | None = None

    def sources(self) -> list[Source]:
        a = self.args
        out: list[Source] = []
        if self.lsl:
            out.append(lsl_source(a))
        config = broker_config(a, ingest=True)
        if config is not None:
            from devices.mqtt import MQTTSource

            out.append(MQTTSource(config, limits=ingest_limits(a)))
        return out

    def _on_error(self, message: str) -> None:
        self.failed = message
        _say(f"painmon record: error: {message}")

    def run(self, stop: threading.Event) -> int:
        a = self.args
        pipeline = self.pipeline
        path = pipeline.start_recording(a.file, on_error=self._on_error)
        for source in self.sources():
            pipeline.add_source(source)
        try:
            pipeline.start()
        except Exception:
            pipeline.stop()
            raise
        _say(f"recording to {path} from {', '.join(s.describe() for s in pipeline.sources)}; Ctrl+C to stop")
        t0 = time.monotonic()
        next_status = t0 + a.status_every if a.status_every else float("inf")
        try:
            while not stop.wait(0.25):
                self.announce_new_streams()
                now = time.monotonic()
                if self.failed is not None:
                    break
                if a.duration is not None and now - t0 >= a.duration:
                    break
                if now >= next_status:
                    _say(self.status_line(now - t0))
                    next_status += a.status_every
        finally:
            self.announce_new_streams()
            recorder = pipeline.recorder
            pipeline.stop()  # sources first, then the file is finished
        stats = recorder.stats() if recorder is not None else None
        if stats is not None:
            total = sum(stats.samples_written.values())
            _say(f"stopped: {stats.streams} streams, {total} samples in {path}")
            for name, n in sorted(stats.samples_written.items()):
                _say(f"  {name:<28} {n:>9}")
        return 1 if self.failed is not None else 0

    def announce_new_streams(self) -> None:
        """Print each stream the first time it delivers (what is being recorded)."""
        hub = self.pipeline.hub
        for spec in hub.specs():
            if spec.key in self.announced:
                continue
            self.announced.add(spec.key)
            rate = f"{spec.nominal_rate:g} Hz" if spec.nominal_rate > 0 else "irregular"
            _say(f"  + {spec.subject:<12} {spec.modality:<10} {rate:<10} {spec.n_channels} ch  [{spec.name}]")

    def status_line(self, elapsed: float) -> str:
        recorder = self.pipeline.recorder
        stats = recorder.stats() if recorder is not None else None
        if stats is None:
            return f"{elapsed:7.0f} s  not recording"
        health = self.pipeline.stream_health()
        live = sum(1 for h in health if h.connected)
        sources = "; ".join(s.describe() for s in self.pipeline.sources)
        return (f"{elapsed:7.0f} s  {stats.streams} streams in the file, {sum(stats.samples_written.values())} "
                f"samples, {live}/{len(health)} delivering  ({sources})")
