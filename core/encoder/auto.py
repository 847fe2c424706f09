"""``precision="auto"``: the fastest precision that stays faithful, measured once per machine.

Faithful means: on the parity fixture (``shared/encoder/parity64_seed0.npz``: images ``x`` and the
released model's float64 embedding ``y64`` under the fill-rule weights of its ``seed``), every
row's cosine similarity to ``y64`` is at least :data:`FAITHFUL_COSINE` (0.99999), and fp32 modes
also stay within :data:`FAITHFUL_MAX_ABS_FP32` element-wise. Among the faithful candidates the one
with the most images/s at batch 8 wins (timed interleaved, median of a few repetitions).

The result is cached in ``<cache>/precision/`` keyed by backend, device, CPU model and flags,
ISA caps, thread count and runtime/code versions, so the measurement runs once per machine
setup, not at every start. Without the shared fixture (an installed PainMon), the float64
reference is computed by this package's own model in float64 on seeded images (tests hold it
within 1e-7 of the released code's ``y64``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.encoder.cache import cache_root, code_version, key_digest, write_json_atomically
from core.encoder.precision import ISA_CAP_VARIABLES, _cpu_flags, cpu_has_native_bf16
from core.encoder.shapes import specialise_encoder

log = logging.getLogger(__name__)

FAITHFUL_COSINE = 0.99999
"""Every row's cosine similarity to the float64 reference must reach this (any precision)."""
FAITHFUL_COSINE_FP32 = 0.999999
"""The stricter bar of fp32 modes (they differ from float64 by rounding only)."""
FAITHFUL_MAX_ABS_FP32 = 5e-3
"""fp32 modes: largest element-wise difference to the float64 reference."""
FIXTURE_NAME = "parity64_seed0.npz"
TIMING_BATCH = 8
TIMING_REPS = 5
_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8")

Builder = Callable[[Mapping[str, torch.Tensor], str], nn.Module]
"""(state dict, precision) -> ready encoder of the backend being chosen for."""


@dataclass(frozen=True)
class ParityFixture:
    """Images and their float64 reference embedding under the fill-rule weights of ``seed``."""

    x: torch.Tensor
    y64: torch.Tensor
    seed: int
    source: str


@dataclass(frozen=True)
class Faithfulness:
    """How close one mode's embedding is to the float64 reference."""

    min_cosine: float
    max_abs: float

    def passes(self, precision: str) -> bool:
        if precision == "fp32":
            return self.min_cosine >= FAITHFUL_COSINE_FP32 and self.max_abs <= FAITHFUL_MAX_ABS_FP32
        return self.min_cosine >= FAITHFUL_COSINE


def _fixture_paths() -> list[Path]:
    paths = []
    shared = os.environ.get("PAINMON_SHARED")
    if shared:
        paths.append(Path(shared).expanduser() / "encoder" / FIXTURE_NAME)
    paths.append(Path(__file__).resolve().parents[2].parent / "shared" / "encoder" / FIXTURE_NAME)
    return paths


def parity_fixture() -> ParityFixture:
    """The shared float64 parity fixture, or an equivalent computed here when it is not around."""
    for path in _fixture_paths():
        if path.is_file():
            data = np.load(path)
            return ParityFixture(torch.from_numpy(data["x"]).float(), torch.from_numpy(data["y64"]).double(),
                                 int(data["seed"]), str(path))
    from core.encoder.parity import parity_encoder

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 224, 224, generator=gen)
    with torch.no_grad():
        y64 = parity_encoder(0).double()(x.double())
    return ParityFixture(x, y64, 0, "computed in float64 by core.encoder (shared fixture not found)")


def faithfulness(encoder: nn.Module, fixture: ParityFixture, device: torch.device | str = "cpu") -> Faithfulness:
    """Cosine similarity (worst row) and largest element difference of ``encoder`` to ``y64``."""
    with torch.inference_mode():
        y = encoder(fixture.x.to(device)).double().cpu()
    cos = F.cosine_similarity(y, fixture.y64, dim=1)
    return Faithfulness(float(cos.min()), float((y - fixture.y64).abs().max()))


