"""``painmon train`` end to end: dataset -> windows -> cached embeddings -> heads -> report.

Each step is a function of its own so notebooks and tests can stop anywhere (e.g. build
the embedded dataset once and try fusion variants on it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.baseline import PRIOR_WINDOWS, Z_CLIP
from core.checkpoint import NOT_CLINICAL, ModelMetadata, save_model
from core.distribution import EmbeddingStatistics
from core.fusion import FusionConfig, FusionHead, predict
from training.baselines import session_layout
from training.cache import EmbeddingCache
from training.dataset import EmbeddedDataset
from training.embedding import embed_windows
from training.encoders import ResolvedEncoder, resolve_encoder
from training.evaluate import Evaluation, ablations, evaluate_split, evaluate_subjects
from training.fit import FitSettings, fit_head, trainable
from training.progress import Progress
from training.recording_windows import WindowSettings, cut_recording, window_ends
from training.records import Recording, window_ratings
from training.report import write_report

log = logging.getLogger(__name__)

DATASET_KINDS = ("ai4pain", "xdf", "sim")


@dataclass
class TrainOptions:
    """Everything ``painmon train`` can be told (CLI flags map 1:1)."""

    dataset: str
    path: Path
    out: Path
    seed: int = 0
    epochs: int = 150
    encoder: str | None = None
    modalities: tuple[str, ...] = ("EDA", "BVP", "RESP", "SpO2")
    representations: tuple[str, ...] = ("waveform", "spectrogram_psd")
    within: str = "concat"
    across: str = "concat"
    """Defaults chosen by leave-one-subject-out on simulated training subjects (README)."""
    hidden: int = 128
    dropout: float = 0.3
    modality_dropout: float = 0.25
    window_s: float = 10.0
    stride_s: float = 2.0
    working_rate: float = 100.0
    evaluation: str = "split"
    labels: str = "markers"
    """xdf: where the pain level comes from: ``markers`` (pain:no/low/high) or ``selfreport``
    (the subject's CoVAS rating, binned into the index's bands)."""
    target: str = "class"
    """``class``: the pain level; ``continuous``: the self-reported rating itself (needs
    ``labels="selfreport"``), see :func:`training.fit.rating_targets`."""
    window_label: str = "majority"
    """Which level a window is trained on: ``majority`` or ``end`` (:attr:`training.fit.FitSettings.window_label`)."""
    test_fraction: float = 0.25
    test_subjects: tuple[str, ...] = ()
    ablations: bool = True
    cache_dir: Path | None = None
    device: str = "cpu"
    export: Path | None = None
    name: str = "painmon-model"
    rest: str = "skip"
    sim_subjects: int = 12
    sim_test_subjects: int = 4
    sim_duration_s: float = 240.0
    sim_variant: str = "plain"
    """Simulator variant (:data:`training.sim_data.VARIANTS`)."""
    batch_windows: int = 4
    progress: bool = True
    relative: bool = True
    """Also train the relative head (windows beside their subject's baseline, :mod:`training.baselines`)."""
    baseline_s: float = 60.0
    """Seconds of each subject's no-pain start its training baseline is learnt from (the engine's default)."""
    relative_input: str = "concat"
    """Relative head input: ``concat`` (embedding beside its distance from the baseline) or ``z`` (distance only)."""
    ood_percentile: float = 99.0
    """Percentile of held-out windows' distance from the training distribution at which ``uncertain`` starts."""
    half_heads: bool = True
    """Store the heads in float16 (with a relative head the bundled model stays < 16 MB)."""
    compare: tuple[Path, ...] = ()
    """Other model files (e.g. the bundled one) evaluated on the same held-out windows, with their own encoders."""


@dataclass
class TrainResult:
    """What a training run wrote (model, report, optional export) and how it evaluated."""

    model_path: Path
    report_path: Path
    evaluation: Evaluation
    ablations: dict[str, dict[str, Any]] = field(default_factory=dict)
    export_path: Path | None = None


def load_recordings(opts: TrainOptions) -> tuple[list[Recording], list[Recording], str]:
    """(training recordings, held-out test recordings or [], a description of the data)."""
    kind = opts.dataset.lower()
    if kind == "ai4pain":
        from training.ai4pain import load_ai4pain

        recs = load_ai4pain(opts.path, rest=opts.rest, modalities=opts.modalities)
        n_subjects = len({r.subject for r in recs})
        desc = f"AI4PAIN-layout dataset at {opts.path} ({n_subjects} subjects, {len(recs)} segments, rest={opts.rest})"
        return recs, [], desc
    if kind == "xdf":
        from training.xdf_data import find_xdf, load_xdf_sessions

        files = find_xdf(Path(opts.path))
        recs = load_xdf_sessions(files, labels=opts.labels)
        return recs, [], (f"{len(files)} XDF session(s) at {opts.path} ({len({r.subject for r in recs})} subjects, "
                          f"labels from {opts.labels})")
    if kind == "sim":
        from training.ai4pain import find_modality_folders, load_ai4pain
        from training.sim_data import MANIFEST, sim_dataset

        path = Path(opts.path)
        if path.is_dir() and not (path / MANIFEST).exists() and find_modality_folders(path):
            # written by the simulator in AI4PAIN layout
            recs = load_ai4pain(path, rest=opts.rest, modalities=opts.modalities)
            return recs, [], f"simulated dataset (AI4PAIN layout) at {path}"
        train = sim_dataset(path / "train", opts.sim_subjects, opts.sim_duration_s, opts.seed, first=1,
                            show_progress=opts.progress, variant=opts.sim_variant)
        test = []
        if opts.sim_test_subjects:
            test = sim_dataset(path / "test", opts.sim_test_subjects, opts.sim_duration_s, opts.seed,
                               first=opts.sim_subjects + 1, show_progress=opts.progress, variant=opts.sim_variant)
        desc = (
            f"simulated subjects from the PainMon simulator (physiological model, not real people): "
            f"{opts.sim_subjects} training subjects sim-1..sim-{opts.sim_subjects}, "
            f"{opts.sim_duration_s:.0f} s each at "
            f"device rates, random no/low/high pain protocols, seed {opts.seed}, {opts.sim_variant} simulator; "
            f"{opts.sim_test_subjects} held-out subjects with different seeds for evaluation"
        )
        return train, test, desc
    raise ValueError(f"unknown dataset kind {opts.dataset!r}; use one of {', '.join(DATASET_KINDS)}")


def embed_recordings(recordings: Sequence[Recording], settings: WindowSettings, representations: Sequence[str],
                     encoder: ResolvedEncoder, cache_root: Path, device: str = "cpu", batch_windows: int = 4,
                     show_progress: bool = True) -> EmbeddedDataset:
    """Windows of every recording through the (cached) representation + encoder step."""
    from core.representations import RepresentationConfig

    key = {
        "window": settings.as_dict(), "representations": list(representations),
        "representation_config": dataclasses.asdict(RepresentationConfig()),
        "encoder": encoder.fingerprint, "preprocessing": preprocessing_settings(settings.modalities),
        # windows end by core.windows.end_at_input (as the engine's); caches of windows cut before are stale
        "window_end": "newest input sample, held one period",
    }
    cache = EmbeddingCache(cache_root, key)
    todo = sum(len(window_ends(r, settings)) for r in recordings if not cache.has(r))
    bar = Progress(todo, "embedding windows", enabled=show_progress and todo > 0)

    def compute(rec: Recording) -> EmbeddedDataset:
        wb = cut_recording(rec, settings)
        emb = embed_windows(wb.signals, wb.present, encoder.module, representations, fs=settings.working_rate,
                            device=device, batch_windows=batch_windows, bar=bar)
        n = len(wb)
        return EmbeddedDataset(
            emb,
            wb.present,
            wb.labels,
            wb.level_end,
            wb.t_end,
            np.array([rec.subject] * n, dtype=str),
            np.array([rec.id] * n, dtype=str),
            wb.quality,
            tuple(settings.modalities),
            tuple(representations),
        )

    parts = [cache.get_or_compute(rec, compute) for rec in recordings]
    for rec, part in zip(recordings, parts, strict=True):  # cheap, so computed each time, not cached
        if rec.ratings is not None:
            part.targets = window_ratings(rec.ratings, part.t_end, settings.window_s, settings.min_purity)
    if todo:
        bar.close()
    log.info("embeddings: %d recording(s) from cache, %d computed (cache %s)", cache.hits, cache.misses, cache.dir)
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError(
            "the dataset produced no usable windows (recordings shorter than the window, or no valid signal)"
        )
    return EmbeddedDataset.concat(parts)


def preprocessing_settings(modalities: Sequence[str]) -> dict[str, Any]:
    """The preprocessing chains in force, recorded in the model so a changed chain is noticed."""
    from core.preprocessing import chain_for

    return {m: dataclasses.asdict(chain_for(m)) for m in modalities}


def run_training(opts: TrainOptions) -> TrainResult:
    """The whole ``painmon train`` run; writes the model, report and metrics into ``opts.out``."""
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)  # noqa: NPY002 - also seeds libraries that draw from numpy's global RNG
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    train_recs, test_recs, data_desc = load_recordings(opts)
    encoder = resolve_encoder(opts.encoder, opts.device)
    settings = WindowSettings(tuple(opts.modalities), opts.window_s, opts.stride_s, opts.working_rate)
    cache_root = Path(opts.cache_dir) if opts.cache_dir else out / "cache"

    def embed(recs: Sequence[Recording]) -> EmbeddedDataset:
        return embed_recordings(recs, settings, opts.representations, encoder, cache_root, opts.device,
                                opts.batch_windows, opts.progress)

    train_ds = embed(train_recs)
    config = FusionConfig(tuple(opts.modalities), tuple(opts.representations), opts.within, opts.across, opts.hidden,
                          opts.dropout, opts.modality_dropout)
    if opts.target == "continuous" and train_ds.targets is None:
        raise ValueError("--target continuous needs self-reported ratings: use --dataset xdf ... --labels selfreport")
    fit = FitSettings(epochs=opts.epochs, seed=opts.seed, target=opts.target, window_label=opts.window_label)
    train_windows = len(trainable(train_ds, fit.target, fit.window_label))
    if test_recs:
        test_ds = embed(test_recs)
        evaluation = evaluate_split(
            train_ds, test_ds, config, fit, scheme=f"{len(test_ds.subject_ids)} held-out subjects"
        )
        abl_train, abl_test, report_ds = train_ds, test_ds, test_ds
    else:
        evaluation = evaluate_subjects(
            train_ds, config, fit, opts.evaluation, opts.test_fraction, opts.test_subjects or None
        )
        from training.evaluate import subject_split

        tr, te = subject_split(train_ds.subject_ids, opts.test_fraction, opts.seed, opts.test_subjects or None)
        abl_train, abl_test = (
            train_ds.subset(np.isin(train_ds.subjects, tr)),
            train_ds.subset(np.isin(train_ds.subjects, te)),
        )
        report_ds = train_ds
    abl = ablations(abl_train, abl_test, config, fit) if opts.ablations else {}
    head = fit_head(train_ds, config, fit)  # final model: every training subject
    metrics = {k: v for k, v in evaluation.metrics.items()}
    metrics["evaluation"] = evaluation.scheme
    metrics["ablations"] = abl
    statistics = training_statistics(abl_train, abl_test, train_ds, opts.ood_percentile)
    metrics["ood"] = {"percentile": statistics.percentile, "threshold": statistics.threshold,
                      "calibration_windows": statistics.calibration_windows}
    relative_head: FusionHead | None = None
    baseline_meta: dict[str, Any] = {}
    if opts.relative:
        layout = session_layout([*train_recs, *test_recs])
        relative_head, rel_metrics, baseline_meta = train_relative(
            train_ds, abl_train, abl_test, evaluation, report_ds, layout, statistics, config, fit, opts)
        metrics["relative"] = rel_metrics
        evaluation.metrics["relative"] = rel_metrics
    if opts.compare:
        metrics["compare"] = compare_models(opts.compare, test_recs if test_recs else [], abl_test, settings,
                                            cache_root, opts)
        evaluation.metrics["compare"] = metrics["compare"]
    meta = ModelMetadata(
        name=opts.name,
        modalities=list(opts.modalities),
        representations=list(opts.representations),
        description=f"Fusion head ({opts.within} within modalities, {opts.across} across) on Tiny-BioMoE embeddings",
        trained_on=data_desc,
        not_clinical=NOT_CLINICAL,
        window_s=opts.window_s,
        working_rate=opts.working_rate,
        preprocessing={
            "chains": preprocessing_settings(opts.modalities),
            "representation_config": _rep_config(),
            "window_stride_s": opts.stride_s,
            "min_label_purity": settings.min_purity,
        },
        encoder_fingerprint=encoder.fingerprint,
        encoder_description=encoder.description,
        metrics=metrics,
        extra={
            "encoder_source_fingerprint": encoder.source_fingerprint,
            "seed": opts.seed,
            "epochs": opts.epochs,
            "target": opts.target,
            "window_label": opts.window_label,
            "train_windows": train_windows,
            "train_subjects": train_ds.subject_ids,
        },
    )
    meta.baseline = baseline_meta
    model_path = save_model(out / "model.pt", head, meta, encoder_state_dict=encoder.state_dict,
                            relative_head=relative_head, statistics=statistics, head_half=opts.half_heads)
    (out / "metrics.json").write_text(json.dumps(meta.to_dict()["metrics"], indent=1))
    summary = {
        "name": opts.name,
        "not_clinical": NOT_CLINICAL,
        "training data": data_desc,
        "encoder": f"{encoder.description} (fingerprint {encoder.fingerprint})",
        "fusion": f"within={opts.within}, across={opts.across}, hidden={opts.hidden}, "
        f"modality dropout {opts.modality_dropout}",
        "modalities": ", ".join(opts.modalities),
        "representations": ", ".join(opts.representations),
        "windows": f"{opts.window_s:g} s every {opts.stride_s:g} s at {opts.working_rate:g} Hz; "
        f"{train_windows} labelled training windows "
        f"({opts.window_label} labels)",
        "seed / epochs": f"{opts.seed} / {opts.epochs}",
        "model file": str(model_path),
    }
    rel = metrics.get("relative", {})
    if rel.get("relative_head") and rel.get("absolute_head_same_windows"):
        r, a = rel["relative_head"], rel["absolute_head_same_windows"]
        summary["relative vs absolute"] = (
            f"held-out windows after each subject's {opts.baseline_s:g}-s baseline (n={r['n']}): relative head "
            f"accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}, index correlation {r['index_corr']:.3f} "
            f"(all windows {r.get('index_corr_all_windows', float('nan')):.3f}); absolute head accuracy "
            f"{a['accuracy']:.3f}, macro-F1 {a['macro_f1']:.3f}, index correlation {a['index_corr']:.3f} "
            f"(all windows {a.get('index_corr_all_windows', float('nan')):.3f})")
    for path, c in metrics.get("compare", {}).items():
        summary[f"compared: {c['model']}"] = (
            f"{path} on the same held-out windows (n={c['n']}): accuracy {c['accuracy']:.3f}, macro-F1 "
            f"{c['macro_f1']:.3f}, index correlation {c['index_corr']:.3f} (all windows "
            f"{c.get('index_corr_all_windows', float('nan')):.3f})")
    summary["uncertain"] = (f"distance from the training distribution above the {statistics.percentile:g}th "
                            f"percentile of {statistics.calibration_windows} held-out windows "
                            f"({statistics.threshold:.3g})")
    report = write_report(out, summary, evaluation, report_ds, abl)
    export = None
    if opts.export:
        export = Path(opts.export)
        export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_path, export)
    return TrainResult(model_path, report, evaluation, abl, export)


