"""The bundled sample session: present, small, complete, and what its generator makes."""

from __future__ import annotations

import runpy

import numpy as np

from core.modalities import DEFAULT_MODALITIES
from core.paths import assets_dir
from devices.xdf import load_session

GENERATOR = assets_dir() / "sessions" / "generate_sample.py"
_script = runpy.run_path(str(GENERATOR))  # a script, not a module: run it for its functions
make_sample_session = _script["make_sample_session"]
sample_path = _script["sample_path"]


def test_bundled_sample_session_is_complete():
    path = sample_path()
    assert path.is_file(), f"{path} missing: run python assets/sessions/generate_sample.py"
    assert path.stat().st_size < 2_000_000
    session = load_session(path)
    assert session.writer == "PainMon"
    assert session.subjects == ["sim-1", "sim-2"]
    assert 170 <= session.duration <= 190
    for subject in session.subjects:
        for modality in DEFAULT_MODALITIES:
            s = session.stream(subject, modality)
            assert s is not None, (subject, modality)
            assert s.known_modality and s.n_samples >= 170 * s.spec.nominal_rate
            assert np.all(np.isfinite(s.values))
    labels = {m.label for m in session.markers}
    assert labels == {"pain:no", "pain:low", "pain:high"}


def test_generator_matches_the_bundled_layout_and_is_deterministic(tmp_path):
    """The generator makes the bundled file's streams, times and markers (values follow the
    simulator, which may be refined after the sample was made), the same on every run."""
    fresh = load_session(make_sample_session(tmp_path / "again.xdf"))
    bundled = load_session(sample_path())
    assert [s.spec for s in fresh.replayable] == [s.spec for s in bundled.replayable]
    for a, b in zip(fresh.replayable, bundled.replayable, strict=True):
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        if a.is_marker:
            assert a.values == b.values
    short_a = load_session(make_sample_session(tmp_path / "a.xdf", duration_s=20, subjects=1, seed=3))
    short_b = load_session(make_sample_session(tmp_path / "b.xdf", duration_s=20, subjects=1, seed=3))
    for a, b in zip(short_a.streams, short_b.streams, strict=True):
        np.testing.assert_array_equal(a.values, b.values)
