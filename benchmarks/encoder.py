"""Encoder throughput: the plain module vs every backend x precision, in one interleaved run.

Modes (parity fill-rule weights, seed of the shared fixture):

* ``plain``: the reference ``TinyBioMoE`` in fp32 eval mode, as the published quick-start runs it;
* ``torch-fp32`` / ``torch-bf16``: :class:`core.encoder.FastTinyBioMoE` (bf16: SpectFormer convs and
  matmuls in bf16, everything else fp32); bf16 is timed at batch 1 only where it is emulated;
* ``openvino-fp32`` / ``openvino-bf16`` (the default ``hint="auto"``: one request below 4 images, the
  batch split over 2 streams from there) and ``...-latency`` (one request with every thread at
  any batch): :class:`core.encoder.OpenVINOEncoder`, when OpenVINO is installed;
* with ``--ablations``: OpenVINO with the dynamic-batch model only (``...-dynamic``: no batch size
  compiled fixed), with the FFTs kept, and bf16 over the whole model (unfaithful, shown for
  scale); with ``--compile``: torch.compile of the fast path.

All modes are timed interleaved (plain, mode 1, mode 2, ..., then the same rotated by one, ...) at
each batch size, so load from other processes hits them alike; medians are reported. Also printed: the CPU and its
flags, ISA caps in effect, FLOPs per image, the measured fp32 matmul peak and each mode's share
of it, and each mode's worst-row cosine similarity and largest element error to the float64
reference ``y64`` of ``shared/encoder/parity64_seed0.npz``. Faithful: fp32 modes cosine >=
0.999999 and max abs error <= 5e-3; reduced precision cosine >= 0.99999. The last two lines are::

    best faithful fp32: <mode> <P> % of fp32 peak at batch 8
    best faithful: <mode> <R>x plain at batch 8

``--isa avx2`` re-runs the benchmark in a fresh process with AVX-512/AMX hidden from torch and
OpenVINO (:data:`core.encoder.precision.AVX2_EMULATION_ENV`), to measure an AVX2-only CPU.

With CUDA: fp16/bf16 fast path with CUDA graphs (``torch.compile(mode="reduce-overhead")``) and
without, images/s at batch 64 and 256 and the implied subjects per GPU at 8 images per subject
per second.

Usage: ``painmon bench encoder [--batches 1,8,32] [--reps 5] [--threads N] [--isa avx2]
[--ablations] [--compile] [--no-openvino] [--gpu-batches 64,256] [--cuda-only]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from core.encoder.model import TinyBioMoE
from core.encoder.shapes import specialise_encoder

MID_BATCH = 8
IMAGES_PER_SUBJECT_PER_S = 8
"""One estimate per second per subject, from 8 images (modalities x representations)."""
_ISA_MARK = "PAINMON_BENCH_ISA"
_FLAGS_SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                "amx_tile", "amx_bf16", "amx_int8")


@dataclass
class Mode:
    """One way of running the encoder."""

    name: str
    model: Callable[[torch.Tensor], torch.Tensor]
    precision: str = "fp32"
    max_batch: int | None = None
    """Largest batch timed (emulated bf16 is so slow that larger batches only cost minutes)."""
    note: str = ""


@dataclass(frozen=True)
class Accuracy:
    """Worst-row cosine similarity and largest element error of one mode to the float64 reference."""

    min_cosine: float
    max_abs: float

    def faithful(self, precision: str) -> bool:
        from core.encoder.auto import Faithfulness

        return Faithfulness(self.min_cosine, self.max_abs).passes(precision)


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


def subjects_per_device(images_per_s: float, images_per_subject_per_s: float = IMAGES_PER_SUBJECT_PER_S) -> int:
    """Subjects served in real time at ``images_per_s`` (each needs ``images_per_subject_per_s``)."""
    return int(images_per_s // images_per_subject_per_s)


def _timer(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        _sync(x.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(x)
        _sync(x.device)
        return time.perf_counter() - t0

    return run


SETTLE_S = 0.05
"""Pause before each timed call: torch's OpenMP and OpenVINO's TBB workers spin-wait for a few
milliseconds after their work, which slowed whichever runtime was timed next (the first OpenVINO
mode after the torch modes ran up to 25 % slower at batch 1 than the same model timed later)."""
PEAK_N = 1024
"""Side of the square fp32 matmul whose best speed is taken as the practical peak."""


def _matmul_timer(device: torch.device, n: int = PEAK_N) -> Callable[[], float]:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    inner = 1 if device.type == "cpu" else 20

    def run() -> float:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        _sync(device)
        return (time.perf_counter() - t0) / inner

    return run


def measure(modes: list[Mode], batches: list[int], reps: int,
            device: torch.device) -> tuple[dict[tuple[str, int], float], float]:
    """Median images/s per (mode, batch), modes interleaved within each repetition, and the fp32
    matmul peak in GFLOP/s: the best of the matmuls timed between the modes in every repetition
    (a peak measured once, apart from the modes, is at the mercy of the machine's load then)."""
    out: dict[tuple[str, int], float] = {}
    n = PEAK_N if device.type == "cpu" else 4096
    peak_timer = _matmul_timer(device, n)
    peak_times = [peak_timer(), peak_timer()]
    for batch in batches:
        x = torch.rand(batch, 3, 224, 224, device=device)
        timed = [m for m in modes if m.max_batch is None or batch <= m.max_batch]
        timers = {m.name: _timer(m.model, x) for m in timed}
        for m in timed:  # OpenVINO's fixed-shape model of this batch, as a steady load gets it
            specialise_encoder(m.model, [batch])
        for t in timers.values():  # warm-up (primitive creation, compilation, CUDA graphs)
            t()
            t()
        times: dict[str, list[float]] = {m.name: [] for m in timed}
        for rep in range(reps):
            # rotate the order every repetition: the mode timed right after another runtime paid
            # for that runtime's lingering threads and evicted caches (seen at batch 1)
            for m in timed[rep % len(timed):] + timed[:rep % len(timed)]:
                time.sleep(SETTLE_S)
                times[m.name].append(timers[m.name]())
            time.sleep(SETTLE_S)
            peak_times.append(peak_timer())
        for m in timed:
            out[(m.name, batch)] = batch / statistics.median(times[m.name])
    return out, 2 * n**3 / min(peak_times) / 1e9


def accuracy(modes: list[Mode], x: torch.Tensor, y64: torch.Tensor, device: torch.device) -> dict[str, Accuracy]:
    """Worst-row cosine similarity and largest element error of each mode to the float64 reference."""
    import torch.nn.functional as F

    out = {}
    with torch.inference_mode():
        for m in modes:
            y = m.model(x.to(device)).double().cpu()
            out[m.name] = Accuracy(float(F.cosine_similarity(y, y64, dim=1).min()), float((y - y64).abs().max()))
    return out


# --------------------------------------------------------------------------- machine description


def cpu_description() -> str:
    """CPU model, the SIMD/matrix flags that matter here, and the ISA the runtimes may use."""
    from core.encoder.precision import ISA_CAP_VARIABLES, _cpu_flags, cpu_has_native_bf16

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = _cpu_flags()
    shown = " ".join(f for f in _FLAGS_SHOWN if f in flags) or "(unknown)"
    variables = (*ISA_CAP_VARIABLES, "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
    caps = " ".join(f"{v}={os.environ[v]}" for v in variables if os.environ.get(v))
    lines = [
        f"CPU: {model}, {os.cpu_count()} logical cores; flags: {shown}",
        f"ISA caps: {caps or 'none'}; torch CPU capability {torch.backends.cpu.get_cpu_capability()}; "
        f"bf16 units usable: {'yes' if cpu_has_native_bf16() else 'no'}",
    ]
    try:
        from core.encoder.openvino_backend import _ov_core, openvino_version

        ov_caps = " ".join(_ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        lines.append(f"OpenVINO {openvino_version()} CPU capabilities: {ov_caps}")
    except ImportError:
        lines.append("OpenVINO: not installed (pip install 'painmon[openvino]')")
    return "\n".join(lines)


def _load() -> str:
    try:
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "load average n/a"


# --------------------------------------------------------------------------- modes


def _parity_reference(seed: int) -> TinyBioMoE:
    """The plain reference module with the fill-rule weights of ``seed``, in eval mode."""
    from core.encoder.parity import parity_encoder

    model = parity_encoder(seed)
    assert isinstance(model, TinyBioMoE)
    return model


def build_cpu_modes(reference: TinyBioMoE, *, openvino: bool, ablations: bool, compile: bool,
                    threads: int) -> list[Mode]:
    """The plain module, the torch fast path and (if installed) OpenVINO, in each precision here."""
    from core.encoder import FastTinyBioMoE
    from core.encoder.precision import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16()
    modes = [Mode("plain", reference)]
    modes.append(Mode("torch-fp32", FastTinyBioMoE(reference, precision="fp32").eval()))
    modes.append(Mode("torch-bf16", FastTinyBioMoE(reference, precision="bf16").eval(), "bf16",
                      max_batch=None if bf16 else 1, note="" if bf16 else "emulated"))
    if compile:
        modes.append(Mode("torch-fp32-compile", FastTinyBioMoE(reference, precision="fp32", compile=True).eval()))
    if not openvino:
        return modes
    try:
        from core.encoder.openvino_backend import OpenVINOEncoder, import_openvino, openvino_supports_bf16

        import_openvino()
    except ImportError:
        print("OpenVINO modes skipped: not installed (pip install 'painmon[openvino]')")
        return modes
    precisions = ["fp32"] + (["bf16"] if openvino_supports_bf16() else [])
    for prec in precisions:
        # the default (hint auto: one request below 4 images, the batch split over 2 streams from
        # there), and one request with every thread at every batch size for comparison
        for hint in ("auto", "latency"):
            enc = OpenVINOEncoder(reference, precision=prec, threads=threads, hint=hint)
            modes.append(Mode(enc.mode + ("" if hint == "auto" else f"-{hint}"), enc, prec))
    if ablations:
        for prec in precisions:  # without the fixed-shape models (dynamic batch only)
            enc = OpenVINOEncoder(reference, precision=prec, threads=threads, fixed_shapes=False)
            modes.append(Mode(enc.mode, enc, prec))
        enc = OpenVINOEncoder(reference, precision="fp32", threads=threads, spectral_filter="fft")
        modes.append(Mode(enc.mode, enc, "fp32"))
        if "bf16" in precisions:
            enc = OpenVINOEncoder(reference, precision="bf16", threads=threads, whole_model=True)
            modes.append(Mode(enc.mode, enc, "bf16"))
    return modes


def build_cuda_modes(reference: TinyBioMoE) -> list[Mode]:
    """Plain module and fast path on CUDA in fp32/fp16/bf16, the reduced ones also with CUDA graphs."""
    import copy

    from core.encoder import FastTinyBioMoE

    cuda = torch.device("cuda")
    modes = [Mode("plain", copy.deepcopy(reference).to(cuda).eval())]
    precisions = ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    for prec in precisions:
        fast = FastTinyBioMoE(copy.deepcopy(reference), precision=prec).to(cuda).eval()
        modes.append(Mode(f"torch-{prec}", fast, prec))
        if prec != "fp32":
            # CUDA graphs: torch.compile(mode="reduce-overhead"), one graph per batch size
            graphs = FastTinyBioMoE(copy.deepcopy(reference), precision=prec, compile=True).to(cuda).eval()
            modes.append(Mode(f"torch-{prec}-cudagraphs", graphs, prec))
    return modes


# --------------------------------------------------------------------------- report


def print_table(modes: list[Mode], rates: dict[tuple[str, int], float], acc: dict[str, Accuracy], batches: list[int],
                *, peak: float | None, flops: float, mid: int) -> None:
    """One markdown row per mode: images/s and ratio to plain per batch, % of peak, faithfulness."""
    width = max(len(m.name + (f" ({m.note})" if m.note else "")) for m in modes)
    head = (f"| {'mode':<{width}} | " + " | ".join(f"b={b:<3} img/s (x plain)" for b in batches)
            + f" | {'% fp32 peak b=' + str(mid):<18} | {'min cos vs fp64':<15} | {'max abs err':<11}"
            + f" | {'faithful':<8} |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for m in modes:
        cells = []
        for b in batches:
            r = rates.get((m.name, b))
            base = rates.get(("plain", b))
            cells.append(f"{r:8.1f} ({r / base:5.2f}x)    " if r and base else f"{'not timed':<21}")
        r_mid = rates.get((m.name, mid))
        frac = f"{100 * r_mid * flops / (peak * 1e9):17.1f}%" if (r_mid and peak) else f"{'-':>18}"
        a = acc[m.name]
        ok = "yes" if a.faithful(m.precision) else "NO"
        name = m.name + (f" ({m.note})" if m.note else "")
        print(f"| {name:<{width}} | " + " | ".join(cells)
              + f" | {frac} | {a.min_cosine:15.8f} | {a.max_abs:11.2e} | {ok:<8} |")


def best_lines(modes: list[Mode], rates: dict[tuple[str, int], float], acc: dict[str, Accuracy], *,
               peak: float, flops: float, mid: int) -> list[str]:
    """The two summary lines: best faithful fp32 mode's % of peak, best faithful mode's speed-up."""
    timed = [m for m in modes if (m.name, mid) in rates and m.name != "plain" and acc[m.name].faithful(m.precision)]
    fp32 = [m for m in timed if m.precision == "fp32"]
    lines = []
    if fp32:
        best = max(fp32, key=lambda m: rates[(m.name, mid)])
        pct = 100 * rates[(best.name, mid)] * flops / (peak * 1e9)
        lines.append(f"best faithful fp32: {best.name} {pct:.1f} % of fp32 peak at batch {mid}")
    else:
        lines.append(f"best faithful fp32: none 0.0 % of fp32 peak at batch {mid}")
    if timed:
        best = max(timed, key=lambda m: rates[(m.name, mid)])
        ratio = rates[(best.name, mid)] / rates[("plain", mid)]
        lines.append(f"best faithful: {best.name} {ratio:.2f}x plain at batch {mid}")
    else:
        lines.append(f"best faithful: none 0.00x plain at batch {mid}")
    return lines


def run_cpu(args: argparse.Namespace, batches: list[int], flops: float, fixture) -> list[str]:
    """Time and check every CPU mode; returns the two summary lines."""
    print(f"\n== CPU ({torch.get_num_threads()} threads) ==")
    reference = _parity_reference(fixture.seed)
    modes = build_cpu_modes(reference, openvino=not args.no_openvino, ablations=args.ablations,
                            compile=args.compile, threads=torch.get_num_threads())
    cpu = torch.device("cpu")
    acc = accuracy(modes, fixture.x, fixture.y64, cpu)
    print(f"before timing: {_load()}")
    rates, peak = measure(modes, batches, args.reps, cpu)
    print(f"after timing:  {_load()} (a shared machine: other processes' load makes absolute numbers noisy; "
          "modes are interleaved, so ratios within this run are comparable)")
    print(f"FLOPs per image: {flops / 1e9:.2f} GFLOP; measured fp32 matmul peak: {peak:.0f} GFLOP/s "
          f"(best {PEAK_N}x{PEAK_N} matmul, timed between the modes; = {peak * 1e9 / flops:.0f} images/s "
          "at 100 % of peak)")
    from core.encoder.precision import cpu_has_native_bf16

    if cpu_has_native_bf16():
        print(f"measured bf16 matmul peak: {matmul_gflops(cpu, torch.bfloat16):.0f} GFLOP/s")
    mid = MID_BATCH if MID_BATCH in batches else batches[len(batches) // 2]
    print_table(modes, rates, acc, batches, peak=peak, flops=flops, mid=mid)
    return best_lines(modes, rates, acc, peak=peak, flops=flops, mid=mid)


def run_cuda(args: argparse.Namespace, flops: float, fixture) -> None:
    """Time the CUDA modes at the GPU batch sizes; print images/s and subjects per GPU."""
    cuda = torch.device("cuda")
    print(f"\n== CUDA: {torch.cuda.get_device_name(0)} ==")
    modes = build_cuda_modes(_parity_reference(fixture.seed))
    acc = accuracy(modes, fixture.x, fixture.y64, cuda)
    batches = [int(b) for b in args.gpu_batches.split(",") if b.strip()]
    rates, peak = measure(modes, batches, args.reps, cuda)
    fp16_peak = matmul_gflops(cuda, torch.float16, n=4096)
    print(f"measured fp32 matmul peak: {peak:.0f} GFLOP/s; fp16: {fp16_peak:.0f} GFLOP/s")
    print_table(modes, rates, acc, batches, peak=peak, flops=flops, mid=batches[0])
    for b in batches:
        best = max((m for m in modes if acc[m.name].faithful(m.precision) and (m.name, b) in rates),
                   key=lambda m: rates[(m.name, b)], default=None)
        if best is not None:
            r = rates[(best.name, b)]
            print(f"batch {b}: {best.name} {r:.0f} images/s = {subjects_per_device(r)} subjects per GPU "
                  f"({IMAGES_PER_SUBJECT_PER_S} images per subject per second)")


def _reexec_with_isa(isa: str, argv: list[str]) -> int:
    from core.encoder.precision import AVX2_EMULATION_ENV

    if isa != "avx2":
        raise SystemExit(f"--isa: only 'avx2' can be emulated, got {isa!r}")
    env = dict(os.environ, **AVX2_EMULATION_ENV, **{_ISA_MARK: isa})
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    rest = [a for i, a in enumerate(argv)
            if a != "--isa" and (i == 0 or argv[i - 1] != "--isa") and not a.startswith("--isa=")]
    shown = " ".join(f"{k}={v}" for k, v in AVX2_EMULATION_ENV.items())
    print(f"re-running with AVX-512/AMX hidden: {shown}", flush=True)
    return subprocess.call([sys.executable, "-m", "benchmarks.encoder", *rest], env=env, cwd=root)


def main(argv: list[str] | None = None) -> int:
    """``painmon bench encoder``: see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="painmon bench encoder", description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,32", help="comma-separated CPU batch sizes (default 1,8,32)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per mode and batch (median)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch and OpenVINO (default: torch's)")
    p.add_argument("--isa", choices=["avx2"], help="re-run with AVX-512/AMX hidden from the runtimes (emulate AVX2)")
    p.add_argument("--ablations", action="store_true",
                   help="also OpenVINO with the dynamic batch only, with FFTs kept, and whole-model bf16")
    p.add_argument("--compile", action="store_true", help="also torch.compile of the fast path (slow to build)")
    p.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO modes")
    p.add_argument("--gpu-batches", default="64,256", help="CUDA batch sizes (default 64,256)")
    p.add_argument("--cuda-only", action="store_true", help="skip the CPU part")
    args = p.parse_args(argv)
    if args.isa and os.environ.get(_ISA_MARK) != args.isa:
        return _reexec_with_isa(args.isa, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from core.encoder.auto import parity_fixture
    from core.encoder.parity import parity_encoder

    fixture = parity_fixture()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; float64 reference: {fixture.source}")
    print(cpu_description())
    flops = flops_per_image(parity_encoder(fixture.seed).eval())
    lines: list[str] = []
    if not args.cuda_only:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
        lines = run_cpu(args, batches, flops, fixture)
    if torch.cuda.is_available():
        run_cuda(args, flops, fixture)
    else:
        print("\nCUDA: no CUDA device here - GPU part skipped")
    for line in lines:  # the summary comes last
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
