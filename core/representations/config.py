"""Settings of the image representations (plain data, chosen by configuration)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RepresentationConfig:
    """Parameters shared by all representations of one model.

    Defaults suit a 10 s window at 100 Hz (1000 samples): ``nfft = 256`` gives 0.39 Hz
    frequency bins (129 rows: breathing and EDA still get a few rows of their own) and
    ``noverlap = 240`` a 16-sample (0.16 s) hop, i.e. 47 frames across the window, so
    the 224-pixel-wide image is not a handful of blocks. A model must be trained and run
    with the same settings; checkpoints should record them.
    """

    nfft: int = 256
    """STFT segment length in samples (``NFFT`` of ``matplotlib.mlab.specgram``)."""
    noverlap: int = 240
    """Samples shared by consecutive segments (``noverlap`` of ``mlab.specgram``)."""
    line_width: float = 1.5
    """Waveform line thickness in pixels."""
    margin: float = 2.0
    """Pixels kept free above the maximum and below the minimum of the waveform."""
    db_range: float = 160.0
    """PSD values more than this many dB below the image's maximum are floored, so exact
    zeros (-inf dB, e.g. a zero-padded or constant signal) cannot squash the rest of the
    image. 160 dB lies below float32 rounding noise (~140 dB), so real signals, even an
    SpO2 trace sitting at 97 %, keep mlab's full range."""

    def __post_init__(self) -> None:
        if self.nfft < 2:
            raise ValueError(f"nfft must be at least 2, got {self.nfft}")
        if not 0 <= self.noverlap < self.nfft:
            raise ValueError(f"noverlap must be in [0, nfft={self.nfft}), got {self.noverlap}")
        if self.line_width <= 0 or self.margin < 0 or self.db_range <= 0:
            raise ValueError("line_width and db_range must be positive, margin non-negative")

    @property
    def hop(self) -> int:
        return self.nfft - self.noverlap
