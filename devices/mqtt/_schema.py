r"""Payload schema of PainMon's MQTT sample and marker messages: encoding and strict decoding.

Devices are other people's code, so every payload is validated completely before any of it
reaches a buffer: a message is accepted whole or rejected whole with a short reason string
(``PayloadError.reason``) that the source counts per stream, so a malformed publisher shows
up in the health panel instead of corrupting the session.

Two encodings of a sample message exist:

* JSON (the default; easy from any language)::

    {"t0": 1718000000.25, "fs": 64, "values": [0.1, 0.2, 0.3], "seq": 17}
    {"t0": 1718000000.25, "fs": 4, "channels": ["eda", "temp"],
     "values": [[1.2, 33.1], [1.3, 33.1]], "seq": 3, "units": "uS"}

  ``values`` is sample-major: one number per sample for one channel, or one list per
  sample holding one number per channel (the layout of an LSL chunk).

* Compact binary (4x smaller, no float parsing), little-endian::

    offset size  type      field
    0      4     bytes     magic b"PMS1"
    4      8     float64   t0 (seconds, sender clock)
    12     8     float64   fs (Hz)
    20     8     int64     seq (-1 = none)
    28     4     uint32    n_samples
    32     2     uint16    n_channels
    34     2     uint16    label_bytes (0 = default channel labels)
    36     L     utf-8     channel labels joined by "\n" (L = label_bytes)
    36+L   4*n*c float32   samples, sample-major

Marker messages are JSON only: ``{"t": 12.5, "label": "pain:high"}``,
``{"t": [1.0, 2.0], "labels": ["a", "b"]}`` or ``{"t0": 12.5, "labels": ["a", "b"]}``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import PainMonError
from core.limits import BAD_RATE, MAX_CHANNELS, MAX_RATE_HZ

MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
"""Larger payloads are refused before parsing: no wearable sends this much per message."""
MAX_VALUES = 100_000
"""Most numbers (samples x channels) in one message."""
MAX_SPAN_S = 60.0
"""Longest stretch of signal one message may cover (samples / fs): wearables send a few
seconds at a time, and a long span at a tiny rate is what makes resampling allocate."""
MAX_ABS_TIME = 1e11
"""|t0| above this is not seconds (Unix time in ms is ~1.7e12): refused as ``bad_time``."""
MAX_LABEL_CHARS = 256
MAX_MARKERS = 1000
MAX_SEQ = 2**63 - 1

BINARY_MAGIC = b"PMS1"
_BINARY_HEADER = struct.Struct("<4sddqIHH")

# Reasons a payload is refused (the vocabulary of StreamHealth.reject_reasons).
INVALID_JSON = "invalid_json"
BAD_BINARY = "bad_binary"
BAD_TYPE = "bad_type"
MISSING_FIELD = "missing_field"
NON_FINITE = "non_finite"
EMPTY = "empty"
TOO_LARGE = "too_large"
BAD_TIME = "bad_time"
TOO_LONG = "too_long"
BAD_SHAPE = "bad_shape"
CHANNEL_MISMATCH = "channel_mismatch"


class PayloadError(PainMonError, ValueError):
    """A payload that cannot be accepted. ``reason`` is short and countable; ``detail``
    says what exactly was wrong (for the log)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SampleMessage:
    """One decoded chunk of samples, still on the sender's clock."""

    t0: float
    """Sender time of the first sample (seconds)."""
    fs: float
    values: np.ndarray
    """(n_samples, n_channels) float32, all finite."""
    channels: tuple[str, ...] | None = None
    """Labels given by the sender, or None (the source then uses defaults)."""
    seq: int | None = None
    units: str | None = None

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.values.shape[1])

    @property
    def duration(self) -> float:
        """Seconds this chunk covers (first sample to the one after the last)."""
        return self.n_samples / self.fs


@dataclass(frozen=True)
class MarkerMessage:
    """Decoded events, on the sender's clock."""

    times: tuple[float, ...]
    labels: tuple[str, ...]
    seq: int | None = None


# --- encoding -------------------------------------------------------------------------


