"""The batched estimator pass: batching must not change results, only present modalities
are rendered and encoded, and the head sees what was missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.encoder import load_encoder
from core.fusion import FusionHead
from core.inference import Estimator, ModalityWindow, SubjectWindow

torch.set_num_threads(1)  # a busy 2-core CI machine: one thread is faster than two

MODS = ("EDA", "BVP")


class CountingEncoder(torch.nn.Module):
    """The real encoder, counting the images it is given."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner
        self.images = 0
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += x.shape[0]
        self.calls += 1
        return self.inner(x)


@pytest.fixture(scope="module")
def est() -> Estimator:
    torch.manual_seed(0)
    head = FusionHead(MODS, ("waveform", "spectrogram_psd"), across="attention").eval()
    enc = CountingEncoder(load_encoder(None, device="cpu", precision="fp32"))
    return Estimator(enc, head, MODS, ("waveform", "spectrogram_psd"), model_name="m", window_s=3.0,
                     encoder_batch=4)


def window(subject: str, mods: dict[str, np.ndarray | None], t_end: float = 10.0) -> SubjectWindow:
    out = {}
    for m, sig in mods.items():
        out[m] = ModalityWindow(np.zeros(300, np.float32), 0.1, False, "flat") if sig is None else ModalityWindow(sig)
    return SubjectWindow(subject, t_end, out, preprocess_s=0.002)


def sig(freq: float) -> np.ndarray:
    return np.sin(np.arange(300) / 100.0 * 2 * np.pi * freq).astype(np.float32)


def test_batch_of_subjects_equals_one_at_a_time(est):
    windows = [
        window("a", {"EDA": sig(0.1), "BVP": sig(1.1)}),
        window("b", {"EDA": sig(0.2)}),  # BVP absent
        window("c", {"EDA": sig(0.3), "BVP": None}),  # BVP invalid (flat)
        window("d", {}),  # nothing at all
    ]
    together = est.estimate(windows)
    alone = [est.estimate([w])[0] for w in windows]
    assert [e.subject for e in together] == ["a", "b", "c", "d"]
    for t, a in zip(together, alone, strict=True):
        assert t.valid == a.valid and t.missing == a.missing
        np.testing.assert_allclose(t.probs, a.probs, atol=2e-5)
    assert [e.missing for e in together] == [(), ("BVP",), ("BVP",), ("EDA", "BVP")]
    assert together[3].valid is False and np.isnan(together[3].index)
    assert together[2].quality == {"EDA": 1.0, "BVP": 0.1}  # reported even when unusable
    # a modality's absence changes the estimate (the head really sees the mask)
    assert not np.allclose(together[0].probs, est.estimate([window("a", {"EDA": sig(0.1)})])[0].probs)


def test_only_present_modalities_are_rendered_and_encoded_in_chunks(est):
    enc = est.encoder
    enc.images = enc.calls = 0
    est.estimate([window("a", {"EDA": sig(0.1), "BVP": sig(1.0)}), window("b", {"EDA": sig(0.2)}), window("c", {})])
    assert enc.images == 3 * 2  # 3 present modality windows x 2 representations
    assert enc.calls == 2  # encoder_batch=4: 2 signals x 2 representations, then 1 x 2


def test_latency_record_and_index_definition(est):
    (e,) = est.estimate([window("a", {"EDA": sig(0.1), "BVP": sig(1.0)})])
    assert set(e.latency) == {"preprocess", "represent", "encode", "fuse", "batch", "total"}
    assert e.latency["preprocess"] == pytest.approx(0.002)
    assert e.latency["encode"] > 0 and e.latency["total"] >= e.latency["batch"]
    assert e.index == pytest.approx(50 * e.probs[1] + 100 * e.probs[2], abs=1e-4)
    assert e.model == "m" and e.t_end == 10.0


def test_non_finite_signal_counts_as_missing_not_a_crash(est):
    bad = sig(0.1).copy()
    bad[5] = np.nan
    (e,) = est.estimate([window("a", {"EDA": bad, "BVP": sig(1.0)})])
    assert e.valid and e.missing == ("EDA",)


def test_estimator_refuses_an_empty_model_description():
    from core.inference import EstimatorError

    with pytest.raises(EstimatorError, match="no modalities"):
        Estimator(torch.nn.Identity(), torch.nn.Identity(), (), ("waveform",))


class ShapeRecordingEncoder(CountingEncoder):
    """The real encoder, recording the batch size of every call."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__(inner)
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return super().forward(x)


@pytest.mark.parametrize("encoder_batch", [4, 5, 32])
def test_encoder_calls_names_the_batch_shapes_an_estimate_uses(est, encoder_batch):
    """What the engine asks the OpenVINO backend to compile ahead: it must be what estimate() does."""
    enc = ShapeRecordingEncoder(est.encoder.inner)
    e = Estimator(enc, est.head, MODS, est.representations, model_name="m", window_s=3.0, encoder_batch=encoder_batch)
    for n in (1, 2, 3, 5):
        enc.sizes.clear()
        e.estimate([window(f"s{i}", {"EDA": sig(0.1 + i / 10), "BVP": sig(1.1)}) for i in range(n)])
        assert enc.sizes == e.encoder_calls(n), (encoder_batch, n)
    assert e.encoder_calls(0) == []
