"""The ward's command-line options (``--http``, token file, TLS, ``--alarms``) and the one
call that mounts alarms and the web server on a running pipeline (:func:`start_ward_server`),
shared by ``painmon serve`` and the dashboard."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from monitor.web.server import TOKEN_ENV, HttpOptions, WebServer, WebServerError, parse_hostport, read_token

if TYPE_CHECKING:
    from core.alarms import AlarmConfig
    from monitor.alarms import AlarmMonitor
    from monitor.pipeline import Pipeline
    from monitor.ward import Instance, WardState


def add_http_options(parser: argparse.ArgumentParser) -> None:
    """``--alarms FILE`` and the group "ward web server": ``--http``, ``--http-token-file``,
    ``--http-cert``, ``--http-key``."""
    parser.add_argument("--alarms", default=None, metavar="FILE",
                        help="alarm rules (TOML or JSON; default: the documented defaults, README 'Ward')")
    group = parser.add_argument_group("ward web server")
    group.add_argument("--http", default=None, metavar="HOST:PORT",
                       help="serve the ward page and API here (HOST defaults to 127.0.0.1; any other address "
                       f"needs a token from ${TOKEN_ENV} or --http-token-file)")
    group.add_argument("--http-token-file", default=None, metavar="FILE",
                       help=f"API token (first line; instead of ${TOKEN_ENV}); enables acknowledging and events")
    group.add_argument("--http-cert", default=None, metavar="PEM", help="TLS certificate (with --http-key)")
    group.add_argument("--http-key", default=None, metavar="PEM", help="TLS private key (with --http-cert)")


def http_options(args: argparse.Namespace, env: dict[str, str] | None = None) -> HttpOptions | None:
    """The parsed options as :class:`HttpOptions` (None without ``--http``); raises
    :class:`WebServerError` with the reason."""
    if not getattr(args, "http", None):
        return None
    host, port = parse_hostport(args.http)
    token = read_token(dict(os.environ) if env is None else env, args.http_token_file)
    options = HttpOptions(host, port, token, args.http_cert, args.http_key)
    from monitor.web.server import check_bind

    check_bind(options)
    return options


def ward_options(args: argparse.Namespace) -> tuple[AlarmConfig | None, HttpOptions | None]:
    """``--alarms`` read and ``--http`` checked, before anything starts: raises
    :class:`core.alarms.AlarmConfigError` or :class:`WebServerError` with the reason."""
    from core.alarms import load_alarm_config

    config = load_alarm_config(args.alarms) if getattr(args, "alarms", None) else None
    return config, http_options(args)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def pipeline_health(pipeline: Pipeline) -> dict[str, Any]:
    """``/api/health``'s streams, engine and recording, JSON-ready."""
    h = pipeline.health()
    return {
        "streams": [
            {"subject": s.spec.subject, "modality": s.spec.modality, "connected": s.connected,
             "status": s.status, "effective_rate": _plain(s.effective_rate), "samples": s.samples}
            for s in h.streams
        ],
        "engine": _plain(asdict(h.engine)) if h.engine is not None else None,
        "recording": str(h.recording) if h.recording else None,
    }


def event_label(text: str) -> str:
    """A user's event text as a marker label (``note:<text>`` unless already ``user:``/``note:``)."""
    return text if text.startswith(("user:", "note:")) else f"note:{text}"


def start_ward_server(pipeline: Pipeline, options: HttpOptions, alarms: AlarmMonitor | None,
                      instance: Instance | None = None, ward: WardState | None = None) -> WebServer:
    """Listen on ``options`` with a :class:`monitor.ward.WardState` fed by ``pipeline`` (a
    new one unless ``ward`` is given); the server stops with the pipeline (helper)."""
    from core import clock
    from monitor.ward import WardState

    if ward is None:
        ward = WardState(instance=instance, alarms=alarms, hub=pipeline.hub, health=pipeline.stream_health)
        pipeline.add_listener(ward.on_estimate)

    def add_event(subject: str, text: str) -> None:
        pipeline.hub.push_markers(subject, [event_label(text)], [clock.now()], source="user")

    server = WebServer(ward, options, health=lambda: pipeline_health(pipeline), add_event=add_event)
    server.start()
    pipeline.add_helper(server)
    return server


def apply_ward(pipeline: Pipeline, alarms: AlarmMonitor, ward: WardState, config: AlarmConfig | None,
               http: HttpOptions | None) -> WebServer | None:
    """The dashboard's ``--alarms`` and ``--http``: its alarm monitor takes ``config`` and,
    with ``http``, a web server shows its ward state (stopped with its pipeline)."""
    if config is not None:
        alarms.machine.config = config
    if http is None:
        return None
    return start_ward_server(pipeline, http, alarms, ward=ward)


__all__ = ["WebServerError", "apply_ward", "add_http_options", "http_options", "pipeline_health", "start_ward_server",
           "ward_options"]
