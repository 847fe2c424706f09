"""Encoder backends: the DFT-matmul spectral filter, the OpenVINO backend (parity with the float64
reference, cache rebuilt when corrupt or stale), backend="auto" falling back to torch without
OpenVINO, and precision="auto"."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import REPO_ROOT

from core.encoder import EncoderLoadError, TinyBioMoE, encoder_fingerprint, load_encoder
from core.encoder.cache import sha256_file
from core.encoder.dft import DFTSpectralFilter, spectral_filter_fft
from core.encoder.parity import fill_state_dict

FP32_COSINE, FP32_MAX_ABS = 0.999999, 5e-3
MIXED_COSINE = 0.99999

# fixture_npz, parity_sd, shared_dir and two_torch_threads are in conftest.py
pytestmark = pytest.mark.usefixtures("two_torch_threads")


@pytest.fixture(scope="module")
def fixture64(shared_dir) -> dict:
    """``x`` and the released code's float64 embedding ``y64`` (fill-rule weights of ``seed``)."""
    data = np.load(shared_dir / "encoder" / "parity64_seed0.npz")
    return {"x": torch.from_numpy(data["x"]), "y64": torch.from_numpy(data["y64"]), "seed": int(data["seed"])}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private cache folder for converted models and measured choices."""
    root = tmp_path / "cache"
    monkeypatch.setenv("PAINMON_CACHE_DIR", str(root))
    return root


def _rows_cosine(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(y.double(), ref.double(), dim=1)


# ------------------------------------------------------------------ DFT-matmul spectral filter


@pytest.mark.parametrize("key", ["enc1.block1.0.attn.complex_weight", "enc1.block2.0.attn.complex_weight"])
def test_dft_filter_equals_the_fft_filter_in_float64_and_float32(parity_sd, key):
    """The learnt filters of both spectral stages (56x56x64, 28x28x128): matmuls == FFTs."""
    weight = parity_sd[key].double()
    h = weight.shape[0]
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(2, h, h, weight.shape[2], generator=gen, dtype=torch.float64)
    ref = spectral_filter_fft(u, weight)
    y64 = DFTSpectralFilter(weight, dtype=torch.float64)(u)
    assert float((y64 - ref).abs().max()) < 1e-12
    y32 = DFTSpectralFilter(weight, dtype=torch.float32)(u.float())
    fft32 = spectral_filter_fft(u.float(), weight.float())
    scale = float(ref.abs().max())
    # float32 matmuls round like float32 FFTs: both within a few ulps of the exact result
    assert float((y32.double() - ref).abs().max()) < 4e-7 * scale * 8
    assert float((y32.double() - ref).abs().max()) < 3 * float((fft32.double() - ref).abs().max()) + 1e-7
    # the map layout the converted graphs use is the same filter
    m = DFTSpectralFilter(weight, dtype=torch.float64)
    assert torch.allclose(m.forward_map(u.permute(0, 3, 1, 2)).permute(0, 2, 3, 1), y64, atol=1e-14)


@pytest.mark.parametrize(("h", "w"), [(7, 7), (6, 6), (5, 8)])
def test_dft_filter_handles_odd_and_rectangular_grids(h, w):
    gen = torch.Generator().manual_seed(h * w)
    weight = torch.randn(h, w // 2 + 1, 3, 2, generator=gen, dtype=torch.float64)
    u = torch.randn(2, h, w, 3, generator=gen, dtype=torch.float64)
    y = DFTSpectralFilter(weight, dtype=torch.float64, width=w)(u)
    assert float((y - spectral_filter_fft(u, weight)).abs().max()) < 1e-12
    with pytest.raises(ValueError, match="grid"):
        DFTSpectralFilter(weight, dtype=torch.float64, width=w)(u[:, :, :-1])


def test_export_graphs_compute_the_embedding_in_both_layouts(parity_sd, fixture64):
    """The graphs converted for OpenVINO (DFT filters, NCHW SpectFormer, the 3-part mixed split),
    run in torch float32, are as faithful to float64 as the fp32 fast path."""
    from core.encoder.export import export_graphs, run_graphs
    from core.encoder.fast import FastTinyBioMoE

    ref = TinyBioMoE()
    ref.load_state_dict(parity_sd)
    fast = FastTinyBioMoE(ref.eval(), onednn=False)
    for mode in ("fp32", "bf16"):
        parts = export_graphs(fast, mode)
        assert [p.precision for p in parts] == (["fp32"] if mode == "fp32" else ["fp32", "bf16", "fp32"])
        y = run_graphs(parts, fixture64["x"])
        assert float(_rows_cosine(y, fixture64["y64"]).min()) >= FP32_COSINE
        assert float((y.double() - fixture64["y64"]).abs().max()) <= FP32_MAX_ABS


# ------------------------------------------------------------------ backend selection without OpenVINO


def _run_without_openvino(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where ``import openvino`` fails (a None entry in
    sys.modules: the real import machinery raises ImportError)."""
    prelude = "import sys; sys.modules['openvino'] = None\nimport logging; logging.basicConfig(level=logging.INFO)\n"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=240)


