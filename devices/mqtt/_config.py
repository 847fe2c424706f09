"""Broker connection settings shared by the MQTT source and publisher.

Validation happens when the config is built, so a typo in a port or a missing certificate
file is reported once, clearly, at start-up rather than as an endless reconnect loop.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import PainMonError
from core.wire import DEFAULT_TOPIC_PREFIX, check_prefix

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
PASSWORD_ENV = "PAINMON_MQTT_PASSWORD"
"""Environment variable holding the broker password (never a command-line argument: those
are visible to every user in ``ps``)."""
DEFAULT_AUTH_RETRIES = 3
"""Connection attempts refused for credentials or certificates before giving up."""


class MQTTConfigError(PainMonError, ValueError):
    """A broker setting that cannot work; the message is one line and never holds a secret."""


def load_password(password_file: str | None = None, *, environ: dict[str, str] | None = None) -> str | None:
    """The broker password: the first line of ``password_file`` if given, else
    ``$PAINMON_MQTT_PASSWORD``, else None. A password file others can read is refused."""
    if password_file:
        path = Path(password_file)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
                raise MQTTConfigError(
                    f"MQTT password file {password_file} is readable by others: chmod 600 it"
                )
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MQTTConfigError(f"cannot read MQTT password file {password_file}: {exc.strerror}") from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise MQTTConfigError(f"MQTT password file {password_file} is empty")
        return lines[0]
    env = os.environ if environ is None else environ
    return env.get(PASSWORD_ENV) or None


@dataclass(frozen=True)
class MQTTConfig:
    """Where and how to connect. ``tls_insecure`` skips the host-name check only (like
    ``mosquitto_sub --insecure``); the certificate chain is still verified against
    ``ca_file`` (or the system store). The password never appears in ``repr``.

    ``clean_session=False`` with a ``client_id`` asks the broker to keep the subscription
    and queue QoS>0 messages while the client is away (persistent session for ingest).
    ``auth_retries``: refused logins/certificates tolerated before the client gives up
    (None: retry forever); network failures are always retried.
    """

    host: str = "localhost"
    port: int = DEFAULT_PORT
    prefix: str = DEFAULT_TOPIC_PREFIX
    qos: int = 0
    tls: bool = False
    ca_file: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    tls_insecure: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    clean_session: bool = True
    keepalive: int = 30
    reconnect_min: float = 0.1
    """First back-off delay after a lost connection (s); doubles per failure..."""
    reconnect_max: float = 0.3
    """...up to this cap, so a restarted broker is found again within 0.4 s (a connect
    attempt on a LAN costs the broker almost nothing)."""
    connect_timeout: float = 5.0
    auth_retries: int | None = DEFAULT_AUTH_RETRIES

    def __post_init__(self) -> None:
        if not self.host:
            raise MQTTConfigError("MQTT host is empty")
        if not (0 < int(self.port) < 65536):
            raise MQTTConfigError(f"MQTT port {self.port} outside 1..65535")
        if self.qos not in (0, 1, 2):
            raise MQTTConfigError(f"MQTT QoS must be 0, 1 or 2, got {self.qos!r}")
        check_prefix(self.prefix)
        if self.keepalive <= 0:
            raise MQTTConfigError(f"keepalive must be positive, got {self.keepalive}")
        if not (0 < self.reconnect_min <= self.reconnect_max):
            raise MQTTConfigError("need 0 < reconnect_min <= reconnect_max")
        if self.password is not None and self.username is None:
            raise MQTTConfigError("MQTT password given without a username")
        if not self.clean_session and not self.client_id:
            raise MQTTConfigError("a persistent MQTT session (clean_session=False) needs a client id")
        if self.auth_retries is not None and self.auth_retries < 1:
            raise MQTTConfigError(f"auth_retries must be at least 1 (or None), got {self.auth_retries}")
        if self.keyfile is not None and self.certfile is None:
            raise MQTTConfigError("MQTT keyfile given without certfile")
        for name in ("ca_file", "certfile", "keyfile"):
            path = getattr(self, name)
            if path is not None:
                if not self.tls:
                    raise MQTTConfigError(f"MQTT {name} given but tls is off")
                if not Path(path).is_file():
                    raise MQTTConfigError(f"MQTT {name} {path!r} is not a readable file")

    @classmethod
    def from_hostport(cls, text: str, **options: Any) -> MQTTConfig:
        """Parse ``host``, ``host:port`` or ``[v6addr]:port`` (an ``mqtt://`` or ``mqtts://``
        scheme is accepted; ``mqtts`` turns TLS on and defaults the port to 8883).
        Credentials in the text (``user:pw@host``) are refused without repeating them."""
        rest = text.strip()
        if "@" in rest.split("/", 3)[2 if "://" in rest else 0]:
            # never echo the text: it holds a password
            raise MQTTConfigError(
                "credentials in the MQTT URL are refused (they would show in ps and logs): "
                f"use --mqtt-user and ${PASSWORD_ENV} or --mqtt-password-file"
            )
        if "://" in rest and not rest.startswith(("mqtt://", "mqtts://")):
            raise MQTTConfigError(f"MQTT URL scheme must be mqtt:// or mqtts://, got {rest.split('://')[0]!r}")
        if rest.startswith("mqtts://"):
            options.setdefault("tls", True)
            rest = rest[len("mqtts://") :]
        elif rest.startswith("mqtt://"):
            rest = rest[len("mqtt://") :]
        rest = rest.rstrip("/")
        default_port = DEFAULT_TLS_PORT if options.get("tls") else DEFAULT_PORT
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else ""
        elif rest.count(":") == 1:
            host, port_text = rest.split(":")
        else:
            host, port_text = rest, ""
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise MQTTConfigError(f"bad MQTT port in {text!r}") from None
        return cls(host=host, port=port, **options)

    def with_(self, **changes: Any) -> MQTTConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def describe(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}/{self.prefix}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context, or None without TLS."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        if self.tls_insecure:
            ctx.check_hostname = False
        return ctx

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`aiomqtt.Client` for this config."""
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": int(self.port),
            "username": self.username,
            "password": self.password,
            "identifier": self.client_id,
            "clean_session": bool(self.clean_session),
            "keepalive": int(self.keepalive),
            "timeout": float(self.connect_timeout),
        }
        ctx = self.ssl_context()
        if ctx is not None:
            kwargs["tls_context"] = ctx
            kwargs["tls_insecure"] = bool(self.tls_insecure)
        return kwargs

