"""``painmon serve``: the engine without a GUI, for many subjects (a ward, a lab).

Inputs from LSL and/or MQTT, estimates out on LSL and/or MQTT, a health line every few
seconds, and a clean stop (sources, engine, outlets closed; exit code 0) on SIGINT or
SIGTERM, so a service manager or container runtime can stop it gracefully. With
``--shard K/N`` several instances behind one broker split the subjects between them by a
stable hash of the subject id (see :mod:`monitor.engine.sharding`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.options import (
    add_broker_options,
    add_ingest_options,
    add_lsl_options,
    add_model_options,
    add_record_option,
    broker_config,
    ingest_limits,
    lsl_source,
    model_options,
    startup_error,
    wants_lsl,
)

if TYPE_CHECKING:
    from devices.source import Source
    from monitor.alarms import AlarmMonitor
    from monitor.web import WebServer

log = logging.getLogger("painmon.serve")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon serve`` and its input, output and model options to the command line."""
    p = sub.add_parser(
        "serve",
        help="run the engine headless: LSL/MQTT in, estimates out on LSL/MQTT",
        description="Headless pain estimation for many subjects. Stop with Ctrl+C or SIGTERM.",
    )
    src = p.add_argument_group("inputs")
    add_lsl_options(src, help="take signals from LSL streams on the network (any known modality)")
    add_broker_options(p, address_group=src, help="take signals from this MQTT broker")
    add_ingest_options(p)
    out = p.add_argument_group("outputs")
    out.add_argument("--publish", action="append", choices=("lsl", "mqtt"), default=None,
                     help="where estimates go (repeatable; default: lsl, plus mqtt when --mqtt is given)")
    eng = p.add_argument_group("engine")
    eng.add_argument("--shard", default="1/1", metavar="K/N", help="serve only share K of N of the subjects")
    eng.add_argument("--window", type=float, default=None, metavar="SEC", help="window length (default: the model's)")
    eng.add_argument("--hop", type=float, default=1.0, metavar="SEC", help="time between estimates (default 1)")
    add_model_options(p)
    add_record_option(p)
    p.add_argument("--duration", type=float, default=None, metavar="SEC", help="stop after this many seconds")
    p.add_argument("--health-every", type=float, default=5.0, metavar="SEC", help="health log interval (default 5)")
    from monitor.web import add_http_options

    add_http_options(p)  # --alarms, --http (ward page and API)
    p.set_defaults(func=run)


def _not_positive(args: argparse.Namespace) -> str | None:
    """The first numeric option that is set but not positive, as an error message."""
    for value, what in ((args.window, "--window"), (args.hop, "--hop"), (args.duration, "--duration"),
                        (args.health_every, "--health-every"), (args.threads, "--threads")):
        if value is not None and not value > 0:
            return f"{what} must be positive, got {value}"
    return None


def run(args: argparse.Namespace) -> int:
    """Run the headless service until Ctrl+C or SIGTERM; 2 when no input is given or an option is invalid."""
    from monitor.engine.sharding import Shard

    log.setLevel(logging.INFO)  # health lines are the point of a service, even without -v
    if not wants_lsl(args) and not args.mqtt:
        print("painmon serve: give at least one input: --lsl and/or --mqtt URL")
        return 2
    try:
        shard = Shard.parse(args.shard)
    except ValueError as exc:
        print(f"painmon serve: {exc}")
        return 2
    problem = _not_positive(args)
    if problem:
        print(f"painmon serve: {problem}")
        return 2
    try:  # broker settings and limits are checked before anything starts
        broker_config(args, ingest=True)
        ingest_limits(args)
    except ValueError as exc:  # MQTTConfigError is one: one line, never a secret
        print(f"painmon serve: {exc}")
        return 2
    publish = set(args.publish or (["lsl"] + (["mqtt"] if args.mqtt else [])))
    if "mqtt" in publish and not args.mqtt:
        print("painmon serve: --publish mqtt needs --mqtt URL")
        return 2

    from core.errors import PainMonError
    from monitor.web import ward_options

    try:
        ward = ward_options(args)
    except PainMonError as exc:
        print(f"painmon serve: {exc}")
        return 2

    stop = threading.Event()
    _install_signal_handlers(stop)
    service = Service(args, shard, publish, ward)
    try:
        service.start()
    except Exception as exc:  # bad model path, broker unreachable, ...: say why, exit non-zero
        log.error("%s", startup_error(exc))
        service.stop()
        return 1
    try:
        failure = service.run_until(stop, args.duration, args.health_every)
    finally:
        service.stop()
    if failure:
        log.error("%s", failure)
        return 1
    log.info("stopped cleanly")
    return 0


