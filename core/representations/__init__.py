"""Windows -> 224x224 RGB images (waveform and spectrograms) for the image encoder.

``render(signals (B, C, T), representations, fs, size, config, device)`` returns
``(B, C, R, 3, size, size)`` float32 in [0, 1]. Pure torch at run time (CPU or CUDA);
matplotlib is used only by the tests and the benchmark, as the reference.
"""

from core.representations.config import RepresentationConfig
from core.representations.render import (
    DEFAULT_REPRESENTATIONS,
    KNOWN_REPRESENTATIONS,
    check_representations,
    render,
)

__all__ = [
    "DEFAULT_REPRESENTATIONS",
    "KNOWN_REPRESENTATIONS",
    "RepresentationConfig",
    "check_representations",
    "render",
]