def encode_samples(
    t0: float,
    fs: float,
    values: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    channels: Sequence[str] | None = None,
    seq: int | None = None,
    units: str | None = None,
) -> bytes:
    """JSON payload of a sample message. ``values`` is (n,) or sample-major (n, channels)."""
    arr = np.asarray(values, dtype=np.float64)
    obj: dict[str, Any] = {"t0": float(t0), "fs": float(fs)}
    if channels is not None:
        obj["channels"] = [str(c) for c in channels]
    obj["values"] = arr.tolist()
    if seq is not None:
        obj["seq"] = int(seq)
    if units is not None:
        obj["units"] = str(units)
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def encode_samples_binary(
    t0: float,
    fs: float,
    values: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    channels: Sequence[str] | None = None,
    seq: int | None = None,
) -> bytes:
    """Compact binary payload (layout in the module docstring)."""
    arr = np.asarray(values, dtype="<f4")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"values must be (n,) or (n, channels), got shape {arr.shape}")
    labels = b"" if channels is None else "\n".join(channels).encode("utf-8")
    header = _BINARY_HEADER.pack(
        BINARY_MAGIC,
        float(t0),
        float(fs),
        -1 if seq is None else int(seq),
        arr.shape[0],
        arr.shape[1],
        len(labels),
    )
    return header + labels + np.ascontiguousarray(arr).tobytes()


def encode_markers(t: float | Sequence[float], labels: str | Sequence[str], seq: int | None = None) -> bytes:
    """JSON payload of one marker (``t`` and ``labels`` scalars) or several (sequences)."""
    if isinstance(labels, str):
        obj: dict[str, Any] = {"t": float(t), "label": labels}  # type: ignore[arg-type]
    else:
        times = [float(x) for x in np.ravel(t)] if np.ndim(t) > 0 else [float(t)] * len(labels)  # type: ignore[arg-type]
        obj = {"t": times, "labels": list(labels)}
    if seq is not None:
        obj["seq"] = int(seq)
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# --- decoding -------------------------------------------------------------------------


def decode_samples(payload: bytes | str) -> SampleMessage:
    """Validate and decode a JSON or binary sample payload; raise :class:`PayloadError`."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    _check_size(raw)
    if raw.startswith(BINARY_MAGIC):
        return _decode_binary(raw)
    obj = _load_json_object(raw)
    t0 = _number(obj, "t0")
    _check_time(t0)
    fs = _rate(obj)
    seq = _seq(obj)
    units = _optional_str(obj, "units")
    channels = _channels(obj)
    # numpy turns true/false into 1/0 silently, so only payloads without those literals
    # may take the fast (vectorised) type check
    values = _values(obj.get("values", None), channels, may_hold_bools=b"true" in raw or b"false" in raw)
    _check_span(values.shape[0], fs)
    return SampleMessage(t0=t0, fs=fs, values=values, channels=channels, seq=seq, units=units)


def decode_markers(payload: bytes | str) -> MarkerMessage:
    """Validate and decode a JSON marker payload; raise :class:`PayloadError`."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    _check_size(raw)
    obj = _load_json_object(raw)
    seq = _seq(obj)
    if "label" in obj:
        label = _label(obj["label"])
        t = _number(obj, "t")
        _check_time(t)
        return MarkerMessage(times=(t,), labels=(label,), seq=seq)
    if "labels" not in obj:
        raise PayloadError(MISSING_FIELD, "marker needs 'label' or 'labels'")
    labels_raw = obj["labels"]
    if not isinstance(labels_raw, list):
        raise PayloadError(BAD_TYPE, "'labels' must be a list of strings")
    if not labels_raw:
        raise PayloadError(EMPTY, "'labels' is empty")
    if len(labels_raw) > MAX_MARKERS:
        raise PayloadError(TOO_LARGE, f"{len(labels_raw)} markers > {MAX_MARKERS}")
    labels = tuple(_label(x) for x in labels_raw)
    if "t0" in obj:
        t0 = _number(obj, "t0")
        _check_time(t0)
        times: tuple[float, ...] = (t0,) * len(labels)
    elif isinstance(obj.get("t"), list):
        times = tuple(_finite_number(x, "t") for x in obj["t"])
        if len(times) != len(labels):
            raise PayloadError(CHANNEL_MISMATCH, f"{len(times)} times for {len(labels)} labels")
        for x in times:
            _check_time(x)
    else:
        t = _number(obj, "t")
        _check_time(t)
        times = (t,) * len(labels)
    return MarkerMessage(times=times, labels=labels, seq=seq)


