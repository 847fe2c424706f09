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
