"""Fast inference path: faithful to the reference in every CPU mode, never stale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.encoder import (
    FastTinyBioMoE,
    TinyBioMoE,
    cpu_has_native_bf16,
    encoder_fingerprint,
    load_encoder,
    resolve_precision,
)
from core.encoder.fused import onednn_fusion_available
from core.encoder.parity import fill_state_dict

MIN_COSINE = 0.999


# fixture_npz, parity_sd and two_torch_threads are in conftest.py
pytestmark = pytest.mark.usefixtures("two_torch_threads")


@pytest.fixture(scope="module")
def reference_y(parity_sd, fixture_npz) -> torch.Tensor:
    """The float32 reference embedding of the fixture images (what every fast mode must match)."""
    torch.set_num_threads(2)
    model = TinyBioMoE()
    model.load_state_dict(parity_sd)
    with torch.no_grad():
        return model.eval()(torch.from_numpy(fixture_npz["x"]))


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.float(), b.float(), dim=1).min())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_cpu_mode_is_faithful_on_the_parity_fixture(parity_sd, fixture_npz, reference_y, precision):
    enc = load_encoder(parity_sd, device="cpu", precision=precision)
    assert isinstance(enc, FastTinyBioMoE) and enc.mode == f"fast-{precision}" and not enc.training
    n = 2 if precision == "fp32" else 1  # bf16 is emulated (slow) on CPUs without bf16 units
    y = enc(torch.from_numpy(fixture_npz["x"][:n]))
    reference_y = reference_y[:n]
    assert y.dtype == torch.float32 and y.shape == reference_y.shape
    assert _cos(y, reference_y) >= MIN_COSINE
    if precision == "fp32":
        # folding and fusing only reorder float32 arithmetic: element-wise it stays at rounding level
        assert float((y - reference_y).abs().max()) < 2e-3
        assert np.abs(y.numpy() - fixture_npz["y"][:n]).max() < 2e-3


def test_plain_op_fallback_matches_fused_ops(parity_sd, fixture_npz, reference_y):
    """The path CUDA/MPS take (no oneDNN fusion) computes the same embedding on CPU too."""
    ref = TinyBioMoE()
    ref.load_state_dict(parity_sd)
    plain = FastTinyBioMoE(ref, onednn=False).eval()
    y = plain(torch.from_numpy(fixture_npz["x"][:1]))
    assert _cos(y, reference_y[:1]) >= MIN_COSINE
    assert float((y - reference_y[:1]).abs().max()) < 2e-3
    assert "plain ops" in plain.describe()
    if onednn_fusion_available():
        assert "oneDNN-fused" in load_encoder(parity_sd, device="cpu").describe()


def test_fast_module_speaks_the_released_state_dict(parity_sd):
    enc = load_encoder(parity_sd, device="cpu")
    sd = enc.state_dict()
    assert list(sd) == list(TinyBioMoE().state_dict())
    assert all(torch.equal(sd[k], parity_sd[k]) for k in sd)
    assert encoder_fingerprint(enc) == encoder_fingerprint(parity_sd)
    ref = TinyBioMoE()
    ref.load_state_dict(enc.state_dict(), strict=True)  # round-trips into the reference module


def test_fast_module_state_dict_nests_copies_and_a_refused_load_changes_nothing(parity_sd, fixture_npz):
    """Inside a parent module torch asks with ``destination``/``prefix``; what comes back are
    copies; a state dict the reference refuses leaves the encoder computing as before."""
    enc = load_encoder(parity_sd, device="cpu")
    parent = torch.nn.ModuleDict({"encoder": enc})
    nested = parent.state_dict()
    assert list(nested) == [f"encoder.{k}" for k in parity_sd]
    key = next(k for k, v in parity_sd.items() if v.is_floating_point())
    nested[f"encoder.{key}"].add_(1.0)
    assert torch.equal(enc.state_dict()[key], parity_sd[key])
    assert torch.equal(enc.backbone_state_dict()[key], parity_sd[key])
    x = torch.from_numpy(fixture_npz["x"][:1])
    y = enc(x)
    broken = {k: v for k, v in parity_sd.items() if k != key}
    with pytest.raises(RuntimeError, match="Missing key"):
        enc.load_state_dict(broken)
    assert torch.equal(enc(x), y) and torch.equal(enc.state_dict()[key], parity_sd[key])


def test_loading_new_weights_into_fast_module_rebuilds_every_table(parity_sd, fixture_npz):
    """Folded weights and precomputed attention-bias tables must follow a later load."""
    x = torch.from_numpy(fixture_npz["x"][:1])
    other = fill_state_dict(TinyBioMoE().state_dict(), 1)
    enc = load_encoder(parity_sd, device="cpu")
    y_first = enc(x)
    enc.load_state_dict(other)
    fresh = load_encoder(other, device="cpu")
    np.testing.assert_array_equal(enc(x).numpy(), fresh(x).numpy())
    assert float((enc(x) - y_first).abs().max()) > 0.1
    bias_tables = [m.bias for name, m in enc.named_modules() if name.startswith("enc2") and name.endswith("mixer")]
    ab = other["enc2.blocks1.0.mixer.m.attn.attention_biases"]
    idx = other["enc2.blocks1.0.mixer.m.attn.attention_bias_idxs"]
    assert torch.equal(bias_tables[0], ab[:, idx])


def test_moving_fast_module_keeps_the_embedding_and_refuses_dtype_changes(parity_sd, fixture_npz):
    x = torch.from_numpy(fixture_npz["x"][:1])
    enc = load_encoder(parity_sd, device="cpu")
    y0 = enc(x)
    enc = enc.to("cpu").cpu()
    assert all(b.device.type == "cpu" for b in enc.buffers())
    np.testing.assert_array_equal(enc(x).numpy(), y0.numpy())
    with pytest.raises(TypeError, match="precision="):
        enc.double()
    np.testing.assert_array_equal(enc(x).numpy(), y0.numpy())


def test_auto_precision_picks_fp32_on_cpus_without_bf16_units():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    enc = load_encoder(None, device="cpu", precision="auto")
    assert enc.precision == resolve_precision("auto", cpu)


def test_fast_module_handles_odd_batch_sizes_and_rejects_bad_input(parity_sd, fixture_npz, reference_y):
    enc = load_encoder(parity_sd, device="cpu")
    x = torch.from_numpy(fixture_npz["x"])
    y3 = enc(torch.cat([x, x[:1]]))
    assert y3.shape == (3, 192)
    assert _cos(y3[2:], reference_y[:1]) >= MIN_COSINE
    with pytest.raises(ValueError, match="224"):
        enc(torch.rand(2, 3, 224, 200))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_modes_are_faithful(parity_sd, fixture_npz, reference_y, precision):
    enc = load_encoder(parity_sd, device="cuda", precision=precision)
    y = enc(torch.from_numpy(fixture_npz["x"]).cuda()).cpu()
    assert y.dtype == torch.float32
    assert _cos(y, reference_y) >= MIN_COSINE
