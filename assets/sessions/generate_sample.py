"""Make the bundled sample session: a few minutes of simulated subjects, with markers.

Run ``python assets/sessions/generate_sample.py`` to regenerate
``assets/sessions/sample-sim.xdf`` (the data are the same for the same arguments; only the
file's creation times differ). It goes through :class:`devices.xdf.SessionRecorder`, so the
sample is exactly what a PainMon recording of the simulator looks like, and
``painmon replay`` reads it back. A script, not a library module (tests run it with ``runpy``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.paths import assets_dir
from core.streams import StreamSpec
from core.wire import stream_source_id
from devices.simulator import (
    CHANNEL_LABELS,
    UNITS,
    PainSchedule,
    SubjectProfile,
    simulate,
    subject_id,
    subject_seed,
)
from devices.xdf import SessionRecorder

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("sessions") / "sample-sim.xdf"
T0 = 1000.0
"""Clock time of the first sample in the file (replay re-bases it onto the live clock)."""


def sample_path() -> Path:
    """Where the bundled sample session lives."""
    return assets_dir() / DEFAULT_PATH


def make_sample_session(
    path: str | Path | None = None,
    duration_s: float = 180.0,
    subjects: int = 2,
    seed: int = 0,
) -> Path:
    """Simulate ``subjects`` people for ``duration_s`` and record them to ``path``.

    Subject 1 follows the demo's scripted schedule (rest, low, rest, high, ...), the
    others a random protocol, so the sample shows every pain level within three minutes.
    """
    path = Path(path) if path is not None else sample_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    recorder = SessionRecorder(path).start()
    try:
        for i in range(subjects):
            sid = subject_id(i)
            s_seed = subject_seed(seed, i)
            schedule = PainSchedule.scripted_demo() if i == 0 else PainSchedule.random(duration_s, seed=s_seed)
            rec = simulate(SubjectProfile.random(s_seed), schedule, duration_s, seed=s_seed, subject=sid)
            for modality, (values, fs) in rec.signals.items():
                spec = StreamSpec(sid, modality, (CHANNEL_LABELS[modality],), fs, UNITS[modality],
                                  f"{sid} {modality}", stream_source_id(sid, modality))
                times = T0 + np.arange(values.size) / fs
                step = max(1, round(fs))  # one-second chunks, as a live source sends
                for k in range(0, values.size, step):
                    recorder.record_chunk(spec, values[k : k + step, None], times[k : k + step])
            labels = [label for _, label in rec.markers]
            recorder.record_markers(sid, labels, [T0 + t for t, _ in rec.markers], source="simulator")
    finally:
        recorder.stop()
    log.info("sample session written to %s (%d bytes)", path, path.stat().st_size)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line of the script: check the arguments, write the session; returns the exit code."""
    p = argparse.ArgumentParser(description="Write the bundled sample session (simulated, with markers).")
    p.add_argument("--out", default=None, help=f"output file (default: assets/{DEFAULT_PATH})")
    p.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
    p.add_argument("--subjects", type=int, default=2, help="simulated subjects (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.duration > 0 or args.subjects < 1:
        p.error("--duration must be positive and --subjects at least 1")
    out = make_sample_session(args.out, args.duration, args.subjects, args.seed)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
