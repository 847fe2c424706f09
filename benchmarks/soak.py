"""Soak benchmark: ``painmon serve`` on a broker shared with an attacker.

One real mosquitto (started here, loopback, free port), one ``painmon serve`` process
(estimates out on LSL and MQTT, as in a ward), two real simulated subjects publishing over
MQTT, and, for ``--duration`` seconds (2 minutes by default), a flood on the same broker:

* ``--fakes`` (3,000) invented subject ids, each sending one valid EDA message;
* the tiny-rate message of issue 13 (``fs = 1e-6``) once a second;
* 373-byte binary messages declaring 10 kHz x 64 channels, twice a second;
* a 10 MB payload every 10 s;
* binary garbage, 20 messages a second.

Before the flood the same figures are measured undisturbed for ``--baseline`` seconds, so
a slow or shared machine shows as such. After the flood a new real subject starts
sending. Printed: the share of the real
subjects' windows that got an estimate during the flood (target >= 95 %), the p95 latency
from window end to the estimate's arrival on MQTT (< 1 s), the peak RSS of the serve
process (< 1.5 GB), its open files (bounded: < 512 at peak), and how long the new subject
waited for its first estimate (< 15 s). Exit code 0 when every target is met.

Timings depend on the machine's load: on a shared CPU, run it when it is quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.mqtt import MQTTConfig, encode_samples, encode_samples_binary  # noqa: E402

TARGETS = {"share": 0.95, "p95_latency_s": 1.0, "peak_rss_mb": 1536.0, "peak_open_files": 512, "new_subject_s": 15.0}


# --- the broker ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A private anonymous mosquitto on a loopback port (stopped with the benchmark)."""

    def __init__(self, workdir: Path):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).is_file():
            raise SystemExit("mosquitto not found (apt-get install mosquitto)")
        self.port = _free_port()
        conf = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false"]
        if os.geteuid() == 0:
            import getpass

            lines.append(f"user {getpass.getuser()}")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def _paho(port: int, on_message=None):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_queued_messages_set(0)
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    return client


# --- what serve publishes ------------------------------------------------------------------
@dataclass
class Received:
    """Estimates arriving on MQTT: (t_end, arrival on the shared monotonic clock) per subject."""

    by_subject: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _client, _userdata, msg) -> None:
        arrival = time.monotonic()
        try:
            d = json.loads(msg.payload)
            subject, t_end = str(d["subject"]), float(d["t_end"])
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.by_subject.setdefault(subject, []).append((t_end, arrival))

    def of(self, subject: str) -> list[tuple[float, float]]:
        with self.lock:
            return list(self.by_subject.get(subject, []))

    def subjects(self) -> list[str]:
        with self.lock:
            return list(self.by_subject)


