"""``painmon serve`` as a real subprocess: LSL in -> LSL out with a clean SIGTERM stop, and
two shard instances behind one real mosquitto splitting simulated subjects."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pylsl
import pytest
import torch
from helpers import REPO_ROOT, wait_until

from core.wire import MODE_CODES, STATE_CODES
from monitor.engine.sharding import Shard, shard_of

REPO = REPO_ROOT


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A real PainMon model file: 2 modalities x 1 representation, 2 s windows, the full
    Tiny-BioMoE encoder (freshly initialised weights)."""
    from core.checkpoint import ModelMetadata, save_model
    from core.encoder import TinyBioMoE
    from core.fusion import FusionHead

    torch.manual_seed(0)
    head = FusionHead(("EDA", "BVP"), ("waveform",))
    meta = ModelMetadata(name="serve-test", modalities=["EDA", "BVP"], representations=["waveform"], window_s=2.0)
    path = tmp_path_factory.mktemp("model") / "serve-test.pt"
    return save_model(path, head, meta, encoder_state_dict=TinyBioMoE().state_dict())


def serve(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--threads", "1", "--health-every", "1", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


class Output:
    """Collects a subprocess's output lines on a thread (so its pipe never fills)."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._t.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def terminate(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_serve_lsl_in_lsl_out_and_clean_sigterm(small_model):
    from benchmarks.realtime import LSLSimulatorDriver

    tag = f"-srv{uuid.uuid4().hex[:6]}"
    driver = LSLSimulatorDriver(1, seed=3, prefill_s=2.5, tag=tag)
    subject = driver.subjects[0]
    driver.start()
    proc = serve("--lsl", "--lsl-name", re.escape(tag), "--model", str(small_model), "--device", "cpu")
    out = Output(proc)
    try:
        found = pylsl.resolve_byprop("name", f"PainMon-{subject}", timeout=90.0)
        assert found, f"no estimate outlet; serve said:\n{out.text}"
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=10.0)
        assert inlet.info().desc().child_value("model") == "serve-test"
        rows = []
        deadline = time.monotonic() + 60.0
        while len(rows) < 2 and time.monotonic() < deadline:
            sample, ts = inlet.pull_sample(timeout=1.0)
            if sample is not None:
                rows.append((ts, sample))
        assert len(rows) == 2, out.text
        for ts, (index, _smoothed, p_no, p_low, p_high, quality, state, mode, hop) in rows:
            assert 0 <= index <= 100 and p_no + p_low + p_high == pytest.approx(1.0, abs=1e-4)
            assert STATE_CODES[int(state)] in ("ok", "low_quality") and MODE_CODES[int(mode)] == "absolute"
            assert ts == pytest.approx(round(ts), abs=1e-6)  # window ends on the 1 s hop grid
            assert hop >= 1.0 and ts == pytest.approx(round(ts / hop) * hop, abs=1e-5)  # a longer one if degraded
            assert quality > 0.9
        wait_until(lambda: "health:" in out.text, 10, step=0.2)
    finally:
        rc = terminate(proc)
        driver.stop()
    assert rc == 0, out.text
    assert "received SIGTERM" in out.text and "stopped cleanly" in out.text
    assert re.search(r"health: 1 subjects, streams \d+/\d+ connected, \d+ estimates", out.text), out.text


def test_shards_partition_subjects_stably():
    ids = [f"bed-{i}" for i in range(200)] + ["sim-1", "Ünïcode-7"]
    shards = [Shard(k, 3) for k in (1, 2, 3)]
    for s in ids:
        assert sum(sh.owns(s) for sh in shards) == 1  # disjoint and covering
    sizes = [sum(sh.owns(s) for s in ids) for sh in shards]
    assert min(sizes) > 40  # a fair spread, not all on one machine
    # stable across processes and versions: CRC-32, not Python's salted hash()
    assert shard_of("sim-1", 2) == 2 and shard_of("sim-4", 2) == 1
    assert Shard.parse(" 2 / 3 ") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"
    for bad in ("0/3", "4/3", "1/0", "a/b", ""):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(bad)


def test_lsl_stream_selection_by_shard_type_and_name():
    from devices.lsl import DiscoveredStream
    from monitor.options import lsl_predicate

    def stream(subject, typ, name):
        return DiscoveredStream(name, typ, "", (), 4.0, "float32", "host", subject, typ if typ != "GSR" else "EDA")

    mine = lsl_predicate(Shard(2, 2), ["GSR", "BVP"], r"^sim-")
    assert mine(stream("sim-1", "BVP", "sim-1 BVP"))
    assert mine(stream("sim-1", "GSR", "sim-1 GSR"))  # by LSL type
    assert not mine(stream("sim-1", "RESP", "sim-1 RESP"))  # type not asked for
    assert not mine(stream("sim-4", "BVP", "sim-4 BVP"))  # the other shard's subject
    assert not mine(stream("sim-1", "BVP", "lab sim-1 BVP"))  # name does not match
    everything = lsl_predicate(Shard(1, 1), None, None)
    assert everything(stream("x", "EDA", "anything"))


@pytest.fixture
def keep_signal_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_serve_refuses_bad_arguments_clearly(capsys, caplog, keep_signal_handlers):
    from monitor.cli import main

    for args, message in (
        ((), "give at least one input"),
        (("--lsl", "--shard", "3/2"), "need 1 <= K <= N"),
        (("--lsl", "--shard", "two"), "is not K/N"),
        (("--lsl", "--publish", "mqtt"), "--publish mqtt needs --mqtt"),
        (("--lsl", "--hop", "0"), "--hop must be positive"),
        (("--lsl", "--threads", "-1"), "--threads must be positive"),
    ):
        assert main(["serve", *args]) == 2, args
        assert message in capsys.readouterr().out, args
    for command in ("serve", "record", "monitor"):  # a bad pattern is a usage error before anything starts
        with pytest.raises(SystemExit) as exit_:
            main([command, "--lsl-name", "(["])
        assert exit_.value.code == 2 and "'([' is not a regular expression" in capsys.readouterr().err
    assert main(["serve", "--lsl", "--model", "/nonexistent/model.pt", "--duration", "5"]) == 1
    assert "model file /nonexistent/model.pt not found" in caplog.text
    for model, message in (("", "--model is empty"), (".", "is a directory, not a model file")):
        caplog.clear()
        assert main(["serve", "--lsl", "--model", model, "--duration", "5"]) == 1
        assert message in caplog.text and "Traceback" not in caplog.text


def test_shards_split_subjects_exactly_once_over_one_broker(small_model, mosquitto_broker):
    import paho.mqtt.client as mqtt

    from devices.mqtt import MQTTConfig
    from devices.simulator import MQTTSimulator, SimulatedWearable

    n_subjects = 4
    subjects = [f"sim-{i + 1}" for i in range(n_subjects)]
    assert {shard_of(s, 2) for s in subjects} == {1, 2}  # both instances have work

    got: dict[str, set[str]] = {s: set() for s in subjects}
    counts: dict[str, int] = {s: 0 for s in subjects}
    lock = threading.Lock()

    def on_message(_c, _u, msg):
        d = json.loads(msg.payload)
        with lock:
            got.setdefault(d["subject"], set()).add(d["origin"])
            counts[d["subject"]] = counts.get(d["subject"], 0) + 1

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.subscribe("painmon/+/estimate")
    client.loop_start()
    broker = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    procs = [
        serve(
            "--mqtt", broker, "--shard", f"{k}/2", "--publish", "mqtt", "--model", str(small_model), "--device", "cpu"
        )
        for k in (1, 2)
    ]
    outs = [Output(p) for p in procs]
    sim = MQTTSimulator(SimulatedWearable(n_subjects, seed=7), MQTTConfig(mosquitto_broker.host, mosquitto_broker.port))
    sim.start()
    try:
        def served_twice() -> bool:
            with lock:
                return all(counts[s] >= 2 for s in subjects)

        wait_until(served_twice, 120.0, step=0.2)
    finally:
        sim.stop()
        rcs = [terminate(p) for p in procs]
        client.loop_stop()
        client.disconnect()
    logs = "\n---\n".join(o.text for o in outs)
    assert all(counts[s] >= 2 for s in subjects), (counts, logs)
    assert set(got) == set(subjects)
    for s in subjects:
        assert len(got[s]) == 1, f"{s} served by {got[s]}"
        (origin,) = got[s]
        assert origin.endswith(f"shard {shard_of(s, 2)}/2")
        assert Shard.parse(origin.rsplit(" ", 1)[1]).owns(s)
    assert rcs == [0, 0], logs


# --- issue 13, finding 5: a secured broker --------------------------------------------------


def test_serve_refuses_credentials_in_the_url_without_echoing_them(capsys, keep_signal_handlers):
    from monitor.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--mqtt", "mqtt://ward:hunter2@127.0.0.1:1883"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "--mqtt-user" in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def test_serve_gives_up_on_a_refused_login_with_one_line_and_rc_1(small_model, tmp_path):
    from mqtt_broker import MosquittoBroker

    with MosquittoBroker(tmp_path / "auth", users={"ward": "s3cret"}) as broker:
        env = dict(os.environ, PAINMON_MQTT_PASSWORD="wrong-pw", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--threads", "1", "--mqtt", f"{broker.host}:{broker.port}",
             "--mqtt-user", "ward", "--mqtt-retries", "2", "--model", str(small_model), "--device", "cpu"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        out = Output(proc)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        try:
            rc = proc.wait(60)
        finally:
            terminate(proc)
    assert b"wrong-pw" not in cmdline
    assert rc == 1, out.text
    assert "wrong-pw" not in out.text and "Traceback" not in out.text
    refused = [line for line in out.lines if "ERROR" in line]
    assert len(refused) == 1 and "refused" in refused[0] and "authori" in refused[0].lower(), out.text


def test_serve_health_line_shows_the_broker_link(small_model, tmp_path):
    from mqtt_broker import MosquittoBroker

    broker = MosquittoBroker(tmp_path / "auth", users={"ward": "s3cret"}).start()
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    proc = serve("--mqtt", f"mqtt://{broker.host}:{broker.port}", "--mqtt-user", "ward", "--mqtt-password-file",
                 str(secret), "--model", str(small_model), "--device", "cpu")
    out = Output(proc)
    try:
        assert wait_until(lambda: "broker connected" in out.text, 60, step=0.2), out.text
        broker.stop()
        assert wait_until(lambda: "broker unreachable since" in out.text, 20, step=0.2), out.text
        assert re.search(r"broker unreachable since \d\d:\d\d:\d\d", out.text)
    finally:
        rc = terminate(proc)
        broker.stop()
    assert rc == 0, out.text
    assert "s3cret" not in out.text
