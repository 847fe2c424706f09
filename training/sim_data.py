"""Simulated training data: subjects from :mod:`devices.simulator` at their device rates.

The bundled model is trained on these. Subjects are simulated at realistic device rates
(EDA 4 Hz, BVP 64 Hz, RESP 25 Hz, SpO2 1 Hz) — not directly at 100 Hz — so the windows go
through the same resampling and filtering as live simulated streams in the demo.
Subject ``k`` of a dataset with seed ``s`` is seeded with ``subject_seed(s, k)``, so
held-out subjects (higher ``k``) never share a seed with training subjects, and neither
shares one with the subjects the live simulator (demo) shows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from training.progress import progress
from training.records import LEVEL_OF, LevelTrack, Recording, Signal

log = logging.getLogger(__name__)

MANIFEST = "painmon-sim.json"


TRAINING_SEED_BASE = 5_000_000
"""Offset that keeps training subjects apart from the live simulator's subjects.

The demo and ``painmon simulate`` seed subject ``i`` with ``seed * 1000 + i + 1``
(:func:`devices.simulator.subject_seed`); training subjects start at this offset so the
person on the demo screen is never one the bundled model was trained on."""


def subject_seed(seed: int, k: int) -> int:
    """Seed of subject ``k`` (1-based) in a dataset drawn with ``seed``."""
    return TRAINING_SEED_BASE + int(seed) * 10_000 + int(k)


VARIANTS = ("plain", "varied")
"""``plain``: :meth:`SubjectProfile.random` on an ideal device at the default rates (the
first bundled models); ``varied``: :meth:`SubjectProfile.varied` (wide physiology, pulse
and breath shapes) measured by :meth:`SensorSettings.random` (gains, offsets, rates,
coloured noise, drift), with a first rest of 70-100 s from which the subject's baseline is learnt."""


def first_rest_s(seed: int) -> float:
    """Length of a varied subject's initial no-pain period (70-100 s, from its seed)."""
    return float(70 + np.random.default_rng([seed, 0xBA5E]).integers(0, 31))


def simulate_subject(k: int, duration_s: float, seed: int, variant: str = "plain") -> Recording:
    """One simulated subject ``sim-k`` with a random profile and a random pain protocol."""
    from devices.simulator import PainSchedule, SensorSettings, SubjectProfile, simulate

    s = subject_seed(seed, k)
    subject = f"sim-{k}"
    if variant == "plain":
        rec = simulate(SubjectProfile.random(s), PainSchedule.random(duration_s, s), duration_s, seed=s,
                       subject=subject)
    elif variant == "varied":
        sched = PainSchedule.random(duration_s, s, first_rest_s=min(first_rest_s(s), duration_s))
        rec = simulate(SubjectProfile.varied(s), sched, duration_s, seed=s, subject=subject,
                       sensor=SensorSettings.random(s))
    else:
        raise ValueError(f"unknown simulator variant {variant!r}; use one of {', '.join(VARIANTS)}")
    return recording_from_simulation(rec, f"sim:{seed}:{k}" if variant == "plain" else f"sim-{variant}:{seed}:{k}")


def recording_from_simulation(sim, rec_id: str) -> Recording:
    """Turn a :class:`devices.simulator.SimulatedRecording` into a labelled :class:`Recording`."""
    signals = {m: Signal.regular(v, fs, t0=sim.t0) for m, (v, fs) in sim.signals.items()}
    times = [sim.t0 + t for t, _ in sim.markers]
    levels = [LEVEL_OF[text.split(":", 1)[1]] for _, text in sim.markers]
    return Recording(subject=sim.subject, signals=signals, levels=LevelTrack(np.array(times), np.array(levels)),
                     id=rec_id, source="PainMon simulator", info={"seed": sim.seed, "duration_s": sim.duration_s})


def save_recordings(folder: Path, recordings: list[Recording], meta: dict) -> None:
    """Store recordings as one ``.npz`` per subject plus a JSON manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for rec in recordings:
        arrays: dict[str, Any] = {"level_times": rec.levels.times, "level_values": rec.levels.levels}
        for m, s in rec.signals.items():
            arrays[f"{m}__values"] = s.values.astype(np.float32)
            arrays[f"{m}__times"] = s.timestamps
            arrays[f"{m}__rate"] = np.array(s.rate)
        name = f"{rec.subject}.npz"
        np.savez_compressed(folder / name, **arrays)
        names.append({"file": name, "subject": rec.subject, "id": rec.id})
    (folder / MANIFEST).write_text(json.dumps({**meta, "recordings": names}, indent=1))


def load_recordings(folder: Path) -> tuple[list[Recording], dict]:
    """Recordings and manifest of a folder written by :func:`save_recordings`."""
    manifest = json.loads((folder / MANIFEST).read_text())
    out = []
    for entry in manifest["recordings"]:
        with np.load(folder / entry["file"], allow_pickle=False) as z:
            mods = sorted({k.split("__")[0] for k in z.files if "__" in k})
            signals = {m: Signal(z[f"{m}__values"], z[f"{m}__times"], float(z[f"{m}__rate"])) for m in mods}
            levels = LevelTrack(z["level_times"], z["level_values"])
        out.append(Recording(entry["subject"], signals, levels, entry["id"], source="PainMon simulator"))
    return out, manifest


def sim_dataset(folder: str | Path, n_subjects: int = 12, duration_s: float = 240.0, seed: int = 0,
                first: int = 1, show_progress: bool = True, variant: str = "plain") -> list[Recording]:
    """Subjects ``sim-first`` .. of a simulated dataset, generated once and stored in ``folder``.

    If ``folder`` already holds a dataset with the same parameters it is read back; if it
    holds one with other parameters, that is an error rather than a silent mix.
    """
    folder = Path(folder)
    meta = {"n_subjects": int(n_subjects), "duration_s": float(duration_s), "seed": int(seed), "first": int(first),
            "variant": variant}
    if (folder / MANIFEST).is_file():
        recs, manifest = load_recordings(folder)
        stored = {k: manifest.get(k, "plain" if k == "variant" else None) for k in meta}
        if stored != meta:
            raise ValueError(f"{folder} holds a simulated dataset made with {stored}, not {meta}; use another folder")
        return recs
    recs = [simulate_subject(k, duration_s, seed, variant)
            for k in progress(range(first, first + n_subjects), n_subjects, f"simulating {n_subjects} subjects",
                             enabled=show_progress)]
    save_recordings(folder, recs, meta)
    log.info("simulated %d subjects x %.0f s into %s", n_subjects, duration_s, folder)
    return recs
