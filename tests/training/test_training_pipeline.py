"""``painmon train`` end to end on a tiny simulated dataset with the real encoder.

Kept small (2 modalities, 1 representation, a few windows) because the encoder runs on a
CPU; the embedding cache is checked by re-running with another fusion mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoint import load_model
from monitor.cli import main

torch.set_num_threads(2)

BASE = ["--sim-subjects", "3", "--sim-test-subjects", "1", "--sim-duration", "30", "--stride", "10",
        "--modalities", "EDA,BVP", "--representations", "waveform", "--epochs", "15", "--encoder", "init",
        "--hidden", "32", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    out = root / "out"
    export = root / "exported" / "model.pt"
    rc = main(["train", "--dataset", "sim", str(root / "data"), "--out", str(out), "--cache", str(root / "cache"),
               "--export", str(export), *BASE])
    assert rc == 0
    return {"root": root, "out": out, "export": export}


def test_writes_a_loadable_model_with_honest_metadata(run):
    loaded = load_model(run["out"] / "model.pt", expect={"window_s": 10, "working_rate": 100,
                                                         "modalities": ["EDA", "BVP"], "representations": ["waveform"]})
    m = loaded.metadata
    assert "simulated" in m.trained_on and "not real people" in m.trained_on
    assert "not a medical device" in m.not_clinical
    assert "untrained deterministic initialisation" in m.encoder_description
    assert set(m.metrics) >= {"accuracy", "macro_f1", "confusion", "index_corr", "ablations"}
    assert m.metrics["test_subjects"] == ["sim-4"] and "sim-4" not in m.extra["train_subjects"]
    assert m.preprocessing["chains"]["BVP"]["filters"]
    assert loaded.encoder_state_dict is not None
    from core.encoder.weights import encoder_fingerprint

    assert encoder_fingerprint(loaded.encoder_state_dict) == m.encoder_fingerprint
    assert run["export"].read_bytes() == (run["out"] / "model.pt").read_bytes()
    probs = torch.softmax(loaded.head(torch.zeros(1, 2, 1, 192), torch.tensor([[True, False]])), 1)
    assert torch.isfinite(probs).all()


def test_report_and_plots(run):
    report = (run["out"] / "report.md").read_text()
    assert "Held-out evaluation" in report and "accuracy" in report and "| true \\ predicted |" in report
    assert "modality EDA only" in report and "modality BVP only" in report
    for png in ("confusion.png", "tracking.png", "ablations.png"):
        data = (run["out"] / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_cache_makes_fusion_variants_cheap_and_runs_are_deterministic(run, caplog):
    root = run["root"]
    files_before = sorted(p.name for p in (root / "cache").rglob("*.npz"))
    assert len(files_before) == 4  # one per simulated subject
    with caplog.at_level("INFO", logger="training.pipeline"):
        rc = main(["train", "--dataset", "sim", str(root / "data"), "--out", str(root / "out2"), "--cache",
                   str(root / "cache"), "--no-ablations", *BASE])
    assert rc == 0
    assert "3 recording(s) from cache, 0 computed" in caplog.text  # training subjects
    assert "1 recording(s) from cache, 0 computed" in caplog.text  # held-out subject
    a = torch.load(run["out"] / "model.pt", weights_only=True)["head"]
    b = torch.load(root / "out2" / "model.pt", weights_only=True)["head"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rc = main(["train", "--dataset", "sim", str(root / "data"), "--out", str(root / "out3"), "--cache",
               str(root / "cache"), "--no-ablations", *BASE, "--across", "attention", "--within", "add"])
    assert rc == 0
    assert sorted(p.name for p in (root / "cache").rglob("*.npz")) == files_before
    assert load_model(root / "out3" / "model.pt").metadata.fusion["across"] == "attention"


def test_bad_dataset_is_reported_not_raised(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["train", "--dataset", "ai4pain", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "Bvp, Eda, Resp, SpO2" in capsys.readouterr().out
    rc = main(["train", "--dataset", "csv", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2
