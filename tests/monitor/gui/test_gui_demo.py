"""``painmon demo`` as a user runs it: a real process, simulated wearable over LSL,
offscreen window, ``--duration`` and ``--screenshot``."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO_ROOT
from PySide6 import QtGui

REPO = REPO_ROOT


def test_demo_runs_for_duration_and_saves_a_screenshot(tmp_path):
    shot = tmp_path / "demo.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PAINMON_SETTINGS=str(tmp_path / "settings.ini"),
               OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "-v",
            "demo",
            "--duration",
            "6",
            "--screenshot",
            str(shot),
            "--device",
            "cpu",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "source started: LSL" in proc.stderr
    assert "model painmon-default" in proc.stderr  # the bundled model was loaded
    image = QtGui.QImage(str(shot))
    assert not image.isNull() and image.width() >= 800
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    assert pixels.std() > 20
    assert f"screenshot saved to {shot}" in proc.stderr


def test_demo_rejects_bad_arguments():
    from monitor.cli import main

    assert main(["demo", "--subjects", "0"]) == 2
    assert main(["demo", "--screenshot", "x.png"]) == 2  # a screenshot needs --duration
    assert main(["monitor", "--replay", "/does/not/exist.xdf"]) == 2


def test_monitor_command_builds_the_sources_it_is_asked_for(monkeypatch):
    import argparse

    from devices.lsl import LSLSource
    from devices.mqtt import MQTTSource
    from monitor.cli import build_parser
    from monitor.commands.monitor import build_sources
    from monitor.options import broker_address, broker_config

    def broker(*argv: str):
        config = broker_config(build_parser().parse_args(["monitor", "--mqtt", *argv]))
        return config.host, config.port, config.tls

    assert broker("broker.local") == ("broker.local", 1883, False)
    assert broker("10.0.0.5:8883") == ("10.0.0.5", 8883, False)
    assert broker("mqtt://10.0.0.5:1884") == ("10.0.0.5", 1884, False)
    assert broker("mqtts://broker.local") == ("broker.local", 8883, True)
    assert broker("[::1]:1885") == ("::1", 1885, False)
    assert broker("broker.local", "--mqtt-tls") == ("broker.local", 8883, True)
    for bad in (":1883", "host:x", "host:70000"):
        with pytest.raises(argparse.ArgumentTypeError):
            broker_address(bad)
    monkeypatch.setenv("PAINMON_MQTT_PASSWORD", "s3cret")
    args = build_parser().parse_args(
        ["monitor", "--lsl-type", "EDA", "--mqtt", "127.0.0.1:1884", "--mqtt-prefix", "ward3", "--mqtt-user", "nurse"]
    )
    lsl, mqtt = build_sources(args)
    assert isinstance(lsl, LSLSource) and isinstance(mqtt, MQTTSource)
    assert (mqtt.config.host, mqtt.config.port, mqtt.config.prefix) == ("127.0.0.1", 1884, "ward3")
    assert (mqtt.config.username, mqtt.config.password) == ("nurse", "s3cret")
    assert build_sources(build_parser().parse_args(["monitor"])) == []


def test_every_mqtt_command_takes_the_same_broker_options(tmp_path, monkeypatch):
    """Issue 13: serve, simulate, monitor and record share one broker option set; the password
    comes only from the environment or a private file."""
    from devices.mqtt import MQTTConfigError
    from monitor.cli import build_parser
    from monitor.options import broker_config

    monkeypatch.delenv("PAINMON_MQTT_PASSWORD", raising=False)
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    secret.chmod(0o600)
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until connect")
    common = ["--mqtt", "mqtts://broker.local", "--mqtt-user", "nurse", "--mqtt-password-file", str(secret),
              "--mqtt-ca", str(ca), "--mqtt-qos", "2", "--mqtt-client-id", "ward-3", "--mqtt-retries", "5"]
    for command in ("serve", "simulate", "monitor", "record"):
        extra = [str(tmp_path / "new.xdf")] if command == "record" else []
        args = build_parser().parse_args([command, *extra, *common])
        ingest = broker_config(args, ingest=True)
        publisher = broker_config(args)
        assert ingest is not None and publisher is not None
        assert (ingest.host, ingest.port, ingest.tls, ingest.ca_file) == ("broker.local", 8883, True, str(ca))
        assert (ingest.username, ingest.password, ingest.qos, ingest.auth_retries) == ("nurse", "from-file", 2, 5)
        assert (ingest.client_id, ingest.clean_session) == ("ward-3", False)  # persistent session for ingest
        assert (publisher.client_id, publisher.clean_session) == (None, True)
        assert "from-file" not in repr(ingest)
    args = build_parser().parse_args(["serve", "--mqtt", "broker.local", "--mqtt-password-file", str(secret)])
    with pytest.raises(MQTTConfigError, match="needs --mqtt-user"):
        broker_config(args)
