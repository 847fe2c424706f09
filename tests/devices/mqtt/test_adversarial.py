"""Issue 13, findings 1-3, 5 and 6: hostile and broken MQTT input against a real mosquitto.

Each test first sends what the probe sent (tiny rates, amplifying headers, floods of ids,
wrong credentials, a broker restart) and then checks that a real subject is unaffected.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import wait_until
from mqtt_broker import (
    MosquittoBroker,
    find_mosquitto,
    free_port,
    paho_client,
    paho_close,
    paho_publish,
)

from core.buffers import BufferHub
from core.clock import now
from core.preprocessing import StreamPreprocessor
from core.streams import StreamSpec
from devices.mqtt import (
    IngestLimits,
    MQTTConfig,
    MQTTConfigError,
    MQTTPublisher,
    MQTTSource,
    encode_samples,
    encode_samples_binary,
    load_password,
)


def start_source(broker, hub, config: MQTTConfig | None = None, **kwargs) -> MQTTSource:
    source = MQTTSource(config or MQTTConfig(host=broker.host, port=broker.port), **kwargs)
    source.start(hub)
    assert source.wait_connected(5.0), source.status()
    return source


class Wearable:
    """A real subject: EDA at 4 Hz, one message of 2 samples every 0.5 s (Unix clock)."""

    def __init__(self, client, subject: str):
        self.client, self.topic, self.k = client, f"painmon/{subject}/EDA", 0
        self.t_unix = time.time()

    def send(self) -> None:
        payload = encode_samples(self.t_unix + self.k * 0.5, 4.0, [2.0 + 0.01 * self.k, 2.01], seq=self.k)
        paho_publish(self.client, self.topic, payload)
        self.k += 1


# --- finding 1: a tiny declared rate ------------------------------------------------------


def test_tiny_rate_is_refused_and_the_real_subject_keeps_flowing(mosquitto_broker):
    hub = BufferHub(seconds=30)
    source = start_source(mosquitto_broker, hub)
    client = paho_client(mosquitto_broker)
    try:
        real = Wearable(client, "real-1")
        real.send()
        tiny = json.dumps({"t0": time.time(), "fs": 1e-6, "values": [0.4, 0.41, 0.42, 0.43]})
        paho_publish(client, "painmon/x/EDA", tiny)
        for _ in range(3):
            real.send()
        assert wait_until(lambda: len(hub.buffer("real-1", "EDA") or []) == 8, 5.0)
        status = source.status()
        assert status.rejected == 1 and set(status.reject_reasons) <= {"bad_rate", "too_long"}
        assert hub.buffer("x", "EDA") is None and "x" not in hub.subjects()
    finally:
        paho_close(client)
        source.stop()


def test_preprocessing_a_tiny_rate_stays_small_even_when_the_rate_range_is_overridden():
    """Defence in depth (a site override, or an LSL stream declaring 1e-6 Hz): four samples
    a million seconds apart must not be bridged onto a 100 Hz grid."""
    proc = StreamPreprocessor("EDA", 1e-6)
    t0 = now()
    started = time.perf_counter()
    out = proc.process(np.array([0.4, 0.41, 0.42, 0.43]), t0 + np.arange(4) * 1e6)
    assert time.perf_counter() - started < 1.0
    assert len(out) <= 4 * 1000  # at most a few grid points per isolated sample


def test_rate_ranges_can_be_overridden_by_environment(mosquitto_broker, monkeypatch):
    monkeypatch.setenv("PAINMON_RATE_RANGES", "EDA=0.5-2000")
    hub = BufferHub(seconds=30)
    source = start_source(mosquitto_broker, hub)
    client = paho_client(mosquitto_broker)
    try:
        paho_publish(client, "painmon/slow/EDA", encode_samples(time.time(), 0.5, [1.0, 1.1]))
        assert wait_until(lambda: len(hub.buffer("slow", "EDA") or []) == 2)
    finally:
        paho_close(client)
        source.stop()


# --- finding 2: memory amplification ------------------------------------------------------


def test_wide_fast_header_is_refused_and_buffers_never_follow_a_declared_rate(mosquitto_broker):
    hub = BufferHub(seconds=120)
    source = start_source(mosquitto_broker, hub)
    client = paho_client(mosquitto_broker)
    try:
        # 373 bytes that declare 10 kHz x 64 channels (one sample)
        msg = encode_samples_binary(time.time(), 10_000.0, np.zeros((1, 64), np.float32))
        for i in range(60):
            paho_publish(client, f"painmon/amp-{i}/BVP", msg)
        assert wait_until(lambda: source.status().messages >= 60)
        assert source.status().rejected == 60 and hub.nbytes() == 0
    finally:
        paho_close(client)
        source.stop()
    # and should such a stream reach a hub some other way, memory follows max_rate and grows
    buf = hub.register(StreamSpec("s", "EMG", channels=tuple(f"c{i}" for i in range(64)), nominal_rate=10_000.0))
    assert buf is not None and buf.capacity <= 120 * 250 * 1.25
    assert hub.nbytes() < 200_000  # allocated lazily: one message costs kilobytes


# --- finding 3: garbage and floods of ids -------------------------------------------------


def test_garbage_takes_no_slot_and_a_new_subject_is_still_accepted(mosquitto_broker):
    hub = BufferHub(seconds=30)
    source = start_source(mosquitto_broker, hub, limits=IngestLimits(max_subjects=16))
    client = paho_client(mosquitto_broker)
    try:
        for i in range(1100):
            client.publish(f"painmon/fake-{i}/EDA", b"x", qos=0)
        paho_publish(client, "painmon/fake-last/EDA", b"\xff\x00garbage")
        assert wait_until(lambda: source.status().messages >= 1101, 15.0)
        assert source.status().subjects == 0
        Wearable(client, "newcomer").send()
        assert wait_until(lambda: len(hub.buffer("newcomer", "EDA") or []) == 2)
    finally:
        paho_close(client)
        source.stop()


def test_a_flood_of_valid_new_ids_never_costs_an_established_subject(mosquitto_broker):
    hub = BufferHub(seconds=30)
    removed: list[tuple[str, str | None]] = []
    hub.add_removal_listener(lambda s, m: removed.append((s, m)))
    limits = IngestLimits(max_subjects=4, probation_s=1.0, probation_idle_s=30.0)
    source = start_source(mosquitto_broker, hub, limits=limits)
    client = paho_client(mosquitto_broker)
    try:
        real = Wearable(client, "real-1")
        for _ in range(4):  # 1.5 s of data: established
            real.send()
            time.sleep(0.5)
        for i in range(200):  # valid one-message subjects
            client.publish(f"painmon/fake-{i}/EDA", encode_samples(time.time(), 4.0, [1.0]), qos=0)
        real.send()
        assert wait_until(lambda: source.status().messages >= 205, 10.0)
        assert len(hub.buffer("real-1", "EDA")) == 10  # nothing of the real subject lost
        assert source.status().subjects <= 4
        assert ("real-1", None) not in removed and len(removed) >= 190
        # a new real subject still finds a slot (it displaces a probationer)
        Wearable(client, "real-2").send()
        assert wait_until(lambda: len(hub.buffer("real-2", "EDA") or []) == 2)
    finally:
        paho_close(client)
        source.stop()


def test_idle_subjects_expire_and_release_their_buffers(mosquitto_broker):
    hub = BufferHub(seconds=30)
    removed: list[tuple[str, str | None]] = []
    hub.add_removal_listener(lambda s, m: removed.append((s, m)))
    limits = IngestLimits(idle_expiry_s=1.0, probation_s=0.0, probation_idle_s=1.0)
    source = start_source(mosquitto_broker, hub, limits=limits)
    client = paho_client(mosquitto_broker)
    try:
        Wearable(client, "gone").send()
        assert wait_until(lambda: hub.buffer("gone", "EDA") is not None)
        assert wait_until(lambda: (source.health(), ("gone", None) in removed)[1], 5.0)
        assert hub.buffer("gone", "EDA") is None and source.status().subjects == 0
        assert source.status().expired == 1
    finally:
        paho_close(client)
        source.stop()


def test_subject_pattern_is_an_allow_list(mosquitto_broker):
    hub = BufferHub(seconds=30)
    source = start_source(mosquitto_broker, hub, limits=IngestLimits(subject_pattern=r"bed-\d{1,3}"))
    client = paho_client(mosquitto_broker)
    try:
        Wearable(client, "intruder").send()
        Wearable(client, "bed-12").send()
        assert wait_until(lambda: len(hub.buffer("bed-12", "EDA") or []) == 2)
        assert hub.buffer("intruder", "EDA") is None
        assert source.status().reject_reasons["subject_not_allowed"] == 1
    finally:
        paho_close(client)
        source.stop()


def test_rejections_are_rate_limited_with_counts(mosquitto_broker, caplog):
    hub = BufferHub(seconds=30)
    source = start_source(mosquitto_broker, hub)
    client = paho_client(mosquitto_broker)
    try:
        with caplog.at_level(logging.WARNING, logger="devices.mqtt"):
            for i in range(300):
                client.publish(f"painmon/junk-{i}/EDA", b"{", qos=0)
            assert wait_until(lambda: source.status().messages >= 300, 10.0)
        lines = [r for r in caplog.records if "rejected" in r.getMessage()]
        assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]
    finally:
        paho_close(client)
        source.stop()


# --- finding 5: a secured broker ----------------------------------------------------------


def test_credentials_in_the_url_are_refused_without_echoing_them():
    for text in ("mqtt://ward:hunter2@broker:1883", "ward:hunter2@broker", "mqtts://ward:hunter2@broker"):
        with pytest.raises(MQTTConfigError) as err:
            MQTTConfig.from_hostport(text)
        assert "hunter2" not in str(err.value) and "--mqtt-user" in str(err.value)


def test_password_never_in_a_repr_and_comes_from_env_or_a_private_file(tmp_path, monkeypatch):
    config = MQTTConfig(host="h", username="ward", password="hunter2")
    assert "hunter2" not in repr(config) and "hunter2" not in config.describe()
    monkeypatch.setenv("PAINMON_MQTT_PASSWORD", "from-env")
    assert load_password() == "from-env"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    secret.chmod(0o600)
    assert load_password(str(secret)) == "from-file"
    secret.chmod(0o644)
    with pytest.raises(MQTTConfigError, match="readable by others"):
        load_password(str(secret))


def test_refused_login_gives_up_after_the_retry_budget_with_one_line(tmp_path, caplog):
    with MosquittoBroker(tmp_path / "auth", users={"ward": "s3cret"}) as broker:
        bad = MQTTConfig(host=broker.host, port=broker.port, username="ward", password="wrong", auth_retries=2)
        with caplog.at_level(logging.WARNING, logger="devices.mqtt"):
            source = MQTTSource(bad)
            source.start(BufferHub())
            try:
                assert wait_until(lambda: source.status().link == "failed", 10.0), source.status()
                assert "authori" in source.status().last_error.lower()
            finally:
                source.stop()
        text = caplog.text
        assert "wrong" not in text and "s3cret" not in text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
        assert len(gave_up) == 1 and "attempts" in gave_up[0].getMessage()
        good = MQTTConfig(host=broker.host, port=broker.port, username="ward", password="s3cret")
        ok = MQTTSource(good)
        ok.start(BufferHub())
        try:
            assert ok.wait_connected(5.0)
        finally:
            ok.stop()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def mtls_broker(tmp_path):
    """A mosquitto with a CA, server and client certificate made by openssl right here, and
    ``require_certificate true``: only clients holding a certificate of this CA get in."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test CA")
    d = tmp_path / "pki"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}", cwd=d)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{who}.crt", "-extfile", f"{who}.ext", cwd=d)
    port = free_port()
    conf = d / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false", "log_dest stderr",
             f"cafile {d / 'ca.crt'}", f"certfile {d / 'server.crt'}", f"keyfile {d / 'server.key'}",
             "require_certificate true"]
    if os.geteuid() == 0:
        import getpass

        lines.append(f"user {getpass.getuser()}")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        assert wait_until(lambda: _port_open(port), 10.0)
        yield port, d
    finally:
        proc.terminate()
        proc.wait(5)


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_tls_with_own_ca_and_client_certificate(mtls_broker):
    port, d = mtls_broker
    base: dict[str, Any] = {"host": "localhost", "port": port, "tls": True, "ca_file": str(d / "ca.crt")}
    hub = BufferHub(seconds=30)
    with_cert = MQTTSource(MQTTConfig(**base, certfile=str(d / "client.crt"), keyfile=str(d / "client.key")))
    with_cert.start(hub)
    without = MQTTSource(MQTTConfig(**base))
    without.start(BufferHub())
    untrusting = MQTTSource(MQTTConfig(host="localhost", port=port, tls=True, auth_retries=2))
    untrusting.start(BufferHub())
    try:
        assert with_cert.wait_connected(5.0), with_cert.status()
        assert not without.wait_connected(1.5)
        # our side refuses the broker's certificate (system store only): give up, not loop
        assert wait_until(lambda: untrusting.status().link == "failed", 10.0), untrusting.status()
        assert "certificate" in untrusting.status().last_error.lower()
    finally:
        for s in (with_cert, without, untrusting):
            s.stop()