def _check_size(raw: bytes) -> None:
    if len(raw) == 0:
        raise PayloadError(EMPTY, "empty payload")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(TOO_LARGE, f"payload of {len(raw)} bytes > {MAX_PAYLOAD_BYTES}")


def _reject_constant(name: str) -> float:
    raise PayloadError(NON_FINITE, f"JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # NaN/Infinity are refused


def _load_json_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(INVALID_JSON, f"not UTF-8 ({exc.reason})") from None
    try:
        obj = _DECODER.decode(text)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PayloadError(INVALID_JSON, str(exc)[:120]) from None
    if not isinstance(obj, dict):
        raise PayloadError(BAD_TYPE, f"top level is {type(obj).__name__}, not an object")
    return obj


def _is_number(x: Any) -> bool:
    # bool is an int subclass in Python; true/false are not samples.
    return (type(x) is float) or (type(x) is int)


def _finite_number(x: Any, name: str) -> float:
    if not _is_number(x):
        raise PayloadError(BAD_TYPE, f"'{name}' must be a number, got {type(x).__name__}")
    value = float(x)
    if not math.isfinite(value):
        raise PayloadError(NON_FINITE, f"'{name}' is {value}")
    return value


def _number(obj: dict[str, Any], name: str) -> float:
    if name not in obj:
        raise PayloadError(MISSING_FIELD, f"'{name}' missing")
    return _finite_number(obj[name], name)


def _check_time(t: float) -> None:
    if abs(t) > MAX_ABS_TIME:
        raise PayloadError(BAD_TIME, f"time {t} is not in seconds (milliseconds sent?)")


def _check_rate(fs: float) -> float:
    if not (0.0 < fs <= MAX_RATE_HZ):
        raise PayloadError(BAD_RATE, f"fs={fs} Hz outside (0, {MAX_RATE_HZ:g}]")
    return fs


def _check_span(n: int, fs: float) -> None:
    if n / fs > MAX_SPAN_S:
        raise PayloadError(TOO_LONG, f"{n} samples at {fs:g} Hz span {n / fs:.3g} s > {MAX_SPAN_S:g} s")


def _rate(obj: dict[str, Any]) -> float:
    if "fs" not in obj:
        raise PayloadError(MISSING_FIELD, "'fs' missing")
    x = obj["fs"]
    if _is_number(x) and not math.isfinite(float(x)):
        raise PayloadError(BAD_RATE, f"fs={x}")
    return _check_rate(_finite_number(x, "fs"))


def _seq(obj: dict[str, Any]) -> int | None:
    seq = obj.get("seq", None)
    if seq is None:
        return None
    if type(seq) is not int or not (0 <= seq <= MAX_SEQ):
        raise PayloadError(BAD_TYPE, f"'seq' must be a non-negative integer, got {seq!r:.40}")
    return seq


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name, None)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise PayloadError(BAD_TYPE, f"'{name}' must be a short string")
    return value


def _label(x: Any) -> str:
    if not isinstance(x, str) or not x or len(x) > MAX_LABEL_CHARS:
        raise PayloadError(BAD_TYPE, f"label must be a non-empty string of <= {MAX_LABEL_CHARS} chars")
    return x


def _channels(obj: dict[str, Any]) -> tuple[str, ...] | None:
    chans = obj.get("channels", None)
    if chans is None:
        return None
    if not isinstance(chans, list) or not all(isinstance(c, str) and c for c in chans):
        raise PayloadError(BAD_TYPE, "'channels' must be a list of non-empty strings")
    if not chans:
        raise PayloadError(EMPTY, "'channels' is empty")
    if len(chans) > MAX_CHANNELS:
        raise PayloadError(TOO_LARGE, f"{len(chans)} channels > {MAX_CHANNELS}")
    return tuple(chans)


