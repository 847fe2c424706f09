"""XDF files of the shapes that used to stall fast replay, written with the real XDFWriter.

* :func:`write_heartpy_ppg` — a real PPG recording (heartpy's ``data3.csv``: 100 Hz on a
  millisecond clock, 36 % duplicate timestamps, irregular spacing), as LabRecorder would
  store it: no dejittering by us, timestamps as the device gave them;
* :func:`write_wristband_with_ecg` — EDA 4 Hz + BVP 64 Hz + RESP 32 Hz of a simulated
  subject beside an unmodelled 256 Hz ECG stream, with clock offsets per stream and a
  marker stream;
* :func:`write_ecg_only` — a file with no stream the model uses.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np

from devices.xdf import StreamInfo, XDFWriter


def heartpy_ppg() -> tuple[np.ndarray, np.ndarray]:
    """(seconds, values) of heartpy's bundled real PPG recording ``data3.csv``.

    Found through the package's location, not imported (heartpy imports matplotlib).
    """
    spec = importlib.util.find_spec("heartpy")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("heartpy (test extra) is needed for its real PPG recording")
    csv = Path(next(iter(spec.submodule_search_locations))) / "data" / "data3.csv"
    times, values = [], []
    for line in csv.read_text().splitlines()[1:]:
        if not line.strip():
            continue
        stamp, value = line.split(",")
        times.append(dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC).timestamp())
        values.append(float(value))
    t = np.asarray(times)
    return t - t[0], np.asarray(values)


def _stream(writer: XDFWriter, sid: int, name: str, stype: str, rate: float, fmt: str = "float32",
            subject: str = "p1", labels: tuple[str, ...] | None = None) -> None:
    desc: dict = {"subject": subject}
    if labels:
        desc["channels"] = {"channel": [{"label": lab} for lab in labels]}
    writer.add_stream(sid, StreamInfo(name=name, type=stype, channel_count=1, nominal_srate=rate,
                                      channel_format=fmt, source_id=f"test:{name}", desc=desc))


def _write_chunked(writer: XDFWriter, sid: int, values: np.ndarray, times: np.ndarray, chunk: int) -> None:
    for k in range(0, len(times), chunk):
        writer.write_samples(sid, values[k : k + chunk].reshape(-1, 1), times[k : k + chunk])
    writer.write_footer(sid, float(times[0]), float(times[-1]), len(times))


def write_heartpy_ppg(path: Path, seconds: float | None = None, t0: float = 5000.0) -> Path:
    """Heartpy's real PPG (first ``seconds``) as a LabRecorder-like one-stream file."""
    t, x = heartpy_ppg()
    if seconds is not None:
        keep = t <= seconds
        t, x = t[keep], x[keep]
    w = XDFWriter(path, writer_name="LabRecorder")
    _stream(w, 1, "Pulse sensor", "PPG", 100.0)
    _write_chunked(w, 1, x, t0 + t, 32)
    w.close()
    return path


def write_wristband_with_ecg(path: Path, seconds: float = 60.0, t0: float = 7000.0, seed: int = 3) -> Path:
    """Simulated EDA/BVP/RESP at wristband rates + an unmodelled 256 Hz ECG + markers,
    every stream with its own recorded clock offset (LabRecorder's synchronisation)."""
    from devices.simulator import PainSchedule, SubjectProfile, simulate

    rec = simulate(SubjectProfile.random(seed), PainSchedule.random(seconds, seed=seed), seconds, seed=seed,
                   subject="p1")
    rng = np.random.default_rng(seed)
    w = XDFWriter(path, writer_name="LabRecorder")
    offsets = {1: 0.013, 2: -0.021, 3: 0.4, 4: -1.7, 5: 0.0}
    for sid, (modality, rate) in enumerate((("EDA", 4.0), ("BVP", 64.0), ("RESP", 32.0)), start=1):
        values, fs = rec.signals[modality]
        n = int(seconds * rate)
        # resample the simulator's signal onto the wristband rate
        x = np.interp(np.arange(n) / rate, np.arange(values.size) / fs, values)
        t = t0 - offsets[sid] + np.arange(n) / rate + rng.normal(0, 0.1 / rate, n)
        _stream(w, sid, f"wristband {modality}", modality, rate)
        _write_chunked(w, sid, x, t, max(1, int(rate / 2)))
    n_ecg = int(seconds * 256)
    te = np.arange(n_ecg) / 256.0
    ecg = np.sin(2 * np.pi * 1.2 * te) ** 15 + 0.05 * rng.standard_normal(n_ecg)
    _stream(w, 4, "chest ECG", "ECG", 256.0)
    _write_chunked(w, 4, ecg, t0 - offsets[4] + te, 128)
    _stream(w, 5, "events", "Markers", 0.0, fmt="string")
    marks = [(t0 + t, label) for t, label in rec.markers] or [(t0 + 1.0, "start")]
    w.write_samples(5, [label for _, label in marks], np.array([t for t, _ in marks]))
    for sid in offsets:
        for k in range(0, int(seconds), 5):
            w.write_clock_offset(sid, t0 + k, offsets[sid])
    w.close()
    return path


def write_ecg_only(path: Path, seconds: float = 20.0, t0: float = 100.0) -> Path:
    """One ECG stream: nothing the bundled model uses."""
    w = XDFWriter(path, writer_name="LabRecorder")
    n = int(seconds * 256)
    te = np.arange(n) / 256.0
    _stream(w, 1, "chest ECG", "ECG", 256.0)
    _write_chunked(w, 1, np.sin(2 * np.pi * 1.2 * te) ** 15, t0 + te, 128)
    w.close()
    return path
