"""Clock-phase benchmark (``painmon bench clock_phase``): does the index depend on where the samples fall?

The engine resamples every stream onto the 100 Hz grid of the shared clock; a live device or
a replay puts its samples anywhere between two grid points (a replay's clock offset is
``now``, so it changes every run). Training recordings are simulated from t = 0, so their
samples lie on the grid. This benchmark shifts the clock of one held-out simulated subject
(the subjects of :mod:`benchmarks.index_quality`) by fractions of a working-rate sample,
cuts the same windows through the training path (the engine's end-of-window rule) and
prints, per shift, the estimator's index and its distance from the training distribution
(``ood``, ``uncertain`` above the model's threshold) — with every modality, and without each
one. A model that carries over prints (nearly) the same numbers on every line; the bundled
model did not (README "Index quality": 1 Hz SpO2 shifted by 4-6 ms).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.options import add_model_options, model_options  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """``painmon bench clock_phase``."""
    from dataclasses import replace

    from benchmarks.index_quality import POPULATIONS, held_out_session
    from core.inference import ModalityWindow, SubjectWindow
    from monitor.engine import BaselineOptions
    from training.recording_windows import WindowSettings, cut_recording
    from training.records import LevelTrack, Recording, Signal

    p = argparse.ArgumentParser(prog="painmon bench clock_phase", description=__doc__.splitlines()[0])
    p.add_argument("--subject", type=int, default=0, help="held-out subject (0-based) of draw --seed (default 0)")
    p.add_argument("--seed", type=int, default=0, help="draw of held-out subjects (default 0)")
    p.add_argument("--population", choices=POPULATIONS, default="varied")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the subject to cut (default 30)")
    p.add_argument("--stride", type=float, default=7.0, help="seconds between the windows (default 7)")
    p.add_argument("--steps", type=int, default=10, help="shifts per working-rate sample (default 10)")
    add_model_options(p)
    args = p.parse_args(argv)
    model = replace(model_options(args), baseline=BaselineOptions(duration_s=0.0, profiles="off"))
    loaded = model.load()
    est = loaded.estimator
    session, _ = held_out_session(args.subject + 1, args.duration, args.seed, args.population)
    sid = f"held-{args.subject + 1}"
    streams = [s for s in session.streams if s.spec.subject == sid and s.spec.modality in est.modalities]
    settings = WindowSettings(tuple(est.modalities), loaded.window_s, args.stride, est.working_rate)
    threshold = est.statistics.threshold if est.statistics is not None else float("nan")
    print(f"clock phase: {sid} of draw {args.seed} ({args.population}), rates "
          f"{ {s.spec.modality: s.spec.nominal_rate for s in streams} }; uncertain above {threshold:.3g}")
    step = 1.0 / est.working_rate
    for k in range(args.steps + 1):
        shift = step * k / args.steps
        sigs = {s.spec.modality: Signal(s.values[:, 0], s.timestamps + shift, s.spec.nominal_rate) for s in streams}
        wb = cut_recording(Recording(sid, sigs, LevelTrack.constant(0, 0.0), id=sid), settings)
        windows = [SubjectWindow(sid, float(t), {m: ModalityWindow(wb.signals[i, j], valid=bool(wb.present[i, j]))
                                                 for j, m in enumerate(est.modalities)})
                   for i, t in enumerate(wb.t_end)]
        rows = [("all", windows)] + [
            (f"without {drop}", [SubjectWindow(sid, w.t_end, {m: mw for m, mw in w.modalities.items() if m != drop})
                                 for w in windows])
            for drop in est.modalities]
        for name, ws in rows:
            out = est.estimate(ws)
            idx = " ".join(f"{e.index:5.1f}" for e in out)
            ood = " ".join(f"{e.ood_score:7.3g}" for e in out)
            print(f"  shift {1000 * shift:5.2f} ms {name:<13} index {idx}   ood {ood}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
