"""The simulated wearable on real LSL outlets: in-process LSLSimulator and ``painmon simulate --lsl``,
received by the real LSLSource."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import numpy as np
import pylsl
from helpers import REPO_ROOT, wait_until

from core.buffers import BufferHub
from core.streams import MARKERS
from devices.lsl import LSLSource, discover
from devices.simulator import LSLSimulator, PainSchedule, SimulatedWearable, SubjectProfile, simulate, subject_seed

REPO = REPO_ROOT


def _source_for(prefix: str) -> LSLSource:
    return LSLSource(predicate=f"starts-with(source_id, 'painmon:{prefix}-')", resolve_interval=0.3)


def _is_contiguous_run_of(received: np.ndarray, full: np.ndarray) -> bool:
    """``received`` equals ``full[i:i + n]`` for some i (a late subscriber misses the start)."""
    n = received.size
    starts = np.flatnonzero(full == received[0])
    return any(np.array_equal(full[i:i + n], received) for i in starts)


def test_lsl_simulator_streams_follow_conventions_and_values():
    prefix = "t" + uuid.uuid4().hex[:8]
    schedule = PainSchedule.parse("no:0.5,high:0.5")
    wearable = SimulatedWearable(2, seed=4, schedule=schedule, subject_prefix=prefix)
    hub = BufferHub(seconds=30)
    src = _source_for(prefix)
    with LSLSimulator(wearable, chunk_interval=0.05) as sim:
        src.start(hub)
        try:
            assert src.wait_for_streams(10, timeout=15.0)  # 2 subjects x (4 modalities + markers)
            bvp = hub.buffer(f"{prefix}-2", "BVP")
            assert wait_until(lambda: len(bvp) >= 64 and len(hub.markers(f"{prefix}-1")) >= 2, 5.0)
            rate = lambda: next(h.effective_rate for h in src.health() if h.spec.name == f"{prefix}-2 BVP")  # noqa: E731
            assert wait_until(lambda: 0.75 * 64 < rate() < 1.25 * 64, 5.0), rate()  # effective vs nominal
        finally:
            src.stop()
        found = discover(timeout=0.5, predicate=f"starts-with(source_id, 'painmon:{prefix}-')")
        assert {s.uid for s in found} == sim.uids() and len(sim.uids()) == 10
    assert {h.spec.name for h in src.health()} == set(sim.stream_names())
    specs = {(s.subject, s.modality): s for s in src.streams()}
    assert set(specs) == {(f"{prefix}-{i}", m) for i in (1, 2) for m in ("EDA", "BVP", "RESP", "SpO2", MARKERS)}
    eda = specs[(f"{prefix}-1", "EDA")]
    assert (eda.name, eda.source_id, eda.channels, eda.units, eda.nominal_rate) == (
        f"{prefix}-1 EDA", f"painmon:{prefix}-1:EDA", ("EDA",), "µS", 4.0)
    # the values are the simulation's, in order, on the simulation's time grid
    offline = simulate(wearable.profile(f"{prefix}-2"), schedule, 20, seed=subject_seed(4, 1))
    values, ts = bvp.snapshot()
    assert _is_contiguous_run_of(values[:, 0], offline.signals["BVP"][0])
    np.testing.assert_allclose(np.diff(ts), 1 / 64, atol=2e-3)
    k0 = np.flatnonzero(offline.signals["BVP"][0] == values[0, 0])[0]
    assert abs(ts[0] - (sim.t_start + k0 / 64)) < 0.01  # timestamp = start + simulation time
    # the marker stream alternates with the schedule, stamped at the change times
    marks = hub.markers(f"{prefix}-1")
    assert {m.label for m in marks} == {"pain:no", "pain:high"}
    # each marker names the true level at its time: one per change, stamped at the change,
    # plus the current level announced when the monitor subscribed (it missed the start)
    for m in marks:
        assert m.label == "pain:" + schedule.level_at(m.timestamp - sim.t_start + 1e-3)
    on_changes = [
        m for m in marks if abs((m.timestamp - sim.t_start) / 0.5 - round((m.timestamp - sim.t_start) / 0.5)) < 0.01
    ]
    assert len(on_changes) >= 2 and len(marks) - len(on_changes) <= 1
    assert not any(h.connected for h in src.health())


def test_simulate_command_publishes_lsl_deterministically_with_seed():
    prefix = "c" + uuid.uuid4().hex[:8]
    hub = BufferHub(seconds=30)
    src = _source_for(prefix)
    src.start(hub)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "simulate", "--lsl", "--subjects", "1", "--seed", "3",
         "--duration", "4", "--prefix", prefix, "--schedule", "no:1,low:1", "--rates", "EDA=32"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    try:
        assert src.wait_for_streams(5, timeout=30.0)
        eda = hub.buffer(f"{prefix}-1", "EDA")
        assert wait_until(lambda: len(eda) >= 32, 10.0)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        src.stop()
    assert proc.returncode == 0
    assert f"simulating {prefix}-1 on LSL (seed 3)" in out and f"{prefix}-1: pain:low" in out
    assert hub.spec(f"{prefix}-1", "EDA").nominal_rate == 32.0
    offline = simulate(SubjectProfile.random(subject_seed(3, 0)), PainSchedule.parse("no:1,low:1"), 10,
                       seed=subject_seed(3, 0), rates={"EDA": 32})
    values, _ = eda.snapshot()
    assert _is_contiguous_run_of(values[:, 0], offline.signals["EDA"][0])
    assert pylsl.local_clock() > 0  # clock shared with the subprocess (same machine)


def test_simulate_command_rejects_bad_options():
    from monitor.cli import main

    assert main(["simulate", "--schedule", "no:10,ouch:5", "--duration", "1"]) == 2
    assert main(["simulate", "--subjects", "0"]) == 2
    assert main(["simulate", "--rates", "BVP=fast"]) == 2
