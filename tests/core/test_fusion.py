"""Fusion head: shapes, every fusion mode, missing modalities, the pain index."""

from __future__ import annotations

import pytest
import torch

from core.fusion import FusionConfig, FusionConfigError, FusionHead, pain_index, predict

torch.set_num_threads(1)
MODS = ("EDA", "BVP", "RESP", "SpO2")
REPS = ("waveform", "stft", "cwt")


@pytest.mark.parametrize("within", ["add", "concat"])
@pytest.mark.parametrize("across", ["add", "concat", "attention"])
def test_every_mode_learns_a_separable_problem_and_survives_masking(within, across):
    """Each mode must fit a toy task (class encoded in EDA) and stay finite with modalities masked."""
    torch.manual_seed(0)
    head = FusionHead(MODS, REPS, within=within, across=across, hidden=32, dropout=0.0, modality_dropout=0.0)
    n = 60
    y = torch.arange(n) % 3
    emb = torch.randn(n, 4, 3, 192) * 0.1
    emb[:, 0, :, :8] += (y[:, None, None].float() - 1.0) * 2.0  # class signal in EDA only
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    mask = torch.ones(n, 4, dtype=torch.bool)
    for _ in range(40):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(emb, mask), y)
        loss.backward()
        opt.step()
    probs, index = predict(head, emb, mask)
    assert (probs.argmax(1) == y).float().mean() > 0.9
    # SpO2 and BVP missing, with NaN in their slots: results stay finite and unchanged by the NaN values.
    mask2 = mask.clone()
    mask2[:, [1, 3]] = False
    emb_nan = emb.clone()
    emb_nan[:, [1, 3]] = float("nan")
    p_nan, i_nan = predict(head, emb_nan, mask2)
    p_zero, _ = predict(head, torch.where(mask2[:, :, None, None], emb, 0.0), mask2)
    assert torch.isfinite(p_nan).all() and torch.isfinite(i_nan).all()
    assert torch.allclose(p_nan, p_zero, atol=1e-6)
    # Everything masked: still a finite probability vector.
    p_none, _ = predict(head, emb_nan, torch.zeros(n, 4, dtype=torch.bool))
    assert torch.isfinite(p_none).all()
    assert torch.allclose(p_none.sum(1), torch.ones(n), atol=1e-5)


def test_masked_modality_does_not_influence_output():
    torch.manual_seed(1)
    head = FusionHead(MODS, REPS, across="attention").eval()
    emb = torch.randn(5, 4, 3, 192)
    mask = torch.tensor([[True, True, True, False]] * 5)
    other = emb.clone()
    other[:, 3] = torch.randn(5, 3, 192) * 50
    assert torch.allclose(head(emb, mask), head(other, mask), atol=1e-5)
    assert not torch.allclose(head(emb), head(other), atol=1e-3)


def test_modality_dropout_only_in_training_and_keeps_one():
    torch.manual_seed(2)
    head = FusionHead(MODS, REPS, modality_dropout=0.9)
    mask = torch.ones(2000, 4, dtype=torch.bool)
    mask[:1000, 1:] = False  # first half: only EDA present
    head.train()
    dropped = head._drop_modalities(mask)
    assert dropped.any(1).all(), "every window keeps at least one modality"
    assert not (dropped & ~mask).any(), "never invents an absent modality"
    assert dropped[:1000, 0].all()
    assert dropped[1000:].float().mean() < 0.5
    head.eval()
    assert torch.equal(head._drop_modalities(mask), mask)


def test_pain_index_definition():
    probs = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0, 0.5], [0.2, 0.3, 0.5]])
    idx = pain_index(probs)
    assert torch.allclose(idx, torch.tensor([0.0, 50.0, 100.0, 50.0, 65.0]))
    with pytest.raises(FusionConfigError, match=r"\(B, 3\)"):
        pain_index(torch.ones(2, 4))


def test_bad_shapes_and_configs_are_explained():
    head = FusionHead(MODS, REPS)
    with pytest.raises(FusionConfigError, match=r"\(B, 4, 3, 192\).*SpO2"):
        head(torch.zeros(2, 3, 3, 192))
    with pytest.raises(FusionConfigError, match="mask"):
        head(torch.zeros(2, 4, 3, 192), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(FusionConfigError, match="within"):
        FusionHead(MODS, REPS, within="max")
    with pytest.raises(FusionConfigError, match="duplicate"):
        FusionHead(("EDA", "EDA"), REPS)


def test_config_round_trip_rebuilds_identical_head():
    torch.manual_seed(3)
    head = FusionHead(MODS, REPS, within="concat", across="concat", hidden=16)
    cfg = head.config.to_dict()
    assert isinstance(cfg["modalities"], list)
    clone = FusionHead.from_config(cfg)
    clone.load_state_dict(head.state_dict())
    emb = torch.randn(3, 4, 3, 192)
    assert torch.equal(clone.eval()(emb), head.eval()(emb))
    assert FusionConfig.from_dict(cfg) == head.config
