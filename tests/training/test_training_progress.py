"""The stderr progress bar: throttled redraws, a final complete line, silence when disabled."""

from __future__ import annotations

import io

from training.progress import Progress, progress


def test_progress_draws_and_finishes():
    out = io.StringIO()
    with Progress(5, "embedding", stream=out, interval=3600) as bar:
        for _ in range(5):
            bar.update()
    text = out.getvalue()
    assert "embedding [" in text and "5/5" in text and text.endswith("\n")
    assert text.count("\r") == 2  # throttled: the first update and the completing one only


def test_progress_disabled_is_silent(capsys):
    assert list(progress(range(3), 3, "quiet", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
