"""Which reduced precision a device runs well, so ``precision="auto"`` never picks a slow one."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AVX512-BF16 or AMX).

    Without them oneDNN emulates bf16 matmuls by converting to fp32, which is slower than plain
    fp32 (measured on an AVX2-only EPYC), so "auto" must not choose bf16 there.
    """
    if isa_capped_below_bf16():
        return False
    if onednn_supports_bf16():
        flags = _cpu_flags()
        # oneDNN reports "supported" for AVX512-core emulation too; require real bf16 units
        return not flags or bool({"avx512_bf16", "amx_bf16"} & flags)
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


@functools.lru_cache(maxsize=1)
def onednn_supports_bf16() -> bool:
    """Whether oneDNN runs bf16 kernels on this CPU at all (natively or emulated).

    The one probe of the CPU's bf16 support: :func:`cpu_has_native_bf16` narrows it to real
    bf16 units, and :mod:`core.encoder.fused` uses it to decide whether a bf16 tensor may take
    a fused oneDNN call.
    """
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OV_CPU_MAX_ISA")
"""Environment variables that cap the instruction set: oneDNN's (in torch and OpenVINO) and the
OpenVINO CPU plugin's own."""

AVX2_EMULATION_ENV = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN in torch and in OpenVINO
    "OV_CPU_MAX_ISA": "AVX2",  # OpenVINO's own kernels and capability report (with oneDNN's cap only,
    # OpenVINO 2026.4 still offers bf16 and then fails to compile a Softmax)
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's vectorised ATen kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL sgemm in torch
}
"""Environment (set before the runtimes load) that hides AVX-512/AMX from torch and OpenVINO, to
measure how PainMon runs on an AVX2-only CPU. Must be set for a fresh process."""


def isa_capped_below_bf16() -> bool:
    """True when an ISA cap in the environment hides the bf16 units from the runtimes.

    oneDNN's cap (e.g. ``ONEDNN_MAX_CPU_ISA=AVX2``, used to emulate an AVX2-only machine) keeps
    its kernels off AVX512-BF16/AMX, so a bf16 mode would run emulated - slower than fp32.
    """
    for var in ISA_CAP_VARIABLES:
        cap = os.environ.get(var, "").strip().upper()
        if cap and cap not in ("ALL", "DEFAULT") and not any(tag in cap for tag in ("BF16", "AMX", "FP16", "AVX10")):
            return True
    return False


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: rely on oneDNN's probe alone
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(precision: str, device: torch.device) -> str:
    """Validate ``precision`` and turn ``"auto"`` into what runs fastest yet faithfully here."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("precision 'fp16' is not supported on CPU; use 'bf16' or 'fp32'")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"
