"""Index-quality benchmark (``painmon bench index``): is the number a clinician reads right and steady?

Held-out simulated subjects (seeds no training set uses, sampling rates drawn per subject)
are scored offline through the real engine (:func:`monitor.scoring.score_session`, the
same path as ``painmon replay --speed 0``), and for the raw 1-s index and the headline
(the engine's causal smoothed index) it prints:

* **corr** — Pearson correlation with the true level (no 0, low 50, high 100) at each
  window's end, over every window with a number (transitions included; target for the
  headline >= 0.75); **corr/win** — the same against the true level averaged over the
  window (what the window's data can show at best: a window that ends 2 s into an episode
  holds 8 s of the previous level), reported to say how much of the gap is the window's lag;
* **change/s** — mean absolute change per second in steady periods (the true level
  unchanged for the window plus :data:`SETTLE_S`; target <= 3 points);
* **onset lag** — median seconds from an episode's start to the value first entering the
  episode's band (:func:`core.estimate.band_of`); an episode whose value never gets
  there counts as never (target <= 20 s);
* **no→high** — share of no-pain time shown in the high band (target <= 5 %).

Two **reference** rows come from the truth, not from a model: the true level averaged over
each window (a perfect judge of each window's content) and that series through the
headline's smoother. They show how much of the gap to a target is the 10-s window's and the
smoother's lag, which no better model removes (:func:`reference_series`).

``--smoothers`` also applies candidate causal smoothers
(:func:`monitor.engine.smoothing.make_smoother`: time EMAs, causal medians, median + EMA,
1-euro filters) to the raw index the engine produced, so the headline's smoother can be
chosen on the trade-off between steadiness and lag; the figures for the engine's own
headline come from the engine, not from this re-computation. ``--save`` keeps the series,
``--load`` re-evaluates them without scoring again.

Modes (``--mode``, default both, each a run of its own through the engine):
``absolute`` — no baseline, every estimate from the population head; ``relative`` — each
subject's baseline learnt from its first ``--baseline`` s (default 60) of good signal as
live, later estimates from the relative head (the count of estimates per mode is printed;
a model without a relative head shows none as relative). Subjects (``--population``):
``varied`` by default — varied physiology on a random device (gain, offset, coloured noise,
drift) and a 70-100 s first rest, like the training subjects but from other seeds;
``plain`` — ideal devices, 15-35 s first rest (the first population of this benchmark).
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.estimate import CLASS_NAMES, Estimate, band_of  # noqa: E402
from core.streams import StreamSpec  # noqa: E402
from monitor.options import add_model_options, model_options  # noqa: E402

HELD_OUT_SEED_BASE = 9_100_000
"""Subject seeds of this benchmark: far from the simulator's demo seeds (``seed * 1000 +
i``) and from training's (``5_000_000 + seed * 10_000 + k``)."""
SETTLE_S = 20.0
"""A period is steady once the true level has been unchanged for a window plus this long."""
RATE_CHOICES: dict[str, tuple[float, ...]] = {
    "EDA": (4.0, 8.0, 15.0),
    "BVP": (25.0, 64.0, 100.0, 128.0),
    "RESP": (25.0, 32.0, 50.0),
    "SpO2": (1.0,),
}
"""Sampling rates drawn per subject (wristbands, chest straps, lab amplifiers)."""
LEVEL_VALUE = {0: 0.0, 1: 50.0, 2: 100.0}
DEFAULT_CANDIDATES = "ema:5,ema:10,ema:20,ema:30,median:9,median:5+ema:5,median:9+ema:5,euro:0.02:0.002,euro:0.01:0.005"


@dataclass
class SubjectRun:
    """One held-out subject's estimates and truth."""

    subject: str
    schedule: object
    t: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    headline: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)

    def truth(self, t: np.ndarray) -> np.ndarray:
        return self.schedule.codes_at(t)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Scores:
    """The four figures of one series (see the module docstring)."""

    corr: float
    n: int
    change_per_s: float
    onset_lag_s: float
    onsets: int
    onsets_never: int
    no_in_high: float
    corr_window: float = math.nan
    """Pearson correlation with the true level *averaged over each window* (what the
    window's own data can show at best; the gap to ``corr`` is the window's lag)."""


POPULATIONS = ("varied", "plain")
"""``varied`` (default): :meth:`SubjectProfile.varied` physiology measured by a
:meth:`SensorSettings.random` device (gain, offset, coloured noise, drift) at the drawn rates,
with a first rest of 70-100 s (:func:`training.sim_data.first_rest_s`, the rule of the
training subjects), so a 60-s baseline is learnt at rest — the population the bundled model's
training evaluation holds out, from other seeds; ``plain``: :meth:`SubjectProfile.random` on an
ideal device at the drawn rates with a 15-35 s first rest (the benchmark's first population;
a 60-s baseline then includes pain)."""