def _install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum, _frame):
        name = signal.Signals(signum).name
        if stop.is_set():  # a second signal: the user does not want to wait for a clean stop
            log.warning("received %s again: exiting at once", name)
            os._exit(128 + signum)
        log.info("received %s: stopping (send it again to exit at once)", name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


class Service:
    """A :class:`monitor.pipeline.Pipeline` of the requested inputs, the engine and the
    estimate outputs, started and stopped together."""

    def __init__(self, args: argparse.Namespace, shard: Callable[[str], bool], publish: set[str],
                 ward: tuple = (None, None)):
        from monitor.pipeline import Pipeline

        self.args = args
        self.shard = shard
        self.publish = publish
        self.pipeline = Pipeline()
        self.origin = f"{socket.gethostname()}:{os.getpid()} shard {args.shard}"
        self.alarm_config, self.http = ward
        self.alarms: AlarmMonitor | None = None
        self.web: WebServer | None = None

    @property
    def engine(self):
        return self.pipeline.engine

    def start(self) -> None:
        """Load the model, then start the engine, the outputs and the inputs, in that order."""
        from monitor.engine import Engine

        a = self.args
        model = model_options(a)
        estimator = model.load().estimator
        engine = Engine(self.pipeline.hub, estimator, window_s=a.window, hop_s=a.hop, subjects=self.shard,
                        threads=model.threads)
        log.info(
            "model %s on %s, window %.1f s, hop %.1f s, shard %s",
            engine.model_name, engine.estimator.device, engine.window_s, engine.hop_s, a.shard,
        )
        self.pipeline.set_engine(engine)
        if "lsl" in self.publish:
            from monitor.outputs import LSLEstimateOutlets

            self.pipeline.add_output(LSLEstimateOutlets(model_name=engine.model_name))
        mqtt_out = None
        if "mqtt" in self.publish:
            from monitor.outputs import MQTTEstimatePublisher

            mqtt_out = MQTTEstimatePublisher.connect(broker_config(a), origin=self.origin)
            self.pipeline.add_output(mqtt_out)
        from monitor.alarms import attach_alarms

        self.alarms = attach_alarms(self.pipeline, self.alarm_config, lsl="lsl" in self.publish,
                                    mqtt=mqtt_out.publisher if mqtt_out else None, prefix=a.mqtt_prefix,
                                    origin=self.origin)
        if getattr(a, "record", None) is not None:  # before the sources: from the first sample on
            path = self.pipeline.start_recording(a.record, on_error=lambda message: log.error("%s", message))
            log.info("recording to %s", path)
        for source in self._make_sources():
            self.pipeline.add_source(source)
            log.info("input: %s", source.describe())
        self.pipeline.start(warmup=True)
        if self.http is not None:
            from monitor.ward import Instance
            from monitor.web import start_ward_server

            self.web = start_ward_server(self.pipeline, self.http, self.alarms, Instance.here(a.shard))
            log.info("ward page on %s/ (%s)", self.web.url, "read-only" if not self.http.token else "token set")

    def _make_sources(self) -> list[Source]:
        a = self.args
        sources: list[Source] = []
        if wants_lsl(a):
            sources.append(lsl_source(a, subjects=self.shard))
        config = broker_config(a)
        if config is not None:
            from devices.mqtt import MQTTSource

            mqtt_config = broker_config(a, ingest=True)
            assert mqtt_config is not None
            sources.append(MQTTSource(mqtt_config, subjects=self.shard, limits=ingest_limits(a)))
        return sources

    def run_until(self, stop: threading.Event, duration: float | None, every: float) -> str | None:
        """Log health every ``every`` s until ``stop``, ``duration`` or a fatal broker
        refusal; returns that refusal (one line) or None."""
        t_end = time.monotonic() + duration if duration else float("inf")
        next_health = time.monotonic() + every
        while not stop.is_set():
            now = time.monotonic()
            if now >= t_end:
                log.info("duration reached")
                break
            stop.wait(min(next_health, t_end, now + 0.5) - now)
            failure = self.broker_failure()
            if failure:
                return failure
            if time.monotonic() >= next_health:
                self.log_health()
                next_health += every
        return None

    def broker_failure(self) -> str | None:
        """The broker refused us for good (credentials, certificate): why, else None."""
        for link, error, _ in self.broker_links():
            if link == "failed":
                return f"broker refused the connection: {error}"
        return None

    def broker_links(self) -> list[tuple[str, str, float]]:
        """``(link, last error, since)`` of every MQTT client (ingest and estimate output)."""
        from devices.mqtt import MQTTSource
        from monitor.outputs import MQTTEstimatePublisher

        links = []
        for source in self.pipeline.sources:
            if isinstance(source, MQTTSource):
                status = source.status()
                links.append((status.link, status.last_error, status.link_since))
        for output in self.pipeline.outputs:
            stats = output.broker_stats() if isinstance(output, MQTTEstimatePublisher) else None
            if stats is not None:
                links.append((stats.link, stats.last_error, stats.link_since))
        return links

    def broker_state(self) -> str:
        """``broker connected``, ``broker unreachable since HH:MM:SS`` or "" without MQTT."""
        links = self.broker_links()
        if not links:
            return ""
        down = [since for link, _, since in links if link != "connected"]
        if not down:
            return "broker connected"
        return "broker unreachable since " + time.strftime("%H:%M:%S", time.localtime(min(down)))

    def log_health(self) -> None:
        health = self.pipeline.health()
        st = health.engine
        if st is None:
            return
        broker = self.broker_state()
        log.info("%s%s", health_line(health), f", {broker}" if broker else "")

    def stop(self) -> None:
        """Inputs, engine, outputs, in that order (:meth:`monitor.pipeline.Pipeline.stop`)."""
        self.pipeline.stop()


def health_line(health) -> str:
    """The service's periodic health line: subjects, streams, estimates, latency, errors,
    and what the machine sustains ("capacity 3 subjects at 1 Hz (24.1 images/s)", or
    "degraded: hop 2.0 s for all 5 subjects" when the load lengthens every hop)."""
    from monitor.engine.capacity import rate_text

    st = health.engine
    lat = st.last_latency.get("total", float("nan"))
    text = (f"health: {st.subjects} subjects, streams {health.connected}/{len(health.streams)} connected, "
            f"{st.estimates} estimates, {st.skipped} skipped, queue {st.queue_depth}, "
            f"latency {lat * 1e3:.0f} ms (mean {st.mean_total_latency * 1e3:.0f} ms), errors {st.errors}")
    if st.capacity_subjects is not None:
        text += (f", capacity {st.capacity_subjects} at {rate_text(st.configured_hop_s)} "
                 f"({st.images_per_s:.1f} images/s)")
    if st.degraded:
        text += f", {st.load_text}"
    return text + ("" if st.warm else ", warming up")
