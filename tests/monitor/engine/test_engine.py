"""The engine on real components: BufferHub pushes, the real preprocessing and window
cutting, the real Tiny-BioMoE architecture and fusion head (a reduced 2-modality x
1-representation head where the point is not the model), real threads."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
import torch
from helpers import LivePush, wait_until

from core.buffers import BufferHub
from core.clock import now
from core.estimate import Estimate
from core.inference import ModalityWindow, SubjectWindow
from core.streams import StreamSpec
from monitor.engine import Engine, load_estimator

torch.set_num_threads(1)  # a busy 2-core CI machine: one thread is faster than two

RATES = {"EDA": 4.0, "BVP": 64.0}


def small_estimator(modalities=("EDA", "BVP"), representations=("waveform",)):
    """The real (fast-path, fp32) Tiny-BioMoE encoder, untrained, with a reduced head."""
    from core.encoder import load_encoder
    from core.fusion import FusionHead
    from core.inference import Estimator

    torch.manual_seed(0)
    head = FusionHead(modalities, representations).eval()
    encoder = load_encoder(None, device="cpu", precision="fp32")
    return Estimator(encoder, head, modalities, representations, model_name="unit-small", window_s=2.0)


@pytest.fixture(scope="module")
def estimator():
    return small_estimator()


def spec(subject: str, modality: str, rate: float | None = None) -> StreamSpec:
    return StreamSpec(
        subject, modality, (modality,), rate if rate is not None else RATES[modality], name=f"{subject} {modality}"
    )


def signal(modality: str, ts: np.ndarray, subject: str = "") -> np.ndarray:
    if subject.startswith("broken"):  # physically impossible values (negative conductance)
        return np.full(ts.size, -5.0, np.float32)
    if modality == "EDA":
        return (5.0 + 0.5 * np.sin(2 * np.pi * 0.05 * ts)).astype(np.float32)
    return np.sin(2 * np.pi * 1.2 * ts).astype(np.float32)


def push_history(hub: BufferHub, subject: str, t0: float, t1: float, modalities=RATES, chunk_s: float = 0.25) -> None:
    """Push samples with timestamps in [t0, t1) in chunks, as a source would."""
    for m, rate in modalities.items():
        ts_all = np.arange(np.ceil(t0 * rate), np.ceil(t1 * rate)) / rate
        step = max(1, int(chunk_s * rate))
        for i in range(0, ts_all.size, step):
            ts = ts_all[i : i + step]
            hub.push(spec(subject, m), signal(m, ts, subject), ts)


class Collector:
    def __init__(self):
        self.items: list[Estimate] = []
        self.lock = threading.Lock()

    def __call__(self, est: Estimate) -> None:
        with self.lock:
            self.items.append(est)

    def snapshot(self) -> list[Estimate]:
        with self.lock:
            return list(self.items)

    def of(self, subject: str) -> list[Estimate]:
        with self.lock:
            return [e for e in self.items if e.subject == subject]


def test_offline_engine_cuts_every_aligned_window_of_each_subject(estimator):
    hub = BufferHub()
    engine = Engine(hub, estimator=estimator, window_s=2.0, hop_s=0.5, realtime=False, stall_s=1.0)
    got = Collector()
    engine.add_callback(got)
    engine.start(warmup=False)
    try:
        t1 = np.floor(now()) - 1.0
        t0 = t1 - 4.0
        push_history(hub, "a", t0, t1)
        push_history(hub, "b", t0 + 1.0, t1)
        # windows end on the 0.5 s grid from the first full window to the end of the data
        want_a = list(np.arange(t0 + 2.0, t1 + 1e-9, 0.5))
        want_b = list(np.arange(t0 + 3.0, t1 + 1e-9, 0.5))
        assert wait_until(lambda: len(got.snapshot()) >= len(want_a) + len(want_b), 60)
        time.sleep(1.3)  # the streams go stale: no further (empty) windows may follow
    finally:
        engine.stop()
    a, b = got.of("a"), got.of("b")
    assert [e.t_end for e in a] == pytest.approx(want_a)
    assert [e.t_end for e in b] == pytest.approx(want_b)
    for e in a + b:
        assert e.valid and e.missing == ()
        assert set(e.quality) == {"EDA", "BVP"} and min(e.quality.values()) > 0.9
        assert 0.0 <= e.index <= 100.0 and sum(e.probs) == pytest.approx(1.0, abs=1e-5)
        assert e.model == "unit-small"
        assert {"preprocess", "represent", "encode", "fuse", "total"} <= set(e.latency)
        assert np.isfinite(e.smoothed) and np.isfinite(e.smoothed_long)
    # the short trend follows the index more closely than the long one
    assert a[0].smoothed == pytest.approx(a[0].index) and a[0].smoothed_long == pytest.approx(a[0].index)
    st = engine.stats()
    assert st.estimates == len(a) + len(b) and st.skipped == 0 and not st.running


class LivePusher(LivePush):
    """Streams of several subjects pushed in real time (50 ms chunks) from a thread,
    with ``prefill_s`` of history first; ``stop_at[(subject, modality)]`` ends a stream."""

    def __init__(self, hub: BufferHub, streams: dict[str, dict[str, float]], prefill_s: float):
        super().__init__(prefill_s, period_s=0.05)
        self.hub, self.streams = hub, streams
        self.stop_at: dict[tuple[str, str], float] = {}

    def _push(self, t0: float, t1: float) -> None:
        for s, mods in self.streams.items():
            for m, rate in mods.items():
                end = min(t1, self.stop_at.get((s, m), np.inf))
                if end > t0:
                    push_history(self.hub, s, t0, end, {m: rate}, chunk_s=1.0)


def test_missing_modality_is_estimated_without_it_and_marked(estimator):
    hub = BufferHub()
    engine = Engine(hub, estimator=estimator, window_s=2.0, hop_s=1.0, stall_s=0.5)
    got = Collector()
    engine.add_callback(got)
    engine.start(warmup=False)
    pusher = LivePusher(hub, {"eda-only": {"EDA": 4.0}, "bvp-stops": RATES}, prefill_s=2.5)
    t_stop = now() + 1.0
    pusher.stop_at[("bvp-stops", "BVP")] = t_stop  # its BVP sensor falls off after 1 s
    try:
        with pusher:
            assert wait_until(lambda: any(e.subject == "eda-only" for e in got.snapshot()), 60)
            assert wait_until(
                lambda: any(e.subject == "bvp-stops" and e.t_end > t_stop + 1.0 for e in got.snapshot()), 60
            )
    finally:
        engine.stop()
    for e in got.of("eda-only"):
        assert e.valid and e.missing == ("BVP",) and np.isfinite(e.index)
        assert set(e.quality) == {"EDA"}
    before = [e for e in got.of("bvp-stops") if e.t_end <= t_stop - 0.1]
    after = [e for e in got.of("bvp-stops") if e.t_end > t_stop + 1.0]
    assert before and all(e.missing == () for e in before)
    assert after and all("BVP" in e.missing and "EDA" not in e.missing and e.valid for e in after)


def test_no_usable_modality_gives_an_invalid_estimate_not_a_number(estimator):
    hub = BufferHub()
    engine = Engine(hub, estimator=estimator, window_s=2.0, hop_s=1.0, stall_s=0.5)
    got = Collector()
    engine.add_callback(got)
    engine.start(warmup=False)
    try:
        with LivePusher(hub, {"broken": {"EDA": 4.0}}, prefill_s=2.5):
            assert wait_until(lambda: len(got.snapshot()) >= 1, 60)
    finally:
        engine.stop()
    e = got.items[0]
    assert not e.valid and np.isnan(e.index) and set(e.missing) == {"EDA", "BVP"}


def test_realtime_overload_lengthens_every_hop_and_stays_current(estimator):
    """Four subjects at a 0.05 s hop ask for ~160 images/s, more than this CPU encodes: the
    engine must lengthen every subject's hop (measured at start) instead of drifting
    behind real time, and keep serving every subject."""
    hub = BufferHub()
    engine = Engine(hub, estimator=estimator, window_s=2.0, hop_s=0.05, realtime=True, threads=1)
    got = Collector()
    engine.add_callback(got)
    subjects = [f"s{i}" for i in range(4)]
    engine.start(warmup=True)
    assert engine.wait_warm(60)
    try:
        with LivePusher(hub, {s: RATES for s in subjects}, prefill_s=2.5):
            time.sleep(4.0)
            # every subject keeps getting estimates (no starvation by the others)
            assert wait_until(lambda: all(got.of(s) for s in subjects), 60)
            st = engine.stats()
            lag = now() - max(e.t_end for e in got.items)
    finally:
        engine.stop()
    assert st.degraded and st.hop_s > 0.05 and st.load_text.startswith("degraded: hop")
    assert st.windows_cut >= st.estimates > 0
    # without it, 4 s x 20 windows/s x 4 subjects would pile up ~320 windows (minutes of
    # work); with it, the newest estimate is only a few batches (one hop) behind real time
    batch = max(e.latency["batch"] for e in got.items)
    assert lag < 3 * batch + st.hop_s + 1.0, f"estimates lag {lag:.2f} s behind real time (batch {batch:.2f} s)"


@pytest.mark.allow_thread_errors  # the failing callback is logged from the engine thread
def test_start_stop_idempotent_and_callback_errors_contained(estimator):
    hub = BufferHub()
    engine = Engine(hub, estimator=estimator, window_s=2.0, realtime=False)
    good = Collector()

    def bad(_est):
        raise RuntimeError("broken consumer")

    engine.add_callback(bad)
    engine.add_callback(good)
    engine.start(warmup=False)
    engine.start(warmup=False)
    assert len([t for t in threading.enumerate() if t.name.startswith("painmon-")]) >= 2
    t1 = np.floor(now())
    push_history(hub, "a", t1 - 2.5, t1)
    assert wait_until(lambda: len(good.snapshot()) >= 1, 60)
    assert engine.latest("a") is not None
    engine.forget("a")
    assert engine.latest("a") is None and engine.scheduler.subjects() == []
    engine.stop()
    engine.stop()
    assert not engine.running
    assert not any(t.name in ("painmon-worker", "painmon-scheduler") and t.is_alive() for t in threading.enumerate())
    assert engine.stats().estimates >= 1


def test_bad_chunk_is_rejected_and_counted_without_losing_the_stream(estimator):
    hub = BufferHub()
    engine = Engine(hub, estimator=estimator, window_s=2.0, realtime=False)
    got = Collector()
    engine.add_callback(got)
    engine.start(warmup=False)
    try:
        t1 = np.floor(now())
        push_history(hub, "a", t1 - 3.0, t1 - 1.0)
        # a chunk whose channel count disagrees with its stream: refused by the preprocessor
        engine.ingest.listener(spec("a", "EDA"), np.zeros((3, 2), np.float32), np.array([t1 - 0.9, t1 - 0.8, t1 - 0.7]))
        push_history(hub, "a", t1 - 1.0, t1)
        assert wait_until(lambda: any(e.t_end >= t1 - 0.5 for e in got.snapshot()), 60)
    finally:
        engine.stop()
    assert engine.stats().rejected_chunks == 1
    assert all(e.valid for e in got.items)


def test_invalid_configuration_is_refused(estimator):
    with pytest.raises(ValueError, match="must be positive"):
        Engine(BufferHub(), estimator=estimator, hop_s=0.0)


def test_end_to_end_default_configuration_from_a_model_file(tmp_path):
    """The full default layout (4 modalities x 4 representations, 10 s windows) loaded from
    a PainMon model file, fed by the simulated wearable at its device rates."""
    from core.checkpoint import ModelMetadata, save_model
    from core.encoder import TinyBioMoE
    from core.fusion import FusionHead
    from core.modalities import DEFAULT_MODALITIES
    from core.representations import DEFAULT_REPRESENTATIONS, RepresentationConfig
    from devices.simulator import SimulatedWearable

    torch.manual_seed(1)
    head = FusionHead(DEFAULT_MODALITIES, DEFAULT_REPRESENTATIONS)
    rep = RepresentationConfig(nfft=128, noverlap=112)  # recorded settings must reach the renderer
    meta = ModelMetadata(name="e2e-default", modalities=list(DEFAULT_MODALITIES),
                         representations=list(DEFAULT_REPRESENTATIONS), window_s=10.0,
                         preprocessing={"representation_config": dataclasses.asdict(rep)})
    path = save_model(tmp_path / "m.pt", head, meta, encoder_state_dict=TinyBioMoE().state_dict())

    hub = BufferHub()
    engine = Engine(hub, load_estimator(path, device="cpu").estimator, realtime=False)
    assert engine.window_s == 10.0 and engine.modalities == DEFAULT_MODALITIES
    assert engine.estimator.render_config == rep
    got = Collector()
    engine.add_callback(got)
    engine.start(warmup=False)
    sim = SimulatedWearable(1, seed=2)
    specs = {s.modality: s for s in sim.specs(markers=False)}
    t1 = np.floor(now())
    t0 = t1 - 11.0
    try:
        for ch in sim.advance(11.0):
            if ch.values is not None:
                hub.push(specs[ch.modality], ch.values, t0 + ch.times)
        assert wait_until(lambda: len(got.snapshot()) >= 1, 120)
    finally:
        engine.stop()
    e = got.items[0]
    assert e.subject == "sim-1" and e.model == "e2e-default" and e.valid and e.missing == ()
    assert e.t_end == pytest.approx(np.ceil(t0 + 10.0))
    assert set(e.quality) == set(DEFAULT_MODALITIES) and min(e.quality.values()) > 0.8
    assert 0.0 <= e.index <= 100.0
    assert e.latency["encode"] > 0 and e.latency["represent"] > 0


def test_model_threads_reach_the_openvino_encoder_and_a_mismatch_is_warned(tmp_path, monkeypatch, caplog):
    """``--threads N`` with the OpenVINO backend: the runtime fixes its thread count when it
    compiles at load, before the engine's worker sets torch's, so the model options must carry it
    to the load (a real conversion and compile, the count read back from the runtime). An engine
    given another count than its encoder was compiled for says so."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed (optional extra painmon[openvino])")
    from core.checkpoint import ModelMetadata, save_model
    from core.encoder import TinyBioMoE
    from core.fusion import FusionHead
    from monitor.engine import ModelOptions

    monkeypatch.setenv("PAINMON_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(2)
    meta = ModelMetadata(name="ov-threads", modalities=["EDA", "BVP"], representations=["waveform"], window_s=2.0)
    path = save_model(tmp_path / "m.pt", FusionHead(("EDA", "BVP"), ("waveform",)), meta,
                      encoder_state_dict=TinyBioMoE().state_dict())
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # what the encoder would follow if the option were lost on the way
    try:
        loaded = ModelOptions(model_path=str(path), device="cpu", precision="fp32", backend="openvino",
                              threads=2).load()
    finally:
        torch.set_num_threads(before)
    encoder = loaded.estimator.encoder
    assert encoder.info.backend == "openvino"
    assert set(encoder.compiled_property("INFERENCE_NUM_THREADS")) == {2}
    with caplog.at_level("WARNING", logger="monitor.engine.engine"):
        engine = Engine(BufferHub(), loaded.estimator, threads=2)
        assert "compiled for" not in caplog.text
        Engine(BufferHub(), loaded.estimator, threads=1)
    assert "openvino encoder was compiled for 2 threads, not the engine's 1" in caplog.text
    # before timing itself the engine has the encoder compile the batch shapes it will meet most:
    # one window (2 images: below the split, one request), two and three, and a full encoder call
    assert encoder.specialised == []
    engine.measure_capacity()
    assert {("latency", 2), ("throughput", 2), ("throughput", 3), ("throughput", 16)} <= set(encoder.specialised)


def test_model_settings_checks_and_their_effect(estimator, tmp_path, caplog):
    """Recorded representation settings are parsed (unknown ones refused) and change the
    images; a preprocessing chain that differs from the running one is warned about."""
    from core.checkpoint import ModelLoadError
    from core.preprocessing import chain_for
    from core.representations import RepresentationConfig
    from monitor.engine.model import check_chains, representation_config

    chains = {m: dataclasses.asdict(chain_for(m)) for m in ("EDA", "BVP")}
    with caplog.at_level("WARNING"):
        assert check_chains({"chains": chains}, ["EDA", "BVP"], tmp_path) == []
        changed = dict(chains, BVP=dict(chains["BVP"], flat_max_s=123.0))
        assert check_chains({"chains": changed}, ["EDA", "BVP"], tmp_path) == ["BVP"]
    assert "other preprocessing for BVP" in caplog.text
    rep = {"nfft": 128, "noverlap": 120}
    assert representation_config({"representation_config": rep}, tmp_path) == RepresentationConfig(**rep)
    assert representation_config({}, tmp_path) is None
    with pytest.raises(ModelLoadError, match="unusable representation settings"):
        representation_config({"representation_config": {"nfft": 64, "hop_mode": "x"}}, tmp_path)
    # the settings are really used: other images, other estimate
    from core.inference import Estimator

    spec_est = Estimator(estimator.encoder, type(estimator.head)(("EDA", "BVP"), ("spectrogram_psd",)).eval(),
                         ("EDA", "BVP"), ("spectrogram_psd",), window_s=4.0)
    w = [SubjectWindow("a", 4.0, {m: ModalityWindow(np.sin(np.arange(400) / (3.0 + i)).astype(np.float32))
                                  for i, m in enumerate(("EDA", "BVP"))})]
    default = spec_est.estimate(w)[0].probs
    spec_est.render_config = RepresentationConfig(**rep)
    assert not np.allclose(default, spec_est.estimate(w)[0].probs, atol=1e-6)
