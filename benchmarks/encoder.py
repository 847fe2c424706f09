"""Encoder throughput: the plain reference module vs each fast inference mode, in one run.

(a) is the plain fp32 eval-mode ``TinyBioMoE`` (no folding, no compilation), the way the
published quick-start runs it; (b) are the fast modes of :class:`core.encoder.FastTinyBioMoE`.
All modes are timed interleaved (a, b1, b2, a, b1, b2, ...) at each batch size so that load from
other processes hits them alike, and medians are reported. Also printed: FLOPs per image
(torch's FLOP counter), this machine's measured fp32 matmul GFLOP/s, the fraction of that peak
each mode reaches, and each mode's cosine similarity to the reference embedding.

Usage: ``painmon bench encoder [--batches 1,8,32] [--reps 5] [--compile] [--cuda-only]``
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Mode:
    """One way of running the encoder."""

    name: str
    model: torch.nn.Module
    precision: str = "fp32"
    max_batch: int | None = None
    """Largest batch timed (emulated bf16 is so slow that larger batches only cost minutes)."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 7) -> float:
    """Best-of-reps GFLOP/s of an n x n matmul: the practical peak the encoder is measured against."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best = float("inf")
    inner = 1 if device.type == "cpu" else 20
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2 * n**3 / best / 1e9


def flops_per_image(model: torch.nn.Module) -> float:
    """Multiply-adds x 2 per 224x224 image, as torch's FLOP counter counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.rand(1, 3, 224, 224))
    return float(counter.get_total_flops())


def _timer(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        _sync(x.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(x)
        _sync(x.device)
        return time.perf_counter() - t0

    return run


def measure(modes: list[Mode], batches: list[int], reps: int, device: torch.device) -> dict[tuple[str, int], float]:
    """Median images/s per (mode, batch), modes interleaved within each repetition."""
    out: dict[tuple[str, int], float] = {}
    for batch in batches:
        x = torch.rand(batch, 3, 224, 224, device=device)
        timed = [m for m in modes if m.max_batch is None or batch <= m.max_batch]
        timers = {m.name: _timer(m.model, x) for m in timed}
        for t in timers.values():  # warm-up (oneDNN primitive creation, compilation, CUDA graphs)
            t()
            t()
        times: dict[str, list[float]] = {m.name: [] for m in timed}
        for _ in range(reps):
            for m in timed:
                times[m.name].append(timers[m.name]())
        for m in timed:
            out[(m.name, batch)] = batch / statistics.median(times[m.name])
    return out


def faithfulness(modes: list[Mode], reference: torch.nn.Module, device: torch.device) -> dict[str, float]:
    """Minimum cosine similarity of each mode's embedding to the fp32 reference (parity weights)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 224, 224, generator=gen).to(device)
    with torch.inference_mode():
        ref = reference(x).float()
        return {m.name: float(F.cosine_similarity(m.model(x).float(), ref, dim=1).min()) for m in modes}


def build_modes(device: torch.device, compile: bool) -> tuple[torch.nn.Module, list[Mode]]:
    """The reference encoder (a) and every fast mode (b) worth timing on ``device``; emulated
    bf16 (no native units) is timed at batch 1 only and never compiled, as it is too slow to matter."""
    from core.encoder import FastTinyBioMoE
    from core.encoder.parity import parity_encoder
    from core.encoder.precision import cpu_has_native_bf16

    reference = parity_encoder(0).to(device).eval()
    modes = [Mode("reference fp32 (a)", reference)]
    precisions = ["fp32", "bf16"] if device.type == "cpu" else ["fp32", "fp16", "bf16"]
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        precisions.remove("bf16")
    for prec in precisions:
        fast = FastTinyBioMoE(copy.deepcopy(reference), precision=prec).to(device).eval()
        emulated = prec == "bf16" and device.type == "cpu" and not cpu_has_native_bf16()
        note = " (emulated: no bf16 units)" if emulated else ""
        modes.append(Mode(f"fast {prec}{note}", fast, prec, max_batch=1 if emulated else None))
    if compile:
        # compile the modes that are worth running here (emulated bf16 is not)
        fast_precs = [p for p in precisions if not (p == "bf16" and device.type == "cpu" and not cpu_has_native_bf16())]
        for prec in fast_precs:
            fast = FastTinyBioMoE(copy.deepcopy(reference), precision=prec, compile=True).to(device).eval()
            modes.append(Mode(f"fast {prec} + torch.compile", fast, prec))
    return reference, modes


def report(title: str, device: torch.device, modes: list[Mode], batches: list[int], reps: int, flops: float) -> None:
    """Time ``modes`` on ``device`` and print one table: images/s per batch, share of the
    measured matmul peak and cosine similarity to the reference."""
    print(f"\n== {title} ==")
    peak = matmul_gflops(device)
    rates = measure(modes, batches, reps, device)
    peak_after = matmul_gflops(device)
    peak = max(peak, peak_after)
    cos = faithfulness(modes, modes[0].model, device)
    print(f"FLOPs per image: {flops / 1e9:.2f} GFLOP; measured fp32 matmul peak: {peak:.0f} GFLOP/s "
          f"(= {peak * 1e9 / flops:.0f} images/s at 100% of peak)")
    head = (
        f"| {'mode':<40} | " + " | ".join(f"b={b:<3} img/s (x a) " for b in batches)
        + " | % of fp32 peak (b=8) | cos vs (a) |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    ref_name = modes[0].name
    mid = 8 if 8 in batches else batches[len(batches) // 2]
    for m in modes:
        cells = []
        for b in batches:
            r = rates.get((m.name, b))
            cells.append(f"{r:7.1f} ({r / rates[(ref_name, b)]:4.2f}x)   " if r else f"{'not timed':<18}")
        r_mid = rates.get((m.name, mid))
        frac = f"{100 * r_mid * flops / (peak * 1e9):18.0f}%" if r_mid else f"{'-':>19}"
        print(f"| {m.name:<40} | " + " | ".join(cells) + f" | {frac} | {cos[m.name]:.6f} |")
    best = max((m for m in modes[1:] if (m.name, mid) in rates), key=lambda m: rates[(m.name, mid)])
    speedup = rates[(best.name, mid)] / rates[(ref_name, mid)]
    print(f"best fast mode at batch {mid}: {best.name}, {speedup:.2f}x the reference")


def main(argv: list[str] | None = None) -> int:
    """``painmon bench encoder``: time the modes on CPU, then on CUDA where present; returns the exit code."""
    p = argparse.ArgumentParser(prog="painmon bench encoder", description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per mode and batch (median)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile modes (slow to build)")
    p.add_argument("--cuda-only", action="store_true", help="skip the CPU part")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    from core.encoder.parity import parity_encoder

    flops = flops_per_image(parity_encoder(0).eval())
    if not args.cuda_only:
        cpu = torch.device("cpu")
        _, modes = build_modes(cpu, args.compile)
        report("CPU", cpu, modes, batches, args.reps, flops)
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        _, modes = build_modes(cuda, args.compile)
        report(f"CUDA: {torch.cuda.get_device_name(0)}", cuda, modes, batches, args.reps, flops)
    else:
        print("\nCUDA: no CUDA device here - GPU part skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
