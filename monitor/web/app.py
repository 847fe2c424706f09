"""The ward web application (Starlette): pages, JSON API, live feed.

Routes (the OpenAPI document, :mod:`monitor.web.openapi`, at ``/openapi.json``):

* ``/`` the ward page, ``/subject?id=…`` a subject's page, ``/static/…`` their files
  (plain HTML/JS/CSS shipped in the package; no CDN, no build step);
* ``GET /api/subjects``, ``/api/subjects/{id}``, ``/api/subjects/{id}/estimates?since=&limit=``,
  ``/api/health``; ``GET /api/stream``: server-sent events (``estimate``, ``alarm``);
* ``POST /api/subjects/{id}/alarms/{alarm_id}/ack`` and ``POST /api/subjects/{id}/events``.

Access (:class:`Access`): the POST routes work only when a token is configured and need
``Authorization: Bearer <token>`` (reads say ``read_only`` so the pages can offer the
Acknowledge button only where it can work); a server bound beyond the loopback interface also wants
the token for every ``/api`` read (the pages themselves hold no data). Tokens are compared
in constant time and never logged. Every response carries a strict Content-Security-Policy
(scripts only from this server, no inline script), so a hostile subject id could not run
even if a page forgot to escape it; the pages write data with ``textContent`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.ward import WardState

MAX_LABEL = 200
"""Longest event label accepted (characters)."""
MAX_BY = 100
"""Longest acknowledger name accepted."""
MAX_BODY = 16 * 1024
"""Largest POST body read (bytes)."""
FEED_QUEUE = 2000
"""Live-feed messages buffered per client; a client that falls further behind loses the oldest."""
KEEPALIVE_S = 15.0
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class Access:
    """Who may do what (see the module docstring)."""

    token: str | None = None
    reads_need_token: bool = False

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        return f"Access(token={'set' if self.token else None}, reads_need_token={self.reads_need_token})"

    def allowed(self, request: Request) -> bool:
        if not self.token:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _json(data: Any) -> Response:
    body = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return Response(body, media_type="application/json")


def static_dir() -> str:
    """The package's static files (pages, scripts, styles)."""
    return str(resources.files("monitor.web") / "static")