def training_statistics(fit_ds: EmbeddedDataset, heldout_ds: EmbeddedDataset, final_ds: EmbeddedDataset,
                        percentile: float) -> EmbeddingStatistics:
    """Training-distribution statistics of ``final_ds`` with the ``uncertain`` threshold at
    ``percentile`` of held-out windows' distance (measured against statistics of ``fit_ds``,
    which never saw the held-out subjects)."""
    probe = EmbeddingStatistics.fit(fit_ds.emb, fit_ds.present)
    keep = heldout_ds.present.any(axis=1)
    threshold = probe.calibrated(heldout_ds.emb[keep], heldout_ds.present[keep], percentile)
    final = EmbeddingStatistics.fit(final_ds.emb, final_ds.present)
    return EmbeddingStatistics(final.mean, final.std, threshold.threshold, percentile, final.windows,
                               threshold.calibration_windows)


def train_relative(final_ds: EmbeddedDataset, train_ds: EmbeddedDataset, test_ds: EmbeddedDataset,
                   absolute: Evaluation, report_ds: EmbeddedDataset, layout: dict[str, tuple[str, float]],
                   statistics: EmbeddingStatistics, config: FusionConfig, fit: FitSettings,
                   opts: TrainOptions) -> tuple[FusionHead, dict[str, Any], dict[str, Any]]:
    """The relative head (every training subject) and its held-out metrics beside the absolute
    head's on the very same windows (those that come after a held-out subject's baseline)."""
    from training.baselines import relative_set
    from training.evaluate import classification_metrics

    rel_config = dataclasses.replace(config, embed_dim=config.embed_dim * (2 if opts.relative_input == "concat" else 1))
    def rel(ds: EmbeddedDataset):
        return relative_set(ds, layout, statistics.std, duration_s=opts.baseline_s, window_s=opts.window_s,
                            kind=opts.relative_input, ood=statistics.ood_score(ds.emb, ds.present))

    rel_train = rel(train_ds)
    rel_test = rel(test_ds)
    if len(trainable(rel_train.ds, fit.target, fit.window_label)) == 0:
        raise ValueError("no training subject has a no-pain start to learn a baseline from; use --no-relative")
    metrics: dict[str, Any] = {
        "baseline_s": opts.baseline_s,
        "train_sessions_with_baseline": len(rel_train.baselines),
        "test_sessions_with_baseline": len(rel_test.baselines),
    }
    if len(rel_test.ds) and (rel_test.ds.labels >= 0).any():
        ev = evaluate_split(rel_train.ds, rel_test.ds, rel_config, fit, scheme=absolute.scheme)
        metrics["relative_head"] = {k: v for k, v in ev.metrics.items() if k not in ("train_subjects",)}
        # the absolute head's held-out predictions on the same windows
        pos = {int(i): j for j, i in enumerate(absolute.test_index.tolist())}
        src = rel_test.rows if test_ds is report_ds else _rows_in(report_ds, test_ds, rel_test.rows)
        have = [pos.get(int(i)) for i in src]
        if all(h is not None for h in have) and have:
            probs = absolute.probs[np.array(have)]
            lab = rel_test.ds.labels >= 0
            m = classification_metrics(rel_test.ds.labels[lab], probs[lab], rel_test.ds.level_end[lab])
            m["index_corr_all_windows"] = float(np.corrcoef(50 * probs[:, 1] + 100 * probs[:, 2],
                                                            rel_test.ds.level_end)[0, 1])
            metrics["absolute_head_same_windows"] = m
    rel_final = rel(final_ds)
    head = fit_head(rel_final.ds, rel_config, fit)
    baseline_meta = {
        "duration_s": opts.baseline_s,
        "input": opts.relative_input,
        "prior_windows": PRIOR_WINDOWS,
        "z_clip": Z_CLIP,
        "rule": "per session, the learner of core.baseline fed the session's windows in live order while they "
        "are no-pain windows at its start (AI4PAIN baseline segments, a simulated subject's initial rest); "
        "relative examples are the windows ending after the baseline was complete",
        "train_sessions_with_baseline": len(rel_final.baselines),
        "train_relative_windows": int((rel_final.ds.labels >= 0).sum()),
    }
    return head, metrics, baseline_meta


