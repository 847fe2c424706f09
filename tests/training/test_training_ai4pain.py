"""AI4PAIN-layout reader: real simulator-written datasets and hand-made quirky files."""

from __future__ import annotations

import numpy as np
import pytest

from training.ai4pain import DatasetLayoutError, condition_of, load_ai4pain


def test_reads_dataset_written_by_the_simulator(tmp_path):
    from devices.simulator import write_dataset

    sims = write_dataset(tmp_path, 2, 60, seed=3)
    recs = load_ai4pain(tmp_path)
    assert sorted({r.subject for r in recs}) == ["sim-1", "sim-2"]
    for r in recs:
        assert set(r.signals) == {"EDA", "BVP", "RESP", "SpO2"} and r.whole_segment
        assert all(s.rate == 100.0 and np.isfinite(s.values).all() for s in r.signals.values())
    # the segments, in order, reproduce the simulated signal and its labels
    sim = sims[0]
    first = [r for r in recs if r.subject == sim.subject]
    eda = np.concatenate([r.signals["EDA"].values for r in first])
    expected, fs = sim.signals["EDA"]
    assert fs == 100.0
    assert np.allclose(eda, expected[: eda.size], rtol=1e-4, atol=1e-4)
    codes = sim.level_codes("EDA")[: eda.size]
    lab = np.concatenate([np.full(r.signals["EDA"].values.size, r.levels.levels[0]) for r in first])
    assert np.array_equal(lab, codes)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_tolerant_of_case_separators_padding_and_missing_folder(tmp_path, caplog):
    root = tmp_path / "Physiological" / "train"
    # semicolon-separated, odd case, NaN/empty padding, no SpO2 folder at all
    _write(root / "BVP" / "7.CSV", "7_Baseline_1;7_LOW_2;7_rest_3;7-High-4\n1;2;3;4\n1.5;2.5;;4.5\n;2.7;;NaN\n")
    _write(root / "eda" / "7.csv", "7_Baseline_1;7_LOW_2;7_rest_3;7-High-4\n5;6;7;8\n5.5;6.5;;8.5\n;6.7;;\n")
    _write(root / "Resp" / "7.csv", "7_Baseline_1;7_LOW_2;7_rest_3;7-High-4\n0;0;0;0\n0;0;;0\n;0;;\n")
    with caplog.at_level("WARNING"):
        recs = load_ai4pain(tmp_path)
    assert "SpO2" in caplog.text
    assert [r.info["condition"] for r in recs] == ["baseline", "low", "high"]
    assert [int(r.levels.levels[0]) for r in recs] == [0, 1, 2]
    assert recs[0].signals["BVP"].values.tolist() == [1.0, 1.5]
    assert recs[1].signals["EDA"].values.tolist() == [6.0, 6.5, 6.7]
    assert set(recs[0].signals) == {"BVP", "EDA", "RESP"}
    with_rest = load_ai4pain(tmp_path, rest="no")
    assert [r.info["condition"] for r in with_rest] == ["baseline", "low", "rest", "high"]
    assert int(with_rest[2].levels.levels[0]) == 0


def test_wrong_layouts_are_explained(tmp_path):
    with pytest.raises(DatasetLayoutError, match="Bvp, Eda, Resp, SpO2"):
        load_ai4pain(tmp_path)
    _write(tmp_path / "Eda" / "1.csv", "segment_a,segment_b\n1,2\n")
    with pytest.raises(DatasetLayoutError, match=r"'segment_a'.*baseline, low, high, rest"):
        load_ai4pain(tmp_path)
    _write(tmp_path / "Eda" / "1.csv", "baseline,high\n1,x2\n")
    with pytest.raises(DatasetLayoutError, match=r"row 2, column 'high': 'x2' is not a number"):
        load_ai4pain(tmp_path)
    _write(tmp_path / "Eda" / "1.csv", "baseline,high\n1,2\n")
    _write(tmp_path / "Bvp" / "1.csv", "baseline\n1\n")
    with pytest.raises(DatasetLayoutError, match="different segment counts"):
        load_ai4pain(tmp_path)
    with pytest.raises(ValueError, match="rest="):
        load_ai4pain(tmp_path, rest="maybe")


def test_condition_parsing():
    assert condition_of("1_Baseline_1") == "baseline"
    assert condition_of("HIGH-3") == "high"
    assert condition_of("low pain 2") == "low"
    assert condition_of("followup") is None
    assert condition_of("low_high") is None  # ambiguous