# --- finding 6: a broker restart ------------------------------------------------------------


def test_a_5s_broker_outage_leaves_no_hole_longer_than_the_outage_plus_half_a_second(tmp_path):
    """QoS-1 publisher (queues while disconnected) and a persistent-session subscriber,
    against a broker with persistence: the broker restarts after 5 s down."""
    broker = MosquittoBroker(tmp_path / "persist", persistence=True).start()
    arrivals: list[tuple[float, float]] = []  # (arrival, local timestamp of the sample)
    lock = threading.Lock()

    def on_chunk(spec: StreamSpec, data: np.ndarray, ts: np.ndarray) -> None:
        with lock:
            arrivals.extend((time.monotonic(), float(t)) for t in ts)

    hub = BufferHub(seconds=60)
    hub.add_listener(on_chunk)
    sub_config = MQTTConfig(host=broker.host, port=broker.port, qos=1, client_id="painmon-ingest", clean_session=False)
    source = start_source(broker, hub, sub_config)
    pub = MQTTPublisher(MQTTConfig(host=broker.host, port=broker.port, qos=1))
    pub.start()
    stop = threading.Event()

    def produce() -> None:
        k = 0
        while not stop.is_set():
            pub.publish("painmon/s1/EDA", encode_samples(k * 0.1, 10.0, [1.0], seq=k))
            k += 1
            time.sleep(0.1)

    producer = threading.Thread(target=produce, daemon=True)
    try:
        assert pub.wait_connected(5.0)
        producer.start()
        time.sleep(1.5)
        down = time.monotonic()
        broker.stop()
        time.sleep(5.0)
        broker.start()
        outage = time.monotonic() - down
        time.sleep(3.0)
        stop.set()
        producer.join()
        assert pub.flush(5.0)
        time.sleep(0.5)
    finally:
        stop.set()
        pub.stop()
        source.stop()
        broker.stop()
    with lock:
        times = np.array([a for a, _ in arrivals])
        t0s = sorted({t for _, t in arrivals})
    hole = float(np.diff(times).max())
    assert hole <= outage + 0.5, (hole, outage)
    # and nothing the sender produced was lost: its timeline has no gap at all (the clock
    # mapping may slew the 0.1 s period by 0.5 %)
    assert np.diff(t0s).max() < 0.15, np.diff(t0s).max()
