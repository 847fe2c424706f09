"""A real mosquitto broker for tests: own config, free loopback port, restartable.

Tests (and other teams' tests, through the ``mosquitto_broker`` fixture in conftest.py) use
this instead of any mock so that reconnects, credentials and TLS are exercised against the
broker PainMon meets in the field. Needs Debian's ``mosquitto`` package (which also ships
``mosquitto_passwd``).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# A throw-away test CA and a server certificate for localhost / 127.0.0.1 (EC P-256, valid
# until 2126), embedded so the TLS test needs no openssl at test time. Generated with:
#   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
#     -out ca.crt -days 36500 -subj "/CN=PainMon test CA" \
#     -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
#   openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
#     -out server.csr -subj "/CN=localhost"
#   openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 36500 \
#     -out server.crt -extfile ext.cnf   # SAN DNS:localhost,IP:127.0.0.1; serverAuth; SKI/AKI
# NOT SECRET: these keys protect nothing but the tests.
TEST_CA_CERT = """-----BEGIN CERTIFICATE-----
MIIBnDCCAUGgAwIBAgIUKpPQFb3kpYMJkY5CDiHOh2pErmgwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPUGFpbk1vbiB0ZXN0IENBMCAXDTI2MTEyNTA4MjI1M1oYDzIx
MjYxMTAxMDgyMjUzWjAaMRgwFgYDVQQDDA9QYWluTW9uIHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARrAYdxmDoCqlNtQha1I4szH4q+brN7Z7UBn9f5
L1ZX2oajjbnENJ9eQbE0Hjc+OgBhqUfVxVDnRbnslveHMlc2o2MwYTAdBgNVHQ4E
FgQUZQ84HJ+XBA2qUKgdv3yGnzzJ1fcwHwYDVR0jBBgwFoAUZQ84HJ+XBA2qUKgd
v3yGnzzJ1fcwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI
zj0EAwIDSQAwRgIhAJ5NFuGzhKmhdtv3Ay7OhOBthfou4CRahQs60W4tgMtKAiEA
q8zCOPQwQcdbDdsThVDavvSLTFf0lNQ4KqqbsJ09uao=
-----END CERTIFICATE-----
"""
TEST_SERVER_CERT = """-----BEGIN CERTIFICATE-----
MIIBxjCCAWugAwIBAgIUPn+WEA3fKAGgBCsT7dsXaCVu8YkwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPUGFpbk1vbiB0ZXN0IENBMCAXDTI2MTEyNTA4MjI1M1oYDzIx
MjYxMTAxMDgyMjUzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAT6h3OjO6CC38uqPauhMT7Zts8MLwaqEwgDRD3iMykwnorz
tv2H+HNo1OEF3/a8LdEryDKItpDXR1QIzmPQck7Ho4GSMIGPMBoGA1UdEQQTMBGC
CWxvY2FsaG9zdIcEfwAAATAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAT
BgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUPvX19iTBsgoRsGOueWKhWtD9
ll8wHwYDVR0jBBgwFoAUZQ84HJ+XBA2qUKgdv3yGnzzJ1fcwCgYIKoZIzj0EAwID
SQAwRgIhANbZI0/VJEF4+fUaTfd7orMoH/R/V6lPq5+VRTbccujWAiEAiJpaZBMg
fPmy26I21mTDNw3ZlxR9zgn7KNIAF82Rmas=
-----END CERTIFICATE-----
"""
TEST_SERVER_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEF/qgPSJg7at4zZP
cyJaHJwwWSvHhw+LZfBisvbTFAWhRANCAAT6h3OjO6CC38uqPauhMT7Zts8MLwaq
EwgDRD3iMykwnorztv2H+HNo1OEF3/a8LdEryDKItpDXR1QIzmPQck7H
-----END PRIVATE KEY-----
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError("mosquitto not found: apt-get install -y mosquitto")


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM the broker when the test process dies.

    A crashed or killed test run then leaves no broker behind. (Linux ties this to the thread
    that started the broker: start brokers from the main thread or a long-lived one.)"""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class MosquittoBroker:
    """One mosquitto process on ``127.0.0.1:port`` with its own config in ``workdir``.

    ``users`` (name -> password) turns anonymous access off and writes a password file;
    ``tls=True`` serves TLS with the embedded test certificate (clients trust ``ca_file``).
    ``persistence=True`` keeps persistent sessions (and their queued QoS>0 messages) across
    ``restart()``, which brings the broker back on the same port as a restart in the field.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: bool = False,
        persistence: bool = False,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(self.host)
        self.users = dict(users or {})
        self.tls = tls
        self.persistence = persistence
        self.log_path = self.workdir / "mosquitto.log"
        self.ca_file = str(self.workdir / "ca.crt") if tls else None
        self._proc: subprocess.Popen | None = None
        self._config = self._write_config()

    # --- configuration --------------------------------------------------------------
    def _write_config(self) -> Path:
        lines = [f"listener {self.port} {self.host}", "log_dest stdout"]
        if self.persistence:  # saved on SIGTERM, loaded on start
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        lines.append("log_type error\nlog_type warning\nlog_type notice\nlog_type information")
        if os.geteuid() == 0:  # as root mosquitto would switch to user 'mosquitto' and lose our files
            lines.append(f"user {getpass.getuser()}")
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for name, password in self.users.items():
                subprocess.run([tool, "-b", str(passwd), name, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            (self.workdir / "ca.crt").write_text(TEST_CA_CERT)
            (self.workdir / "server.crt").write_text(TEST_SERVER_CERT)
            key = self.workdir / "server.key"
            key.write_text(TEST_SERVER_KEY)
            key.chmod(0o600)
            lines += [
                f"cafile {self.workdir / 'ca.crt'}",
                f"certfile {self.workdir / 'server.crt'}",
                f"keyfile {key}",
            ]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    # --- lifecycle ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        """Start and wait until the port accepts connections."""
        if self.running:
            return self
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(self._config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}:\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not open port {self.port} in {timeout} s:\n{self.log_text()}")

    def stop(self, kill: bool = False) -> None:
        """Terminate (or, with ``kill``, SIGKILL: a crash) and wait for the process."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)

    def restart(self, down_for: float = 0.0, kill: bool = False) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port."""
        self.stop(kill=kill)
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- paho-mqtt helpers: tests publish and subscribe with a different client than PainMon's ---


def paho_client(broker: MosquittoBroker, client_id: str = "", clean_session: bool = True, **auth: str):
    """A connected paho client with its network loop running (reconnects quickly)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
    )
    if auth:
        client.username_pw_set(auth["username"], auth.get("password"))
    if broker.tls:
        client.tls_set(ca_certs=broker.ca_file)
    client.reconnect_delay_set(0.05, 0.5)
    connected = __import__("threading").Event()
    client.on_connect = lambda c, u, f, rc, p=None: connected.set() if not rc.is_failure else None
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    if not connected.wait(5.0):
        client.loop_stop()
        raise RuntimeError("paho client could not connect")
    client.connected_event = connected
    return client


