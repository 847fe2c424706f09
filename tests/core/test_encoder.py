"""Tiny-BioMoE reference encoder: checkpoint compatibility, parity, loading and saving."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from core.encoder import (
    EMBED_DIM,
    PARAMETER_COUNT,
    EncoderLoadError,
    FastTinyBioMoE,
    TinyBioMoE,
    encoder_fingerprint,
    load_encoder,
    save_encoder,
)
from core.encoder.parity import parity_encoder

PARITY_TOL = 1e-4


# fixture_npz, parity_sd and two_torch_threads (two threads: the suite shares a 2-core
# machine; also pins the float32 reduction order of the parity run) are in conftest.py
pytestmark = pytest.mark.usefixtures("two_torch_threads")


def _embed(model: torch.nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    x = torch.as_tensor(x)
    with torch.no_grad():
        return model(x).float().cpu().numpy()


def _released_rows(shared_dir: Path) -> list[tuple[str, str, str]]:
    lines = (shared_dir / "encoder" / "state_dict_keys.tsv").read_text().splitlines()[1:]
    return [tuple(line.split("\t")) for line in lines if line.strip()]


# ------------------------------------------------------------------ architecture


def test_state_dict_has_exactly_the_released_keys_shapes_and_dtypes(shared_dir):
    sd = TinyBioMoE().state_dict()
    rows = _released_rows(shared_dir)
    assert list(sd) == [r[0] for r in rows]
    for key, shape, dtype in rows:
        got_shape = "scalar" if sd[key].dim() == 0 else "x".join(map(str, sd[key].shape))
        assert (got_shape, str(sd[key].dtype).removeprefix("torch.")) == (shape, dtype), key


def test_parameter_count_matches_release():
    assert sum(p.numel() for p in TinyBioMoE().parameters()) == PARAMETER_COUNT == 7_337_278


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(N, 3, 224, 224\)"):
        TinyBioMoE().eval()(torch.rand(1, 3, 112, 112))
    with pytest.raises(ValueError, match="float"):
        TinyBioMoE().eval()(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))


# ------------------------------------------------------------------ parity with the released model


def test_parity_fixture_float32(fixture_npz):
    model = parity_encoder(int(fixture_npz["seed"]))
    y = _embed(model, fixture_npz["x"])
    assert y.shape == (fixture_npz["x"].shape[0], EMBED_DIM)
    assert np.abs(y - fixture_npz["y"]).max() < PARITY_TOL


def test_parity_fixture_float64_is_machine_independent(fixture_npz):
    """In float64 our rounding vanishes, so this checks the architecture without fp32 noise."""
    model = parity_encoder(int(fixture_npz["seed"])).double()
    y = _embed(model, torch.from_numpy(fixture_npz["x"][:1]).double())
    assert np.abs(y - fixture_npz["y"][:1]).max() < PARITY_TOL


@pytest.mark.parametrize("key", ["enc1.block3.0.attn.kv.weight", "enc2.blocks2.3.mixer.m.attn.attention_biases"])
def test_parity_check_catches_a_one_percent_weight_change(fixture_npz, parity_sd, key):
    sd = dict(parity_sd)
    sd[key] = sd[key] * 1.01
    model = TinyBioMoE()
    model.load_state_dict(sd)
    y = _embed(model.eval(), fixture_npz["x"][:1])
    assert np.abs(y - fixture_npz["y"][:1]).max() > PARITY_TOL


# ------------------------------------------------------------------ no stale cached state


def test_loading_before_or_after_eval_gives_the_same_embedding(fixture_npz, parity_sd):
    x = fixture_npz["x"][:1]
    after = TinyBioMoE().eval()
    _embed(after, x)  # run once with the initial weights, as a cache-building forward would
    after.load_state_dict(parity_sd)
    before = TinyBioMoE()
    before.load_state_dict(parity_sd)
    before.eval()
    toggled = copy.deepcopy(before).train().eval()
    ya, yb, yt = _embed(after, x), _embed(before, x), _embed(toggled, x)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ya, yt)
    assert np.abs(ya - fixture_npz["y"][:1]).max() < PARITY_TOL


def test_moving_reference_between_dtypes_and_back_keeps_the_embedding(fixture_npz, parity_sd):
    model = TinyBioMoE()
    model.load_state_dict(parity_sd)
    model.eval()
    x = fixture_npz["x"][:1]
    y0 = _embed(model, x)
    model.double().float().to("cpu")
    np.testing.assert_array_equal(_embed(model, x), y0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_moving_to_cuda_after_loading_keeps_the_embedding(fixture_npz, parity_sd):
    for fast in (False, True):
        enc = load_encoder(parity_sd, device="cpu", fast=fast)
        y_cpu = _embed(enc, fixture_npz["x"])
        enc = enc.to("cuda")
        y_gpu = _embed(enc, torch.from_numpy(fixture_npz["x"]).cuda())
        assert np.abs(y_gpu - y_cpu).max() < 1e-3


# ------------------------------------------------------------------ load_encoder formats


def test_load_released_format_reports_and_ignores_extra_keys(tmp_path, parity_sd, fixture_npz, caplog):
    path = tmp_path / "Tiny-BioMoE.pth"
    extra = {"head.weight": torch.zeros(5, 192), "head.bias": torch.zeros(5)}
    torch.save({"model_state_dict": {**parity_sd, **extra}}, path)
    with caplog.at_level(logging.WARNING, logger="core.encoder"):
        enc = load_encoder(path, device="cpu", fast=False)
    assert isinstance(enc, TinyBioMoE) and not enc.training
    assert "head.weight" in caplog.text and "ignoring 2 keys" in caplog.text
    assert sorted(enc.info.ignored_keys) == ["head.bias", "head.weight"]
    assert np.abs(_embed(enc, fixture_npz["x"][:1]) - fixture_npz["y"][:1]).max() < PARITY_TOL
    with pytest.raises(EncoderLoadError, match="2 unexpected keys.*head"):
        load_encoder(path, device="cpu", strict_extra=True)


def test_load_bare_state_dict_file_and_dict(tmp_path, parity_sd):
    path = tmp_path / "bare.pt"
    torch.save(parity_sd, path)
    a = load_encoder(path, device="cpu", fast=False)
    b = load_encoder(parity_sd, device="cpu", fast=False)
    assert encoder_fingerprint(a) == encoder_fingerprint(b) == encoder_fingerprint(parity_sd)


def test_save_encoder_round_trip_keeps_weights_and_metadata(tmp_path, parity_sd):
    path = save_encoder(tmp_path / "sub" / "enc.pt", parity_sd,
                        {"description": "fill-rule weights", "training_data": "none", "epochs": 0})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "painmon-encoder" and raw["version"] == 1
    assert raw["metadata"]["description"] == "fill-rule weights"
    assert raw["metadata"]["date"].startswith("20") and raw["metadata"]["fingerprint"] == encoder_fingerprint(parity_sd)
    enc = load_encoder(path, device="cpu")
    assert isinstance(enc, FastTinyBioMoE)
    assert enc.info.metadata["training_data"] == "none"
    assert encoder_fingerprint(enc) == encoder_fingerprint(parity_sd)
    assert not list(path.parent.glob("*.tmp"))


def test_save_encoder_rejects_metadata_that_weights_only_load_cannot_read(tmp_path, parity_sd):
    with pytest.raises(ValueError, match="metadata.when"):
        save_encoder(tmp_path / "enc.pt", parity_sd, {"when": object()})
    assert not (tmp_path / "enc.pt").exists()


def test_load_painmon_model_checkpoint_takes_its_encoder(tmp_path, parity_sd):
    path = tmp_path / "model.pt"
    torch.save({"format": "painmon-model", "version": 1, "encoder": parity_sd, "head": {"w": torch.zeros(3)}}, path)
    enc = load_encoder(path, device="cpu", fast=False)
    assert encoder_fingerprint(enc) == encoder_fingerprint(parity_sd)


def test_model_checkpoint_without_encoder_says_so(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"format": "painmon-model", "version": 1, "encoder": None, "head": {}}, path)
    with pytest.raises(EncoderLoadError, match="carries no encoder weights"):
        load_encoder(path, device="cpu")


def test_untrained_encoder_is_deterministic_and_logged(caplog):
    state = torch.random.get_rng_state()
    with caplog.at_level(logging.WARNING, logger="core.encoder"):
        a = load_encoder(None, device="cpu", fast=False)
    b = load_encoder(None, device="cpu", fast=False)
    assert "UNTRAINED" in caplog.text and a.info.trained is False
    assert torch.equal(torch.random.get_rng_state(), state)
    assert encoder_fingerprint(a) == encoder_fingerprint(b)
    x = torch.rand(1, 3, 224, 224)
    np.testing.assert_array_equal(_embed(a, x), _embed(b, x))


# ------------------------------------------------------------------ load errors


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderLoadError, match="nope.pth not found"):
        load_encoder(tmp_path / "nope.pth", device="cpu")


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint", "truncated"])
def test_corrupt_file_is_a_clear_error(tmp_path, parity_sd, content):
    path = tmp_path / "bad.pth"
    if content == "truncated":
        torch.save({"model_state_dict": parity_sd}, path)
        path.write_bytes(path.read_bytes()[: 200_000])
    else:
        path.write_bytes(content)
    with pytest.raises(EncoderLoadError, match=r"bad\.pth"):
        load_encoder(path, device="cpu")


def test_pickled_objects_are_refused_not_executed(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": {"x": Path("/tmp")}}, path)
    with pytest.raises(EncoderLoadError, match="evil.pth: refused: it holds Python objects other than tensors"):
        load_encoder(path, device="cpu")


def test_missing_keys_are_named(parity_sd):
    sd = dict(parity_sd)
    for key in ("ln_e.weight", "fcn.1.bias", "enc2.blocks1.0.dw0.m.c.weight"):
        del sd[key]
    with pytest.raises(EncoderLoadError, match=r"3 of 510 encoder keys are missing: .*ln_e\.weight.*fcn\.1\.bias"):
        load_encoder(sd, device="cpu")


def test_misshaped_keys_are_named(parity_sd):
    sd = dict(parity_sd)
    sd["enc1.block1.0.attn.complex_weight"] = torch.zeros(28, 15, 64, 2)
    with pytest.raises(EncoderLoadError, match=r"wrong shape: enc1\.block1\.0\.attn\.complex_weight \(28, 15, 64, 2\)"):
        load_encoder(sd, device="cpu")


def test_non_finite_weights_are_refused(parity_sd):
    sd = dict(parity_sd)
    sd["ln_out.bias"] = torch.full((192,), float("nan"))
    with pytest.raises(EncoderLoadError, match="NaN or inf: ln_out.bias"):
        load_encoder(sd, device="cpu")


def test_unknown_layouts_are_refused(tmp_path, parity_sd):
    with pytest.raises(EncoderLoadError, match="unrecognised checkpoint contents"):
        load_encoder({"weights": [1, 2]}, device="cpu")
    with pytest.raises(EncoderLoadError, match="version 7 is not supported"):
        load_encoder({"format": "painmon-encoder", "version": 7, "state_dict": parity_sd}, device="cpu")


def test_bad_device_and_precision_are_load_errors(parity_sd):
    with pytest.raises(EncoderLoadError, match="precision"):
        load_encoder(parity_sd, device="cpu", precision="int8")
    with pytest.raises(EncoderLoadError, match="fp16"):
        load_encoder(parity_sd, device="cpu", precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(EncoderLoadError, match="cuda"):
            load_encoder(parity_sd, device="cuda")


# ------------------------------------------------------------------ fingerprint


def test_fingerprint_is_stable_and_sensitive(parity_sd):
    fp = encoder_fingerprint(parity_sd)
    assert len(fp) == 16 and int(fp, 16) >= 0
    reordered = dict(reversed(list(parity_sd.items())))
    assert encoder_fingerprint(reordered) == fp
    changed = dict(parity_sd)
    changed["fcn.1.bias"] = changed["fcn.1.bias"].clone()
    changed["fcn.1.bias"][0] += 1e-3
    assert encoder_fingerprint(changed) != fp
    model = TinyBioMoE()
    model.load_state_dict(parity_sd)
    assert encoder_fingerprint(model) == fp
