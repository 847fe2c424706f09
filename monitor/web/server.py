"""The ward web server: uvicorn running :func:`monitor.web.app.build_app` on its own thread
and event loop, inside the process that runs the pipeline (``painmon serve``, the dashboard).

Security rules, checked before anything listens (:func:`check_bind`):

* the default address is 127.0.0.1; any address other than a loopback one needs a token;
* the token comes from ``$PAINMON_HTTP_TOKEN`` or a file (never the command line, which
  ``ps`` shows to every user), and is never logged;
* TLS when a certificate and key are given;
* without a token the server is read-only (the POST routes answer 403).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import PainMonError
from monitor.ward import WardState
from monitor.web.app import Access, build_app

log = logging.getLogger(__name__)

TOKEN_ENV = "PAINMON_HTTP_TOKEN"
"""Where the API token comes from (or ``--http-token-file``)."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MIN_TOKEN = 16
"""Shortest token accepted (characters): a guessable token is no protection."""
MAX_REQUEST_LINE = 256 * 1024
"""Largest request head uvicorn reads (a 60 k-character subject id, percent-encoded, fits)."""


class WebServerError(PainMonError, ValueError):
    """The web server cannot start as asked (says why: address, token, certificate)."""


@dataclass(frozen=True)
class HttpOptions:
    """Where and how to serve (``--http HOST:PORT``, token, TLS)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __repr__(self) -> str:  # never the token
        return (f"HttpOptions(host={self.host!r}, port={self.port}, token={'set' if self.token else None}, "
                f"certfile={self.certfile!r}, keyfile={self.keyfile!r})")

    @property
    def tls(self) -> bool:
        return bool(self.certfile)


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT``, ``[v6]:PORT`` or ``HOST`` -> (host, port)."""
    text = text.strip()
    host, port = DEFAULT_HOST, str(DEFAULT_PORT)
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise WebServerError(f"bad address {text!r}: expected [IPv6]:PORT")
        host, port = addr, rest[1:] or port
    elif text.isdigit():
        port = text
    elif text.count(":") == 1:
        h, port = text.split(":")
        host = h or host
    elif ":" in text:
        raise WebServerError(f"bad address {text!r}: write IPv6 addresses as [ADDR]:PORT")
    elif text:
        host = text
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise WebServerError(f"bad port in {text!r}: expected 0-65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True when ``host`` only ever means this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def read_token(env: dict[str, str], token_file: str | None) -> str | None:
    """The token from ``token_file`` (first line) or ``$PAINMON_HTTP_TOKEN``; None when neither."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip().splitlines()[0:1]
        except OSError as exc:
            raise WebServerError(f"cannot read the token file {token_file}: {exc.strerror or exc}") from None
        if not token or not token[0].strip():
            raise WebServerError(f"the token file {token_file} is empty")
        return token[0].strip()
    value = env.get(TOKEN_ENV, "").strip()
    return value or None


def check_bind(options: HttpOptions) -> None:
    """Refuse what the security rules forbid (module docstring), with the reason."""
    if options.token is not None and len(options.token) < MIN_TOKEN:
        raise WebServerError(f"the HTTP token must be at least {MIN_TOKEN} characters")
    if not is_loopback(options.host) and not options.token:
        raise WebServerError(
            f"serving on {options.host} (beyond this machine) needs a token: set ${TOKEN_ENV} or --http-token-file"
        )
    if bool(options.certfile) != bool(options.keyfile):
        raise WebServerError("TLS needs both --http-cert and --http-key")
    for path in (options.certfile, options.keyfile):
        if path and not Path(path).is_file():
            raise WebServerError(f"TLS file {path} not found")


class WebServer:
    """uvicorn on a thread; :meth:`start` returns once it listens, :meth:`stop` within a second.

    Args:
        ward: the subjects' state the API and pages show.
        options: address, token, TLS.
        health: extra fields of ``/api/health`` (streams, engine).
        add_event: ``add_event(subject, label)`` stores a user event.
    """

    def __init__(self, ward: WardState, options: HttpOptions, *, health: Callable[[], dict[str, Any]] | None = None,
                 add_event: Callable[[str, str], Any] | None = None):
        check_bind(options)
        self.ward = ward
        self.options = options
        self._health = health
        self._add_event = add_event
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.port = options.port
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        host = self.options.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.options.tls else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> WebServer:
        import uvicorn

        o = self.options
        access = Access(o.token, reads_need_token=not is_loopback(o.host))
        # a socket bound here, so a port in use is an error now (and port 0 gets its number)
        family = socket.AF_INET6 if ":" in o.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((o.host, o.port))
        except OSError as exc:
            sock.close()
            raise WebServerError(f"cannot listen on {o.host}:{o.port}: {exc.strerror or exc}") from None
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._stopping = asyncio.Event()
            app = build_app(self.ward, access=access, health=self._health, add_event=self._add_event,
                            stopping=self._stopping)
            config = uvicorn.Config(
                app, log_level="warning", access_log=False, ssl_certfile=o.certfile, ssl_keyfile=o.keyfile,
                timeout_graceful_shutdown=2, h11_max_incomplete_event_size=MAX_REQUEST_LINE, lifespan="off",
                ws="none",
            )
            self._server = uvicorn.Server(config)
            ready.set()
            try:
                loop.run_until_complete(self._server.serve(sockets=[sock]))
            except BaseException as exc:  # reported by start()/stop(); the process keeps running
                self.error = exc
                log.error("web server stopped: %s", exc)
            finally:
                sock.close()
                loop.close()

        self._thread = threading.Thread(target=run, name="painmon-http", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        deadline = time.monotonic() + timeout
        while not (self._server is not None and self._server.started):
            if self.error is not None or not self._thread.is_alive():
                raise WebServerError(f"web server failed to start: {self.error}")
            if time.monotonic() > deadline:
                self.stop()
                raise WebServerError("web server did not start in time")
            time.sleep(0.02)
        log.info("ward page on %s (%s)", self.url,
                 "read-only" if not o.token else "token set: acknowledging and events enabled")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close live feeds and connections, then the thread."""
        server, loop = self._server, self._loop
        if server is not None and loop is not None and not loop.is_closed():
            server.should_exit = True
            stopping = self._stopping
            if stopping is not None:
                try:
                    loop.call_soon_threadsafe(stopping.set)
                except RuntimeError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """:meth:`stop` (so the server can be a pipeline helper or output)."""
        self.stop()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
