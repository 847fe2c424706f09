"""PainMon core: pure computation (buffers, windows, preprocessing, representations,
encoder, fusion, estimator). No I/O beyond loading weight files, no Qt, no network."""

__version__ = "0.1.0"
