"""Subject-wise evaluation: fixed subject split or leave-one-subject-out, with ablations.

A subject's windows never end up on both sides of a split: windows of one person are
strongly correlated, and mixing them would report how well the model recognises people,
not pain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.fusion import FusionConfig, predict
from training.dataset import EmbeddedDataset
from training.fit import FitSettings, fit_head, trainable

log = logging.getLogger(__name__)


def subject_split(subjects: Sequence[str], test_fraction: float = 0.25, seed: int = 0,
                  test_subjects: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(train, test) subject lists; explicit ``test_subjects`` win over the random fraction."""
    subjects = sorted(set(subjects))
    if test_subjects:
        unknown = sorted(set(test_subjects) - set(subjects))
        if unknown:
            raise ValueError(f"test subjects {unknown} are not in the dataset (subjects: {subjects})")
        test = sorted(set(test_subjects))
    else:
        if len(subjects) < 2:
            raise ValueError(f"a subject split needs at least 2 subjects, the dataset has {subjects}")
        n_test = min(len(subjects) - 1, max(1, int(round(len(subjects) * test_fraction))))
        rng = np.random.default_rng(seed)
        test = sorted(rng.choice(subjects, size=n_test, replace=False).tolist())
    return [s for s in subjects if s not in test], test


def classification_metrics(
    labels: np.ndarray, probs: np.ndarray, level_end: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, confusion matrix (rows true, columns predicted), index correlations."""
    import torch

    from core.fusion import pain_index

    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    k = probs.shape[1]
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    f1s = []
    for c in range(k):
        tp = conf[c, c]
        fp = conf[:, c].sum() - tp
        fn = conf[c, :].sum() - tp
        if tp + fp + fn > 0:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    index = pain_index(torch.from_numpy(probs.astype(np.float32))).numpy()
    out = {
        "n": int(labels.size),
        "accuracy": float((pred == labels).mean()) if labels.size else float("nan"),
        "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
        "confusion": conf.tolist(),
        "index_corr": _pearson(index, labels),
        "index_mean_per_level": [
            float(index[labels == c].mean()) if (labels == c).any() else float("nan") for c in range(k)
        ],
    }
    if level_end is not None:
        out["index_corr_all_windows"] = _pearson(index, level_end)
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class Evaluation:
    """Predictions on held-out windows and the metrics computed from them."""

    scheme: str
    metrics: dict[str, Any]
    probs: np.ndarray
    """(N_test, 3) for the windows in ``test_index``."""
    test_index: np.ndarray
    folds: list[dict[str, Any]] = field(default_factory=list)
    ablations: dict[str, dict[str, Any]] = field(default_factory=dict)


def _predict(head, ds: EmbeddedDataset, idx: np.ndarray, mask_override: np.ndarray | None = None) -> np.ndarray:
    import torch

    present = ds.present[idx] if mask_override is None else ds.present[idx] & mask_override[None]
    probs, _ = predict(head, torch.from_numpy(ds.emb[idx]), torch.from_numpy(present))
    return probs.numpy()


def _heldout_windows(ds: EmbeddedDataset, subjects: Sequence[str]) -> np.ndarray:
    """Every window of the given subjects with at least one modality (labelled or not)."""
    return np.flatnonzero(np.isin(ds.subjects, list(subjects)) & ds.present.any(axis=1))


def evaluate_split(train: EmbeddedDataset, test: EmbeddedDataset, config: FusionConfig, fit: FitSettings,
                   scheme: str = "held-out subjects") -> Evaluation:
    """Train on ``train``, predict every window of ``test``; metrics on its labelled windows."""
    overlap = set(train.subjects.tolist()) & set(test.subjects.tolist())
    if overlap:
        raise ValueError(f"subjects {sorted(overlap)} are in both training and test data")
    head = fit_head(train, config, fit)
    idx = np.flatnonzero(test.present.any(axis=1))
    probs = _predict(head, test, idx)
    lab = test.labels[idx] >= 0
    metrics = classification_metrics(test.labels[idx][lab], probs[lab], test.level_end[idx][lab])
    metrics["index_corr_all_windows"] = _pearson(_index(probs), test.level_end[idx])
    metrics.update(rating_metrics(_index(probs), test.targets, idx))
    metrics["train_subjects"] = train.subject_ids
    metrics["test_subjects"] = test.subject_ids
    return Evaluation(scheme, metrics, probs, idx)


def rating_metrics(index: np.ndarray, targets: np.ndarray | None, idx: np.ndarray) -> dict[str, Any]:
    """How the index follows the self-reported rating on rated windows (empty without
    ratings): Pearson correlation and mean absolute difference in index points."""
    if targets is None:
        return {}
    t = targets[idx]
    rated = np.isfinite(t)
    if not rated.any():
        return {}
    return {"rating_n": int(rated.sum()), "rating_corr": _pearson(index[rated], t[rated]),
            "rating_mae": float(np.mean(np.abs(index[rated] - t[rated])))}


def _index(probs: np.ndarray) -> np.ndarray:
    return 50.0 * probs[:, 1] + 100.0 * probs[:, 2]


def evaluate_subjects(ds: EmbeddedDataset, config: FusionConfig, fit: FitSettings, scheme: str = "split",
                      test_fraction: float = 0.25, test_subjects: Sequence[str] | None = None) -> Evaluation:
    """``scheme="split"``: one fixed subject split; ``"loso"``: leave each subject out in turn."""
    subjects = ds.subject_ids
    if scheme == "split":
        tr, te = subject_split(subjects, test_fraction, fit.seed, test_subjects)
        ev = evaluate_split(ds.subset(np.isin(ds.subjects, tr)), ds.subset(np.isin(ds.subjects, te)), config, fit,
                            scheme=f"fixed subject split ({len(tr)} train / {len(te)} test)")
        ev.test_index = np.flatnonzero(np.isin(ds.subjects, te) & ds.present.any(axis=1))
        return ev
    if scheme != "loso":
        raise ValueError(f"unknown evaluation scheme {scheme!r}; use 'split' or 'loso'")
    if len(subjects) < 2:
        raise ValueError("leave-one-subject-out needs at least 2 subjects")
    all_idx, all_probs, folds = [], [], []
    for s in subjects:
        train_part = ds.subset(ds.subjects != s)
        te_idx = _heldout_windows(ds, [s])
        head = fit_head(train_part, config, fit)
        probs = _predict(head, ds, te_idx)
        lab = ds.labels[te_idx] >= 0
        fold = classification_metrics(ds.labels[te_idx][lab], probs[lab])
        fold["subject"] = s
        folds.append(fold)
        all_idx.append(te_idx)
        all_probs.append(probs)
    idx = np.concatenate(all_idx)
    probs = np.concatenate(all_probs)
    lab = ds.labels[idx] >= 0
    metrics = classification_metrics(ds.labels[idx][lab], probs[lab])
    metrics["index_corr_all_windows"] = _pearson(_index(probs), ds.level_end[idx])
    metrics.update(rating_metrics(_index(probs), ds.targets, idx))
    return Evaluation(f"leave-one-subject-out ({len(subjects)} folds)", metrics, probs, idx, folds)


def ablations(
    train: EmbeddedDataset, test: EmbeddedDataset, config: FusionConfig, fit: FitSettings
) -> dict[str, dict[str, Any]]:
    """Held-out metrics of heads trained on one modality, or one representation, only.

    A fresh head per ablation (not the full head with inputs masked) measures what each
    input *can* tell, which is what a user deciding which sensors to buy needs.
    """
    out: dict[str, dict[str, Any]] = {}
    for j, modality in enumerate(config.modalities):
        tr = train.subset(train.present[:, j])
        te = test.subset(test.present[:, j])
        if len(trainable(tr, fit.target, fit.window_label)) == 0 or (te.labels >= 0).sum() == 0:
            continue
        only = np.zeros(len(config.modalities), dtype=bool)
        only[j] = True
        tr.present = tr.present & only[None]
        te.present = te.present & only[None]
        ev = evaluate_split(tr, te, config, fit)
        out[f"modality {modality} only"] = _short(ev.metrics)
    if len(config.representations) > 1:
        for rep in config.representations:
            cfg = replace(config, representations=(rep,))
            ev = evaluate_split(train.select_representations((rep,)), test.select_representations((rep,)), cfg, fit)
            out[f"representation {rep} only"] = _short(ev.metrics)
    return out


def _short(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("n", "accuracy", "macro_f1", "index_corr") if k in m}
