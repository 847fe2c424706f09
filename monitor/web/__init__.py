"""The ward in a browser: a small async web server (Starlette + uvicorn, own thread and loop)
with a read-only ward page, a subject page, a JSON API and a live feed.

Facade: :class:`WebServer`, :class:`HttpOptions`, :func:`add_http_options` /
:func:`http_options` (the ``--http`` command-line group), :func:`start_ward_server` (the
one call ``serve`` and the dashboard make). Security rules: :mod:`monitor.web.server`.
"""

from monitor.web.options import add_http_options, http_options, start_ward_server, ward_options
from monitor.web.server import TOKEN_ENV, HttpOptions, WebServer, WebServerError

__all__ = [
    "TOKEN_ENV",
    "HttpOptions",
    "WebServer",
    "WebServerError",
    "add_http_options",
    "http_options",
    "start_ward_server",
    "ward_options",
]
