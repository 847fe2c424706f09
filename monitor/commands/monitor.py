"""``painmon monitor``: the dashboard on LSL streams, an MQTT broker or a recording."""

from __future__ import annotations

import argparse
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
    wants_lsl,
)

if TYPE_CHECKING:
    from devices.source import Source


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon monitor`` and its source options (LSL, MQTT, recording) to the command line."""
    p = sub.add_parser(
        "monitor",
        help="open the dashboard (LSL streams, MQTT broker or a recording)",
        description="Opens the PainMon dashboard. Without options it starts empty: use File > Connect.",
    )
    add_lsl_options(p, help="follow every LSL stream of a known modality (never PainMon's own estimate, "
                    "alarm or self-report outputs)")
    add_broker_options(p, help="MQTT broker to subscribe to")
    add_ingest_options(p)
    p.add_argument("--replay", default=None, metavar="FILE", help="replay an XDF / PainMon recording")
    add_model_options(p)
    add_record_option(p)
    p.add_argument("--duration", type=float, default=None, metavar="SEC", help="quit after SEC seconds")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="save the window to PNG before quitting")
    from monitor.web import add_http_options

    add_http_options(p)  # --alarms, --http (the ward page of this dashboard's subjects)
    p.set_defaults(func=run)


def build_sources(args: argparse.Namespace) -> list[Source]:
    """The sources the options ask for (not started)."""
    sources: list[Source] = []
    if wants_lsl(args):
        sources.append(lsl_source(args))
    config = broker_config(args, ingest=True)
    if config is not None:
        from devices.mqtt import MQTTSource

        sources.append(MQTTSource(config, limits=ingest_limits(args)))
    return sources


def run(args: argparse.Namespace) -> int:
    """Open the dashboard on the sources the options name (or empty); 2 for invalid options."""
    from pathlib import Path

    if args.replay is not None and not Path(args.replay).is_file():
        print(f"painmon monitor: recording {args.replay} not found")
        return 2
    if args.screenshot is not None and args.duration is None:
        print("painmon monitor: --screenshot needs --duration (the screenshot is taken before quitting)")
        return 2
    from core.errors import PainMonError
    from monitor.web import ward_options

    try:
        ward = ward_options(args)
        sources = build_sources(args)
    except (ValueError, PainMonError) as exc:
        print(f"painmon monitor: {exc}")
        return 2
    from monitor.gui.app import run_monitor

    return run_monitor(
        sources=sources, replay_path=args.replay, model=model_options(args),
        duration=args.duration, screenshot=args.screenshot, record=args.record, ward=ward,
    )