def held_out_session(n_subjects: int, duration_s: float, seed: int, population: str = "varied"):
    """A :class:`devices.xdf.Session` of simulated held-out subjects (in memory) and their schedules."""
    from devices.simulator import CHANNEL_LABELS, UNITS, PainSchedule, SensorSettings, SubjectProfile, simulate
    from devices.xdf import Session, SessionStream
    from training.sim_data import first_rest_s

    if population not in POPULATIONS:
        raise ValueError(f"population {population!r}: use one of {', '.join(POPULATIONS)}")
    streams, schedules = [], {}
    t0 = 1000.0
    for i in range(n_subjects):
        s_seed = HELD_OUT_SEED_BASE + seed * 1000 + i
        rng = np.random.default_rng([s_seed, 7])
        rates = {m: float(rng.choice(choices)) for m, choices in RATE_CHOICES.items()}
        sid = f"held-{i + 1}"
        if population == "plain":
            rec = simulate(SubjectProfile.random(s_seed), PainSchedule.random(duration_s, seed=s_seed), duration_s,
                           seed=s_seed, rates=rates, subject=sid)
        else:
            sched = PainSchedule.random(duration_s, seed=s_seed, first_rest_s=min(first_rest_s(s_seed), duration_s))
            rec = simulate(SubjectProfile.varied(s_seed), sched, duration_s, seed=s_seed, rates=rates, subject=sid,
                           sensor=SensorSettings.random(s_seed))
        schedules[sid] = rec.schedule
        for modality, (values, fs) in rec.signals.items():
            spec = StreamSpec(sid, modality, (CHANNEL_LABELS[modality],), fs, UNITS[modality], f"{sid} {modality}")
            ts = t0 + np.arange(values.size) / fs
            streams.append(SessionStream(spec=spec, timestamps=ts, values=values.astype(np.float64)[:, None]))
    session = Session(path=Path("held-out-simulated.xdf"), streams=streams, writer="painmon bench index",
                      t_start=t0, duration=duration_s)
    return session, schedules


def score(values: np.ndarray, t: np.ndarray, codes: np.ndarray, window_s: float) -> Scores:
    """The four figures of one value series against the truth (see the module docstring)."""
    ok = np.isfinite(values)
    truth = np.array([LEVEL_VALUE[int(c)] for c in codes])
    corr = float(np.corrcoef(values[ok], truth[ok])[0, 1]) if ok.sum() > 2 and np.std(values[ok]) > 0 else math.nan
    # steady: the level unchanged over [t - window_s - SETTLE_S, t]
    since = _time_since_change(t, codes)
    steady = since >= window_s + SETTLE_S
    changes = []
    for k in range(1, len(t)):
        if steady[k] and steady[k - 1] and codes[k] == codes[k - 1] and ok[k] and ok[k - 1] and t[k] > t[k - 1]:
            changes.append(abs(values[k] - values[k - 1]) / (t[k] - t[k - 1]))
    lags = _onset_lags(values, t, codes)
    never = sum(1 for lag in lags if not math.isfinite(lag))
    no = (codes == 0) & ok
    high = np.array([band_of(v) == CLASS_NAMES[2] for v in values])
    return Scores(
        corr=corr,
        n=int(ok.sum()),
        change_per_s=float(np.mean(changes)) if changes else math.nan,
        onset_lag_s=float(np.median(lags)) if lags else math.nan,
        onsets=len(lags),
        onsets_never=never,
        no_in_high=float(np.mean(high[no])) if no.any() else math.nan,
    )


