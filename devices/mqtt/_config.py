"""Broker connection settings shared by the MQTT source and publisher.

Validation happens when the config is built, so a typo in a port or a missing certificate
file is reported once, clearly, at start-up rather than as an endless reconnect loop.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.wire import DEFAULT_TOPIC_PREFIX, check_prefix

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True)
class MQTTConfig:
    """Where and how to connect. ``tls_insecure`` skips the host-name check only (like
    ``mosquitto_sub --insecure``); the certificate chain is still verified against
    ``ca_file`` (or the system store)."""

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
    password: str | None = None
    client_id: str | None = None
    keepalive: int = 30
    reconnect_min: float = 0.25
    """First back-off delay after a lost connection (s); doubles per failure..."""
    reconnect_max: float = 4.0
    """...up to this cap, so a restarted broker is found again within a few seconds."""
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("MQTT host is empty")
        if not (0 < int(self.port) < 65536):
            raise ValueError(f"MQTT port {self.port} outside 1..65535")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"MQTT QoS must be 0, 1 or 2, got {self.qos!r}")
        check_prefix(self.prefix)
        if self.keepalive <= 0:
            raise ValueError(f"keepalive must be positive, got {self.keepalive}")
        if not (0 < self.reconnect_min <= self.reconnect_max):
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        if self.password is not None and self.username is None:
            raise ValueError("MQTT password given without a username")
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("MQTT keyfile given without certfile")
        for name in ("ca_file", "certfile", "keyfile"):
            path = getattr(self, name)
            if path is not None:
                if not self.tls:
                    raise ValueError(f"MQTT {name} given but tls is off")
                if not Path(path).is_file():
                    raise ValueError(f"MQTT {name} {path!r} is not a readable file")

    @classmethod
    def from_hostport(cls, text: str, **options: Any) -> MQTTConfig:
        """Parse ``host``, ``host:port`` or ``[v6addr]:port`` (an ``mqtt://`` or ``mqtts://``
        scheme is accepted; ``mqtts`` turns TLS on and defaults the port to 8883)."""
        rest = text.strip()
        if rest.startswith("mqtts://"):
            options.setdefault("tls", True)
            rest = rest[len("mqtts://") :]
        elif rest.startswith("mqtt://"):
            rest = rest[len("mqtt://") :]
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
            raise ValueError(f"bad MQTT port in {text!r}") from None
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
            "keepalive": int(self.keepalive),
            "timeout": float(self.connect_timeout),
        }
        ctx = self.ssl_context()
        if ctx is not None:
            kwargs["tls_context"] = ctx
            kwargs["tls_insecure"] = bool(self.tls_insecure)
        return kwargs