# --- the process under test -------------------------------------------------------------------
class Probe:
    """Peak RSS (VmHWM) and peak open files of a process, sampled twice a second."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_fds = 0
        self.peak_rss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def sample(self) -> None:
        """One reading (also taken at the end, so the peak includes the last state)."""
        try:
            self.peak_fds = max(self.peak_fds, len(os.listdir(f"/proc/{self.pid}/fd")))
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except (OSError, ValueError):  # an fd closed while listing, or the process ended
            pass

    def open_files(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


# --- the attacker -------------------------------------------------------------------------------
@dataclass
class Flood:
    """Publishes the hostile traffic for ``duration`` seconds (see the module docstring)."""

    port: int
    duration: float
    fakes: int
    seed: int = 0
    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("fake ids", "tiny rate", "10 kHz x 64 ch", "10 MB", "garbage"), 0))

    def run(self) -> None:
        rng = random.Random(self.seed)
        client = _paho(self.port)
        tiny = json.dumps({"t0": time.time(), "fs": 1e-6, "values": [0.4, 0.41, 0.42, 0.43]}).encode()
        wide = encode_samples_binary(time.time(), 10_000.0, np.zeros((1, 64), np.float32))
        huge = bytes(10 * 1024 * 1024)
        start = time.monotonic()
        tick = 0.05
        k = 0
        try:
            while (elapsed := time.monotonic() - start) < self.duration:
                due_fakes = int(self.fakes * min(1.0, elapsed / self.duration))
                while self.sent["fake ids"] < due_fakes:
                    i = self.sent["fake ids"]
                    payload = encode_samples(time.time(), 4.0, [2.0, 2.1], seq=0)
                    client.publish(f"painmon/fake-{i}/EDA", payload, qos=0)
                    self.sent["fake ids"] += 1
                if k % 20 == 0:
                    client.publish(f"painmon/tiny-{k}/EDA", tiny, qos=0)
                    self.sent["tiny rate"] += 1
                if k % 10 == 0:
                    client.publish(f"painmon/wide-{k}/BVP", wide, qos=0)
                    self.sent["10 kHz x 64 ch"] += 1
                if k % 200 == 100:
                    client.publish(f"painmon/big-{k}/RESP", huge, qos=0)
                    self.sent["10 MB"] += 1
                client.publish(f"painmon/junk-{rng.randrange(10**6)}/EDA", rng.randbytes(rng.randrange(1, 300)), qos=0)
                self.sent["garbage"] += 1
                k += 1
                time.sleep(max(0.0, start + k * tick - time.monotonic()))
        finally:
            client.loop_stop()
            client.disconnect()


# --- measuring -----------------------------------------------------------------------------------
def share_and_latency(received: Received, subjects: list[str], t0: float, t1: float, hop: float):
    """Share of the windows ending in ``[t0, t1]`` that got an estimate, over ``subjects``,
    and the latencies (arrival - window end) of those estimates."""
    expected = got = 0
    latencies: list[float] = []
    for s in subjects:
        ends = {round(t / hop): a - t for t, a in received.of(s) if t0 <= t <= t1}
        expected += int(np.floor(t1 / hop) - np.ceil(t0 / hop)) + 1
        got += len(ends)
        latencies.extend(ends.values())
    return (got / expected if expected else float("nan")), latencies


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    """Poll ``predicate`` until true (True) or ``timeout`` s (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def main(argv: list[str] | None = None) -> int:
    """Run the soak (``painmon bench soak``); 0 when every target is met."""
    p = argparse.ArgumentParser(prog="painmon bench soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=120.0, help="seconds of flood (default 120)")
    p.add_argument("--fakes", type=int, default=3000, help="invented subject ids over the flood (default 3000)")
    p.add_argument("--model", default=None, help="model file for serve (default: bundled)")
    p.add_argument("--threads", type=int, default=None, help="torch threads of serve")
    p.add_argument("--baseline", type=float, default=20.0,
                   help="undisturbed seconds measured before the flood, for comparison (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, metavar="PATH", help="keep serve's output here")
    args = p.parse_args(argv)
    from devices.simulator import MQTTSimulator, SimulatedWearable

    work = Path(tempfile.mkdtemp(prefix="painmon-soak-"))
    broker = Broker(work)
    log_path = Path(args.log) if args.log else work / "serve.log"
    serve_cmd = [sys.executable, "-m", "monitor", "serve", "--mqtt", f"127.0.0.1:{broker.port}",
                 "--publish", "lsl", "--publish", "mqtt", "--health-every", "10"]
    if args.model:
        serve_cmd += ["--model", args.model]
    if args.threads:
        serve_cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log_file:
        serve = subprocess.Popen(serve_cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                 cwd=Path(__file__).resolve().parents[1])
    probe = Probe(serve.pid)
    received = Received()
    listener = _paho(broker.port, received.on_message)
    listener.subscribe("painmon/+/estimate", qos=0)
    config = MQTTConfig("127.0.0.1", broker.port, qos=1)
    real = MQTTSimulator(SimulatedWearable(2, seed=args.seed, subject_prefix="real"), config)
    late = MQTTSimulator(SimulatedWearable(1, seed=args.seed + 1, subject_prefix="late"), config)
    real_ids = list(real.wearable.subjects)
    flood = Flood(broker.port, args.duration, args.fakes, seed=args.seed)
    results: dict[str, float] = {}
    try:
        real.start()
        print(f"serve pid {serve.pid}, broker 127.0.0.1:{broker.port}; waiting for the real subjects' estimates")
        if not wait_for(lambda: all(received.of(s) for s in real_ids), 180.0):
            print(f"no estimates for the real subjects; serve's log: {log_path}")
            return 1
        fds_before = probe.open_files()
        t_base = time.monotonic()
        time.sleep(args.baseline)  # undisturbed: what this machine manages without a flood
        base_share, base_lat = share_and_latency(received, real_ids, t_base + 1.0, time.monotonic() - 1.0, hop=1.0)
        results["baseline_share"] = base_share
        results["baseline_p95_s"] = float(np.percentile(base_lat, 95)) if base_lat else float("nan")
        print(f"flood for {args.duration:g} s ({args.fakes} fake ids, tiny rates, 10 kHz x 64 ch, 10 MB, garbage)")
        t_flood = time.monotonic()
        flood.run()
        t_flood_end = time.monotonic()
        time.sleep(2.0)  # estimates of the last windows arrive
        share, lat = share_and_latency(received, real_ids, t_flood + 1.0, t_flood_end, hop=1.0)
        results["share"] = share
        results["p95_latency_s"] = float(np.percentile(lat, 95)) if lat else float("nan")
        t_late = time.monotonic()
        late.start()
        late_id = late.wearable.subjects[0]
        got = wait_for(lambda: bool(received.of(late_id)), 60.0, step=0.05)
        results["new_subject_s"] = (received.of(late_id)[0][1] - t_late) if got else float("inf")
        probe.sample()
        results["peak_rss_mb"] = probe.peak_rss_kb / 1024.0
        results["peak_open_files"] = probe.peak_fds
        results["open_files_before"] = fds_before
        results["open_files_after"] = probe.open_files()
    finally:
        for sim in (late, real):
            sim.stop()
        listener.loop_stop()
        listener.disconnect()
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
        probe.stop()
        broker.stop()
    log_lines = log_path.read_text(errors="replace").splitlines()
    print(f"sent: {', '.join(f'{n} {k}' for k, n in flood.sent.items())}")
    print(f"serve: exit code {serve.returncode}, {len(log_lines)} log lines ({log_path}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = [
        ("real subjects' estimate share", f"{results['share'] * 100:.1f} %", f">= {TARGETS['share'] * 100:.0f} %",
         results["share"] >= TARGETS["share"]),
        ("p95 latency (window end -> MQTT)", f"{results['p95_latency_s']:.2f} s",
         f"< {TARGETS['p95_latency_s']:g} s", results["p95_latency_s"] < TARGETS["p95_latency_s"]),
        ("peak RSS of serve", f"{results['peak_rss_mb']:.0f} MB", f"< {TARGETS['peak_rss_mb']:.0f} MB",
         results["peak_rss_mb"] < TARGETS["peak_rss_mb"]),
        ("open files (before / peak / after)",
         f"{results['open_files_before']} / {results['peak_open_files']} / {results['open_files_after']}",
         f"peak < {TARGETS['peak_open_files']}", results["peak_open_files"] < TARGETS["peak_open_files"]),
        ("new subject after the flood: first estimate", f"{results['new_subject_s']:.1f} s",
         f"< {TARGETS['new_subject_s']:g} s", results["new_subject_s"] < TARGETS["new_subject_s"]),
    ]
    print(f"without the flood ({args.baseline:g} s before it): share {results['baseline_share'] * 100:.1f} %, "
          f"p95 latency {results['baseline_p95_s']:.2f} s (what this machine manages at all)")
    print()
    print(f"| {'figure':<44} | {'measured':>16} | {'target':>12} | ok |")
    print(f"|{'-' * 46}|{'-' * 18}|{'-' * 14}|----|")
    for name, value, target, ok in rows:
        print(f"| {name:<44} | {value:>16} | {target:>12} | {'yes' if ok else 'NO':>2} |")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