def paho_publish(client, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
    """Publish and wait until the broker has it (QoS 1 by default: nothing lost in tests)."""
    info = client.publish(topic, payload, qos=qos, retain=retain)
    info.wait_for_publish(5.0)
    if not info.is_published():
        raise RuntimeError(f"paho could not publish on {topic}")


def paho_close(client) -> None:
    client.disconnect()
    client.loop_stop()


class Collector:
    """A paho subscriber recording (topic, payload) in arrival order."""

    def __init__(self, broker, topic: str = "painmon/#", qos: int = 1, client_id: str = "", clean_session: bool = True):
        self.got: list[tuple[str, bytes]] = []
        self._lock = __import__("threading").Lock()
        self.client = paho_client(broker, client_id=client_id, clean_session=clean_session)
        self.client.on_message = self._on_message
        subscribed = __import__("threading").Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe(topic, qos=qos)
        assert subscribed.wait(5.0)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.got.append((msg.topic, bytes(msg.payload)))

    def payloads(self, topic: str | None = None) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.got if topic is None or t == topic]

    def json(self) -> list[tuple[str, dict]]:
        """(topic, decoded JSON payload) in arrival order."""
        import json

        with self._lock:
            return [(t, json.loads(p)) for t, p in self.got]

    def close(self) -> None:
        paho_close(self.client)
