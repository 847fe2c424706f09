"""The one assembly: simulated source -> hub -> real engine (small real model) -> outputs and
recorder, with the ordered stop that loses no recorded estimate; and the CLI around it."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from helpers import REPO_ROOT

from core.errors import PainMonError
from core.wire import ESTIMATE_STREAM_TYPE
from monitor.engine import Engine
from monitor.pipeline import Pipeline, PipelineError


def small_estimator():
    """The real encoder and fusion head, untrained, on two modalities and one
    representation with a 2 s window: the whole pipeline, quick enough for a test."""
    from core.encoder.model import TinyBioMoE
    from core.fusion import FusionHead
    from core.inference import Estimator

    torch.manual_seed(0)
    modalities, representations = ("EDA", "BVP"), ("waveform",)
    head = FusionHead(modalities, representations).eval()
    return Estimator(TinyBioMoE().eval(), head, modalities, representations, model_name="pipe-small", window_s=2.0)


class StateAtClose:
    """An estimate output that keeps what it got and, when closed, what still ran then."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.got: list = []
        self.lock = threading.Lock()
        self.at_close: dict[str, bool] | None = None

    def __call__(self, est) -> None:
        with self.lock:
            self.got.append(est)

    def close(self) -> None:
        engine = self.pipeline.engine
        self.at_close = {
            "sources": bool(self.pipeline.sources),
            "engine": engine is not None and engine.running,
            "recording": self.pipeline.recording,
        }


def test_pipeline_runs_and_stops_in_order_losing_no_recorded_estimate(tmp_path):
    import pyxdf

    from devices.simulator import SimulatedWearable, SimulatorSource

    torch.set_num_threads(2)
    pipeline = Pipeline()
    engine = Engine(pipeline.hub, small_estimator(), hop_s=0.5, threads=2)
    pipeline.set_engine(engine)
    output = StateAtClose(pipeline)
    pipeline.add_output(output)
    listened: list = []
    pipeline.add_listener(listened.append)
    source = SimulatorSource(SimulatedWearable(1, seed=4))
    pipeline.add_source(source)
    assert not engine.running  # nothing runs before start
    path = pipeline.start_recording(tmp_path / "pipe.xdf")
    pipeline.start()
    try:
        with pytest.raises(PipelineError):
            pipeline.start_recording(tmp_path / "again.xdf")
        deadline = time.monotonic() + 90
        while len(output.got) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        health = pipeline.health()
    finally:
        pipeline.stop()
    assert len(output.got) >= 3
    assert health.engine is not None and health.engine.estimates >= 3 and health.engine.model == "pipe-small"
    assert health.recording == path
    assert {h.spec.modality for h in health.streams} >= {"EDA", "BVP"} and health.connected >= 2
    # outputs close after sources and engine have stopped, before the recorder does
    assert output.at_close == {"sources": False, "engine": False, "recording": True}
    assert pipeline.engine is None and not engine.running and pipeline.recorder is None
    assert [e.t_end for e in listened] == [e.t_end for e in output.got]  # same estimates, same order
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False, synchronize_clocks=False)
    [recorded] = [s for s in streams if s["info"]["type"][0] == ESTIMATE_STREAM_TYPE]
    # the recorder is handed every estimate first: the file has all the output saw
    assert len(recorded["time_stamps"]) >= len(output.got)
    pipeline.stop()  # a second stop is harmless


def test_pipeline_refuses_an_engine_on_another_hub():
    from core.buffers import BufferHub

    pipeline = Pipeline()
    with pytest.raises(PipelineError, match="another hub") as info:
        pipeline.set_engine(Engine(BufferHub(), small_estimator()))
    assert isinstance(info.value, PainMonError) and isinstance(info.value, RuntimeError)


def test_cli_turns_a_painmon_error_into_one_line_and_exit_1(tmp_path, capsys):
    from monitor.cli import main
    from monitor.engine import ModelNotFoundError

    assert issubclass(ModelNotFoundError, PainMonError) and issubclass(ModelNotFoundError, FileNotFoundError)
    missing = tmp_path / "missing.pt"
    assert main(["bench", "realtime", "--model", str(missing), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("painmon bench: error: model file") and str(missing) in err
    assert "\n" not in err and "Traceback" not in err


def test_bench_finds_benchmarks_without_importing_them():
    import subprocess
    import sys

    # building the command line (which lists the benchmarks) must not import benchmarks/
    code = ("import sys; from monitor.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'benchmarks'))")
    repo = REPO_ROOT
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from monitor.commands.bench import available, load

    assert {"encoder", "gui", "realtime", "representations"} <= set(available())
    assert callable(load("realtime"))
    with pytest.raises(KeyError):
        load("no-such-benchmark")
