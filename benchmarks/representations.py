"""Benchmark: windows -> images, batched torch rendering vs matplotlib figures.

Measures, in one run on one machine, windows per second for the full default set
(4 modalities x 4 representations = 16 images of 224x224 per window) rendered

* by :func:`core.representations.render` (CPU at 1 and 2 threads, CUDA when present), and
* the way offline scripts do it: one matplotlib figure per image (``plot`` /
  ``specgram``), drawn on the Agg canvas and copied out as an array,

and prints the speed-up. Rounds alternate between the two so load from other processes
hits both alike; the median round counts.

    painmon bench representations [--batch 1 8] [--rounds 3] [--mpl-windows 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Literal

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.representations import DEFAULT_REPRESENTATIONS, RepresentationConfig, render  # noqa: E402

FS = 100.0
T = 1000  # 10 s at 100 Hz
SIZE = 224
MODALITIES = ("EDA", "BVP", "RESP", "SpO2")
SPECGRAM_MODES: dict[str, Literal["psd", "angle", "phase"]] = {
    "spectrogram_psd": "psd", "spectrogram_angle": "angle", "spectrogram_phase": "phase",
}
"""matplotlib ``specgram`` mode of each spectrogram representation."""


def make_windows(n: int, seed: int = 0) -> np.ndarray:
    """(n, 4, T) float32 windows shaped like preprocessed EDA, BVP, RESP, SpO2."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FS
    out = np.empty((n, 4, T), np.float32)
    for i in range(n):
        hr = rng.uniform(0.9, 1.6)
        out[i, 0] = 3 + 0.05 * t + 0.01 * rng.standard_normal(T)
        out[i, 1] = np.sin(2 * np.pi * hr * t) + 0.1 * rng.standard_normal(T)
        out[i, 2] = np.sin(2 * np.pi * rng.uniform(0.2, 0.4) * t) + 0.05 * rng.standard_normal(T)
        out[i, 3] = 97 + 0.5 * np.tanh(t - 5) + 0.02 * rng.standard_normal(T)
    return out


def matplotlib_window(window: np.ndarray, cfg: RepresentationConfig) -> list[np.ndarray]:
    """Render one window's 16 images as offline scripts do: a figure per image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = []
    for sig in window:
        for rep in DEFAULT_REPRESENTATIONS:
            fig = Figure(figsize=(SIZE / 100, SIZE / 100), dpi=100)
            canvas = FigureCanvasAgg(fig)
            ax = fig.add_axes((0, 0, 1, 1))
            ax.set_axis_off()
            if rep == "waveform":
                ax.plot(sig, color="black", linewidth=cfg.line_width * 72 / 100)
                ax.set_xlim(0, sig.size - 1)
            else:
                ax.specgram(sig, NFFT=cfg.nfft, Fs=FS, noverlap=cfg.noverlap, mode=SPECGRAM_MODES[rep], cmap="viridis")
            canvas.draw()
            images.append(np.asarray(canvas.buffer_rgba())[..., :3].astype(np.float32) / 255.0)
    return images


def _time(fn, repeats: int) -> float:
    """Best of ``repeats`` wall times (seconds): the least disturbed run."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _torch_rate(windows: torch.Tensor, device: torch.device, repeats: int, reuse: bool = False) -> float:
    """Windows per second of ``render`` for this batch on ``device``; ``reuse`` renders
    into one preallocated result (``out=``) instead of a fresh tensor per call."""
    x = windows.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = len(DEFAULT_REPRESENTATIONS)
    buf = torch.empty((x.shape[0], x.shape[1], n, 3, SIZE, SIZE), device=device) if reuse else None

    def run() -> None:
        render(x, fs=FS, device=device, out=buf)
        sync()

    run()  # warm-up: caches, allocator, CUDA context
    return windows.shape[0] / _time(run, repeats)


NO_MATPLOTLIB = "matplotlib not installed"


