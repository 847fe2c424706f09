"""``painmon monitor``: the dashboard on LSL streams, an MQTT broker or a recording."""

from __future__ import annotations

import argparse


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` -> (host, port); port defaults to 1883."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 1883
    if not host:
        raise argparse.ArgumentTypeError(f"broker {text!r} has no host")
    try:
        value = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"broker port {port!r} is not a number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"broker port {value} outside 1..65535")
    return host, value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="open the dashboard (LSL streams, MQTT broker or a recording)",
        description="Opens the PainMon dashboard. Without options it starts empty: use File > Connect.",
    )
    p.add_argument("--lsl", action="store_true", help="follow every LSL stream of a known modality")
    p.add_argument("--lsl-type", default=None, help="only LSL streams of this type")
    p.add_argument("--lsl-name", default=None, help="only LSL streams of this name")
    p.add_argument("--subject", default=None, help="subject id for LSL streams that carry none")
    p.add_argument("--mqtt", type=parse_broker, default=None, metavar="HOST:PORT", help="MQTT broker to subscribe to")
    p.add_argument("--mqtt-prefix", default="painmon", help="MQTT topic prefix (default painmon)")
    p.add_argument("--mqtt-tls", action="store_true", help="connect to the broker with TLS")
    p.add_argument("--mqtt-user", default=None, help="MQTT user name (password from $PAINMON_MQTT_PASSWORD)")
    p.add_argument("--replay", default=None, metavar="FILE", help="replay an XDF / PainMon recording")
    p.add_argument("--model", default=None, metavar="PATH", help="PainMon model file (default: bundled)")
    p.add_argument("--device", default=None, help="compute device: auto, cpu, cuda, mps (default: from settings, auto)")
    p.add_argument("--duration", type=float, default=None, metavar="SEC", help="quit after SEC seconds")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="save the window to PNG before quitting")
    p.set_defaults(func=run)


def build_sources(args: argparse.Namespace) -> list:
    """The sources the options ask for (not started)."""
    import os

    sources = []
    if args.lsl or args.lsl_type or args.lsl_name:
        from devices.lsl import LSLSource

        sources.append(LSLSource(name=args.lsl_name, stream_type=args.lsl_type, subject=args.subject))
    if args.mqtt is not None:
        from devices.mqtt import MQTTConfig, MQTTSource

        host, port = args.mqtt
        password = os.environ.get("PAINMON_MQTT_PASSWORD") if args.mqtt_user else None
        config = MQTTConfig(host=host, port=port, prefix=args.mqtt_prefix, tls=args.mqtt_tls,
                            username=args.mqtt_user, password=password)
        sources.append(MQTTSource(config))
    return sources


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.replay is not None and not Path(args.replay).is_file():
        print(f"painmon monitor: recording {args.replay} not found")
        return 2
    if args.screenshot is not None and args.duration is None:
        print("painmon monitor: --screenshot needs --duration (the screenshot is taken before quitting)")
        return 2
    try:
        sources = build_sources(args)
    except ValueError as exc:
        print(f"painmon monitor: {exc}")
        return 2
    from monitor.gui.app import run_monitor

    return run_monitor(
        sources=sources, replay_path=args.replay, model_path=args.model, device=args.device,
        duration=args.duration, screenshot=args.screenshot,
    )
