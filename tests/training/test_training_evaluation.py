"""Head training and subject-wise evaluation on embedded datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.fusion import FusionConfig, predict
from training.dataset import EmbeddedDataset
from training.evaluate import ablations, classification_metrics, evaluate_subjects, subject_split
from training.fit import FitSettings, fit_head, trainable, window_labels

torch.set_num_threads(1)
MODS = ("EDA", "BVP", "RESP", "SpO2")
REPS = ("waveform", "spectrogram_psd")


def _dataset(n_subjects=6, per_subject=30, informative=0, seed=0) -> EmbeddedDataset:
    """Embeddings where only modality ``informative`` carries the class (plus a per-subject offset)."""
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    labels = np.tile(np.arange(3), n // 3 + 1)[:n]
    emb = rng.normal(0, 1, (n, 4, 2, 192)).astype(np.float32)
    direction = rng.normal(0, 1, 192).astype(np.float32)
    emb[:, informative] += (labels[:, None, None] - 1.0) * direction * 0.6
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], per_subject)
    for i in range(n_subjects):
        emb[subjects == f"s{i}"] += rng.normal(0, 0.3, 192).astype(np.float32)
    present = np.ones((n, 4), dtype=bool)
    present[::5, 3] = False  # some windows without SpO2
    emb[~present] = 0
    return EmbeddedDataset(emb, present, labels.astype(np.int64), labels.astype(np.int64), np.arange(n, dtype=float),
                           subjects, np.array([f"rec-{s}" for s in subjects]), np.ones((n, 4), np.float32), MODS, REPS)


CFG = FusionConfig(MODS, REPS, within="add", across="attention", hidden=32, dropout=0.1)
FIT = FitSettings(epochs=10, seed=0)


def test_metrics_on_known_predictions():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    m = classification_metrics(labels, probs)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    f1 = np.mean([2 * 1 / (2 + 1 + 1), 2 * 2 / (4 + 1), 2 * 1 / (2 + 1)])
    assert m["macro_f1"] == pytest.approx(f1)
    assert m["index_mean_per_level"] == [25.0, 50.0, 50.0]


def test_subject_split_never_mixes_and_is_seeded():
    subjects = [f"s{i}" for i in range(8)]
    tr, te = subject_split(subjects, 0.25, seed=1)
    assert len(te) == 2 and not set(tr) & set(te) and sorted(tr + te) == sorted(subjects)
    assert subject_split(subjects, 0.25, seed=1) == (tr, te)
    assert subject_split(subjects, test_subjects=["s3"])[1] == ["s3"]
    with pytest.raises(ValueError, match="not in the dataset"):
        subject_split(subjects, test_subjects=["s99"])


def test_training_is_deterministic_and_learns():
    ds = _dataset()
    h1 = fit_head(ds, CFG, FIT)
    h2 = fit_head(ds, CFG, FIT)
    for (k, a), (_, b) in zip(h1.state_dict().items(), h2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    ev = evaluate_subjects(ds, CFG, FIT, "split", 0.34)
    assert ev.metrics["accuracy"] > 0.7 and ev.metrics["index_corr"] > 0.6
    test_subjects = set(ds.subjects[ev.test_index].tolist())
    assert test_subjects == set(ev.metrics["test_subjects"])
    assert not test_subjects & set(ev.metrics["train_subjects"])


def test_leave_one_subject_out_covers_every_subject_once():
    ds = _dataset(n_subjects=4, per_subject=18)
    ev = evaluate_subjects(ds, CFG, FitSettings(epochs=8), "loso")
    assert sorted(f["subject"] for f in ev.folds) == ["s0", "s1", "s2", "s3"]
    assert sorted(ev.test_index.tolist()) == list(range(len(ds)))
    assert ev.metrics["n"] == len(ds)


def test_ablations_find_the_informative_modality():
    ds = _dataset(informative=1, seed=2)
    tr, te = subject_split(ds.subject_ids, 0.34, 0)
    abl = ablations(ds.subset(np.isin(ds.subjects, tr)), ds.subset(np.isin(ds.subjects, te)), CFG, FIT)
    assert set(abl) == {f"modality {m} only" for m in MODS} | {f"representation {r} only" for r in REPS}
    accs = {k: v["accuracy"] for k, v in abl.items()}
    assert accs["modality BVP only"] > 0.7
    assert max(accs[f"modality {m} only"] for m in ("EDA", "RESP", "SpO2")) < 0.55


def test_training_refuses_mismatched_layout():
    ds = _dataset()
    with pytest.raises(ValueError, match="head wants"):
        fit_head(ds, FusionConfig(("EDA",), REPS), FIT)


def test_end_labels_train_on_windows_that_mix_levels():
    """``window_label="end"`` trains every window on the level at its end (what the live index is
    judged against); ``majority`` leaves windows that mix levels out."""
    ds = _dataset()
    ds.labels = np.where(np.arange(len(ds)) % 2 == 0, ds.labels, -1)  # every other window mixes levels
    assert len(trainable(ds)) == len(ds) // 2
    assert len(trainable(ds, window_label="end")) == len(ds)
    assert np.array_equal(window_labels(ds, "end"), ds.level_end)
    ds.labels[:] = -1
    with pytest.raises(ValueError, match="no labelled windows"):
        fit_head(ds, CFG, FIT)
    end = FitSettings(epochs=10, seed=0, window_label="end")
    head = fit_head(ds, CFG, end)
    probs, _ = predict(head, torch.from_numpy(ds.emb), torch.from_numpy(ds.present))
    assert (probs.argmax(1).numpy() == ds.level_end).mean() > 0.7
    with pytest.raises(ValueError, match="window label rule"):
        window_labels(ds, "middle")