def build_app(
    ward: WardState,
    *,
    access: Access | None = None,
    health: Callable[[], dict[str, Any]] | None = None,
    add_event: Callable[[str, str], Any] | None = None,
    stopping: asyncio.Event | None = None,
) -> Starlette:
    """The application over ``ward``.

    Args:
        ward: the subjects' state.
        access: token and policy (default: no token, read-only, loopback rules).
        health: returns ``/api/health``'s extra fields (the pipeline's streams and engine).
        add_event: ``add_event(subject, label)`` stores a user event (hub marker).
        stopping: set when the server shuts down (ends live feeds at once).
    """
    access = access or Access()
    static = static_dir()

    def guard_read(request: Request) -> Response | None:
        if access.reads_need_token and not access.allowed(request):
            return _error(401, "this server needs the bearer token for every API request")
        return None

    def guard_write(request: Request) -> Response | None:
        if not access.token:
            return _error(403, "read-only: start the server with a token to allow this")
        if not access.allowed(request):
            return _error(401, "missing or wrong bearer token")
        return None

    def known(subject: str) -> Response | None:
        return None if subject in ward else _error(404, "no such subject")

    async def ward_page(_request: Request) -> Response:
        return FileResponse(f"{static}/ward.html")

    async def subject_page(_request: Request) -> Response:
        return FileResponse(f"{static}/subject.html")

    async def openapi(_request: Request) -> Response:
        from monitor.web.openapi import openapi_schema

        return _json(openapi_schema())

    async def subjects(request: Request) -> Response:
        if (denied := guard_read(request)) is not None:
            return denied
        return _json({"instance": ward.instance.to_dict(), "subjects": ward.tiles(), "read_only": not access.token})

    async def subject(request: Request) -> Response:
        if (denied := guard_read(request)) is not None:
            return denied
        sid = request.path_params["subject"]
        if (missing := known(sid)) is not None:
            return missing
        data = ward.tile(sid)
        latest = ward.latest(sid)
        data["latest"] = ward.estimate_dict(latest) if latest is not None else None
        data["alarm_history"] = ward.alarm_history(sid)
        data["read_only"] = not access.token
        return _json(data)

    async def estimates(request: Request) -> Response:
        if (denied := guard_read(request)) is not None:
            return denied
        sid = request.path_params["subject"]
        if (missing := known(sid)) is not None:
            return missing
        try:
            since = float(request.query_params.get("since", "-inf"))
            limit = int(request.query_params.get("limit", "500"))
        except ValueError:
            return _error(400, "since must be a number and limit an integer")
        if math.isnan(since) or limit < 1:
            return _error(400, "since must be a number and limit at least 1")
        page, more = ward.estimates(sid, since, limit)
        return _json({"estimates": [ward.estimate_dict(e) for e in page],
                      "next": page[-1].t_end if more and page else None})

    async def health_route(request: Request) -> Response:
        if (denied := guard_read(request)) is not None:
            return denied
        data: dict[str, Any] = {"instance": ward.instance.to_dict(), "subjects": len(ward.subjects()),
                                "read_only": not access.token}
        if health is not None:
            data.update(health())
        return _json(data)

    async def body(request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not JSON")
        return data if isinstance(data, dict) else _error(400, "body must be a JSON object")

    async def acknowledge(request: Request) -> Response:
        if (denied := guard_write(request)) is not None:
            return denied
        sid = request.path_params["subject"]
        if (missing := known(sid)) is not None:
            return missing
        data = await body(request)
        if isinstance(data, Response):
            return data
        by = data.get("by", "")
        if not isinstance(by, str) or len(by) > MAX_BY:
            return _error(400, f"by must be text of at most {MAX_BY} characters")
        if ward.alarms is None:
            return _error(404, "no alarms on this instance")
        alarm_id = request.path_params["alarm_id"]
        if not any(a.alarm_id == alarm_id for a in ward.alarms.active(sid)):
            return _error(404, "no such active alarm")
        event = ward.alarms.acknowledge(sid, alarm_id, by=by or "web")
        if event is None:
            return _error(409, "alarm is not raised (already acknowledged or cleared)")
        from monitor.alarms import alarm_to_dict

        return _json(alarm_to_dict(event, ward.instance.label))

    async def add_event_route(request: Request) -> Response:
        if (denied := guard_write(request)) is not None:
            return denied
        sid = request.path_params["subject"]
        if (missing := known(sid)) is not None:
            return missing
        if add_event is None:
            return _error(404, "events cannot be added on this instance")
        data = await body(request)
        if isinstance(data, Response):
            return data
        label = data.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
            return _error(400, f"label must be non-empty text of at most {MAX_LABEL} characters")
        add_event(sid, label.strip())
        return _json({"subject": sid, "label": label.strip()})

    async def stream(request: Request) -> Response:
        if (denied := guard_read(request)) is not None:
            return denied
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(FEED_QUEUE)

        def put(item: tuple[str, dict[str, Any]]) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)

        def listener(kind: str, payload: dict[str, Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is gone
                loop.call_soon_threadsafe(put, (kind, payload))

        async def events() -> AsyncIterator[str]:
            ward.add_listener(listener)
            try:
                yield "retry: 2000\n\n"
                last = time.monotonic()
                while stopping is None or not stopping.is_set():
                    try:
                        kind, payload = await asyncio.wait_for(queue.get(), 1.0)
                    except TimeoutError:
                        if time.monotonic() - last > KEEPALIVE_S:
                            last = time.monotonic()
                            yield ": keepalive\n\n"
                        continue
                    last = time.monotonic()
                    data = json.dumps(payload, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
                    yield f"event: {kind}\ndata: {data}\n\n"
            finally:
                ward.remove_listener(listener)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    routes = [
        Route("/", ward_page),
        Route("/subject", subject_page),
        Route("/openapi.json", openapi),
        Route("/api/subjects", subjects),
        Route("/api/health", health_route),
        Route("/api/stream", stream),
        Route("/api/subjects/{subject:path}/estimates", estimates),
        Route("/api/subjects/{subject:path}/alarms/{alarm_id:int}/ack", acknowledge, methods=["POST"]),
        Route("/api/subjects/{subject:path}/events", add_event_route, methods=["POST"]),
        Route("/api/subjects/{subject:path}", subject),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


class SecurityHeaders:
    """ASGI middleware adding the CSP and friends to every HTTP response (streams included)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if api and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