def compare_models(paths: Sequence[Path], test_recs: Sequence[Recording], test_ds: EmbeddedDataset,
                   settings: WindowSettings, cache_root: Path, opts: TrainOptions) -> dict[str, dict[str, Any]]:
    """Held-out metrics of other model files (their absolute heads, their own encoders) on the
    windows ``test_ds`` holds, so a new model can be compared with, e.g., the bundled one."""
    from core.checkpoint import load_model
    from training.evaluate import _pearson, classification_metrics

    if not test_recs:
        raise ValueError("--compare needs held-out recordings (a simulated dataset with --sim-test-subjects)")
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        loaded = load_model(path)
        if list(loaded.metadata.modalities) != list(opts.modalities) or list(
                loaded.metadata.representations) != list(opts.representations):
            raise ValueError(f"{path}: modalities/representations differ from this run's; cannot compare")
        enc = resolve_encoder(str(path), opts.device)
        ds = embed_recordings(test_recs, settings, opts.representations, enc, cache_root, opts.device,
                              opts.batch_windows, opts.progress)
        idx = np.flatnonzero(ds.present.any(axis=1))
        probs, _ = predict(loaded.head, torch.from_numpy(ds.emb[idx]), torch.from_numpy(ds.present[idx]))
        p = probs.numpy()
        lab = ds.labels[idx] >= 0
        m = classification_metrics(ds.labels[idx][lab], p[lab], ds.level_end[idx][lab])
        m["index_corr_all_windows"] = _pearson(50 * p[:, 1] + 100 * p[:, 2], ds.level_end[idx])
        m["model"] = loaded.metadata.name
        out[str(path)] = m
    return out


def _rows_in(report_ds: EmbeddedDataset, test_ds: EmbeddedDataset, rows: np.ndarray) -> list[int]:
    """Positions in ``report_ds`` of windows ``rows`` of ``test_ds`` (matched by recording and end time)."""
    key = {(r, float(t)): i for i, (r, t) in enumerate(zip(report_ds.recordings.tolist(), report_ds.t_end.tolist(),
                                                           strict=True))}
    return [key.get((str(test_ds.recordings[i]), float(test_ds.t_end[i])), -1) for i in rows]


def _rep_config() -> dict[str, Any]:
    from core.representations import RepresentationConfig

    return dataclasses.asdict(RepresentationConfig())
