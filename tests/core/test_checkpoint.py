"""PainMon model checkpoints: round trip, fp16 encoder, mismatch reporting, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoint import ModelLoadError, ModelMetadata, load_model, save_model
from core.fusion import FusionHead

torch.set_num_threads(1)
MODS = ["EDA", "BVP", "RESP", "SpO2"]
REPS = ["waveform", "stft"]


def _model(tmp_path: Path, encoder=None) -> tuple[Path, FusionHead]:
    torch.manual_seed(0)
    head = FusionHead(MODS, REPS, across="concat", hidden=16)
    meta = ModelMetadata(
        name="t", modalities=MODS, representations=REPS, trained_on="unit test",
        preprocessing={"eda_lowpass_hz": 1.0}, metrics={"accuracy": 0.5, "confusion": [[1, 2], [3, 4]]},
    )
    path = save_model(tmp_path / "m.pt", head, meta, encoder_state_dict=encoder)
    return path, head


def test_round_trip_gives_same_outputs_and_metadata(tmp_path):
    enc = {"w": torch.randn(4, 4), "idx": torch.arange(3)}
    path, head = _model(tmp_path, enc)
    loaded = load_model(path, expect={"window_s": 10, "working_rate": 100.0, "modalities": MODS})
    assert not loaded.head.training
    emb = torch.randn(2, 4, 2, 192)
    assert torch.allclose(loaded.head(emb), head.eval()(emb))
    m = loaded.metadata
    assert m.trained_on == "unit test" and "not a medical device" in m.not_clinical
    assert m.metrics["confusion"] == [[1, 2], [3, 4]]
    assert m.fusion["across"] == "concat" and m.created and m.class_names == ["no", "low", "high"]
    # encoder stored in fp16, returned as fp32; integer buffers untouched
    raw = torch.load(path, weights_only=True)
    assert raw["encoder"]["w"].dtype == torch.float16 and raw["format"] == "painmon-model"
    assert loaded.encoder_state_dict["w"].dtype == torch.float32
    assert torch.allclose(loaded.encoder_state_dict["w"], enc["w"], atol=1e-2)
    assert torch.equal(loaded.encoder_state_dict["idx"], enc["idx"])


def test_mismatches_are_all_listed(tmp_path):
    path, _ = _model(tmp_path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path, expect={"window_s": 8, "working_rate": 100, "modalities": ["EDA", "BVP"], "windw": 1})
    text = str(err.value)
    assert "window_s: model has 10.0, running configuration has 8" in text
    assert "modalities" in text and "windw: not a model metadata field" in text
    assert "working_rate" not in text


def test_bad_files_are_explained(tmp_path):
    missing = tmp_path / "none.pt"
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a torch checkpoint .it holds a text file"):
        load_model(junk)
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model(tmp_path)
    enc = tmp_path / "enc.pth"
    torch.save({"model_state_dict": {"a": torch.zeros(1)}}, enc)
    with pytest.raises(ModelLoadError, match="encoder weights"):
        load_model(enc)
    path, _ = _model(tmp_path)
    blob = torch.load(path, weights_only=True)
    blob["version"] = 99
    torch.save(blob, tmp_path / "v99.pt")
    with pytest.raises(ModelLoadError, match="version 99"):
        load_model(tmp_path / "v99.pt")
    blob["version"] = 1
    blob["head"].pop(next(iter(blob["head"])))
    torch.save(blob, tmp_path / "cut.pt")
    with pytest.raises(ModelLoadError, match="head weights"):
        load_model(tmp_path / "cut.pt")


def test_pickled_code_is_refused(tmp_path):
    """A checkpoint carrying arbitrary objects must not be unpickled (weights_only), and the
    refusal is one line, not torch's advice to load it unsafely."""
    path = tmp_path / "evil.pt"
    torch.save({"format": "painmon-model", "version": 1, "head": {}, "metadata": {}, "x": Path("/")}, path)
    with pytest.raises(ModelLoadError, match="refused: it holds Python objects other than tensors") as err:
        load_model(path)
    assert "\n" not in str(err.value) and "weights_only=False" not in str(err.value)


def test_save_refuses_inconsistent_metadata(tmp_path):
    head = FusionHead(MODS, REPS)
    meta = ModelMetadata(name="x", modalities=["EDA"], representations=REPS)
    with pytest.raises(ValueError, match="differ"):
        save_model(tmp_path / "x.pt", head, meta)
    assert not (tmp_path / "x.pt").exists()
