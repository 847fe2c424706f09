"""``painmon bench realtime``: the backend list it interleaves, how rounds of one measurement pool, and
what counts as real time."""

from __future__ import annotations

import numpy as np

from benchmarks.realtime import BackendChoice, RunResult, backends_to_run, in_real_time, merge_runs


def _run(latencies: list[float], *, estimates: int = 10, skipped: int = 0, hop: float = 1.0,
         load: float = 1.0) -> RunResult:
    return RunResult(1, 10.0, estimates, 10, skipped, np.asarray(latencies), None, {"encode": 0.3}, hop, load)


def test_backend_list_takes_a_precision_per_entry():
    assert backends_to_run("torch:fp32, openvino:fp32,openvino:bf16,openvino", None) == [
        BackendChoice("torch", "fp32"), BackendChoice("openvino", "fp32"), BackendChoice("openvino", "bf16"),
        BackendChoice("openvino")]
    assert [c.label for c in backends_to_run("openvino:bf16,torch", None)] == ["openvino:bf16", "torch"]
    assert backends_to_run(None, "openvino") == [BackendChoice("openvino")]
    assert backends_to_run(None, None) == [BackendChoice("torch")]


def test_rounds_pool_latencies_and_keep_the_worst_hop():
    merged = merge_runs([_run([0.1, 0.2], load=2.0), _run([0.3], skipped=1, hop=1.25, load=4.0)])
    assert merged.estimates == 20 and merged.expected == 20 and merged.skipped == 1
    assert sorted(merged.latencies.tolist()) == [0.1, 0.2, 0.3]
    assert merged.max_hop_s == 1.25 and merged.degraded and merged.load == 3.0
    assert not in_real_time(merged)  # one round degraded: the backend did not keep real time


def test_real_time_needs_every_window_on_time_at_the_configured_hop():
    assert in_real_time(_run([0.3] * 10))
    assert not in_real_time(_run([0.3] * 10, skipped=1))
    assert not in_real_time(_run([0.3] * 10, estimates=8))  # fell behind
    assert not in_real_time(_run([1.2] * 10))  # p95 over the hop
    assert not in_real_time(_run([0.3] * 10, hop=1.25))  # capacity planning lengthened the hop
