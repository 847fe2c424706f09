"""``render``: a batch of windows -> images of every requested representation, in one pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.representations.config import RepresentationConfig
from core.representations.spectrogram import spectrogram_images
from core.representations.waveform import waveform_images

DEFAULT_REPRESENTATIONS: tuple[str, ...] = (
    "waveform",
    "spectrogram_psd",
    "spectrogram_angle",
    "spectrogram_phase",
)
"""The representation families of the Tiny-BioMoE / PainFormer line of work."""

KNOWN_REPRESENTATIONS: tuple[str, ...] = DEFAULT_REPRESENTATIONS

_SPECTROGRAM_PREFIX = "spectrogram_"


def check_representations(representations: Sequence[str]) -> tuple[str, ...]:
    """Validate names early (configuration errors should surface at start-up)."""
    names = tuple(representations)
    if isinstance(representations, str):
        raise ValueError(f"representations must be a sequence of names, got the string {representations!r}")
    if not names:
        raise ValueError("at least one representation is needed; known: " + ", ".join(KNOWN_REPRESENTATIONS))
    unknown = [n for n in names if n not in KNOWN_REPRESENTATIONS]
    if unknown:
        raise ValueError(
            f"unknown representation(s) {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN_REPRESENTATIONS)}"
        )
    return names


def render(
    signals: torch.Tensor | np.ndarray,
    representations: Sequence[str] = DEFAULT_REPRESENTATIONS,
    fs: float = 100.0,
    size: int = 224,
    config: RepresentationConfig | None = None,
    device: torch.device | str | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images of B windows x C channels (modalities) x R representations.

    ``signals`` is (B, C, T), finite (windows from :func:`core.windows.cut_window` are).
    Returns float32 (B, C, R, 3, size, size) in [0, 1] on ``device`` (default: the input
    tensor's device, CPU for numpy input), R in the order asked. Everything is batched:
    one rasteriser pass for all waveforms, one STFT + one resize for all spectrograms.

    ``out``: an optional contiguous float32 tensor of the result's shape on the same
    device to write into and return. Callers rendering large batches repeatedly (a
    training loop) can reuse one buffer: first-touch page faults of a fresh 77 MB result
    (batch 8) cost more than the rendering on some machines.
    """
    names = check_representations(representations)
    cfg = config or RepresentationConfig()
    if size < 8:
        raise ValueError(f"image size must be at least 8 pixels, got {size}")
    if not fs > 0:
        raise ValueError(f"sampling rate must be positive, got {fs}")
    if device is None:
        dev = signals.device if isinstance(signals, torch.Tensor) else torch.device("cpu")
    else:
        dev = torch.device(device)
    x = torch.as_tensor(signals).to(device=dev, dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(f"signals must be (batch, channels, samples), got shape {tuple(x.shape)}")
    b, c, t = x.shape
    if t < 2:
        raise ValueError(f"windows need at least 2 samples, got {t}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("signals contain NaN or inf; cut windows with core.windows.cut_window first")

    with torch.no_grad():
        flat = x.reshape(b * c, t)
        shape = (b, c, len(names), 3, size, size)
        if out is None:
            out = torch.empty(shape, dtype=torch.float32, device=dev)
        elif tuple(out.shape) != shape or out.dtype != torch.float32 or out.device != dev or not out.is_contiguous():
            raise ValueError(
                f"out must be a contiguous float32 tensor of shape {shape} on {dev}, "
                f"got {out.dtype} {tuple(out.shape)} on {out.device}"
            )
        result = out
        if b * c == 0:  # nothing to draw (an FFT of an empty batch is an error in MKL)
            return result
        out = out.view(b * c, len(names), 3, size, size)
        wave_idx = [r for r, n in enumerate(names) if n == "waveform"]
        if wave_idx:
            waveform_images(flat, size, cfg, out=out[:, wave_idx[0]])
            for r in wave_idx[1:]:
                out[:, r] = out[:, wave_idx[0]]
        spec_idx = [r for r, n in enumerate(names) if n.startswith(_SPECTROGRAM_PREFIX)]
        if spec_idx:
            modes = tuple(names[r][len(_SPECTROGRAM_PREFIX) :] for r in spec_idx)
            first, last = spec_idx[0], spec_idx[-1]
            if spec_idx == list(range(first, last + 1)):  # the usual case: write in place
                spectrogram_images(flat, modes, fs, size, cfg, out=out[:, first : last + 1])
            else:
                out[:, spec_idx] = spectrogram_images(flat, modes, fs, size, cfg)
    return result