def speed_up(rate: float, mpl_rate: float, digits: int = 1) -> str:
    """The speed-up column: ``rate / mpl_rate`` as "12.3x", or why there is none (never
    "nanx" when matplotlib is missing and nothing was measured to compare with)."""
    if not math.isfinite(mpl_rate) or mpl_rate <= 0:
        return NO_MATPLOTLIB
    return f"{rate / mpl_rate:.{digits}f}x"


def main(argv: list[str] | None = None) -> int:
    """``painmon bench representations``: matplotlib vs torch rendering, interleaved rounds,
    medians printed; returns the exit code."""
    ap = argparse.ArgumentParser(prog="painmon bench representations", description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="windows per render call")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (median is reported)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per round (best counts)")
    ap.add_argument("--mpl-windows", type=int, default=2, help="windows matplotlib renders per round")
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="CPU thread counts (default 1 and 2)")
    args = ap.parse_args(argv)

    cfg = RepresentationConfig()
    threads = args.threads or sorted({1, min(2, os.cpu_count() or 1)})
    windows = torch.from_numpy(make_windows(max(args.batch + [args.mpl_windows])))
    try:
        import matplotlib  # noqa: F401

        have_mpl = True
    except ImportError:
        have_mpl = False
        print("matplotlib not installed (pip install -e '.[test]'): torch figures only")

    cuda = torch.cuda.is_available()
    mpl_rates: list[float] = []
    cpu_rates: dict[tuple[int, int, bool], list[float]] = {}
    cuda_rates: dict[int, list[float]] = {}
    saved_threads = torch.get_num_threads()
    for _ in range(args.rounds):
        if have_mpl:
            sub = windows[: args.mpl_windows].numpy()
            mpl_rates.append(sub.shape[0] / _time(lambda sub=sub: [matplotlib_window(w, cfg) for w in sub], 1))
        for th in threads:
            torch.set_num_threads(th)
            for b in args.batch:
                cpu_rates.setdefault((th, b, False), []).append(
                    _torch_rate(windows[:b], torch.device("cpu"), args.repeats)
                )
            big = max(args.batch)
            if big > 1:
                cpu_rates.setdefault((th, big, True), []).append(
                    _torch_rate(windows[:big], torch.device("cpu"), args.repeats, reuse=True)
                )
        torch.set_num_threads(saved_threads)
        if cuda:
            for b in args.batch:
                cuda_rates.setdefault(b, []).append(_torch_rate(windows[:b], torch.device("cuda"), args.repeats))

    mpl = statistics.median(mpl_rates) if mpl_rates else float("nan")
    print(f"representations: {len(MODALITIES)} modalities x {len(DEFAULT_REPRESENTATIONS)} representations "
          f"= 16 images of {SIZE}x{SIZE} per 10 s window; {os.cpu_count()} CPUs; torch {torch.__version__}")
    print()
    print("| renderer | batch | windows/s | ms/window | speed-up vs matplotlib |")
    print("|---|---:|---:|---:|---:|")
    if have_mpl:
        print(f"| matplotlib, a figure per image | 1 | {mpl:.1f} | {1000 / mpl:.1f} | 1.0x |")
    for (th, b, reuse), rates in sorted(cpu_rates.items()):
        r = statistics.median(rates)
        how = f"torch CPU, {th} thread{'s' if th > 1 else ''}" + (", reused out= buffer" if reuse else "")
        print(f"| {how} | {b} | {r:.1f} | {1000 / r:.2f} | {speed_up(r, mpl)} |")
    for b, rates in cuda_rates.items():
        r = statistics.median(rates)
        name = torch.cuda.get_device_name(0)
        print(f"| torch CUDA ({name}) | {b} | {r:.1f} | {1000 / r:.3f} | {speed_up(r, mpl, 0)} |")
    if not cuda:
        print("\n(no CUDA device here: CUDA rows omitted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
