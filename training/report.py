"""Training report: ``report.md`` plus PNG plots in the run folder.

Plots need matplotlib (an optional dependency: ``pip install matplotlib``); without it
the markdown report is still written and says which plots are missing and why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from core.estimate import CLASS_NAMES

log = logging.getLogger(__name__)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def confusion_table(conf: list[list[int]]) -> str:
    """Markdown table of a confusion matrix (rows: true level, columns: predicted)."""
    head = "| true \\ predicted | " + " | ".join(CLASS_NAMES) + " |\n|---|" + "---|" * len(CLASS_NAMES) + "\n"
    rows = [f"| {CLASS_NAMES[i]} | " + " | ".join(str(c) for c in row) + " |" for i, row in enumerate(conf)]
    return head + "\n".join(rows) + "\n"


def metrics_table(rows: dict[str, dict[str, Any]]) -> str:
    """Markdown table with one row of metrics per variant (ablation or subject)."""
    out = "| variant | windows | accuracy | macro-F1 | index corr. |\n|---|---|---|---|---|\n"
    for name, m in rows.items():
        cells = [str(m.get("n", "")), _fmt(m.get("accuracy")), _fmt(m.get("macro_f1")), _fmt(m.get("index_corr"))]
        out += f"| {name} | {' | '.join(cells)} |\n"
    return out


def plot_confusion(conf: list[list[int]], path: Path) -> None:
    """Save the row-normalised confusion matrix as a PNG (needs matplotlib)."""
    import matplotlib.pyplot as plt

    c = np.asarray(conf, dtype=float)
    norm = c / np.maximum(1, c.sum(axis=1, keepdims=True))
    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            ax.text(j, i, f"{int(c[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Held-out confusion matrix")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_tracking(series: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    """Index over time against the true level, one panel per held-out subject."""
    import matplotlib.pyplot as plt

    n = max(1, len(series))
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.9 * n), dpi=100, sharex=False, squeeze=False)
    for ax, (subject, t, index, level) in zip(axes[:, 0], series, strict=True):
        order = np.argsort(t)
        ax.step(t[order], 50.0 * level[order], where="post", color="0.4", lw=1.5, label="true level (x50)")
        ax.plot(t[order], index[order], color="tab:red", lw=1.2, label="pain index")
        ax.set_ylim(-5, 105)
        ax.set_ylabel(subject)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[0, 0].set_title("Pain index on held-out subjects vs. the true level")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_ablations(rows: dict[str, dict[str, Any]], path: Path) -> None:
    """Save a bar chart of accuracy and macro-F1 per variant as a PNG (needs matplotlib)."""
    import matplotlib.pyplot as plt

    names = list(rows)
    acc = [rows[k].get("accuracy", np.nan) for k in names]
    f1 = [rows[k].get("macro_f1", np.nan) for k in names]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2), dpi=100)
    ax.barh(y - 0.2, acc, height=0.4, label="accuracy")
    ax.barh(y + 0.2, f1, height=0.4, label="macro-F1")
    ax.axvline(1 / 3, color="0.5", ls="--", lw=1, label="chance")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Held-out metrics per variant")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(out: Path, summary: dict[str, Any], evaluation, test_ds, ablations: dict[str, dict[str, Any]]) -> Path:
    """Write ``report.md`` (and PNGs when matplotlib is there); returns the report path."""
    out.mkdir(parents=True, exist_ok=True)
    m = evaluation.metrics
    lines = [f"# PainMon training report: {summary.get('name', '')}", ""]
    lines += [f"> {summary.get('not_clinical', '')}", ""]
    lines += ["## Data and settings", ""]
    for k, v in summary.items():
        if k not in ("name", "not_clinical"):
            lines.append(f"- **{k}**: {v}")
    lines += ["", f"## Held-out evaluation ({evaluation.scheme})", ""]
    lines += [
        f"- windows: {m['n']} labelled",
        f"- accuracy: {_fmt(m['accuracy'])} (chance 0.333)",
        f"- macro-F1: {_fmt(m['macro_f1'])}",
        f"- correlation of the pain index with the true level: {_fmt(m['index_corr'])} (labelled windows), "
        f"{_fmt(m.get('index_corr_all_windows', float('nan')))} (every window, level at its end)",
        "- mean index per true level: "
        + ", ".join(f"{n} {_fmt(v)}" for n, v in zip(CLASS_NAMES, m["index_mean_per_level"], strict=True)),
        "",
        confusion_table(m["confusion"]),
    ]
    if evaluation.folds:
        lines += [
            "### Per subject (leave-one-subject-out)",
            "",
            metrics_table({f["subject"]: f for f in evaluation.folds}),
            "",
        ]
    if ablations:
        lines += ["## Ablations (a fresh head per variant, same held-out subjects)", "",
                  metrics_table({"all modalities and representations": m, **ablations}), ""]
    plots = []
    try:
        import matplotlib

        matplotlib.use("Agg")
        plot_confusion(m["confusion"], out / "confusion.png")
        plots.append(("Confusion matrix", "confusion.png"))
        series = _tracking_series(evaluation, test_ds)
        if series:
            plot_tracking(series, out / "tracking.png")
            plots.append(("Index vs. true level", "tracking.png"))
        if ablations:
            plot_ablations({"all": m, **ablations}, out / "ablations.png")
            plots.append(("Ablations", "ablations.png"))
    except ImportError:
        lines += ["_Plots not written: matplotlib is not installed (`pip install matplotlib`)._", ""]
    for title, name in plots:
        lines += [f"### {title}", "", f"![{title}]({name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    log.info("report written to %s", path)
    return path


def _tracking_series(evaluation, ds, max_subjects: int = 4):
    idx = evaluation.test_index
    probs = evaluation.probs
    index = 50.0 * probs[:, 1] + 100.0 * probs[:, 2]
    out = []
    for subject in sorted(set(ds.subjects[idx].tolist()))[:max_subjects]:
        sel = ds.subjects[idx] == subject
        recs = ds.recordings[idx][sel]
        first = recs[0]
        keep = recs == first  # one recording per panel: times of different sessions do not align
        out.append((subject, ds.t_end[idx][sel][keep], index[sel][keep], ds.level_end[idx][sel][keep]))
    return out