def _time_since_change(t: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Seconds since the true level last changed, at each estimate (from the truth on a 0.1 s grid)."""
    out = np.empty(len(t))
    for k, tk in enumerate(t):
        grid = tk - np.arange(0.0, 120.0, 0.1)
        grid_codes = _codes_on(grid)
        diff = np.nonzero(grid_codes != codes[k])[0]
        out[k] = grid[0] - grid[diff[0]] if diff.size else 120.0
    return out


_CODES_ON: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {"fn": None}
"""The truth of the subject being scored (set by :func:`pooled`)."""


def _codes_on(t: np.ndarray) -> np.ndarray:
    fn = _CODES_ON["fn"]
    assert fn is not None
    return fn(t)


def _onset_lags(values: np.ndarray, t: np.ndarray, codes: np.ndarray) -> list[float]:
    """Per episode after the first: seconds from its start to the first value in its band
    (inf when the value never gets there before the episode ends)."""
    lags: list[float] = []
    fn = _CODES_ON["fn"]
    assert fn is not None
    grid = np.arange(max(0.0, t[0] - 60.0), t[-1] + 0.05, 0.1)
    g = fn(grid)
    starts = np.nonzero(np.diff(g) != 0)[0] + 1
    for j, s in enumerate(starts):
        t0 = grid[s]
        t1 = grid[starts[j + 1]] if j + 1 < len(starts) else t[-1] + 1e-9
        if t0 < t[0]:
            continue
        band = CLASS_NAMES[int(g[s])]
        inside = (t >= t0) & (t < t1)
        hit = [tk for tk, v in zip(t[inside], values[inside], strict=True) if band_of(v) == band]
        lags.append(hit[0] - t0 if hit else math.inf)
    return lags


def smooth(values: np.ndarray, t: np.ndarray, spec: str) -> np.ndarray:
    """A candidate causal smoother (:func:`monitor.engine.smoothing.make_smoother`) over a
    raw index series."""
    from monitor.engine.smoothing import make_smoother

    sm = make_smoother(spec)
    # like the engine: a window without a number folds nothing in and shows no headline
    return np.array([sm.update(tk, v) if math.isfinite(v) else math.nan for tk, v in zip(t, values, strict=True)])


def run_subjects(args: argparse.Namespace, mode: str) -> tuple[dict[str, SubjectRun], float, float]:
    """Score the held-out subjects through the real engine in ``mode``; (runs, window_s, wall seconds).

    ``absolute``: no automatic baseline (and no profiles), so every estimate comes from the
    population head; ``relative``: each subject's baseline is learnt from its first
    ``--baseline`` s of good signal, as live, and the estimates after it come from the
    relative head (the ones before are absolute, state ``calibrating``). Profiles are never
    read or written: a benchmark must not leave baselines in the user's folder.
    """
    from dataclasses import replace

    from monitor.engine import BaselineOptions, Engine
    from monitor.scoring import score_session

    session, schedules = held_out_session(args.subjects, args.duration, args.seed, args.population)
    model = model_options(args)
    baseline = BaselineOptions(duration_s=0.0 if mode == "absolute" else args.baseline, profiles="off")
    model = replace(model, baseline=baseline)
    loaded = model.load()
    runs = {sid: SubjectRun(sid, sched) for sid, sched in schedules.items()}
    lock = threading.Lock()

    def on_estimate(est: Estimate, t_s: float) -> None:
        with lock:
            run = runs[est.subject]
            run.t.append(t_s)
            run.raw.append(est.index if est.state != "low_quality" else math.nan)
            run.headline.append(est.smoothed)
            run.states.append(est.state)
            run.modes.append(est.mode)

    t0 = time.monotonic()
    score_session(session, lambda hub: Engine(hub, loaded.estimator, realtime=False, threads=model.threads),
                  on_estimate=on_estimate,
                  on_progress=(lambda p: print("  " + p.line(), flush=True)) if not args.silent else None)
    return runs, loaded.window_s, time.monotonic() - t0


class _SavedSchedule:
    """The truth of a saved run, looked up on its saved per-estimate levels (and a 0.1 s
    grid rebuilt from them by holding the level since the previous estimate)."""

    def __init__(self, t: np.ndarray, codes: np.ndarray):
        self.t, self.codes = t, codes

    def codes_at(self, t: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(self.t, np.asarray(t, dtype=float), side="right") - 1, 0, len(self.t) - 1)
        return self.codes[i]


def load_runs(path: str) -> tuple[dict[str, SubjectRun], float]:
    """Runs saved by ``--save`` (truth approximated at the estimates' own times)."""
    data = np.load(path)
    runs = {}
    for key in data.files:
        if not key.endswith("/t"):
            continue
        sid = key[:-2]
        t = data[f"{sid}/t"]
        run = SubjectRun(sid, _SavedSchedule(t, data[f"{sid}/truth"]))
        run.t, run.raw, run.headline = list(t), list(data[f"{sid}/raw"]), list(data[f"{sid}/headline"])
        run.states = ["ok"] * len(t)
        run.modes = [str(m) for m in data[f"{sid}/mode"]] if f"{sid}/mode" in data.files else []
        runs[sid] = run
    return runs, float(data["window_s"])


def window_truth(run: SubjectRun, t: np.ndarray, window_s: float) -> np.ndarray:
    """Mean true level (0 / 50 / 100) over each window ``[t - window_s, t]`` (0.1 s grid)."""
    if not len(t):
        return np.zeros(0)
    grid = np.asarray(t, dtype=float)[:, None] - np.arange(0.0, window_s + 1e-9, 0.1)[None, :]
    codes = run.truth(grid.ravel()).reshape(grid.shape)
    return np.vectorize(LEVEL_VALUE.__getitem__)(codes.astype(int)).mean(axis=1)


def pooled(runs: dict[str, SubjectRun], window_s: float, series) -> Scores:
    """Scores over every subject's estimates pooled (corr, shares) / averaged per pair (change)."""
    per = []
    all_v: list[float] = []
    all_truth: list[float] = []
    all_win: list[float] = []
    changes: list[float] = []
    lags: list[float] = []
    no_high: list[bool] = []
    for run in runs.values():
        t = np.asarray(run.t)
        order = np.argsort(t, kind="stable")
        t = t[order]
        v = np.asarray(series(run, t, order), dtype=float)
        _CODES_ON["fn"] = run.truth
        codes = run.truth(t)
        s = score(v, t, codes, window_s)
        per.append(s)
        ok = np.isfinite(v)
        all_v.extend(v[ok])
        all_truth.extend(LEVEL_VALUE[int(c)] for c in codes[ok])
        all_win.extend(window_truth(run, t[ok], window_s))
        if math.isfinite(s.change_per_s):
            changes.append(s.change_per_s)
        lags.extend(_onset_lags(v, t, codes))
        no = (codes == 0) & ok
        no_high.extend(band_of(x) == CLASS_NAMES[2] for x in v[no])
    corr = float(np.corrcoef(all_v, all_truth)[0, 1]) if len(all_v) > 2 and np.std(all_v) > 0 else math.nan
    corr_win = float(np.corrcoef(all_v, all_win)[0, 1]) if len(all_v) > 2 and np.std(all_v) > 0 else math.nan
    return Scores(corr=corr, corr_window=corr_win, n=len(all_v),
                  change_per_s=float(np.mean(changes)) if changes else math.nan,
                  onset_lag_s=float(np.median(lags)) if lags else math.nan, onsets=len(lags),
                  onsets_never=sum(1 for x in lags if not math.isfinite(x)),
                  no_in_high=float(np.mean(no_high)) if no_high else math.nan)


def reference_series(window_s: float, headline: str) -> dict[str, Callable[..., np.ndarray]]:
    """Series no model produced, to read the model's rows against: the true level averaged
    over each window (what an estimator that sees the window and judges it perfectly *on
    average* would say), and that series through the headline's smoother. Their **corr**
    shows how much of the gap to the target is the window's and the smoother's lag rather
    than the model: a model trained on each window's end level can beat the first row only
    by reading an episode's start from the window's last seconds."""
    return {
        "reference: window's mean truth": lambda r, t, o: window_truth(r, t, window_s),
        "  ... through the headline": lambda r, t, o: smooth(window_truth(r, t, window_s), t, headline),
    }


def _row(name: str, s: Scores) -> str:
    lag = "never" if math.isinf(s.onset_lag_s) else f"{s.onset_lag_s:5.1f}"
    return (f"  {name:<26} {s.corr:6.3f} {s.corr_window:8.3f} {s.n:6d} {s.change_per_s:9.2f} {lag:>9} "
            f"{s.onsets - s.onsets_never:>4}/{s.onsets:<4} {100 * s.no_in_high:7.1f} %")


def _mode_path(path: str, mode: str, n_modes: int) -> str:
    """``--save`` path of one mode: as given for one mode, ``NAME-MODE.npz`` when both are measured."""
    if n_modes == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{mode}{p.suffix or '.npz'}"))


def main(argv: list[str] | None = None) -> int:
    """``painmon bench index``."""
    p = argparse.ArgumentParser(prog="painmon bench index", description=__doc__.splitlines()[0])
    p.add_argument("--subjects", type=int, default=4, help="held-out simulated subjects (default 4)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds per subject (default 300)")
    p.add_argument("--seed", type=int, default=0, help="draw of held-out subjects (default 0)")
    p.add_argument("--quick", action="store_true", help="2 subjects x 180 s (a smoke run)")
    p.add_argument("--mode", choices=("absolute", "relative", "both"), default="both",
                   help="which modes to measure (default both; relative needs a model with a relative head)")
    p.add_argument("--population", choices=POPULATIONS, default="varied",
                   help="held-out simulated subjects: varied (default: varied physiology, random devices, "
                   "70-100 s first rest) or plain (ideal devices, 15-35 s first rest)")
    p.add_argument("--smoothers", default=DEFAULT_CANDIDATES,
                   help=f"candidate causal headline smoothers to compare (default {DEFAULT_CANDIDATES}; '' = none)")
    p.add_argument("--load", default=None, metavar="PATH.npz",
                   help="evaluate the runs saved by --save instead of scoring subjects again")
    p.add_argument("--silent", action="store_true", help="no progress lines")
    p.add_argument("--save", default=None, metavar="PATH.npz",
                   help="also save every subject's times, raw index, headline and true level (for analysis)")
    add_model_options(p)
    args = p.parse_args(argv)
    if args.quick:
        args.subjects, args.duration = 2, 180.0
    if args.subjects < 1 or not args.duration > 60:
        p.error("--subjects must be >= 1 and --duration > 60 s")
    candidates = [x.strip() for x in args.smoothers.split(",") if x.strip()]
    modes = ["absolute", "relative"] if args.mode == "both" else [args.mode]

    if args.load:
        for mode in modes:
            path = _mode_path(args.load, mode, len(modes))
            if not Path(path).is_file():
                p.error(f"no saved runs at {path} (--save writes NAME-MODE.npz per mode when both are measured)")

    from monitor.engine.smoothing import HEADLINE

    if args.load:
        print(f"index quality: the runs saved in {args.load} (truth held between their estimates)")
    else:
        print(f"index quality: {args.subjects} held-out simulated subjects ({args.population}) x {args.duration:.0f} s "
              f"(seeds {HELD_OUT_SEED_BASE + args.seed * 1000}..., rates drawn from {RATE_CHOICES}; "
              f"relative mode: {args.baseline:g}-s baseline)")
    for mode in modes:
        if args.load:
            path = _mode_path(args.load, mode, len(modes))
            runs, window_s = load_runs(path)
            print(f"\nmode {mode}: {sum(len(r.t) for r in runs.values())} estimates loaded from {path}")
        else:
            runs, window_s, wall = run_subjects(args, mode)
            seen_states = {m for r in runs.values() for m in r.states}
            data_s = sum(r.t[-1] - r.t[0] + window_s for r in runs.values() if r.t)
            counts = {st: sum(x == st for r in runs.values() for x in r.states) for st in sorted(seen_states)}
            print(f"\nmode {mode}: {sum(len(r.t) for r in runs.values())} estimates in {wall:.0f} s "
                  f"({data_s / wall:.1f} s of data per s; states {counts})")
        all_modes = [m for r in runs.values() for m in r.modes]
        if all_modes:
            n_rel = sum(m == "relative" for m in all_modes)
            print(f"  estimates by mode: relative {n_rel}, absolute {len(all_modes) - n_rel}")
            if mode == "relative" and n_rel == 0:
                print("  (no estimate is relative: the model has no relative head, or no baseline was learnt)")
        print(f"  {'series':<26} {'corr':>6} {'corr/win':>8} {'n':>6} {'change/s':>9} {'onset lag':>9} "
              f"{'hit/eps':>9} {'no→high':>9}")
        print(_row("raw 1-s index", pooled(runs, window_s, lambda r, t, o: np.asarray(r.raw)[o])))
        print(_row(f"headline (engine, {HEADLINE})",
                   pooled(runs, window_s, lambda r, t, o: np.asarray(r.headline)[o])))
        for name, series in reference_series(window_s, HEADLINE).items():
            print(_row(name, pooled(runs, window_s, series)))
        for spec in candidates:
            print(_row(f"  candidate {spec}",
                       pooled(runs, window_s, lambda r, t, o, spec=spec: smooth(np.asarray(r.raw)[o], t, spec))))
        print("  targets (headline): corr >= 0.75, change/s <= 3, onset lag <= 20 s, no→high <= 5 %")
        if args.save and not args.load:
            arrays: dict[str, np.ndarray] = {"window_s": np.asarray(window_s)}
            for sid, r in runs.items():
                t = np.asarray(r.t)
                arrays.update({f"{sid}/t": t, f"{sid}/raw": np.asarray(r.raw),
                               f"{sid}/headline": np.asarray(r.headline), f"{sid}/truth": r.truth(t),
                               f"{sid}/mode": np.asarray(r.modes, dtype=str)})
            path = _mode_path(args.save, mode, len(modes))
            np.savez(path, **arrays)  # type: ignore[arg-type]
            print(f"  saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