def candidate_precisions(backend: str, device: torch.device) -> list[str]:
    """Precisions worth trying here: fp32, plus the reduced ones the hardware runs natively."""
    if device.type == "cuda":
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    if device.type == "cpu" and cpu_has_native_bf16():
        if backend == "openvino":
            from core.encoder.openvino_backend import openvino_supports_bf16

            return ["fp32", "bf16"] if openvino_supports_bf16() else ["fp32"]
        return ["fp32", "bf16"]
    return ["fp32"]


def _machine_key(backend: str, device: torch.device, threads: int) -> dict[str, object]:
    from core.encoder.openvino_backend import openvino_version

    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = _cpu_flags()
    return {
        "backend": backend,
        "device": device.type if device.type != "cuda" else f"cuda:{torch.cuda.get_device_name(device)}",
        "cpu": cpu_model,
        "flags": sorted(f for f in _FLAGS_OF_INTEREST if f in flags),
        "isa_caps": {v: os.environ.get(v, "") for v in ISA_CAP_VARIABLES},
        "threads": threads,
        "torch": torch.__version__,
        "openvino": openvino_version() if backend == "openvino" else None,
        "code": code_version(),
    }


def _time_modes(encoders: Mapping[str, nn.Module], device: torch.device) -> dict[str, float]:
    """Median images/s at batch :data:`TIMING_BATCH`, modes interleaved in every repetition."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(TIMING_BATCH, 3, 224, 224, generator=gen).to(device)
    times: dict[str, list[float]] = {p: [] for p in encoders}
    with torch.inference_mode():
        for enc in encoders.values():
            specialise_encoder(enc, [TIMING_BATCH])
            enc(x)
        for _ in range(TIMING_REPS):
            for p, enc in encoders.items():
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                enc(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[p].append(time.perf_counter() - t0)
    return {p: TIMING_BATCH / statistics.median(t) for p, t in times.items()}


def choose_precision(backend: str, device: torch.device, build: Builder, *, threads: int | None = None,
                     root: Path | None = None) -> str:
    """The fastest faithful precision for ``backend`` on ``device`` (measured once, then cached)."""
    candidates = candidate_precisions(backend, device)
    if len(candidates) == 1:
        return candidates[0]
    threads = int(threads or torch.get_num_threads())
    key = _machine_key(backend, device, threads)
    path = (root or cache_root()) / "precision" / f"{backend}-{device.type}-{key_digest(key)}.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key and cached.get("choice") in candidates:
            return str(cached["choice"])
        log.info("precision auto: cached choice in %s is stale; measuring again", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("precision auto: unreadable cache %s (%s); measuring again", path, type(exc).__name__)

    from core.encoder.model import TinyBioMoE
    from core.encoder.parity import fill_state_dict

    fixture = parity_fixture()
    sd = fill_state_dict(TinyBioMoE().state_dict(), fixture.seed)
    encoders = {p: build(sd, p) for p in candidates}
    faith = {p: faithfulness(enc, fixture, device) for p, enc in encoders.items()}
    speed = _time_modes(encoders, device)
    faithful = [p for p in candidates if faith[p].passes(p)]
    choice = max(faithful, key=lambda p: speed[p]) if faithful else "fp32"
    summary = ", ".join(f"{p}: {speed[p]:.1f} img/s, cos {faith[p].min_cosine:.7f}"
                        + ("" if faith[p].passes(p) else " (not faithful)") for p in candidates)
    if not faithful:
        log.warning("precision auto: no candidate met the faithfulness bar on %s (%s); using fp32",
                    fixture.source, summary)
    log.info("precision auto (%s on %s): %s - measured once at batch %d (%s), cached in %s",
             backend, device.type, choice, TIMING_BATCH, summary, path)
    try:
        write_json_atomically(path, {
            "key": key, "choice": choice, "fixture": fixture.source,
            "measured": {p: {"images_per_s": speed[p], **asdict(faith[p])} for p in candidates},
        })
    except OSError as exc:
        log.warning("precision auto: cannot write %s (%s); will measure again next start", path, exc)
    return choice


__all__ = ["FAITHFUL_COSINE", "FAITHFUL_COSINE_FP32", "FAITHFUL_MAX_ABS_FP32", "Faithfulness", "ParityFixture",
           "candidate_precisions", "choose_precision", "faithfulness", "parity_fixture"]