def _values(values: Any, channels: tuple[str, ...] | None, may_hold_bools: bool = True) -> np.ndarray:
    if values is None:
        raise PayloadError(MISSING_FIELD, "'values' missing")
    if not isinstance(values, list):
        raise PayloadError(BAD_TYPE, f"'values' must be a list, got {type(values).__name__}")
    if not values:
        raise PayloadError(EMPTY, "'values' is empty")
    nested = isinstance(values[0], list)
    width = len(values[0]) if nested else 1
    if width > MAX_CHANNELS:
        raise PayloadError(TOO_LARGE, f"{width} channels > {MAX_CHANNELS}")
    if len(values) * width > MAX_VALUES:
        raise PayloadError(TOO_LARGE, f"{len(values) * width} values > {MAX_VALUES}")
    arr = None if may_hold_bools else _fast_numeric(values, 2 if nested else 1)
    if arr is None:  # the careful path, which also names what is wrong
        arr = _sample_major(values, width) if nested else _flat(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if channels is not None and len(channels) != arr.shape[1]:
        raise PayloadError(
            CHANNEL_MISMATCH, f"{len(channels)} channel labels but {arr.shape[1]} values per sample"
        )
    return _finite_float32(arr)


def _fast_numeric(values: list[Any], ndim: int) -> np.ndarray | None:
    """NumPy's parse of a list that holds only numbers (10x faster than checking each one
    in Python); None when numpy cannot vouch for that (strings, null, ragged, huge ints)."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "fi" or arr.ndim != ndim or arr.shape[-1] == 0:
        return None
    return arr.astype(np.float64, copy=False)


def _flat(values: list[Any]) -> np.ndarray:
    if not all(_is_number(v) for v in values):
        raise PayloadError(BAD_TYPE, "'values' must hold only numbers")
    return np.asarray(values, dtype=np.float64)


def _sample_major(rows: list[Any], width: int) -> np.ndarray:
    if width == 0:
        raise PayloadError(EMPTY, "sample with no channels")
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise PayloadError(BAD_SHAPE, f"every sample must be a list of {width} numbers")
        if not all(_is_number(v) for v in row):
            raise PayloadError(BAD_TYPE, "'values' must hold only numbers")
    return np.asarray(rows, dtype=np.float64)


def _finite_float32(arr: np.ndarray) -> np.ndarray:
    """Samples are stored as float32: anything that is not finite there is refused."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)  # beyond float32 range becomes inf here
    if not np.isfinite(out).all():
        raise PayloadError(NON_FINITE, "NaN, inf or beyond float32 range in 'values'")
    return out


def _decode_binary(raw: bytes) -> SampleMessage:
    if len(raw) < _BINARY_HEADER.size:
        raise PayloadError(BAD_BINARY, f"{len(raw)} bytes < {_BINARY_HEADER.size}-byte header")
    _, t0, fs, seq, n, ch, label_bytes = _BINARY_HEADER.unpack_from(raw)
    if not math.isfinite(t0):
        raise PayloadError(NON_FINITE, f"t0={t0}")
    _check_time(t0)
    if not math.isfinite(fs):
        raise PayloadError(BAD_RATE, f"fs={fs}")
    _check_rate(fs)
    if n == 0 or ch == 0:
        raise PayloadError(EMPTY, f"{n} samples x {ch} channels")
    if ch > MAX_CHANNELS or n * ch > MAX_VALUES:
        raise PayloadError(TOO_LARGE, f"{n} samples x {ch} channels")
    _check_span(n, fs)
    expected = _BINARY_HEADER.size + label_bytes + 4 * n * ch
    if len(raw) != expected:
        raise PayloadError(BAD_BINARY, f"{len(raw)} bytes, header promises {expected}")
    channels = None
    if label_bytes:
        try:
            text = raw[_BINARY_HEADER.size : _BINARY_HEADER.size + label_bytes].decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError(BAD_BINARY, "channel labels are not UTF-8") from None
        channels = tuple(text.split("\n"))
        if len(channels) != ch or not all(channels):
            raise PayloadError(CHANNEL_MISMATCH, f"{len(channels)} labels for {ch} channels")
    data = np.frombuffer(raw, dtype="<f4", count=n * ch, offset=_BINARY_HEADER.size + label_bytes)
    values = data.reshape(n, ch).astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise PayloadError(NON_FINITE, "NaN or inf in samples")
    return SampleMessage(
        t0=t0, fs=fs, values=values, channels=channels, seq=None if seq < 0 else int(seq)
    )
