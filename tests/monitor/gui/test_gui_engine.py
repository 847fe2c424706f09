"""End to end: simulated wearable -> hub -> real engine (small real model) -> dashboard."""

import pytest
import torch

from monitor.gui.session import EngineConfig

torch.set_num_threads(2)


def small_estimator():
    """The real encoder and fusion head, untrained, on two modalities and one
    representation with a 2 s window: the whole pipeline, quick enough for a test."""
    from core.encoder.model import TinyBioMoE
    from core.fusion import FusionHead
    from core.inference import Estimator

    torch.manual_seed(0)
    modalities, representations = ("EDA", "BVP"), ("waveform",)
    head = FusionHead(modalities, representations).eval()
    return Estimator(TinyBioMoE().eval(), head, modalities, representations, model_name="gui-small", window_s=2.0)


def test_engine_estimates_reach_the_dashboard_and_the_recording(qtbot, window, tmp_path):
    import pyxdf

    from devices.simulator import SimulatedWearable, SimulatorSource

    session = window.session
    session.start_engine(EngineConfig(estimator=small_estimator(), window_s=2.0, hop_s=1.0), wait=True)
    assert session.engine_state == "running", session.engine_state
    path = tmp_path / "rec.xdf"
    assert window.start_recording(path)
    window.add_source(SimulatorSource(SimulatedWearable(1, seed=5)))
    qtbot.waitUntil(lambda: "sim-1" in window.panels and len(window.panels["sim-1"].rows) == 4, timeout=10000)
    view = window.panels["sim-1"].estimate_view
    window._on_slow()
    if len(window.log) == 0:  # before the first full window
        assert view.state == "warmup" and "warming up" in view.state_label.text()
    qtbot.waitUntil(lambda: len(window.log) >= 3, timeout=60000)
    est = window.log.latest("sim-1")  # the log and the view are updated in the same slot
    assert est.model == "gui-small" and 0.0 <= est.index <= 100.0
    assert view.state == ("valid" if est.valid else "invalid")
    assert view.index_label.text() == (f"{est.smoothed:.0f}" if est.valid else "--")  # the headline
    window._on_slow()
    assert window.panels["sim-1"].trend.drawn_points() >= 3
    assert "model gui-small" in window.status.engine_label.text()
    assert "gui-small" in window.notice.text()
    n_shown = len(window.log)
    window.close()
    assert session.engine is None and session.engine_state == "off"
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False, synchronize_clocks=False)
    [recorded] = [s for s in streams if s["info"]["type"][0] == "PainIndex"]
    # every estimate the dashboard showed is in the file (the recorder gets them first)
    assert len(recorded["time_stamps"]) >= n_shown


@pytest.mark.allow_thread_errors  # the loader thread logs the failed engine start it reports
def test_engine_that_cannot_load_is_reported_and_signals_keep_flowing(qtbot, window, tmp_path):
    from devices.simulator import SimulatedWearable, SimulatorSource
    from monitor.engine import ModelOptions
    from monitor.gui.app import model_overrides

    # the command line's model options, as `painmon monitor --backend torch --threads 1` gives them
    window.engine_overrides.update(model_overrides(ModelOptions(model_path=str(tmp_path / "missing.pt"),
                                                                backend="torch", threads=1)))
    window.start_engine()
    qtbot.waitUntil(lambda: window.session.engine_state.startswith("error"), timeout=20000)
    assert "missing.pt" in window.session.engine_state
    config = window.session.engine_config  # what the model load was given
    assert (config.backend, config.threads) == ("torch", 1)
    window.add_source(SimulatorSource(SimulatedWearable(1, seed=6)))
    qtbot.waitUntil(
        lambda: "sim-1" in window.panels and window.panels["sim-1"].rows.get("BVP") is not None, timeout=10000
    )
    qtbot.waitUntil(lambda: window.panels["sim-1"].rows["BVP"].point_count() > 10, timeout=10000)
    window._on_slow()
    assert window.panels["sim-1"].estimate_view.state == "unavailable"
    assert "missing.pt" in window.status.engine_label.text()