def test_auto_backend_falls_back_to_torch_when_openvino_does_not_import(cache_dir):
    code = (
        "import torch; torch.set_num_threads(2)\n"
        "from core.encoder import load_encoder, FastTinyBioMoE, EncoderLoadError\n"
        "enc = load_encoder(None, device='cpu', backend='auto')\n"
        "assert isinstance(enc, FastTinyBioMoE) and enc.backend == 'torch' and enc.info.backend == 'torch'\n"
        "assert enc(torch.rand(1, 3, 224, 224)).shape == (1, 192)\n"
        "try:\n"
        "    load_encoder(None, device='cpu', backend='openvino')\n"
        "except EncoderLoadError as exc:\n"
        "    print('ERROR:', exc)\n"
    )
    proc = _run_without_openvino(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fallback = [line for line in proc.stderr.splitlines() if "falling back to torch" in line]
    assert len(fallback) == 1 and "painmon[openvino]" in fallback[0]
    assert "ERROR:" in proc.stdout and "painmon[openvino]" in proc.stdout


def test_backend_arguments_are_checked(parity_sd):
    with pytest.raises(EncoderLoadError, match="backend must be one of"):
        load_encoder(parity_sd, device="cpu", backend="onnx")
    with pytest.raises(EncoderLoadError, match="hint must be one of"):
        load_encoder(parity_sd, device="cpu", hint="fast")
    with pytest.raises(EncoderLoadError, match="threads"):
        load_encoder(parity_sd, device="cpu", threads=0)
    with pytest.raises(EncoderLoadError, match="cuda"):  # no CUDA here, or OpenVINO is CPU-only
        load_encoder(parity_sd, device="cuda", backend="openvino")
    # the plain reference module and compiled modes exist only in torch: auto keeps torch for them
    plain = load_encoder(parity_sd, device="cpu", backend="auto", fast=False)
    assert isinstance(plain, TinyBioMoE) and plain.info.backend == "torch"


# ------------------------------------------------------------------ OpenVINO backend

openvino_reason = ("OpenVINO is not installed (optional extra: pip install 'painmon[openvino]'); "
                   "its backend is untestable here")


@pytest.fixture(scope="module")
def ov():
    return pytest.importorskip("openvino", reason=openvino_reason)


def _bf16_units() -> bool:
    from core.encoder.openvino_backend import openvino_supports_bf16
    from core.encoder.precision import cpu_has_native_bf16

    return cpu_has_native_bf16() and openvino_supports_bf16()


def test_openvino_fp32_is_faithful_to_the_float64_reference(ov, cache_dir, parity_sd, fixture64):
    from core.encoder import OpenVINOEncoder

    enc = load_encoder(parity_sd, device="cpu", backend="openvino", precision="fp32")
    assert isinstance(enc, OpenVINOEncoder) and enc.mode == "openvino-fp32" and not enc.training
    assert enc.info.backend == "openvino" and enc.info.precision == "fp32"
    assert enc.info.fingerprint == encoder_fingerprint(parity_sd)
    assert "OpenVINO" in enc.describe() and "DFT" in enc.describe()
    y = enc(fixture64["x"])
    assert y.dtype == torch.float32 and y.shape == (2, 192)
    assert float(_rows_cosine(y, fixture64["y64"]).min()) >= FP32_COSINE
    assert float((y.double() - fixture64["y64"]).abs().max()) <= FP32_MAX_ABS
    # dynamic batch: any N, each row as in the batch of two
    y3 = enc(torch.cat([fixture64["x"], fixture64["x"][:1]]))
    assert y3.shape == (3, 192) and float(_rows_cosine(y3[2:], fixture64["y64"][:1]).min()) >= FP32_COSINE
    assert enc(torch.empty(0, 3, 224, 224)).shape == (0, 192)
    with pytest.raises(ValueError, match="224"):
        enc(torch.rand(1, 3, 224, 200))


@pytest.mark.parametrize("hint", ["throughput", "auto"])
def test_openvino_stream_hints_split_the_batch_and_agree(ov, cache_dir, parity_sd, fixture64, hint):
    enc = load_encoder(parity_sd, device="cpu", backend="openvino", precision="fp32", hint=hint, threads=2)
    assert "2 streams x 1 threads" in enc.describe()
    for reps in (1, 2):  # 2 and 4 images: below and at the auto hint's split size
        y = enc(torch.cat([fixture64["x"]] * reps))
        assert y.shape == (2 * reps, 192)
        assert float(_rows_cosine(y, torch.cat([fixture64["y64"]] * reps)).min()) >= FP32_COSINE
    one = load_encoder(parity_sd, device="cpu", backend="openvino", hint="latency", threads=2)
    assert "latency" in one.describe() and "streams" not in one.describe()


def test_openvino_compiles_each_recurring_batch_size_fixed_in_the_background_and_agrees(
        ov, cache_dir, parity_sd, fixture64):
    """A batch size that recurs is compiled with a fixed shape once (faster than the dynamic
    model); the dynamic model answers until then, and both give the float64 reference's embedding."""
    enc = load_encoder(parity_sd, device="cpu", backend="openvino", precision="fp32", hint="auto", threads=2)
    x4, y4 = torch.cat([fixture64["x"]] * 2), torch.cat([fixture64["y64"]] * 2)
    first = enc(x4)  # split over the 2 streams: 2 images each
    enc(x4)
    assert enc.settle(timeout=60) and enc.specialised == []  # twice: not yet worth a compile
    enc(x4)
    assert enc.settle(timeout=60)
    assert enc.specialised == [("throughput", 2)]
    fixed = enc(x4)
    for y in (first, fixed):
        assert float(_rows_cosine(y, y4).min()) >= FP32_COSINE
    assert float((fixed - first).abs().max()) <= 1e-4
    assert enc.specialise([1], timeout=60) and ("latency", 1) in enc.specialised  # below the split size
    assert float(_rows_cosine(enc(fixture64["x"][:1]), fixture64["y64"][:1]).min()) >= FP32_COSINE
    enc.load_state_dict(fill_state_dict(TinyBioMoE().state_dict(), 1))  # new weights: no shape of the old ones
    assert enc.specialised == []


def test_openvino_compiles_with_the_thread_count_asked_for(ov, cache_dir, parity_sd):
    """OpenVINO fixes its thread count when it compiles the model (a later torch.set_num_threads
    does not reach it), so ``threads`` must arrive in the compiled model: real compiles, the
    count read back from the runtime, against torch's count of the moment (2, the default)."""
    assert torch.get_num_threads() == 2
    one = load_encoder(parity_sd, device="cpu", backend="openvino", precision="fp32", threads=1)
    assert one.threads == 1 and one.compiled_property("INFERENCE_NUM_THREADS") == [1]  # one part, one request
    assert "1 threads, latency hint" in one.describe()
    default = load_encoder(parity_sd, device="cpu", backend="openvino", precision="fp32")  # follows torch's 2
    assert set(default.compiled_property("INFERENCE_NUM_THREADS")) == {2}
    torch.set_num_threads(1)  # the fixture restores it
    two = load_encoder(parity_sd, device="cpu", backend="openvino", precision="fp32", threads=2, hint="auto")
    # the latency chain and both throughput streams: 2 threads in all, split 1 + 1 over the streams
    assert two.compiled_property("INFERENCE_NUM_THREADS") == [2, 2, 2]
    assert two.compiled_property("NUM_STREAMS") == [1, 2, 2]


def test_openvino_mixed_precision_is_faithful(ov, cache_dir, parity_sd, fixture64):
    if not _bf16_units():
        pytest.skip("no bf16 units on this CPU (AVX512-BF16/AMX), or hidden by an ISA cap")
    enc = load_encoder(parity_sd, device="cpu", backend="openvino", precision="bf16")
    assert enc.mode == "openvino-bf16" and "bf16" in enc.describe()
    y = enc(fixture64["x"])
    assert float(_rows_cosine(y, fixture64["y64"]).min()) >= MIXED_COSINE


def test_isa_cap_hides_bf16_units_from_both_backends(cache_dir):
    """With AVX-512/AMX hidden (how an AVX2-only machine is emulated) neither runtime has bf16
    units: auto stays fp32 without measuring, and an explicit OpenVINO bf16 is refused rather than
    silently run in fp32 under a bf16 label."""
    code = (
        "import torch; torch.set_num_threads(2)\n"
        "from core.encoder import load_encoder, EncoderLoadError, cpu_has_native_bf16\n"
        "assert not cpu_has_native_bf16()\n"
        "assert load_encoder(None, device='cpu', precision='auto').precision == 'fp32'\n"
        "try:\n"
        "    import openvino\n"
        "except ImportError:\n"
        "    raise SystemExit(0)\n"
        "try:\n"
        "    load_encoder(None, device='cpu', backend='openvino', precision='bf16')\n"
        "except EncoderLoadError as exc:\n"
        "    print('ERROR:', exc)\n"
    )
    from core.encoder.precision import AVX2_EMULATION_ENV

    env = dict(os.environ, **AVX2_EMULATION_ENV, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (cache_dir / "precision").exists()  # nothing to choose between: no measurement
    try:
        import openvino  # noqa: F401
    except ImportError:
        return
    assert "ERROR:" in proc.stdout and "bf16 units" in proc.stdout


def test_openvino_module_speaks_the_released_state_dict_and_reloads(ov, cache_dir, parity_sd, fixture64):
    enc = load_encoder(parity_sd, device="cpu", backend="openvino")
    sd = enc.state_dict()
    assert list(sd) == list(TinyBioMoE().state_dict()) and all(torch.equal(sd[k], parity_sd[k]) for k in sd)
    assert encoder_fingerprint(enc) == encoder_fingerprint(parity_sd)
    x = fixture64["x"][:1]
    y_first = enc(x)
    other = fill_state_dict(TinyBioMoE().state_dict(), 1)
    enc.load_state_dict(other)
    fresh = load_encoder(other, device="cpu", backend="openvino")
    np.testing.assert_allclose(enc(x).numpy(), fresh(x).numpy(), atol=1e-6)
    assert float((enc(x) - y_first).abs().max()) > 0.1
    assert enc.to("cpu") is enc
    with pytest.raises(TypeError, match="backend='torch'"):
        enc.double()


def _entries(root: Path) -> dict[str, Path]:
    return {p.name: p for p in (root / "openvino").glob("*") if not p.name.startswith(".")}


def test_openvino_cache_is_reused_then_rebuilt_after_corruption(ov, cache_dir, parity_sd, fixture64, caplog):
    caplog.set_level(logging.INFO, logger="core.encoder.openvino_backend")
    y_ref = load_encoder(parity_sd, device="cpu", backend="openvino")(fixture64["x"])
    assert any("converting encoder part 'full'" in r.getMessage() for r in caplog.records)
    files = _entries(cache_dir)
    (bin_path,) = [p for n, p in files.items() if n.endswith(".bin")]
    (manifest,) = [p for n, p in files.items() if n.endswith(".json")]

    caplog.clear()
    load_encoder(parity_sd, device="cpu", backend="openvino")
    assert not any("converting" in r.getMessage() or "rebuilding" in r.getMessage() for r in caplog.records)

    good = bin_path.read_bytes()
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = b"\xff" * 64  # weights silently changed
    bin_path.write_bytes(bytes(corrupt))
    caplog.clear()
    enc = load_encoder(parity_sd, device="cpu", backend="openvino")
    lines = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(lines) == 1 and "corrupt" in lines[0]
    np.testing.assert_allclose(enc(fixture64["x"]).numpy(), y_ref.numpy(), atol=1e-6)
    assert bin_path.read_bytes() != bytes(corrupt)  # rewritten ...
    assert sha256_file(bin_path) == json.loads(manifest.read_text())["files"][".bin"]["sha256"]  # ... and intact

    bin_path.write_bytes(good[: len(good) // 3])  # truncated
    caplog.clear()
    load_encoder(parity_sd, device="cpu", backend="openvino")
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert sha256_file(bin_path) == json.loads(manifest.read_text())["files"][".bin"]["sha256"]


def test_openvino_cache_is_keyed_by_weights_and_versions(ov, cache_dir, parity_sd, fixture64, caplog):
    caplog.set_level(logging.INFO, logger="core.encoder.openvino_backend")
    x = fixture64["x"][:1]
    a = load_encoder(parity_sd, device="cpu", backend="openvino")
    other = fill_state_dict(TinyBioMoE().state_dict(), 1)
    caplog.clear()
    b = load_encoder(other, device="cpu", backend="openvino")
    # other weights (another fingerprint) never reuse the first entry: converted anew, own files
    assert any("converting" in r.getMessage() for r in caplog.records)
    assert float((a(x) - b(x)).abs().max()) > 0.1
    ref_b = TinyBioMoE()
    ref_b.load_state_dict(other)
    assert float(_rows_cosine(b(x), ref_b.eval()(x)).min()) >= FP32_COSINE
    manifests = [p for n, p in _entries(cache_dir).items() if n.endswith(".json")]
    assert {json.loads(p.read_text())["key"]["fingerprint"] for p in manifests} == {
        encoder_fingerprint(parity_sd), encoder_fingerprint(other)}

    # an entry whose recorded key differs (e.g. written by another OpenVINO version) is stale
    mine = next(p for p in manifests
                if json.loads(p.read_text())["key"]["fingerprint"] == encoder_fingerprint(parity_sd))
    meta = json.loads(mine.read_text())
    meta["key"]["openvino"] = "2000.0"
    mine.write_text(json.dumps(meta))
    caplog.clear()
    again = load_encoder(parity_sd, device="cpu", backend="openvino")
    assert any("stale" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    assert a.specialise([1], timeout=60) and again.specialise([1], timeout=60)  # both on the fixed shape
    np.testing.assert_allclose(again(x).numpy(), a(x).numpy(), atol=1e-6)
    assert json.loads(mine.read_text())["key"]["openvino"] != "2000.0"


# ------------------------------------------------------------------ precision="auto"


def test_auto_precision_measures_once_and_caches_the_choice(cache_dir, parity_sd, caplog):
    from core.encoder.auto import candidate_precisions

    caplog.set_level(logging.INFO, logger="core.encoder.auto")
    enc = load_encoder(parity_sd, device="cpu", backend="torch", precision="auto")
    candidates = candidate_precisions("torch", torch.device("cpu"))
    assert enc.precision in candidates and enc.info.precision == enc.precision
    if len(candidates) == 1:
        assert enc.precision == "fp32" and not (cache_dir / "precision").exists()
        return
    (record,) = (cache_dir / "precision").glob("torch-cpu-*.json")
    saved = json.loads(record.read_text())
    assert saved["choice"] == enc.precision and set(saved["measured"]) == set(candidates)
    assert saved["measured"]["fp32"]["min_cosine"] >= FP32_COSINE
    # the choice is faithful and the fastest faithful one
    bar = {p: FP32_COSINE if p == "fp32" else MIXED_COSINE for p in candidates}
    faithful = [p for p, m in saved["measured"].items() if m["min_cosine"] >= bar[p]]
    assert enc.precision == max(faithful, key=lambda p: saved["measured"][p]["images_per_s"])
    assert any("measured once" in r.getMessage() for r in caplog.records)

    caplog.clear()
    assert load_encoder(parity_sd, device="cpu", precision="auto").precision == enc.precision
    assert not any("measured once" in r.getMessage() for r in caplog.records)

    saved["choice"] = "fp16"  # not a candidate here: the cached record is not trusted
    record.write_text(json.dumps(saved))
    caplog.clear()
    load_encoder(parity_sd, device="cpu", precision="auto")
    assert any("measured once" in r.getMessage() for r in caplog.records)


def test_isa_cap_variable_is_read(monkeypatch):
    from core.encoder.precision import isa_capped_below_bf16

    for var in ("DNNL_MAX_CPU_ISA", "OV_CPU_MAX_ISA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert isa_capped_below_bf16()
    for cap in ("AVX512_CORE_AMX", "avx512_core_bf16", "ALL"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert not isa_capped_below_bf16()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("OV_CPU_MAX_ISA", "AVX2")
    assert isa_capped_below_bf16()
    monkeypatch.delenv("OV_CPU_MAX_ISA")
    assert not isa_capped_below_bf16()


# ------------------------------------------------------------------ GPU path


def test_cuda_graph_batch_buckets_cover_every_size_with_bounded_padding():
    from core.encoder.fast import batch_bucket

    sizes = {batch_bucket(n) for n in range(1, 1025)}
    assert sizes == {8, 16, 32, 64, 128, 256, 512, 768, 1024}  # few graphs for any engine batch
    for n in range(1, 1025):
        b = batch_bucket(n)
        assert b >= n and (b <= max(8, 2 * n - 1) if n <= 256 else b - n < 256)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_graph_path_pads_batches_and_stays_faithful(parity_sd, fixture64, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    enc = load_encoder(parity_sd, device="cuda", precision=precision, compile=True)
    x = torch.cat([fixture64["x"], fixture64["x"][:1]]).cuda()  # 3 images, padded to a bucket of 8
    y = enc(x).cpu()
    assert y.shape == (3, 192) and y.dtype == torch.float32
    # padding rows change nothing: same embedding as the uncompiled path on the 3 images alone
    plain = load_encoder(parity_sd, device="cuda", precision=precision)(x).cpu()
    assert float(_rows_cosine(y, plain).min()) >= MIXED_COSINE
    ref = torch.cat([fixture64["y64"], fixture64["y64"][:1]])
    assert float(_rows_cosine(y, ref).min()) >= 0.999  # the README's bar for reduced precision
    # the estimator keeps each chunk's output while the next chunk replays the same graph
    first = enc(x)
    enc(torch.rand_like(x))
    assert torch.equal(first.cpu(), y)
