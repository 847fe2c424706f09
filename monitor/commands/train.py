"""``painmon train``: train (and evaluate) a fusion head; write the model and a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands._outdir import output_folder
from training.recording_windows import WINDOW_LABELS
from training.records import TARGETS


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon train`` and its dataset, model and evaluation options to the command line."""
    p = sub.add_parser(
        "train",
        help="train a fusion head on AI4PAIN / XDF / simulated data (model + report into --out)",
        description="Train a PainMon model: windows -> cached Tiny-BioMoE embeddings -> fusion head, "
        "with subject-wise evaluation, ablations and a markdown/PNG report in --out.",
    )
    p.add_argument("--dataset", nargs=2, metavar=("KIND", "PATH"), required=True,
                   help="ai4pain DIR | xdf FILE_OR_DIR | sim DIR (simulated subjects are generated into DIR once)")
    p.add_argument("--out", type=Path, required=True, help="run folder: model.pt, report.md, plots, metrics.json")
    p.add_argument("--seed", type=int, default=0, help="random seed of splits, head initialisation and "
                   "simulated data: same seed, same run (default 0)")
    p.add_argument("--epochs", type=int, default=150, help="head training epochs")
    p.add_argument("--encoder", default=None,
                   help="encoder weights: Tiny-BioMoE.pth, a painmon-encoder file from `painmon pretrain`, a PainMon "
                   "model, or 'init[:SEED]' (untrained). Default: released weights if supplied, "
                   "else the bundled model's")
    p.add_argument("--modalities", default="EDA,BVP,RESP,SpO2",
                   help="comma-separated modalities the model reads (default EDA,BVP,RESP,SpO2)")
    p.add_argument("--representations", default="waveform,spectrogram_psd",
                   help="comma-separated image representations of each window the encoder sees "
                   "(default waveform,spectrogram_psd)")
    p.add_argument("--within", choices=("add", "concat"), default="concat",
                   help="fusion of representations within a modality")
    p.add_argument("--across", choices=("add", "concat", "attention"), default="concat",
                   help="fusion across modalities")
    p.add_argument("--hidden", type=int, default=128, help="width of the fusion head's hidden layer (default 128)")
    p.add_argument("--dropout", type=float, default=0.3, help="dropout in the fusion head (default 0.3)")
    p.add_argument("--modality-dropout", type=float, default=0.25,
                   help="chance of hiding a whole modality from a training window, so the model copes with "
                   "a lost sensor (default 0.25)")
    p.add_argument("--window", type=float, default=10.0, help="window length (s)")
    p.add_argument("--stride", type=float, default=2.0, help="seconds between training windows")
    p.add_argument("--evaluation", choices=("split", "loso"), default="split",
                   help="fixed subject split or leave-one-subject-out (ignored when held-out subjects exist)")
    p.add_argument("--test-fraction", type=float, default=0.25,
                   help="share of subjects held out for the fixed split (default 0.25)")
    p.add_argument("--test-subjects", default="", help="comma-separated subjects held out (fixed split)")
    p.add_argument("--no-ablations", action="store_true",
                   help="skip the ablations (one modality/representation left out at a time): faster")
    p.add_argument("--labels", choices=("markers", "selfreport"), default="markers",
                   help="xdf: pain level from marker streams (pain:no/low/high), or from each subject's "
                   "recorded self-report (CoVAS 0-100, binned into no/low/high at the index's bands 33.3/66.7)")
    p.add_argument("--target", choices=TARGETS, default="class",
                   help="train on the pain level (class), or on the self-reported rating itself (continuous: the "
                   "index learns to follow the 0-100 rating; needs --labels selfreport)")
    p.add_argument("--window-labels", choices=WINDOW_LABELS, default="majority",
                   help="which level a training window learns: majority (the level covering most of it; windows "
                   "mixing levels are left out) or end (the level at its end, every window: the level the live "
                   "index is judged against)")
    p.add_argument("--rest", choices=("skip", "no"), default="skip",
                   help="AI4PAIN 'rest' segments: skip, or label no pain")
    p.add_argument("--sim-subjects", type=int, default=12, help="sim: subjects to generate for training (default 12)")
    p.add_argument("--sim-test-subjects", type=int, default=4,
                   help="sim: further subjects generated and held out for evaluation (default 4)")
    p.add_argument("--sim-duration", type=float, default=240.0, help="seconds per simulated subject")
    p.add_argument("--sim-variant", choices=("plain", "varied"), default="plain",
                   help="simulator variant: plain (narrow ranges, ideal device) or varied (wide physiology, "
                   "random device gains, offsets, rates, noise colours, drifts; 70-100 s no-pain start)")
    p.add_argument("--baseline", type=float, default=60.0, metavar="SEC",
                   help="seconds of each subject's no-pain start its baseline is learnt from (relative head)")
    p.add_argument("--no-relative", action="store_true", help="train the absolute (population) head only")
    p.add_argument("--compare", type=Path, action="append", default=[], metavar="MODEL",
                   help="also evaluate this model file (e.g. the bundled one) on the same held-out subjects")
    p.add_argument("--relative-input", choices=("concat", "z"), default="concat",
                   help="relative head input: the embedding beside its distance from the baseline (concat), "
                   "or the distance alone (z)")
    p.add_argument("--ood-percentile", type=float, default=99.0,
                   help="percentile of held-out windows' distance from the training data where 'uncertain' starts")
    p.add_argument("--cache", type=Path, default=None, help="embedding cache folder (default OUT/cache)")
    p.add_argument("--device", default="cpu", help="compute device: cpu|cuda|mps|auto (default cpu)")
    p.add_argument("--export", type=Path, default=None,
                   help="also copy the model here (e.g. assets/models/painmon-default.pt)")
    p.add_argument("--name", default="painmon-model", help="model name stored in the file and shown by the "
                   "dashboard and `painmon info` (default painmon-model)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def run(args: argparse.Namespace) -> int:
    """Train a model and write it with its report into ``--out``; 2 for invalid options or a bad dataset."""
    import torch

    from core.modalities import get_modality
    from training.ai4pain import DatasetLayoutError
    from training.pipeline import DATASET_KINDS, TrainOptions, run_training

    if args.threads:
        torch.set_num_threads(args.threads)
    kind, path = args.dataset
    if kind.lower() not in DATASET_KINDS:
        print(f"painmon train: unknown dataset kind {kind!r}; use one of {', '.join(DATASET_KINDS)}")
        return 2
    if args.target == "continuous" and (kind.lower() != "xdf" or args.labels != "selfreport"):
        print("painmon train: --target continuous needs self-reported ratings: --dataset xdf PATH --labels selfreport")
        return 2
    try:
        modalities = tuple(get_modality(m).name for m in _csv(args.modalities))
    except KeyError as exc:
        print(f"painmon train: {exc}")
        return 2
    opts = TrainOptions(
        dataset=kind.lower(), path=Path(path), out=args.out, seed=args.seed, epochs=args.epochs, encoder=args.encoder,
        modalities=modalities, representations=_csv(args.representations), within=args.within, across=args.across,
        hidden=args.hidden, dropout=args.dropout, modality_dropout=args.modality_dropout,
        window_s=args.window, stride_s=args.stride,
        evaluation=args.evaluation, test_fraction=args.test_fraction, test_subjects=_csv(args.test_subjects),
        ablations=not args.no_ablations, cache_dir=args.cache, device=args.device, export=args.export, name=args.name,
        labels=args.labels, target=args.target, window_label=args.window_labels, rest=args.rest,
        sim_subjects=args.sim_subjects,
        sim_test_subjects=args.sim_test_subjects, sim_duration_s=args.sim_duration, progress=not args.quiet,
        sim_variant=args.sim_variant, relative=not args.no_relative, compare=tuple(args.compare),
        baseline_s=args.baseline, relative_input=args.relative_input, ood_percentile=args.ood_percentile,
    )
    try:
        with output_folder(args.out):  # a failed run leaves no empty folder behind
            result = run_training(opts)
    except (DatasetLayoutError, ValueError, FileNotFoundError) as exc:
        print(f"painmon train: {exc}")
        return 2
    m = result.evaluation.metrics
    print(f"Evaluation ({result.evaluation.scheme}): accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}, "
          f"index-level correlation {m['index_corr']:.3f} on {m['n']} windows")
    if "rating_corr" in m:
        print(f"Self-report: the index follows the rating with correlation {m['rating_corr']:.3f}, "
              f"mean difference {m['rating_mae']:.1f} points on {m['rating_n']} rated windows")
    rel = m.get("relative", {}).get("relative_head")
    same = m.get("relative", {}).get("absolute_head_same_windows")
    if rel and same:
        print(f"After each held-out subject's baseline ({rel['n']} windows): relative head accuracy "
              f"{rel['accuracy']:.3f}, index correlation {rel['index_corr']:.3f}; absolute head "
              f"{same['accuracy']:.3f}, {same['index_corr']:.3f}")
    for path, c in m.get("compare", {}).items():
        print(f"Compared: {path} on the same held-out windows: accuracy {c['accuracy']:.3f}, "
              f"macro-F1 {c['macro_f1']:.3f}, index correlation {c['index_corr']:.3f}")
    for name, a in result.ablations.items():
        print(f"  {name:<36} accuracy {a['accuracy']:.3f}  macro-F1 {a['macro_f1']:.3f}")
    print(f"Model:  {result.model_path}")
    print(f"Report: {result.report_path}")
    if result.export_path:
        print(f"Exported to {result.export_path}")
    return 0
