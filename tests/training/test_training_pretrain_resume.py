"""``painmon pretrain --resume``: an interrupted run continues to the very weights of an uninterrupted one."""

from __future__ import annotations

import torch

from training.pretrain import STATE_FILE, PretrainOptions, pretrain

torch.set_num_threads(1)


def _opts(out, data, steps: int, resume: bool) -> PretrainOptions:
    return PretrainOptions(out=out, data=data, subjects=1, duration_s=30.0, stride_s=10.0, batch=2,
                           modalities=("EDA", "BVP"), representations=("waveform",), max_steps=steps,
                           save_every=1, epochs=3,
                           progress=False, variant="varied", resume=resume)


def test_resume_continues_where_the_run_stopped(tmp_path):
    data = tmp_path / "sim"
    straight = pretrain(_opts(tmp_path / "straight", data, 4, resume=False))
    first = pretrain(_opts(tmp_path / "split", data, 3, resume=True))  # nothing to resume: starts afresh
    assert first.steps == 3 and (tmp_path / "split" / STATE_FILE).is_file()
    second = pretrain(_opts(tmp_path / "split", data, 4, resume=True))
    assert second.steps == 4 and len(second.losses) == 4
    assert second.digest == straight.digest
    assert second.losses[:3] == first.losses


def test_end_labels_pretrain_on_windows_that_mix_levels_too():
    """--window-labels end: every window of a simulated subject becomes pretraining images, each
    with the level at its end; majority labels leave the windows that straddle a change out."""
    import numpy as np

    from training.pretrain import build_items
    from training.recording_windows import WindowSettings, cut_recording
    from training.sim_data import simulate_subject

    rec = simulate_subject(1, 120.0, seed=0, variant="plain")
    settings = WindowSettings(("EDA", "BVP"), 10.0, 5.0, 100.0)
    wb = cut_recording(rec, settings)
    mixed = wb.labels < 0
    assert mixed.any() and (~mixed).any()  # the protocol changes level within some windows
    majority = build_items([rec], settings, 1)
    end = build_items([rec], settings, 1, window_label="end")
    assert len(end.pain) > len(majority.pain)
    per_window = {int(w): int(p) for w, p in zip(end.window, end.pain, strict=True)}
    assert set(per_window) == set(np.flatnonzero(wb.present.any(axis=1)).tolist())
    assert all(per_window[i] == int(wb.level_end[i]) for i in per_window)
    assert {int(w) for w in majority.window} == {i for i in per_window if not mixed[i]}
